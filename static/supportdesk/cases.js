// Progressive enhancement for the case pages; every form works without this file.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  ready(function () {
    // Move focus to the first field the server marked invalid, so keyboard users land on it.
    var invalid = document.querySelector("[aria-invalid='true']");
    if (invalid) { invalid.focus(); }

    // Status form: the triage fields matter only when the chosen status is "triaged", the
    // reopen reason only when it is "reopened" (a fieldset with an error stays visible).
    document.querySelectorAll("form.transition-form").forEach(function (form) {
      var to = form.querySelector("select[name='to']");
      var sets = form.querySelectorAll("fieldset[data-when]");
      if (!to || !sets.length) { return; }
      function sync() {
        sets.forEach(function (set) {
          var invalid = set.querySelector("[aria-invalid='true']");
          set.hidden = to.value !== set.getAttribute("data-when") && !invalid;
        });
      }
      to.addEventListener("change", sync);
      sync();
    });

    // New case: offer only the requesters of the chosen organisation.
    var org = document.querySelector(".create-form select[name='organisation']");
    var requester = document.querySelector(".create-form select[name='requester']");
    if (org && requester) {
      var syncRequesters = function () {
        var chosen = org.options[org.selectedIndex];
        var name = chosen && chosen.value ? chosen.text : "";
        requester.querySelectorAll("optgroup").forEach(function (group) {
          var match = !name || name === group.label || name.indexOf(group.label + " (") === 0;
          group.hidden = !match;
          group.disabled = !match;
        });
        var selected = requester.options[requester.selectedIndex];
        if (selected && selected.parentNode.disabled) { requester.value = ""; }
      };
      org.addEventListener("change", syncRequesters);
      syncRequesters();
    }
  });
})();
