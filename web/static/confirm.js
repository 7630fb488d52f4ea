// Confirm page: one click sends once (the server also refuses a second send of the same confirmation).
(function () {
  "use strict";
  var form = document.getElementById("send-form");
  if (!form) { return; }
  form.addEventListener("submit", function () { document.getElementById("send").disabled = true; });
})();
