/* labedge_guard: a mosquitto 2.x plugin for what acl_file cannot express (see ../README.md).
 *
 * 1. Share groups. mosquitto's acl_file never checks SUBSCRIBE (security_default.c allows every
 *    subscription and filters only at delivery). A device that subscribes to
 *    $share/<group>/rde/+/up/# therefore JOINS the receivers' shared subscription; mosquitto routes
 *    its round-robin share of every device's chunks to it and drops them under the read ACL: one
 *    device black-holes everybody's uploads. Here a SUBSCRIBE whose filter starts with "$share/" is
 *    refused (SUBACK 0x87) unless the client's username (= certificate CN) is in
 *    `plugin_opt_share_users` (comma-separated).
 *
 * 2. Sizes per topic class. mosquitto has one max_packet_size for everything, sized for data
 *    chunks; ten retained 20 MiB messages on a device's own topics grew the broker by 240 MiB and
 *    a mosquitto.db that survives restarts. `plugin_opt_size_limit <filter> <bytes>` (one per line,
 *    first match wins) bounds a PUBLISH by topic; retained messages are allowed only on the filters
 *    in `plugin_opt_retain_topics` (comma-separated, e.g. the small per-device status and config)
 *    and up to `plugin_opt_retain_max_bytes`. A denied PUBLISH gets PUBACK 0x87 and is dropped.
 *
 * Everything else is deferred to acl_file, so labedge.acl stays the one place for topic rights.
 * Build: cc -shared -fPIC -O2 -o labedge_guard.so labedge_guard.c   (needs mosquitto-dev)
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define MAX_RULES 64

struct size_rule {
	char *filter;
	long max_bytes;
};

static mosquitto_plugin_id_t *plugin_id = NULL;
static char *share_users = NULL; /* ",a,b,c," so a lookup is one strstr of ",name," */
static struct size_rule size_rules[MAX_RULES];
static int n_size_rules = 0;
static char *retain_topics[MAX_RULES];
static int n_retain_topics = 0;
static long retain_max_bytes = 0; /* 0 with no retain_topics: no retained messages at all */

static bool listed(const char *list, const char *name)
{
	char *needle;
	size_t n;
	bool found;

	if(name == NULL || list == NULL || strchr(name, ',') != NULL) return false;
	n = strlen(name);
	needle = malloc(n + 3);
	if(needle == NULL) return false;
	needle[0] = ',';
	memcpy(needle + 1, name, n);
	needle[n + 1] = ',';
	needle[n + 2] = '\0';
	found = strstr(list, needle) != NULL;
	free(needle);
	return found;
}

static bool matches(const char *filter, const char *topic)
{
	bool result = false;
	if(mosquitto_topic_matches_sub(filter, topic, &result) != MOSQ_ERR_SUCCESS) return false;
	return result;
}

static const char *who(struct mosquitto *client)
{
	const char *u = mosquitto_client_username(client);
	return u ? u : "(anonymous)";
}

static int check_publish(struct mosquitto_evt_acl_check *ed)
{
	int i;
	bool retain_ok = false;

	for(i = 0; i < n_size_rules; i++){
		if(matches(size_rules[i].filter, ed->topic)){
			if((long)ed->payloadlen > size_rules[i].max_bytes){
				mosquitto_log_printf(MOSQ_LOG_NOTICE, "labedge_guard: refused %u-byte publish on %s from %s (limit %ld for %s)",
						ed->payloadlen, ed->topic, who(ed->client), size_rules[i].max_bytes, size_rules[i].filter);
				return MOSQ_ERR_ACL_DENIED;
			}
			break;
		}
	}
	if(ed->retain && ed->payloadlen > 0){ /* an empty retained message only clears one: always allowed */
		for(i = 0; i < n_retain_topics; i++){
			if(matches(retain_topics[i], ed->topic)){
				retain_ok = true;
				break;
			}
		}
		if(!retain_ok || (long)ed->payloadlen > retain_max_bytes){
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "labedge_guard: refused retained %u-byte publish on %s from %s",
					ed->payloadlen, ed->topic, who(ed->client));
			return MOSQ_ERR_ACL_DENIED;
		}
	}
	return MOSQ_ERR_PLUGIN_DEFER;
}

static int acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	(void)event;
	(void)userdata;

	if(ed->topic == NULL) return MOSQ_ERR_PLUGIN_DEFER;
	if(ed->access == MOSQ_ACL_WRITE) return check_publish(ed);
	if(ed->access != MOSQ_ACL_SUBSCRIBE) return MOSQ_ERR_PLUGIN_DEFER;
	if(strncmp(ed->topic, "$share/", 7) != 0) return MOSQ_ERR_PLUGIN_DEFER;
	if(listed(share_users, mosquitto_client_username(ed->client))) return MOSQ_ERR_PLUGIN_DEFER;
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "labedge_guard: refused shared subscription %s for %s", ed->topic,
			who(ed->client));
	return MOSQ_ERR_ACL_DENIED;
}

/* "a, b,c" -> each item, spaces dropped */
static void each_item(const char *value, void (*fn)(const char *item))
{
	char *copy = strdup(value), *save = NULL, *tok;
	if(copy == NULL) return;
	for(tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) fn(tok);
	free(copy);
}

static void add_share_user(const char *item)
{
	size_t len = strlen(share_users) + strlen(item) + 2;
	char *grown = realloc(share_users, len);
	if(grown == NULL) return;
	share_users = grown;
	strcat(share_users, item);
	strcat(share_users, ",");
}

static void add_retain_topic(const char *item)
{
	if(n_retain_topics < MAX_RULES) retain_topics[n_retain_topics++] = strdup(item);
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;
	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *opts, int opt_count)
{
	int i;
	(void)userdata;

	plugin_id = identifier;
	share_users = strdup(",");
	if(share_users == NULL) return MOSQ_ERR_NOMEM;
	for(i = 0; i < opt_count; i++){
		if(!strcmp(opts[i].key, "share_users")){
			each_item(opts[i].value, add_share_user);
		}else if(!strcmp(opts[i].key, "retain_topics")){
			each_item(opts[i].value, add_retain_topic);
		}else if(!strcmp(opts[i].key, "retain_max_bytes")){
			retain_max_bytes = atol(opts[i].value);
		}else if(!strcmp(opts[i].key, "size_limit")){
			char filter[1024];
			long max_bytes;
			if(sscanf(opts[i].value, "%1023s %ld", filter, &max_bytes) != 2 || max_bytes < 0){
				mosquitto_log_printf(MOSQ_LOG_ERR, "labedge_guard: bad size_limit '%s' (want: <filter> <bytes>)", opts[i].value);
				return MOSQ_ERR_INVAL;
			}
			if(n_size_rules < MAX_RULES){
				size_rules[n_size_rules].filter = strdup(filter);
				size_rules[n_size_rules].max_bytes = max_bytes;
				n_size_rules++;
			}
		}
	}
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, acl_check, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int opt_count)
{
	int i;
	(void)userdata;
	(void)opts;
	(void)opt_count;
	free(share_users);
	share_users = NULL;
	for(i = 0; i < n_size_rules; i++) free(size_rules[i].filter);
	for(i = 0; i < n_retain_topics; i++) free(retain_topics[i]);
	n_size_rules = n_retain_topics = 0;
	return mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, acl_check, NULL);
}
