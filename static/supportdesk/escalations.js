// The package form's live quality score: as the agent types, the form is scored by the server
// (the same rubric as on save) and the score and the missing list are updated. Without this file
// the score shows after saving the draft.
(function () {
  "use strict";

  var DELAY_MS = 300;

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function render(data) {
    var score = document.getElementById("quality-score");
    var meter = document.getElementById("quality-meter");
    var list = document.getElementById("quality-missing");
    var minimum = document.getElementById("quality-minimum");
    if (score) { score.textContent = String(data.score); }
    if (meter) { meter.value = data.score; }
    if (list) {
      list.textContent = "";
      if (!data.missing.length) {
        var done = document.createElement("li");
        done.className = "ok";
        done.textContent = "Nothing: the package is complete.";
        list.appendChild(done);
      }
      data.missing.forEach(function (item) {
        var li = document.createElement("li");
        li.setAttribute("data-criterion", item.criterion);
        li.textContent = item.message;
        list.appendChild(li);
      });
    }
    if (minimum) {
      minimum.textContent = "";
      if (data.minimum === null || data.minimum === undefined) {
        minimum.textContent = "Choose a team to see its minimum.";
      } else {
        minimum.appendChild(document.createTextNode("The team asks for at least " + data.minimum + ": "));
        var verdict = document.createElement("span");
        verdict.className = data.meets_minimum ? "ok" : "below";
        verdict.textContent = data.meets_minimum
          ? "meets the minimum"
          : "below the minimum — submitting needs a manager's override";
        minimum.appendChild(verdict);
      }
    }
  }

  ready(function () {
    var form = document.getElementById("package-form");
    if (!form || !window.fetch || !window.FormData) { return; }
    var url = form.getAttribute("data-score-url");
    var timer = null;
    var latest = 0;

    function score() {
      var body = new FormData(form);
      var token = body.get("csrfmiddlewaretoken") || "";
      var sent = ++latest;
      fetch(url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRFToken": token, "X-Requested-With": "fetch" }
      })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          // Answers can arrive out of order: only the newest request's answer is shown.
          if (data && sent === latest) { render(data); }
        })
        .catch(function () { /* offline: the score updates on save */ });
    }

    function schedule() {
      if (timer) { clearTimeout(timer); }
      timer = setTimeout(score, DELAY_MS);
    }

    form.addEventListener("input", schedule);
    form.addEventListener("change", schedule);
    score();
  });
})();
