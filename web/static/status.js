// Alert page: poll the status JSON and update the counts without a reload, until the alert is finished.
(function () {
  "use strict";
  var box = document.getElementById("status");
  if (!box) { return; }
  var url = box.dataset.url;
  function set(id, v) { var el = document.getElementById(id); if (el) { el.textContent = v; } }
  function apply(s) {
    box.querySelectorAll("td[data-state]").forEach(function (td) {
      td.textContent = s.counts[td.dataset.state] || 0;
    });
    set("reached", s.reached); set("total", s.total); set("pending", s.pending);
    var bar = document.getElementById("progress");
    if (bar) { bar.max = s.total || 1; bar.value = s.reached; }
    var quota = document.getElementById("quota-warning");
    if (quota) { quota.textContent = s.quota_warning || ""; quota.classList.toggle("hidden", !s.quota_warning); }
    var waiting = document.getElementById("pending-approval");
    if (waiting && s.state !== "pending_approval") { waiting.remove(); }
    var banner = document.getElementById("done-banner");
    if (s.finished && banner) {
      banner.classList.remove("hidden");
      banner.classList.add(s.all_sent ? "ok" : "warn");
      banner.dataset.allSent = s.all_sent ? "1" : "0";
      banner.textContent = s.all_sent ? banner.dataset.textOk : banner.dataset.textPartial;
      var cancel = document.getElementById("cancel-form");
      if (cancel) { cancel.remove(); }
    }
    box.dataset.finished = s.finished ? "1" : "0";
    return s.finished;
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (!s || !apply(s)) { setTimeout(poll, 1500); } })
      .catch(function () { setTimeout(poll, 5000); });
  }
  if (box.dataset.finished !== "1") { setTimeout(poll, 1000); }
})();
