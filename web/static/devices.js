// Devices page: refresh the table every 5 s (server-rendered, escaped fragment) so a modem going down shows up.
(function () {
  "use strict";
  var box = document.getElementById("devices-live");
  if (!box) { return; }
  function refresh() {
    fetch(box.dataset.url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { box.innerHTML = html; } })
      .catch(function () {})
      .then(function () { setTimeout(refresh, 5000); });
  }
  setTimeout(refresh, 5000);
})();
