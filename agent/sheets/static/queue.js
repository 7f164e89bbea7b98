// labedge queue page: posts the page's actions to the agent with the per-install token.
(function () {
  "use strict";
  var CFG = JSON.parse(document.getElementById("labedge-config").textContent);
  var banner = document.getElementById("banner");
  var busy = false;
  function say(kind, text) { banner.className = "banner " + kind; banner.textContent = text; }
  function post(path, body) {
    return fetch(path, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-Labedge-Token": CFG.token}, body: JSON.stringify(body)})
      .then(function (r) { return r.json().then(function (j) { return {status: r.status, body: j}; }); });
  }
  function msg(b) { return (b && b.message && (b.message.en || b.message.ja)) || ""; }
  function b64(buf) {
    var bytes = new Uint8Array(buf), s = "", i, step = 0x8000;
    for (i = 0; i < bytes.length; i += step) { s += String.fromCharCode.apply(null, bytes.subarray(i, i + step)); }
    return btoa(s);
  }
  document.querySelectorAll("[data-pick]").forEach(function (b) {
    b.addEventListener("click", function () {
      var fp = b.getAttribute("data-pick");
      var sel = document.querySelector('select[data-pick-for="' + fp + '"]');
      if (!sel || !sel.value) { say("bad", "シートを選んでください / Pick a sheet first"); return; }
      post("/api/hold/pick", {hold: fp, sheet_id: sel.value}).then(function (r) {
        if (r.status === 200) { say("ok", "適用しました / Applied"); setTimeout(function () { location.reload(); }, 800); }
        else { say("bad", msg(r.body)); }
      });
    });
  });
  document.querySelectorAll("[data-attach]").forEach(function (b) {
    b.addEventListener("click", function () {
      var id = b.getAttribute("data-attach");
      var input = document.querySelector('input[data-attach-input="' + id + '"]');
      if (!input || !input.files.length) { say("bad", "ファイルを選んでください / Choose files first"); return; }
      busy = true;
      Promise.all(Array.prototype.map.call(input.files, function (f) {
        return f.arrayBuffer().then(function (buf) { return {name: f.name, data: b64(buf)}; });
      })).then(function (files) { return post("/api/attach", {parent_id: id, files: files}); })
        .then(function (r) {
          busy = false;
          if (r.status === 200) { say("ok", "添付しました / Attached as " + r.body.package_id); input.value = ""; }
          else { say("bad", "添付できません / Refused: " + msg(r.body)); }
        })
        .catch(function (e) { busy = false; say("bad", String(e)); });
    });
  });
  var pause = document.getElementById("pause");
  if (pause) {
    pause.addEventListener("click", function () {
      post("/api/pause", {paused: pause.getAttribute("data-paused") === "1"}).then(function (r) {
        if (r.status === 200) { location.reload(); } else { say("bad", msg(r.body)); }
      }).catch(function (e) { say("bad", String(e)); });
    });
  }
  var retry = document.getElementById("retry");
  if (retry) {
    retry.addEventListener("click", function () {
      post("/api/retry", {}).then(function () { location.reload(); });
    });
  }
  // Refresh the lists every 10 s unless the user is in the middle of something.
  setInterval(function () {
    var a = document.activeElement;
    var editing = busy || (a && (a.tagName === "SELECT" || a.tagName === "INPUT")) ||
      Array.prototype.some.call(document.querySelectorAll("input[type=file]"), function (i) { return i.files.length; });
    if (!editing && banner.className.indexOf("bad") < 0) { location.reload(); }
  }, 10000);
  document.body.setAttribute("data-ready", "1");
})();
