// The dashboard's charts, drawn with Chart.js from /api/metrics/... (the numbers the tables show).
// Progressive enhancement: without this file the page still has every figure in its tables.
// Each canvas gets data-rendered="true" once drawn; #charts gets data-rendered with their count.
// Clicking a point or a bar opens the list of the cases it counts, like the tables' links.
(function () {
  "use strict";

  var SEVERITIES = ["P1", "P2", "P3", "P4"];
  var SEVERITY_COLOURS = { P1: "#b3261e", P2: "#d08a00", P3: "#2456c8", P4: "#7a8699" };
  var TARGETS = ["first_response", "triage", "update_cadence", "resolution"];
  var TARGET_LABELS = {
    first_response: "First response",
    triage: "Triage",
    update_cadence: "Update cadence",
    resolution: "Resolution"
  };
  var TARGET_COLOURS = { first_response: "#2456c8", triage: "#6f4bb8", update_cadence: "#d08a00", resolution: "#1b7a3a" };

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status + " from " + url); }
      return response.json();
    });
  }

  function round(value, digits) {
    if (value === null || value === undefined) { return null; }
    var f = Math.pow(10, digits);
    return Math.round(value * f) / f;
  }
  function minutes(seconds) { return seconds === null || seconds === undefined ? null : round(seconds / 60, 1); }
  function hours(seconds) { return seconds === null || seconds === undefined ? null : round(seconds / 3600, 2); }
  function percent(ratio) { return ratio && ratio.rate !== null && ratio.rate !== undefined ? round(ratio.rate * 100, 1) : null; }

  // "2025-03-03T00:00:00+01:00" -> "2025-03-03": the local Monday the week starts on.
  function day(iso) { return iso.slice(0, 10); }
  function addDays(isoDay, n) {
    var p = isoDay.split("-");
    var d = new Date(Date.UTC(+p[0], +p[1] - 1, +p[2] + n));
    return d.toISOString().slice(0, 10);
  }

  ready(function () {
    var box = document.getElementById("charts");
    if (!box || !window.fetch || typeof window.Chart === "undefined") { return; }
    var status = box.querySelector(".chart-status");
    var query = box.getAttribute("data-query") || "";
    var casesUrl = box.getAttribute("data-cases-url");
    var tier = box.getAttribute("data-target-tier");
    var targetSeverities = (box.getAttribute("data-target-severities") || "").split(",").filter(Boolean);
    var drawn = 0;

    function casesLink(changes) {
      var params = new URLSearchParams(query);
      Object.keys(changes).forEach(function (key) {
        if (changes[key] === null || changes[key] === undefined || changes[key] === "") { params.delete(key); }
        else { params.set(key, changes[key]); }
      });
      return casesUrl + "?" + params.toString();
    }

    function weekLink(weekIso, changes) {
      var start = day(weekIso);
      return casesLink(Object.assign({ start: start, end: addDays(start, 6) }, changes));
    }

    function draw(id, config, linkFor) {
      var canvas = document.getElementById(id);
      if (!canvas) { return; }
      config.options = Object.assign(
        {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          interaction: { mode: "nearest", intersect: false },
          plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } }
        },
        config.options || {}
      );
      if (linkFor) {
        config.options.onClick = function (event, elements) {
          for (var i = 0; i < elements.length; i++) {
            var url = linkFor(elements[i].datasetIndex, elements[i].index);
            if (url) { window.location.assign(url); return; }
          }
        };
        config.options.onHover = function (event, elements) {
          var linked = elements.some(function (e) { return linkFor(e.datasetIndex, e.index); });
          canvas.style.cursor = linked ? "pointer" : "default";
        };
      }
      var chart = new window.Chart(canvas, config);
      var points = config.data.datasets.reduce(function (n, ds) { return n + ds.data.length; }, 0);
      canvas.setAttribute("data-points", String(points));
      canvas.setAttribute("data-rendered", "true");
      drawn += 1;
      return chart;
    }

    function targetLines(labels, target, scale) {
      return targetSeverities.map(function (severity) {
        var perTier = summaryTargets[tier] || {};
        var minutesTarget = (perTier[severity] || {})[target];
        if (!minutesTarget) { return null; }
        return {
          label: severity + " target",
          data: labels.map(function () { return round(minutesTarget * scale, 2); }),
          borderColor: SEVERITY_COLOURS[severity],
          borderDash: [6, 4],
          borderWidth: 1.5,
          pointRadius: 0,
          fill: false,
          isTarget: true
        };
      }).filter(Boolean);
    }

    var summaryTargets = {};

    function trendCharts(trends) {
      var labels = trends.weeks.map(day);
      var weekAxis = { title: { display: true, text: "Week starting" } };

      var frtLines = [{
        label: "Median first response",
        data: trends.first_response_time.map(function (s) { return minutes(s.median); }),
        borderColor: "#2456c8",
        backgroundColor: "#2456c8",
        spanGaps: true
      }].concat(targetLines(labels, "first_response", 1));
      draw("chart-frt", {
        type: "line",
        data: { labels: labels, datasets: frtLines },
        options: { scales: { x: weekAxis, y: { beginAtZero: true, title: { display: true, text: "minutes" } } } }
      }, function (ds, i) { return ds === 0 ? weekLink(trends.weeks[i], { metric: "first_response_time" }) : null; });

      var mttrLines = [{
        label: "Median time to resolve",
        data: trends.time_to_resolve.map(function (s) { return hours(s.median); }),
        borderColor: "#1b7a3a",
        backgroundColor: "#1b7a3a",
        spanGaps: true
      }].concat(targetLines(labels, "resolution", 1 / 60));
      draw("chart-mttr", {
        type: "line",
        data: { labels: labels, datasets: mttrLines },
        options: { scales: { x: weekAxis, y: { beginAtZero: true, title: { display: true, text: "hours" } } } }
      }, function (ds, i) { return ds === 0 ? weekLink(trends.weeks[i], { metric: "time_to_resolve" }) : null; });

      draw("chart-quality", {
        type: "line",
        data: {
          labels: labels,
          datasets: [
            { label: "SLA compliance", data: trends.sla_compliance.map(percent), borderColor: "#1b7a3a", backgroundColor: "#1b7a3a", spanGaps: true },
            { label: "Reopen rate", data: trends.reopen_rate.map(percent), borderColor: "#b3261e", backgroundColor: "#b3261e", spanGaps: true }
          ]
        },
        options: { scales: { x: weekAxis, y: { min: 0, max: 100, title: { display: true, text: "%" } } } }
      }, function (ds, i) {
        return ds === 0
          ? weekLink(trends.weeks[i], { metric: "sla_compliance" })
          : weekLink(trends.weeks[i], { metric: "reopen_rate", part: "reopened" });
      });

      draw("chart-volume", {
        type: "bar",
        data: {
          labels: labels,
          datasets: [
            { label: "Created", data: trends.volume.map(function (v) { return v.created; }), backgroundColor: "#2456c8" },
            { label: "First resolved", data: trends.volume.map(function (v) { return v.resolved; }), backgroundColor: "#1b7a3a" }
          ]
        },
        options: { scales: { x: weekAxis, y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "cases" } } } }
      }, function (ds, i) {
        return weekLink(trends.weeks[i], { metric: ds === 0 ? "volume_created" : "volume_resolved" });
      });
    }

    function backlogChart(backlog) {
      var buckets = Object.keys(backlog.buckets);
      draw("chart-backlog", {
        type: "bar",
        data: {
          labels: buckets,
          datasets: SEVERITIES.map(function (severity) {
            return {
              label: severity,
              data: buckets.map(function (b) { return backlog.buckets[b][severity]; }),
              backgroundColor: SEVERITY_COLOURS[severity]
            };
          })
        },
        options: {
          interaction: { mode: "nearest", intersect: true },
          scales: { x: { stacked: true, title: { display: true, text: "age" } }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "open cases" } } }
        }
      }, function (ds, i) {
        return casesLink({ metric: "backlog", bucket: buckets[i], severity: SEVERITIES[ds] });
      });
    }

    function complianceChart(summary) {
      draw("chart-compliance", {
        type: "bar",
        data: {
          labels: SEVERITIES,
          datasets: TARGETS.map(function (target) {
            var per = summary.sla_compliance[target] || {};
            return {
              label: TARGET_LABELS[target],
              data: SEVERITIES.map(function (s) { return percent(per[s]); }),
              backgroundColor: TARGET_COLOURS[target]
            };
          })
        },
        options: {
          interaction: { mode: "nearest", intersect: true },
          scales: { x: { title: { display: true, text: "severity" } }, y: { min: 0, max: 100, title: { display: true, text: "% met on time" } } }
        }
      }, function (ds, i) {
        return casesLink({ metric: "sla_compliance", target: TARGETS[ds], severity: SEVERITIES[i] });
      });
    }

    function fail(error) {
      box.setAttribute("data-error", String(error && error.message ? error.message : error));
      if (status) {
        status.className = "chart-status error";
        status.textContent = "The charts could not be loaded; the tables below have the same figures.";
      }
    }

    Promise.all([
      getJSON(box.getAttribute("data-summary-url")),
      getJSON(box.getAttribute("data-trends-url")),
      getJSON(box.getAttribute("data-backlog-url"))
    ]).then(function (answers) {
      summaryTargets = answers[0].targets || {};
      trendCharts(answers[1]);
      backlogChart(answers[2]);
      complianceChart(answers[0]);
      if (status) { status.textContent = ""; }
      box.setAttribute("data-rendered", String(drawn));
    }).catch(fail);
  });
})();
