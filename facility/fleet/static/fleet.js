// labedge fleet dashboard. Every value from the server is rendered with textContent (hostile input).
"use strict";
const boot = JSON.parse(document.getElementById("boot").textContent);
const T = boot.t;
const app = document.getElementById("app");
let filter = new URLSearchParams(location.search).get("filter") || "all";

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
  return e;
}
function age(t) {
  if (t == null) return "-";
  let s = Math.max(0, Date.now() / 1000 - t);
  for (const [u, n] of [["d", 86400], ["h", 3600], ["m", 60]]) if (s >= n) return Math.round(s / n) + u + " " + T.ago;
  return Math.round(s) + "s " + T.ago;
}
function dur(s) {
  if (s == null) return "-";
  for (const [u, n] of [["d", 86400], ["h", 3600], ["m", 60]]) if (s >= n) return Math.round(s / n) + u;
  return Math.round(s) + "s";
}
function size(n) {
  if (n == null || n < 0) return "-";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
function why(d) {
  // the server's reasons in this page's language; its English text when a code is new to this page
  return (d.reasons || []).map(r => {
    const t = T["r_" + r.code];
    return t ? t.replace("{v}", r.value == null ? "" : String(r.value)) + (r.detail ? ": " + r.detail : "") : r.text;
  }).join("; ") || d.why;
}
function stateCell(d) {
  return el("td", {class: "state s-" + d.state, "data-state": d.state}, d.symbol + " " + (T[d.label] || d.label));
}
function langLink() {
  const other = boot.lang === "ja" ? "en" : "ja";
  const u = new URL(location.href); u.searchParams.set("lang", other);
  return el("a", {href: u.pathname + u.search, id: "lang"}, T.lang_other);
}
function matches(d) {
  if (filter === "attention") return d.state !== "ok";
  if (filter === "offline") return d.state === "offline" || d.state === "stale";
  if (filter === "expiring") return d.cert_days != null && d.cert_days < 30;
  return true;
}
function header(data) {
  const bar = el("div", {class: "bar"});
  for (const f of ["all", "attention", "offline", "expiring"]) {
    const b = el("button", {"data-filter": f, "aria-pressed": String(f === filter)}, T[f]);
    b.onclick = () => { filter = f; history.replaceState(null, "", "?filter=" + f + "&lang=" + boot.lang); render(data); };
    bar.append(b);
  }
  bar.append(el("a", {href: "/config?lang=" + boot.lang, id: "nav-config"}, T.configuration));
  bar.append(el("span", {class: "meta"}, T.updated + " " + new Date(data.generated_at * 1000).toLocaleTimeString(), " · ", langLink()));
  return bar;
}
function alerts(data) {
  const out = [];
  if (!data.broker_connected) out.push(el("div", {class: "alert", role: "alert"}, T.broker_down + (data.broker_error ? ": " + data.broker_error : "")));
  if (data.catalog_note) out.push(el("div", {class: "alert"}, T.catalog + ": " + data.catalog_note));
  return out;
}
let last = null;
function render(data) {
  last = data;
  const shown = data.devices.filter(matches);
  const rows = shown.map(d => {
    const probs = el("ul", {class: "problems"});
    for (const p of d.problems.slice(0, 3)) probs.append(el("li", {}, p.text));
    if (d.problems_omitted) probs.append(el("li", {}, "+" + d.problems_omitted + " " + T.omitted));
    const link = el("a", {href: "/device/" + encodeURIComponent(d.device) + "?lang=" + boot.lang}, d.device);
    return el("tr", {"data-device": d.device}, stateCell(d), el("td", {}, link, el("div", {class: "why"}, why(d))),
      el("td", {}, age(d.since)), el("td", {}, d.agent_version || "?"),
      el("td", {}, (d.config_version || "?") + " / " + (d.config_state || "?")),
      el("td", {}, d.queued ?? "-"), el("td", {}, d.failed ?? "-"), el("td", {}, dur(d.oldest_waiting_s)),
      el("td", {}, age(d.last_delivery)), el("td", {}, d.cert_days == null ? "-" : d.cert_days + T.days),
      el("td", {}, probs));
  });
  const head = el("tr", {}, ...["state", "device", "since", "version", "config", "queued", "failed", "oldest",
    "delivered", "cert", "problems"].map(k => el("th", {scope: "col"}, T[k])));
  const body = data.devices.length ? el("table", {id: "devices"}, el("thead", {}, head), el("tbody", {}, ...rows))
    : el("p", {}, T.no_devices);
  app.replaceChildren(el("h1", {}, T.title), ...alerts(data), header(data),
    el("p", {class: "meta", id: "count"}, shown.length + " " + T.of + " " + data.devices.length + " " + T.shown), body);
}
function renderDevice(data) {
  const d = data.line;
  const dl = el("dl", {id: "facts"});
  const add = (k, v) => dl.append(el("dt", {}, T[k] || k), el("dd", {}, v));
  add("state", el("span", {class: "state s-" + d.state, "data-state": d.state}, d.symbol + " " + (T[d.label] || d.label)));
  add("why", why(d)); add("since", age(d.since)); add("last_seen", age(d.last_seen)); add("version", d.agent_version || "?");
  add("config", (d.config_version || "?") + " / " + (d.config_state || "?"));
  add("queued", d.queued ?? "-"); add("failed", d.failed ?? "-"); add("oldest", dur(d.oldest_waiting_s));
  add("delivered", age(d.last_delivery)); add("cert", d.cert_days == null ? "-" : d.cert_days + T.days);
  add("paused", d.paused || T.none); add("held", d.held ?? "-"); add("host", (d.host || "?") + " · " + (d.os || "?"));
  const probs = el("ul", {id: "problems"});
  for (const p of d.problems) probs.append(el("li", {"data-kind": p.kind}, p.kind + ": " + p.text));
  if (!d.problems.length) probs.append(el("li", {}, T.none));
  const pk = el("tbody", {});
  for (const p of data.packages) pk.append(el("tr", {}, el("td", {}, p.package_id), el("td", {}, p.sample || "-"),
    el("td", {}, p.translation || "-"), el("td", {}, size(p.bytes)), el("td", {}, age(p.stored_at))));
  const ev = el("ul", {id: "events"});
  for (const e of data.events) ev.append(el("li", {}, (e.online ? T.online : T.offline) + " · " + age(e.at) + (e.reason ? " · " + e.reason : "")));
  app.replaceChildren(el("p", {}, el("a", {href: "/?lang=" + boot.lang}, "← " + T.back), " · ", langLink()),
    el("h1", {}, T.device + " " + d.device), dl, el("h2", {}, T.problems), probs,
    el("h2", {}, T.deliveries), el("table", {id: "deliveries"}, el("thead", {}, el("tr", {},
      ...["package", "sample", "translation", "bytes", "stored"].map(k => el("th", {}, T[k])))), pk),
    el("h2", {}, T.events), ev, ...deviceConfig(d, data));
}
// ---------------------------------------------------------------- remote configuration (read-only)
const RESULT = {applied: ["ok", "●"], refused: ["warning", "▲"], rolled_back: ["warning", "▲"],
  sent: ["stale", "◆"], no_answer: ["stale", "◆"], waiting: ["stale", "◆"], not_sent: ["offline", "■"]};
function resultCell(r, tag) {
  const [cls, sym] = RESULT[r.state] || ["offline", "?"];
  return el(tag || "td", {class: "state s-" + cls, "data-result": r.state},
    sym + " " + (T["p_" + r.state] || r.state) + (r.reported ? " " + T.from_status : ""));
}
function historyNote(n) {
  const t = T["h_" + n.code];
  return el("p", {class: n.code === "absent" ? "meta" : "alert", id: "history-note", "data-code": n.code},
    t ? t.replace("{v}", n.value || "") : n.text);
}
function when(t) { return t == null ? "-" : new Date(t * 1000).toLocaleString() + " (" + age(t) + ")"; }
function targetsText(t) {
  if (t.all === true) return T.target_all;
  if (Array.isArray(t.groups)) return T.target_group + " " + t.groups.join(", ");
  if (Array.isArray(t.devices)) return T.target_devices + " " + t.devices.join(", ");
  return JSON.stringify(t);
}
function deviceConfig(d, data) {
  const c = (data.status && data.status.config) || {};
  const rep = el("dl", {id: "config-reported"});
  const add = (k, v) => rep.append(el("dt", {}, T[k] || k), el("dd", {}, v));
  add("cfg_version", (d.config_version || "?") + " / " + (d.config_state || "?"));
  if (c.applied_version != null) add("in_force", c.applied_version);
  if (c.desired_version != null) add("desired", c.desired_version);
  if (c.error) add("reason", (c.event_version != null ? c.event_version + ": " : "") + c.error);
  const lp = (data.config_pushes || [])[0];
  if (lp) add("last_push", el("span", {id: "last-push"}, T.push + " " + lp.push_id + " · " + T.cfg_version + " " +
    lp.version + " · ", resultCell(lp, "span"), lp.reason ? ": " + lp.reason : ""));
  const out = [el("h2", {}, T.reported_config), rep, el("h2", {}, T.device_pushes)];
  if (data.history_note) { out.push(historyNote(data.history_note)); return out; }
  const rows = (data.config_pushes || []).map(r => el("tr", {"data-push": r.push_id},
    el("td", {}, el("a", {href: "/config?lang=" + boot.lang + "#push-" + r.push_id}, String(r.push_id))),
    el("td", {}, r.version), el("td", {}, r.signer), el("td", {}, when(r.pushed_at)), resultCell(r),
    el("td", {class: "reason"}, r.reason || "")));
  if (!rows.length) { out.push(el("p", {class: "meta", id: "no-pushes"}, T.none)); return out; }
  out.push(el("table", {id: "device-pushes"}, el("thead", {}, el("tr", {},
    ...["push", "cfg_version", "signer", "when", "result", "reason"].map(k => el("th", {scope: "col"}, T[k])))),
    el("tbody", {}, ...rows)));
  return out;
}
function renderConfig(data) {
  const top = [el("p", {}, el("a", {href: "/?lang=" + boot.lang}, "← " + T.back), " · ", langLink()),
    el("h1", {}, T.pushes), ...alerts(Object.assign({broker_connected: true}, data))];
  if (data.history_note) { app.replaceChildren(...top, historyNote(data.history_note)); return; }
  if (!data.pushes.length) { app.replaceChildren(...top, historyNote({code: "absent"})); return; }
  const sections = data.pushes.map(p => {
    const facts = el("dl", {class: "push-facts"});
    const add = (k, v) => facts.append(el("dt", {}, T[k] || k), el("dd", {}, v));
    add("cfg_version", p.version); add("signer", p.signer); add("host", p.host || "-");
    add("targets", targetsText(p.targets || {})); add("state", (T["ps_" + p.state] || p.state) + (p.note ? " · " + p.note : ""));
    add("when", when(p.pushed_at));
    add("results", Object.entries(p.counts || {}).map(([k, n]) => (T["p_" + k] || k) + " " + n).join(" · ") || T.none);
    const rows = p.results.map(r => el("tr", {"data-device": r.device},
      el("td", {}, el("a", {href: "/device/" + encodeURIComponent(r.device) + "?lang=" + boot.lang}, r.device)),
      resultCell(r), el("td", {class: "reason"}, r.reason || ""), el("td", {}, age(r.at))));
    const kids = [el("h2", {}, T.push + " " + p.id + " · " + T.cfg_version + " " + p.version), facts];
    kids.push(rows.length ? el("table", {class: "results"}, el("thead", {}, el("tr", {},
      ...["device", "result", "reason", "when"].map(k => el("th", {scope: "col"}, T[k])))), el("tbody", {}, ...rows))
      : el("p", {class: "meta"}, T.results + ": " + T.none));
    if (p.results_omitted) kids.push(el("p", {class: "meta"}, "+" + p.results_omitted + " " + T.more_results));
    return el("section", {class: "push", id: "push-" + p.id, "data-push": p.id, "data-state": p.state}, ...kids);
  });
  app.replaceChildren(...top, el("p", {class: "meta"}, T.pushes_limit.replace("{v}", data.limit)), ...sections);
}
async function poll(url, fn) {
  try {
    const r = await fetch(url, {credentials: "same-origin", cache: "no-store"});
    if (r.status === 401) { location.href = "/login"; return; }
    if (r.ok) fn(await r.json());
  } catch (e) { /* the server restarts: try again at the next tick */ }
  setTimeout(() => poll(url, fn), 2000);
}
function login() {
  const input = el("input", {type: "password", id: "token", autocomplete: "off"});
  const msg = el("p", {role: "alert"});
  const go = async tok => {
    const r = await fetch("/login", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({token: tok})});
    if (r.status === 204) location.replace("/?lang=" + boot.lang); else msg.textContent = T.wrong_token;
  };
  const form = el("form", {}, el("label", {for: "token"}, T.token + " "), input, el("button", {type: "submit"}, T.login));
  form.onsubmit = ev => { ev.preventDefault(); go(input.value); };
  app.replaceChildren(el("h1", {}, T.title), form, msg);
  const fromHash = () => {
    const m = location.hash.match(/token=([^&]+)/);
    if (m) { history.replaceState(null, "", "/login"); go(decodeURIComponent(m[1])); }
  };
  window.addEventListener("hashchange", fromHash);
  fromHash();
}
if (boot.page === "login") login();
else if (boot.page === "config") poll("/api/config", renderConfig);
else if (boot.page === "device") poll("/api/device/" + encodeURIComponent(boot.device), renderDevice);
else poll("/api/fleet", render);
