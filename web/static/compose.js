// Compose page: fill texts from a template and show its fields, keep the preview live
// (POST /alerts/preview), and announce only the figures that changed.
(function () {
  "use strict";
  var form = document.getElementById("compose");
  var box = document.getElementById("preview");
  if (!form || !box) { return; }
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var templates = JSON.parse(document.getElementById("templates-data").textContent || "{}");
  var announcer = document.getElementById("preview-announce");
  var timer = null, seq = 0, figures = null;

  // The figures a screen reader hears about: id -> "label: value", read from the fragment's <dl>.
  function readFigures() {
    var out = {};
    box.querySelectorAll("[data-figure]").forEach(function (el) {
      out[el.id] = (el.dataset.figure || "") + ": " + el.textContent.trim();
    });
    return out;
  }
  function announceChanges() {
    var now = readFigures(), changed = [];
    Object.keys(now).forEach(function (k) { if (!figures || figures[k] !== now[k]) { changed.push(now[k]); } });
    // The first fill is not news; afterwards only what moved is spoken, not the whole panel.
    if (figures && changed.length && announcer) { announcer.textContent = changed.join(". "); }
    figures = now;
  }
  function refresh() {
    var mine = ++seq;
    fetch(form.dataset.previewUrl || "/alerts/preview", {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { "X-CSRFToken": csrf }
    }).then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && mine === seq) { box.innerHTML = html; announceChanges(); }  // server-escaped fragment
      })
      .catch(function () { /* the confirm page shows the same figures */ });
  }
  function later() { clearTimeout(timer); timer = setTimeout(refresh, 250); }

  function showFields(key) {
    form.querySelectorAll("fieldset.tpl-fields").forEach(function (fs) {
      var mine = fs.dataset.template === key;
      fs.hidden = !mine; fs.disabled = !mine;     // a disabled fieldset's inputs are not submitted
    });
  }
  var picker = document.getElementById("template");   // absent when correcting an alert
  if (picker) picker.addEventListener("change", function () {
    var t = templates[this.value];
    showFields(this.value);
    if (!t) { refresh(); return; }
    ["nl", "fr", "de", "en"].forEach(function (lang) {
      var el = document.getElementById("text_" + lang);
      if (el) { el.value = t.texts[lang] || ""; }
      var tick = document.getElementById("lang_" + lang);
      if (tick) { tick.checked = Boolean(t.texts[lang]); }
    });
    var radio = form.querySelector('input[name="category"][value="' + t.category + '"]');
    if (radio) { radio.checked = true; }
    refresh();
  });
  // Enter in a one-line field or on a checkbox must not send half a form: only the button submits.
  form.addEventListener("keydown", function (e) {
    var el = e.target;
    if (e.key === "Enter" && el.tagName === "INPUT" && el.type !== "submit") { e.preventDefault(); }
  });
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  form.addEventListener("submit", function () { document.getElementById("to-confirm").disabled = true; });
  refresh();
})();
