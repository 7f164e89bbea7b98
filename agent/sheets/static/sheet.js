// labedge sample sheet: renders the form from the embedded model, checks it, and either saves a
// <name>.sheet.json (opened from file://) or posts it to the local agent (served on 127.0.0.1).
// Values are only ever put into the page with textContent/value, never as markup.
// No silent carry-over: a sheet opens with the facility's prefilled values only (marked as such);
// the last sample's values come back only through the "Same as last sample" button.
(function () {
  "use strict";
  var CFG = JSON.parse(document.getElementById("labedge-config").textContent);
  var MODEL = CFG.model;
  var STORE_KEY = "labedge.sheet." + MODEL.template;
  var T = {
    save: {ja: "シートを保存", en: "Save sheet file"},
    use: {ja: "このシートで測定する", en: "Use this sheet"},
    useHold: {ja: "このデータに適用", en: "Apply to this measurement"},
    clear: {ja: "新しい試料", en: "New sample"},
    same: {ja: "前回の試料と同じ", en: "Same as last sample"},
    prefilled: {ja: "既定値", en: "prefilled"},
    fromLast: {ja: "前回の値", en: "from last sample"},
    legend: {ja: "は必須項目です", en: "marks a required field"},
    sameDone: {ja: "前回の試料の値を入れました。違う所を直してください。", en: "Filled in the last sample's values: change what differs."},
    newDone: {ja: "新しい試料の空のシートです。", en: "An empty sheet for a new sample."},
    close: {ja: "シートを閉じる", en: "Close sheet"},
    required: {ja: "必須項目です", en: "required"},
    number: {ja: "数値を入力してください", en: "must be a number"},
    integer: {ja: "整数を入力してください", en: "must be a whole number"},
    choose: {ja: "選択肢から選んでください", en: "choose one of the options"},
    date: {ja: "日付は YYYY-MM-DD で入力してください", en: "date must be YYYY-MM-DD"},
    time: {ja: "時刻は HH:MM または HH:MM:SS で入力してください", en: "time must be HH:MM or HH:MM:SS"},
    uri: {ja: "URIの形式ではありません", en: "must be a URI such as https://..."},
    uuid: {ja: "UUIDの形式ではありません", en: "must be a UUID"},
    form: {ja: "形式が正しくありません", en: "has the wrong form"},
    control: {ja: "制御文字は使えません", en: "control characters are not allowed"},
    fix: {ja: "項目を確認してください", en: "field(s) need attention"},
    saved: {ja: "保存しました: ", en: "Saved: "},
    savedHint: {ja: "ブラウザのダウンロードフォルダ（通常は「ダウンロード」）に保存されました。測定の前に、このファイルを装置のデータフォルダ（データを書き込むフォルダ）に移してください。その後に書かれたデータと対になります。",
                en: "It is in your browser's download folder (usually Downloads). Before measuring, move it into the instrument's data folder (where the data will be written): it pairs the data written after it."},
    active: {ja: "有効なシート: ", en: "Active sheet: "},
    activeNone: {ja: "有効なシートはありません。次の測定はシート待ちになります。",
                 en: "No active sheet: the next measurements will wait for one."},
    posted: {ja: "保存しました。次の測定からこのシートと対になります。", en: "Saved. The next measurements pair with this sheet."},
    postedHold: {ja: "保存しました。このデータに適用しました。", en: "Saved and applied to this measurement."},
    closed: {ja: "シートを閉じました。", en: "Sheet closed."},
    failed: {ja: "エージェントに送れませんでした: ", en: "Could not reach the agent: "},
    forHold: {ja: "シート待ちのデータ: ", en: "Measurement waiting for a sheet: "},
    none: {ja: "（選択なし）", en: "(none)"},
    instrument: {ja: "装置: ", en: "Instrument: "},
    back: {ja: "← 一覧へ", en: "← Queue"}
  };
  var lang = "ja";
  try { lang = localStorage.getItem("labedge.lang") || (navigator.language || "ja").slice(0, 2); } catch (e) {}
  var cookie = /(?:^|;\s*)labedge_lang=(ja|en)/.exec(document.cookie || "");
  if (cookie && CFG.mode === "served") { lang = cookie[1]; }
  if (lang !== "ja" && lang !== "en") { lang = "en"; }
  function tr(o) { return (o && (o[lang] || o.en || o.ja)) || ""; }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) { for (var k in attrs) { if (attrs[k] !== undefined && attrs[k] !== null) { e.setAttribute(k, attrs[k]); } } }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function fields() {
    var out = [];
    MODEL.sections.forEach(function (s) { s.fields.forEach(function (f) { out.push(f); }); });
    return out;
  }
  function today() {
    var d = new Date(), p = function (n) { return (n < 10 ? "0" : "") + n; };
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate());
  }
  var origin = {};   // field id -> "prefilled" (the facility's or the template's) or "last" (the button)
  function initialValues() {
    var v = {};
    origin = {};
    fields().forEach(function (f) {
      if (f.prefill === "today") { v[f.id] = today(); origin[f.id] = "prefilled"; }
      else if (f["const"] !== undefined) { v[f.id] = f["const"]; origin[f.id] = "prefilled"; }
      else if (f["default"] !== undefined) { v[f.id] = f["default"]; origin[f.id] = "prefilled"; }
      else if (f.choices && f.choices.length === 1) { v[f.id] = f.choices[0].value; origin[f.id] = "prefilled"; }
    });
    return v;
  }
  // The last sample's values: the active sheet (served) or what this browser saved last (file).
  function lastValues() {
    var pre = CFG.prefill || {}, k, out = {};
    for (k in pre) { if (Object.prototype.hasOwnProperty.call(pre, k) && pre[k] !== null) { out[k] = pre[k]; } }
    if (!Object.keys(out).length) { out = remembered(); }
    delete out["basic.dateSubmitted"];
    return out;
  }
  function nfkc(s) { return s.normalize ? s.normalize("NFKC") : s; }
  function remembered() {
    try { var s = JSON.parse(localStorage.getItem(STORE_KEY) || "{}"); return (s && typeof s === "object") ? s : {}; }
    catch (e) { return {}; }
  }
  var form = document.getElementById("sheet");
  var banner = document.getElementById("banner");
  // The banner is fixed in the viewport and aria-live: feedback is seen (and read out) wherever the
  // user has scrolled to.
  function setBanner(kind, text) { banner.className = "banner toast " + kind; banner.textContent = text; }
  banner.setAttribute("aria-live", "polite");
  banner.title = lang === "ja" ? "クリックで閉じる" : "click to close";
  banner.addEventListener("click", function () { banner.className = "banner toast"; banner.textContent = ""; });

  function control(f, value) {
    var c;
    var opts = f.choices && f.choices.length ? f.choices.map(function (o) { return {value: o.value, label: o.label}; }) :
      (f["enum"] ? f["enum"].map(function (x) {
        var l = f.enumLabels && f.enumLabels[x];
        return {value: x, label: l ? tr(l) : String(x)};
      }) : null);
    if (f.type === "boolean") {
      c = el("input", {type: "checkbox", name: f.id, id: "f-" + f.id});
      c.checked = value === true || value === "true";
    } else if (opts) {
      c = el("select", {name: f.id, id: "f-" + f.id});
      if (!f.required || value === undefined || value === null || value === "") { c.appendChild(el("option", {value: ""}, tr(T.none))); }
      var known = false;
      opts.forEach(function (o) {
        var op = el("option", {value: String(o.value)}, o.label);
        if (String(o.value) === String(value)) { op.selected = true; known = true; }
        c.appendChild(op);
      });
      if (!known && value !== undefined && value !== null && value !== "") {  // a remembered value no longer offered
        var extra = el("option", {value: String(value)}, String(value)); extra.selected = true; c.appendChild(extra);
      }
    } else if (f.widget === "textarea") {
      c = el("textarea", {name: f.id, id: "f-" + f.id, rows: "2"});
      c.value = value === undefined || value === null ? "" : String(value);
    } else {
      var numeric = f.type === "number" || f.type === "integer";
      c = el("input", {type: f.format === "date" ? "date" : "text", name: f.id, id: "f-" + f.id,
                       inputmode: numeric ? "decimal" : null, "class": numeric ? "num" : null, autocomplete: "off"});
      c.value = value === undefined || value === null ? "" : String(value);
      if (!numeric && f.format !== "date") { c.setAttribute("maxlength", String(f.maxLength === undefined ? 1000 : f.maxLength)); }
    }
    if (c.tagName === "TEXTAREA") { c.setAttribute("maxlength", String(f.maxLength === undefined ? 1000 : f.maxLength)); }
    if (f.placeholder && c.tagName !== "SELECT") { c.setAttribute("placeholder", tr(f.placeholder)); }
    c.setAttribute("aria-describedby", "m-" + f.id);
    c.addEventListener("change", function () { check(f, true); });
    c.addEventListener("input", function () { unmark(f); count(f); dateWords(f); });
    return c;
  }

  function render(values) {
    form.textContent = "";
    document.documentElement.lang = lang;
    var back = document.getElementById("back");
    if (back) { back.textContent = tr(T.back); }
    document.getElementById("title").textContent = tr(MODEL.title);
    document.title = "labedge: " + tr(MODEL.title);
    document.getElementById("subtitle").textContent =
      (CFG.instrument ? tr(T.instrument) + CFG.instrument + " · " : "") + MODEL.template;
    MODEL.sections.forEach(function (s) {
      var fs = el("fieldset", {id: "s-" + s.id});
      fs.appendChild(el("legend", null, tr(s.label)));
      s.fields.forEach(function (f) {
        var row = el("div", {"class": "field", id: "row-" + f.id});
        var lab = el("label", {"for": "f-" + f.id}, tr(f.label));
        if (f.required) { lab.appendChild(el("span", {"class": "req", title: tr(T.required)}, "*")); }
        row.appendChild(lab);
        if (origin[f.id]) {
          row.className += " " + (origin[f.id] === "last" ? "from-last" : "prefilled");
          lab.appendChild(el("span", {"class": "prefilled-tag", id: "o-" + f.id}, tr(origin[f.id] === "last" ? T.fromLast : T.prefilled)));
        }
        var ctl = el("div", {"class": "ctl"});
        ctl.appendChild(control(f, values[f.id]));
        if (f.unit) { ctl.appendChild(el("span", {"class": "unit"}, f.unit)); }
        if (f.format === "date") { ctl.appendChild(el("span", {"class": "hint date-words", id: "d-" + f.id})); }
        if (f.type === "string" && !f.format && !f.pattern && !(f.choices && f.choices.length) && !f["enum"]) {
          ctl.appendChild(el("span", {"class": "counter", id: "n-" + f.id, "aria-live": "polite"}));
        }
        row.appendChild(ctl);
        row.appendChild(el("div", {"class": "msg", id: "m-" + f.id, role: "alert"}));
        fs.appendChild(row);
      });
      form.appendChild(fs);
    });
    var legend = el("p", {"class": "legend", id: "legend"});
    legend.appendChild(el("span", {"class": "req"}, "* "));
    legend.appendChild(document.createTextNode(tr(T.legend)));
    form.insertBefore(legend, form.firstChild);
    var act = el("div", {"class": "actions sticky"});
    var primary = el("button", {type: "submit", "class": "btn primary", id: "submit"},
                     tr(CFG.mode === "served" ? (CFG.hold ? T.useHold : T.use) : T.save));
    act.appendChild(primary);
    var clear = el("button", {type: "button", "class": "btn", id: "clear"}, tr(T.clear));
    clear.addEventListener("click", function () { render(initialValues()); setBanner("ok", tr(T.newDone)); });
    var last = lastValues();
    if (Object.keys(last).length) {
      var same = el("button", {type: "button", "class": "btn", id: "same-as-last"}, tr(T.same));
      same.addEventListener("click", function () {
        var v = initialValues(), l = lastValues(), k;
        for (k in l) { if (Object.prototype.hasOwnProperty.call(l, k)) { v[k] = l[k]; origin[k] = "last"; } }
        render(v);
        setBanner("ok", tr(T.sameDone));
      });
      act.appendChild(same);
    }
    act.appendChild(clear);
    if (CFG.mode === "served" && CFG.active && !CFG.hold) {
      var close = el("button", {type: "button", "class": "btn", id: "close-sheet"}, tr(T.close));
      close.addEventListener("click", closeSheet);
      act.appendChild(close);
    }
    form.appendChild(act);
    fields().forEach(function (f) { count(f); dateWords(f); });
    document.querySelectorAll(".lang button").forEach(function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-lang") === lang ? "true" : "false");
    });
    var info = document.getElementById("info");
    info.textContent = "";
    if (CFG.mode === "served") {
      if (CFG.hold) { info.className = "banner info"; info.textContent = tr(T.forHold) + CFG.hold.name; }
      else if (CFG.active) { info.className = "banner info"; info.textContent = tr(T.active) + (CFG.active.sample || CFG.active.sheet_id); }
      else { info.className = "banner info"; info.textContent = tr(T.activeNone); }
    }
  }

  function unmark(f) {
    var tag = document.getElementById("o-" + f.id), row = document.getElementById("row-" + f.id);
    if (tag) { tag.remove(); }
    if (row) { row.classList.remove("prefilled"); row.classList.remove("from-last"); }
    delete origin[f.id];
  }
  // Length limits while typing: the input stops at the limit (maxlength) and the count shows near it.
  function count(f) {
    var n = document.getElementById("n-" + f.id), c = form.elements.namedItem(f.id);
    if (!n || !c) { return; }
    var max = f.maxLength === undefined ? 1000 : f.maxLength, len = c.value.length;
    n.textContent = len >= max * 0.8 ? len + "/" + max : "";
    n.className = "counter" + (len >= max ? " full" : "");
  }
  function dateWords(f) {
    var d = document.getElementById("d-" + f.id), c = form.elements.namedItem(f.id);
    if (!d || !c) { return; }
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(c.value);
    d.textContent = m ? new Intl.DateTimeFormat(lang === "ja" ? "ja-JP" : "en-GB", {year: "numeric", month: "long",
      day: "numeric", weekday: "short", timeZone: "UTC"}).format(new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]))) : "";
  }
  function raw(f) {
    var c = form.elements.namedItem(f.id);
    if (!c) { return undefined; }
    if (f.type === "boolean") { return c.checked; }
    // full-width digits from a Japanese IME ("１２０") are ordinary numbers (and dates, times)
    if (f.type === "number" || f.type === "integer" || f.format === "date" || f.format === "time") { return nfkc(c.value); }
    return c.value;
  }
  function problem(f, v) {
    if (typeof v === "string") { v = v.trim(); }
    if (v === undefined || v === null || v === "") { return f.required ? T.required : null; }
    if (f.type === "boolean") { return null; }
    if (f.type === "number" || f.type === "integer") {
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(String(v))) { return T.number; }
      var n = Number(v);
      if (!isFinite(n)) { return T.number; }
      if (f.type === "integer" && Math.floor(n) !== n) { return T.integer; }
      if (f.minimum !== undefined && n < f.minimum) { return {ja: f.minimum + " 以上にしてください", en: "must be at least " + f.minimum}; }
      if (f.maximum !== undefined && n > f.maximum) { return {ja: f.maximum + " 以下にしてください", en: "must be at most " + f.maximum}; }
      if (f.exclusiveMinimum !== undefined && n <= f.exclusiveMinimum) { return {ja: f.exclusiveMinimum + " より大きくしてください", en: "must be greater than " + f.exclusiveMinimum}; }
      if (f.exclusiveMaximum !== undefined && n >= f.exclusiveMaximum) { return {ja: f.exclusiveMaximum + " 未満にしてください", en: "must be less than " + f.exclusiveMaximum}; }
    } else {
      var s = String(v), max = f.maxLength === undefined ? 1000 : f.maxLength;
      if (s.length > max) { return {ja: max + " 文字以内にしてください", en: "at most " + max + " characters"}; }
      if (f.minLength !== undefined && s.length < f.minLength) { return {ja: f.minLength + " 文字以上にしてください", en: "at least " + f.minLength + " characters"}; }
      if (/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(s)) { return T.control; }
      if (f.format === "date") {
        var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s), d = m && new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
        if (!m || d.getUTCMonth() !== +m[2] - 1 || d.getUTCDate() !== +m[3]) { return T.date; }
      }
      if (f.format === "time" && !/^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$/.test(s)) { return T.time; }
      if (f.format === "uri" && !/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(s)) { return T.uri; }
      if (f.format === "uuid" && !/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(s)) { return T.uuid; }
      if (f.pattern && !(new RegExp(f.pattern)).test(s)) { return f.hint || T.form; }
    }
    if (f["enum"] && f["enum"].map(String).indexOf(String(v)) < 0) { return T.choose; }
    return null;
  }
  function typed(f, v) {
    if (typeof v === "string") { v = v.trim(); }
    if (v === "" || v === undefined) { return null; }
    if (f.type === "number") { return Number(v); }
    if (f.type === "integer") { return parseInt(v, 10); }
    if (f["enum"] && f.type !== "string") { return f["enum"].filter(function (x) { return String(x) === String(v); })[0]; }
    return v;
  }
  function showError(f, msg) {
    var c = form.elements.namedItem(f.id), m = document.getElementById("m-" + f.id);
    if (m) { m.textContent = msg ? tr(msg) : ""; }
    if (c) { if (msg) { c.setAttribute("aria-invalid", "true"); } else { c.removeAttribute("aria-invalid"); } }
  }
  function check(f, live) {
    var p = problem(f, raw(f));
    showError(f, p);
    return p;
  }
  function collect() {
    var bad = [], values = {};
    fields().forEach(function (f) {
      var p = check(f);
      if (p) { bad.push(f); } else { values[f.id] = typed(f, raw(f)); }
    });
    if (bad.length) {
      setBanner("bad", bad.length + " " + tr(T.fix));
      var c = form.elements.namedItem(bad[0].id); if (c && c.focus) { c.focus(); }
      return null;
    }
    return values;
  }
  function uuid4() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var b = new Uint8Array(16); crypto.getRandomValues(b); b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  function remember(values) {
    try { localStorage.setItem(STORE_KEY, JSON.stringify(values)); } catch (e) {}
  }
  // Keep the sample's own name (Japanese included): only what Windows forbids in file names goes.
  function fileName(values) {
    var s = String(values["sample.names"] || "sample");
    s = (s.normalize ? s.normalize("NFC") : s).replace(/[\\/:*?"<>|\u0000-\u001f\u007f]+/g, "_")
      .replace(/\s+/g, " ").replace(/^[.\s_]+|[.\s]+$/g, "");
    var base = Array.from(s).slice(0, 60).join("");
    if (/^(con|prn|aux|nul|com\d|lpt\d)$/i.test(base)) { base = "_" + base; }
    var d = new Date(), p = function (n) { return (n < 10 ? "0" : "") + n; };
    var stamp = (values["basic.dateSubmitted"] || today()) + "_" + p(d.getHours()) + p(d.getMinutes()) + p(d.getSeconds());
    return (base || "sample") + "_" + stamp + ".sheet.json";
  }
  function saveFile(values) {
    var doc = {format: "labedge-sheet", version: 1, template: MODEL.template, sheet_id: uuid4(),
               saved_at: new Date().toISOString(), values: values};
    var blob = new Blob([JSON.stringify(doc, null, 2)], {type: "application/json"});
    var a = el("a", {href: URL.createObjectURL(blob), download: fileName(values)});
    document.body.appendChild(a); a.click(); a.remove();
    setBanner("ok", tr(T.saved) + a.getAttribute("download") + " — " + tr(T.savedHint));
  }
  function post(path, body) {
    return fetch(path, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-Labedge-Token": CFG.token}, body: JSON.stringify(body)})
      .then(function (r) { return r.json().then(function (j) { return {status: r.status, body: j}; }); });
  }
  function send(values) {
    post("/api/sheet", {instrument_id: CFG.instrument, template: MODEL.template, values: values,
                        hold: CFG.hold ? CFG.hold.id : null})
      .then(function (r) {
        if (r.status === 200 && r.body.ok) {
          remember(values);
          CFG.active = CFG.hold ? CFG.active : {sheet_id: r.body.sheet_id, sample: values["sample.names"]};
          render(values);
          setBanner("ok", tr(CFG.hold ? T.postedHold : T.posted));
          return;
        }
        var errs = (r.body && r.body.errors) || {};
        fields().forEach(function (f) { if (errs[f.id]) { showError(f, errs[f.id]); } });
        setBanner("bad", tr(r.body && r.body.message) || (Object.keys(errs).length + " " + tr(T.fix)));
      })
      .catch(function (e) { setBanner("bad", tr(T.failed) + e); });
  }
  function closeSheet() {
    post("/api/sheet/close", {instrument_id: CFG.instrument}).then(function (r) {
      if (r.status === 200) { CFG.active = null; render(currentValues()); setBanner("ok", tr(T.closed)); }
      else { setBanner("bad", tr(r.body && r.body.message)); }
    }).catch(function (e) { setBanner("bad", tr(T.failed) + e); });
  }
  function currentValues() {
    var v = {};
    fields().forEach(function (f) { var x = raw(f); if (x !== undefined) { v[f.id] = x; } });
    return v;
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var values = collect();
    if (!values) { return; }
    if (CFG.mode === "served") { send(values); } else { remember(values); saveFile(values); }
  });
  document.querySelectorAll(".lang button").forEach(function (b) {
    b.addEventListener("click", function () {
      var keep = currentValues();
      lang = b.getAttribute("data-lang");
      try { localStorage.setItem("labedge.lang", lang); } catch (e) {}
      if (CFG.mode === "served") { document.cookie = "labedge_lang=" + lang + "; path=/; SameSite=Strict; max-age=31536000"; }
      render(keep);
      setBanner("", "");
    });
  });
  render(initialValues());
  document.body.setAttribute("data-ready", "1");
})();
