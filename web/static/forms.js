// Every page: an error summary takes focus so it is read first; its links move focus to the field.
(function () {
  "use strict";
  var summary = document.getElementById("error-summary");
  if (!summary) { return; }
  summary.focus();
  summary.addEventListener("click", function (e) {
    var link = e.target.closest("a[href^='#']");
    if (!link) { return; }
    var field = document.getElementById(link.getAttribute("href").slice(1));
    if (field) { e.preventDefault(); field.focus(); field.scrollIntoView({ block: "center" }); }
  });
})();
