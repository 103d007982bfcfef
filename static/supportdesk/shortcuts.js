// Keyboard shortcuts for agents (progressive enhancement: every action has a link or button too).
//
//   j / n   next case in the list you came from      k / p   previous case
//   r       write a reply                            i       write an internal note
//   /       search                                   ?       this list of shortcuts
//
// They never fire while typing (in an input, textarea, select or editable element) or with Ctrl,
// Alt or Meta held. "The list you came from" is the order of the cases on the last list page seen in
// this tab (the queue, a search, a dashboard list), kept in sessionStorage: no cookie, nothing sent
// to the server, one list per tab.
(function () {
  "use strict";

  var script = document.currentScript;
  var searchUrl = (script && script.getAttribute("data-search-url")) || "";
  var STORE = "supportdesk.caseList";
  var FOCUS_SEARCH = "supportdesk.focusSearch";
  var KEY_PATH = /^\/cases\/(CASE-\d+)\/$/i;

  function storage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  function typing(target) {
    if (!target || target === document.body) { return false; }
    if (target.isContentEditable) { return true; }
    var tag = (target.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select";
  }

  function caseLinks() {
    var main = document.getElementById("main") || document.body;
    var seen = {};
    var links = [];
    main.querySelectorAll("a[href]").forEach(function (a) {
      var match = KEY_PATH.exec(a.pathname || "");
      if (!match || a.host !== location.host) { return; }
      var key = match[1].toUpperCase();
      if (seen[key]) { return; }
      seen[key] = true;
      links.push({ key: key, link: a });
    });
    return links;
  }

  function currentCaseKey() {
    var head = document.querySelector("[data-case-key]");
    return head ? head.getAttribute("data-case-key").toUpperCase() : "";
  }

  function remember(links) {
    var store = storage();
    if (!store || !links.length) { return; }
    store.setItem(STORE, JSON.stringify({
      keys: links.map(function (l) { return l.key; }),
      from: location.pathname + location.search
    }));
  }

  function rememberedList() {
    var store = storage();
    try { return JSON.parse((store && store.getItem(STORE)) || "null"); } catch (e) { return null; }
  }

  var toastTimer = null;
  function say(text) {
    var box = document.getElementById("shortcut-toast");
    if (!box) {
      box = document.createElement("div");
      box.id = "shortcut-toast";
      box.className = "shortcut-toast";
      box.setAttribute("role", "status");
      // Styled by composer.css where it is loaded; readable without it too.
      box.style.cssText = "position:fixed;bottom:16px;left:50%;transform:translateX(-50%);z-index:10;" +
        "background:#1c2330;color:#fff;padding:8px 14px;border-radius:6px;max-width:92vw";
      document.body.appendChild(box);
    }
    box.textContent = text;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { box.hidden = true; }, 4000);
  }

  function moveCase(step) {
    var key = currentCaseKey();
    var list = rememberedList();
    if (key) {
      var keys = (list && list.keys) || [];
      var at = keys.indexOf(key);
      if (at === -1) { say("Open this case from the queue or a search to move to the next one with j and k."); return; }
      var next = keys[at + step];
      if (!next) { say(step > 0 ? "This is the last case of the list you came from." : "This is the first case of the list you came from."); return; }
      location.href = "/cases/" + next + "/";
      return;
    }
    // A list page: move the focus between its cases (Enter opens the focused one).
    var links = caseLinks();
    if (!links.length) { return; }
    var index = -1;
    links.forEach(function (l, i) { if (l.link === document.activeElement) { index = i; } });
    var target = links[Math.max(0, Math.min(links.length - 1, index + step))];
    target.link.focus();
    if (target.link.scrollIntoView) { target.link.scrollIntoView({ block: "nearest" }); }
  }

  function focusField(selector, fallbackHash) {
    var field = document.querySelector(selector);
    if (!field) { return false; }
    if (field.scrollIntoView) { field.scrollIntoView({ block: "center" }); }
    field.focus();
    if (fallbackHash && history.replaceState) { history.replaceState(null, "", fallbackHash); }
    return true;
  }

  var SEARCH_FIELD = "input[type='search'], input[name='q']";

  function search() {
    if (focusField(SEARCH_FIELD)) { return; }
    if (!searchUrl) { return; }
    var store = storage();
    if (store) { store.setItem(FOCUS_SEARCH, "1"); }
    location.href = searchUrl;
  }

  var SHORTCUTS = [
    ["j", "n", "Next case of the list you came from (on a list: the next case)"],
    ["k", "p", "Previous case (on a list: the previous case)"],
    ["r", "", "Write a reply to the customer"],
    ["i", "", "Write an internal note"],
    ["/", "", "Search"],
    ["?", "", "Show or hide this list"]
  ];

  function helpDialog() {
    var dialog = document.getElementById("shortcut-help");
    if (dialog) { return dialog; }
    dialog = document.createElement("dialog");
    dialog.id = "shortcut-help";
    dialog.className = "shortcut-help";
    dialog.setAttribute("aria-labelledby", "shortcut-help-title");
    var title = document.createElement("h2");
    title.id = "shortcut-help-title";
    title.textContent = "Keyboard shortcuts";
    dialog.appendChild(title);
    var list = document.createElement("dl");
    list.style.cssText = "display:grid;grid-template-columns:max-content 1fr;gap:6px 14px";
    SHORTCUTS.forEach(function (row) {
      var dt = document.createElement("dt");
      var k = document.createElement("kbd");
      k.textContent = row[0];
      dt.appendChild(k);
      if (row[1]) {
        dt.appendChild(document.createTextNode(" or "));
        var k2 = document.createElement("kbd");
        k2.textContent = row[1];
        dt.appendChild(k2);
      }
      var dd = document.createElement("dd");
      dd.textContent = row[2];
      list.appendChild(dt);
      list.appendChild(dd);
    });
    dialog.appendChild(list);
    var hint = document.createElement("p");
    hint.className = "muted small";
    hint.textContent = "Shortcuts do nothing while you type in a field. Press Esc to close.";
    dialog.appendChild(hint);
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = "Close";
    close.addEventListener("click", function () { dialog.close(); });
    dialog.appendChild(close);
    document.body.appendChild(dialog);
    return dialog;
  }

  function toggleHelp() {
    var dialog = helpDialog();
    if (dialog.open) { dialog.close(); return; }
    if (dialog.showModal) { dialog.showModal(); } else { dialog.setAttribute("open", ""); }
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) { return; }
    if (typing(event.target)) { return; }
    var help = document.getElementById("shortcut-help");
    if (help && help.open && event.key !== "?") { return; }
    var handled = true;
    switch (event.key) {
      case "j": case "n": moveCase(1); break;
      case "k": case "p": moveCase(-1); break;
      case "r": handled = focusField("form.reply-form textarea[name='body'], #reply_body", "#reply"); break;
      case "i": handled = focusField("#note_body", "#note"); break;
      case "/": search(); break;
      case "?": toggleHelp(); break;
      default: handled = false;
    }
    if (handled) { event.preventDefault(); }
  });

  function start() {
    if (!currentCaseKey()) { remember(caseLinks()); }
    var store = storage();
    if (store && store.getItem(FOCUS_SEARCH)) {
      store.removeItem(FOCUS_SEARCH);
      focusField(SEARCH_FIELD);
    }
  }

  if (document.readyState !== "loading") { start(); } else { document.addEventListener("DOMContentLoaded", start); }
})();
