// Compose page: fill texts from a template, and keep the preview live (POST /alerts/preview).
(function () {
  "use strict";
  var form = document.getElementById("compose");
  var box = document.getElementById("preview");
  if (!form || !box) { return; }
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var templates = JSON.parse(document.getElementById("templates-data").textContent || "{}");
  var timer = null, seq = 0;

  function refresh() {
    var mine = ++seq;
    fetch(form.dataset.previewUrl || "/alerts/preview", {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { "X-CSRFToken": csrf }
    }).then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null && mine === seq) { box.innerHTML = html; } })  // server-escaped fragment
      .catch(function () { /* the confirm page shows the same figures */ });
  }
  function later() { clearTimeout(timer); timer = setTimeout(refresh, 250); }

  var picker = document.getElementById("template");   // absent when correcting an alert
  if (picker) picker.addEventListener("change", function () {
    var t = templates[this.value];
    if (!t) { return; }
    ["nl", "fr", "de", "en"].forEach(function (lang) {
      var el = document.getElementById("text_" + lang);
      if (el) { el.value = t.texts[lang] || ""; }
    });
    var radio = form.querySelector('input[name="category"][value="' + t.category + '"]');
    if (radio) { radio.checked = true; }
    refresh();
  });
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  form.addEventListener("submit", function () { document.getElementById("to-confirm").disabled = true; });
  refresh();
})();
