// Progressive enhancement for the case queue; every form on the page works without this file.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  ready(function () {
    var filters = document.querySelector("form.q-filters");
    if (!filters) { return; }
    // A changed sort order applies at once (the Apply button stays for everything else).
    var sort = filters.querySelector("select[name='sort']");
    if (sort) { sort.addEventListener("change", function () { filters.requestSubmit ? filters.requestSubmit() : filters.submit(); }); }
  });
})();
