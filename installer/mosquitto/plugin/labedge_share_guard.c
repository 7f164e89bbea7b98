/* labedge_share_guard: a mosquitto 2.x plugin that keeps devices out of the receivers' share group.
 *
 * Why it exists: mosquitto's acl_file never checks SUBSCRIBE (security_default.c allows every
 * subscription and only filters at delivery). A device that subscribes to
 * $share/<group>/rde/+/up/# therefore JOINS the receivers' shared subscription; mosquitto then
 * routes its round-robin share of every device's chunks to it and drops them under the read ACL.
 * One device could black-hole everybody's uploads.
 *
 * What it does: a SUBSCRIBE whose filter starts with "$share/" is refused (SUBACK 0x87) unless the
 * client's username (= certificate CN, use_identity_as_username) is one of `plugin_opt_share_users`
 * (comma-separated). Every other check is deferred to acl_file, so labedge.acl stays the single
 * place for topic rights.
 *
 * Build: cc -shared -fPIC -O2 -o labedge_share_guard.so labedge_share_guard.c   (needs mosquitto-dev)
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

static mosquitto_plugin_id_t *plugin_id = NULL;
static char *share_users = NULL; /* ",a,b,c," so a lookup is one strstr of ",name," */

static bool may_share(const char *username)
{
	char *needle;
	size_t n;
	bool found;

	if(username == NULL || share_users == NULL) return false;
	if(strchr(username, ',') != NULL) return false;
	n = strlen(username);
	needle = malloc(n + 3);
	if(needle == NULL) return false;
	needle[0] = ',';
	memcpy(needle + 1, username, n);
	needle[n + 1] = ',';
	needle[n + 2] = '\0';
	found = strstr(share_users, needle) != NULL;
	free(needle);
	return found;
}

static int acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	(void)event;
	(void)userdata;

	if(ed->access != MOSQ_ACL_SUBSCRIBE) return MOSQ_ERR_PLUGIN_DEFER;
	if(ed->topic == NULL || strncmp(ed->topic, "$share/", 7) != 0) return MOSQ_ERR_PLUGIN_DEFER;
	if(may_share(mosquitto_client_username(ed->client))) return MOSQ_ERR_PLUGIN_DEFER;
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "labedge_share_guard: refused shared subscription %s for %s",
			ed->topic, mosquitto_client_username(ed->client) ? mosquitto_client_username(ed->client) : "(anonymous)");
	return MOSQ_ERR_ACL_DENIED;
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
	size_t len = 2;
	(void)userdata;

	plugin_id = identifier;
	for(i = 0; i < opt_count; i++){
		if(!strcmp(opts[i].key, "share_users")) len += strlen(opts[i].value) + 1;
	}
	share_users = calloc(1, len + 1);
	if(share_users == NULL) return MOSQ_ERR_NOMEM;
	strcpy(share_users, ",");
	for(i = 0; i < opt_count; i++){
		if(!strcmp(opts[i].key, "share_users")){
			strcat(share_users, opts[i].value);
			strcat(share_users, ",");
		}
	}
	/* spaces after commas are a natural way to write the list: drop them */
	{
		char *r = share_users, *w = share_users;
		for(; *r; r++) if(*r != ' ') *w++ = *r;
		*w = '\0';
	}
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, acl_check, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int opt_count)
{
	(void)userdata;
	(void)opts;
	(void)opt_count;
	free(share_users);
	share_users = NULL;
	return mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, acl_check, NULL);
}
