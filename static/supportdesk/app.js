// Progressive enhancement only: every page works without this file.
(function () {
  // Tell the server the browser's time zone, so times are shown in the viewer's zone.
  try {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (tz && document.cookie.indexOf("tz=" + tz) === -1) {
      document.cookie = "tz=" + tz + "; path=/; SameSite=Lax; max-age=31536000";
    }
  } catch (e) { /* old browser: server shows UTC */ }
})();
