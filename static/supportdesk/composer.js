// The case page's macro picker, progressively enhanced. Without this file the picker is a form that
// applies the chosen macro at once (its reply as written for the case, and its actions). With it,
// each macro is a button that puts the macro's text (filled in for this case by the server) into the
// reply box, preselects the macro's status in "Then set status" and remembers the macro, so sending
// the reply also applies its tags and team. Nothing is sent until the agent presses Send.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function insertAtCaret(box, text) {
    var start = box.selectionStart == null ? box.value.length : box.selectionStart;
    var end = box.selectionEnd == null ? box.value.length : box.selectionEnd;
    if (document.activeElement !== box) { start = end = box.value.length; }
    var before = box.value.slice(0, start);
    var after = box.value.slice(end);
    var gap = before && !/\n\n$/.test(before) ? (/\n$/.test(before) ? "\n" : "\n\n") : "";
    box.value = before + gap + text + after;
    var caret = (before + gap + text).length;
    box.focus();
    box.setSelectionRange(caret, caret);
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }

  ready(function () {
    var picker = document.querySelector("[data-macro-picker]");
    var form = document.querySelector("form.reply-form");
    if (!picker || !form) { return; }
    var box = form.querySelector("textarea[name='body']");
    var macroField = form.querySelector("input[name='macro']");
    var statusSelect = form.querySelector("select[name='status']");
    var chips = picker.querySelector(".macro-chips");
    var applyForm = picker.querySelector(".macro-apply-form");
    var note = picker.querySelector(".macro-note");
    var noteText = picker.querySelector(".macro-note-text");
    var forget = picker.querySelector(".macro-forget");
    if (!box || !macroField || !chips) { return; }

    chips.hidden = false;
    if (applyForm) { applyForm.hidden = true; }

    function hasOption(select, value) {
      if (!select || !value) { return false; }
      for (var i = 0; i < select.options.length; i++) {
        if (select.options[i].value === value) { return true; }
      }
      return false;
    }

    chips.addEventListener("click", function (event) {
      var chip = event.target.closest ? event.target.closest("button.macro-chip") : null;
      if (!chip) { return; }
      insertAtCaret(box, chip.getAttribute("data-macro-text") || "");
      macroField.value = chip.getAttribute("data-macro-id");
      var parts = [];
      var status = chip.getAttribute("data-macro-status");
      var statusLabel = chip.getAttribute("data-macro-status-label");
      if (status) {
        if (hasOption(statusSelect, status)) {
          statusSelect.value = status;
          parts.push("then set the status to " + statusLabel.toLowerCase() + " (change it below)");
        } else {
          parts.push("its status (" + statusLabel.toLowerCase() + ") cannot be set from the current status");
        }
      }
      var tags = chip.getAttribute("data-macro-tags");
      if (tags) { parts.push("add the tags " + tags); }
      var team = chip.getAttribute("data-macro-team");
      if (team) { parts.push("set the team to " + team); }
      var name = chip.getAttribute("data-macro-name");
      noteText.textContent = "Macro “" + name + "” inserted. " +
        (parts.length ? "Sending will " + parts.join(", ") + "." : "Review it before sending.");
      note.hidden = false;
      if (forget) { forget.hidden = !(tags || team); }
    });

    if (forget) {
      forget.addEventListener("click", function () {
        macroField.value = "";
        noteText.textContent = "The text stays; the macro's tags and team will not be applied.";
        forget.hidden = true;
        box.focus();
      });
    }
  });
})();
