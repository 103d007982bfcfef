// Progressive enhancement for the case queue; every form on the page works without this file.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  ready(function () {
    // The other clocks of a case load when its "next due" cell is opened (once).
    document.querySelectorAll("details.due-more[data-clocks-url]").forEach(function (cell) {
      cell.addEventListener("toggle", function () {
        if (!cell.open || cell.dataset.loaded) { return; }
        cell.dataset.loaded = "1";
        var body = cell.querySelector(".due-clocks");
        fetch(cell.dataset.clocksUrl, { credentials: "same-origin", headers: { "Accept": "text/html" } })
          .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
          .then(function (html) { body.innerHTML = html; })
          .catch(function () { delete cell.dataset.loaded; });
      });
    });

    var filters = document.querySelector("form.q-filters");
    // A changed sort order applies at once (the Apply button stays for everything else).
    var sort = filters && filters.querySelector("select[name='sort']");
    if (sort) {
      sort.addEventListener("change", function () {
        if (filters.requestSubmit) { filters.requestSubmit(); } else { filters.submit(); }
      });
    }

    // Ticking cases: a box for the whole page, and the count in the action bar.
    var bar = document.getElementById("bulk-form");
    if (!bar) { return; }
    var boxes = Array.prototype.slice.call(document.querySelectorAll("input[name='keys'][form='bulk-form']"));
    var all = document.querySelector("input[data-select-all]");
    var count = bar.querySelector(".q-bulk-count");
    var everyMatching = bar.querySelector("input[name='all_matching']");
    function sync() {
      var ticked = boxes.filter(function (b) { return b.checked; }).length;
      if (all) {
        all.checked = ticked > 0 && ticked === boxes.length;
        all.indeterminate = ticked > 0 && ticked < boxes.length;
      }
      if (count) {
        count.textContent = everyMatching && everyMatching.checked
          ? "every case matching the filters"
          : ticked + " case" + (ticked === 1 ? "" : "s") + " ticked";
      }
    }
    if (all) {
      all.hidden = false;
      all.addEventListener("change", function () {
        boxes.forEach(function (b) { b.checked = all.checked; });
        sync();
      });
    }
    boxes.forEach(function (b) { b.addEventListener("change", sync); });
    if (everyMatching) { everyMatching.addEventListener("change", sync); }
    sync();
  });
})();
