// Import progress: poll the job's JSON endpoint until it finishes, then reload for the full report.
(function () {
  "use strict";
  var section = document.getElementById("import-progress");
  if (!section || section.dataset.finished === "true") return;
  var url = section.dataset.progressUrl;

  function set(name, text) {
    var el = section.querySelector('[data-field="' + name + '"]');
    if (el) el.textContent = text;
  }

  function show(data) {
    ["status_label", "phase_label", "rows_read", "total", "cases_created", "cases_updated",
     "cases_unchanged", "events_created", "cases_rejected", "rows_rejected"].forEach(function (name) {
      if (data[name] !== null && data[name] !== undefined) set(name, String(data[name]));
    });
    set("rate", data.rate_per_second ? Math.round(data.rate_per_second) + "/s" : "");
    set("eta", data.eta_seconds !== null ? "about " + data.eta_seconds + " s left" : "");
    var bar = section.querySelector('[data-field="bar"]');
    if (bar && data.percent !== null) bar.value = data.percent;
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) return setTimeout(poll, 5000);
        show(data);
        if (data.finished) window.location.reload();
        else setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
