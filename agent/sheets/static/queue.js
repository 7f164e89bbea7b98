// labedge queue page: posts the page's actions with the per-install token, and keeps the live
// sections current by swapping in those of a fresh copy of the page every 2 s (no full reload).
(function () {
  "use strict";
  var CFG = JSON.parse(document.getElementById("labedge-config").textContent);
  var L = CFG.lang === "ja" ? "ja" : "en";
  var banner = document.getElementById("banner");
  var busy = false, hideTimer = null;
  var T = {
    pickFirst: {ja: "シートを選んでください", en: "Pick a sheet first"},
    notApplied: {ja: "適用しませんでした: ", en: "Not applied: "},
    anyway: {ja: "それでも適用しますか？", en: "Apply it anyway?"},
    applied: {ja: "適用しました。まもなくパッケージになります。", en: "Applied: the measurement is packaged shortly."},
    chooseFiles: {ja: "ファイルを選んでください", en: "Choose files first"},
    chooseParent: {ja: "添付先の測定を選んでください", en: "Choose the measurement to attach to"},
    attached: {ja: "添付しました: ", en: "Attached: "},
    refused: {ja: "添付できません: ", en: "Refused: "},
    paused: {ja: "一時停止しました", en: "Paused"},
    resumed: {ja: "再開しました", en: "Resumed"},
    retried: {ja: "再送します", en: "Retrying"},
    failed: {ja: "エージェントに送れませんでした: ", en: "Could not reach the agent: "}
  };
  function tr(o) { return (o && (o[L] || o.en || o.ja)) || ""; }
  // The banner is fixed in the viewport and aria-live, so feedback is seen (and read out) wherever
  // the user has scrolled to; good news fades, a refusal stays until the next action.
  function say(kind, text) {
    banner.className = "banner toast " + kind; banner.textContent = text;
    if (hideTimer) { clearTimeout(hideTimer); }
    if (kind === "ok") { hideTimer = setTimeout(function () { banner.className = "banner toast"; banner.textContent = ""; }, 6000); }
  }
  banner.addEventListener("click", function () { banner.className = "banner toast"; banner.textContent = ""; });
  function post(path, body) {
    return fetch(path, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-Labedge-Token": CFG.token}, body: JSON.stringify(body)})
      .then(function (r) { return r.json().then(function (j) { return {status: r.status, body: j}; }); });
  }
  function msg(b) { return tr(b && b.message); }
  function b64(buf) {
    var bytes = new Uint8Array(buf), s = "", i, step = 0x8000;
    for (i = 0; i < bytes.length; i += step) { s += String.fromCharCode.apply(null, bytes.subarray(i, i + step)); }
    return btoa(s);
  }
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button");
    if (!b) { return; }
    if (b.hasAttribute("data-pick")) {
      var fp = b.getAttribute("data-pick");
      var sel = document.querySelector('select[data-pick-for="' + fp + '"]');
      if (!sel || !sel.value) { say("bad", tr(T.pickFirst)); return; }
      var pick = function (confirmed) {
        post("/api/hold/pick", {hold: fp, sheet_id: sel.value, confirm: confirmed}).then(function (r) {
          if (r.status === 200) { say("ok", tr(T.applied)); sel.value = ""; refresh(); return; }
          // another instrument's template: say which, and apply only if the user confirms
          if (r.status === 409 && r.body.errors && r.body.errors.mismatch && !confirmed) {
            say("bad", msg(r.body));
            if (window.confirm(msg(r.body) + "\n\n" + tr(T.anyway))) { pick(true); } else { say("bad", tr(T.notApplied) + msg(r.body)); }
            return;
          }
          say("bad", msg(r.body));
        }).catch(function (e) { say("bad", tr(T.failed) + e); });
      };
      pick(false);
    } else if (b.id === "attach-go") {
      attach();
    } else if (b.id === "pause") {
      var pausing = b.getAttribute("data-paused") === "1";
      post("/api/pause", {paused: pausing}).then(function (r) {
        if (r.status === 200) { say("ok", tr(pausing ? T.paused : T.resumed)); refresh(); } else { say("bad", msg(r.body)); }
      }).catch(function (e) { say("bad", tr(T.failed) + e); });
    } else if (b.id === "retry") {
      post("/api/retry", {}).then(function () { say("ok", tr(T.retried)); refresh(); });
    } else if (b.hasAttribute("data-lang")) {
      var lang = b.getAttribute("data-lang");
      try { localStorage.setItem("labedge.lang", lang); } catch (e) {}
      document.cookie = "labedge_lang=" + lang + "; path=/; SameSite=Strict; max-age=31536000";
      location.reload();
    }
  });
  function attach() {
    var parent = document.getElementById("attach-parent"), input = document.getElementById("attach-files");
    if (!parent.value) { say("bad", tr(T.chooseParent)); return; }
    if (!input.files.length) { say("bad", tr(T.chooseFiles)); return; }
    var label = parent.options[parent.selectedIndex].textContent;
    busy = true;
    Promise.all(Array.prototype.map.call(input.files, function (f) {
      return f.arrayBuffer().then(function (buf) { return {name: f.name, data: b64(buf)}; });
    })).then(function (files) { return post("/api/attach", {parent_id: parent.value, files: files}); })
      .then(function (r) {
        busy = false;
        if (r.status === 200) { say("ok", tr(T.attached) + label + " (" + r.body.package_id + ")"); input.value = ""; parent.value = ""; refresh(); }
        else { say("bad", tr(T.refused) + msg(r.body)); }
      })
      .catch(function (e) { busy = false; say("bad", tr(T.failed) + e); });
  }
  // Sections are swapped only while the user is not in the middle of something inside them.
  var LIVE = ["status", "settling", "counts", "held", "packages", "attach"];
  function inUse(sec) {
    if (busy || sec.querySelector("details[open]")) { return true; }
    var a = document.activeElement;
    if (a && a !== document.body && sec.contains(a) && (a.tagName === "SELECT" || a.tagName === "INPUT")) { return true; }
    return Array.prototype.some.call(sec.querySelectorAll("select, input[type=file]"), function (i) {
      return i.tagName === "SELECT" ? !!i.value : i.files.length > 0;
    });
  }
  var inflight = false;
  function refresh() {
    if (inflight) { return; }
    inflight = true;
    fetch("/", {credentials: "same-origin", cache: "no-store"}).then(function (r) { return r.text(); }).then(function (text) {
      inflight = false;
      var fresh = new DOMParser().parseFromString(text, "text/html");
      LIVE.forEach(function (id) {
        var now = document.getElementById(id), next = fresh.getElementById(id);
        if (now && next && !inUse(now) && now.innerHTML !== next.innerHTML) { now.replaceWith(document.importNode(next, true)); }
        else if (!now && next) { document.querySelector("main").appendChild(document.importNode(next, true)); }
      });
      tick();
      document.body.setAttribute("data-refreshed", String(Date.now()));
    }).catch(function () { inflight = false; });
  }
  // The countdown before a held measurement goes out unpaired, every second.
  function tick() {
    var now = Date.now() / 1000;
    document.querySelectorAll("[data-deadline]").forEach(function (d) {
      var left = Math.max(0, Math.round(+d.getAttribute("data-deadline") - now)), out = d.querySelector(".left");
      if (out) { out.textContent = left >= 120 ? Math.round(left / 60) + (L === "ja" ? " 分" : " min") : left + (L === "ja" ? " 秒" : " s"); }
    });
  }
  tick();
  setInterval(tick, 1000);
  setInterval(refresh, 2000);
  document.body.setAttribute("data-ready", "1");
})();
