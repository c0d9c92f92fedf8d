// Dashboard counters: poll /admin/stats.json every 10 s and update the figures
// in place (same origin only; the page works without it).
"use strict";
(function () {
  function refresh() {
    fetch("/admin/stats.json", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        document.querySelectorAll("[data-counter]").forEach(function (el) {
          var key = el.getAttribute("data-counter");
          if (key in data) { el.textContent = String(data[key]); }
        });
      })
      .catch(function () { /* offline: keep the last figures */ });
  }
  setInterval(refresh, 10000);
})();
