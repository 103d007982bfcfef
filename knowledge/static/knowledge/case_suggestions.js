// Progressive enhancement for the knowledge box on the case page: "Insert into reply" puts the
// article's customer-facing text into the reply box. Without this file the button opens that text.
(function () {
  "use strict";

  function replyBox() {
    return document.getElementById("reply_body") ||
      document.getElementById("id_reply-body") ||
      document.querySelector("form[action$='/reply/'] textarea[name='body']");
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a.kb-insert") : null;
    if (!link) { return; }
    var box = replyBox();
    if (!box) { return; } // no reply form (e.g. a closed case): follow the link to the text
    event.preventDefault();
    var text = link.getAttribute("data-insert-text") || "";
    var before = box.value.slice(0, box.selectionStart || box.value.length);
    var after = box.value.slice(box.selectionEnd || box.value.length);
    var gap = before && !/\n\n$/.test(before) ? (/\n$/.test(before) ? "\n" : "\n\n") : "";
    box.value = before + gap + text + after;
    var caret = (before + gap + text).length;
    box.focus();
    box.setSelectionRange(caret, caret);
    box.dispatchEvent(new Event("input", { bubbles: true }));
    if (box.scrollIntoView) { box.scrollIntoView({ block: "center" }); }
    var live = document.querySelector(".kb-case [aria-live]");
    if (live) { live.textContent = "Inserted into the reply. Review it before sending."; }
  });
})();
