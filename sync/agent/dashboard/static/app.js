// ferry dashboard: live updates. The page works without this script; with
// it, every server-sent event re-fetches the page's main element.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var live = document.getElementById("live");
  if (!main || !window.EventSource) { return; }
  var busy = false, again = false, timer = null;
  var body = document.body;
  body.dataset.refreshes = "0";

  function refresh() {
    timer = null;
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.pathname + location.search, { headers: { "X-Ferry-Fragment": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { location.href = "/ui/login"; return null; }
        return r.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        // Keep what the user is typing in a filter.
        var active = document.activeElement;
        if (active && main.contains(active) && active.form && active.form.method === "get") { return; }
        main.innerHTML = html;
        body.dataset.refreshes = String(Number(body.dataset.refreshes) + 1);
        body.dataset.updatedAt = String(Date.now());
        tick();
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; schedule(); }
      });
  }
  function schedule() { if (!timer) { timer = setTimeout(refresh, 5); } }

  function tick() {
    var els = document.querySelectorAll("[data-deadline]");
    for (var i = 0; i < els.length; i++) {
      var left = Math.max(0, Math.round((Number(els[i].dataset.deadline) - Date.now()) / 1000));
      els[i].textContent = left + "s";
    }
  }
  setInterval(tick, 1000);

  var es = new EventSource("/ui/events");
  // Events between this page's render and the stream's start are not
  // replayed: fetch once whenever the stream (re)opens.
  es.onopen = function () { live.textContent = "live"; live.className = "live on"; body.dataset.live = "1"; schedule(); };
  es.onerror = function () { live.textContent = "reconnecting"; live.className = "live"; body.dataset.live = "0"; };
  es.addEventListener("update", function (ev) {
    try { body.dataset.lastEvent = JSON.parse(ev.data).kind; } catch (e) {}
    schedule();
  });
  es.addEventListener("logout", function () { location.href = "/ui/login"; });
})();
