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
    set("members-reached", s.members_reached); set("members-total", s.members);
    Object.keys(s.channels || {}).forEach(function (ch) {
      set("channel-" + ch, s.channels[ch].reached + " / " + s.channels[ch].total);
    });
    var bar = document.getElementById("progress");
    if (bar) { bar.max = s.members || 1; bar.value = s.members_reached; }
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
    var key = JSON.stringify(s.counts);
    if (key !== lastCounts) { lastCounts = key; refreshRecipients(); }
    return s.finished;
  }
  // The recipients table moves with the counts: re-read it from the page itself (server-escaped HTML).
  var lastCounts = null;
  function refreshRecipients() {
    var table = document.getElementById("recipients");
    if (!table) { return; }
    fetch(location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("#recipients tbody");
        var body = table.querySelector("tbody");
        if (fresh && body) { body.replaceWith(document.importNode(fresh, true)); }
      })
      .catch(function () {});
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (!s || !apply(s)) { setTimeout(poll, 1500); } })
      .catch(function () { setTimeout(poll, 5000); });
  }
  if (box.dataset.finished !== "1") { setTimeout(poll, 1000); }
})();
