// Progressive enhancement of the live pages: the element with `data-events` names a stream
// of Server-Sent Events (a run's journal on the run page; runs starting and ending on the
// runs page), and on each event the parts of the page it names (`data-parts`) are rendered
// again by the server and swapped in. Without this script every page is complete as served;
// the Content-Security-Policy allows no inline script, so this file is all there is.
(function () {
  "use strict";
  var host = document.querySelector("[data-events]");
  if (!host || !window.EventSource) {
    return;
  }
  var parts = (host.dataset.parts || "summary waiting people timeline").split(" ");
  var live = document.getElementById("live");
  var source = new EventSource(host.dataset.events);
  var busy = false;
  var again = false;

  function say(text) {
    if (live) {
      live.textContent = text;
      live.hidden = false;
    }
  }

  // A part is replaced only when it changed, so a person typing an answer or tabbing to
  // a button keeps their place; when it did change, focus goes back to the element of the
  // same id.
  function swap(text) {
    var fresh = new DOMParser().parseFromString(text, "text/html");
    var focused = document.activeElement && document.activeElement.id;
    parts.forEach(function (id) {
      var now = document.getElementById(id);
      var next = fresh.getElementById(id);
      if (now && next && now.innerHTML !== next.innerHTML) {
        now.replaceWith(document.adoptNode(next));
      }
    });
    if (focused && document.activeElement === document.body && document.getElementById(focused)) {
      document.getElementById(focused).focus();
    }
  }

  // One request at a time: events that come meanwhile make one more, not one each.
  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(window.location.pathname + window.location.search, {credentials: "same-origin"})
      .then(function (reply) { return reply.ok ? reply.text() : Promise.reject(reply.status); })
      .then(swap)
      .catch(function () { say("Live updates stopped: reload the page."); })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  say(host.dataset.live || "Live: this page follows the run as it goes.");
  source.onmessage = refresh;
  source.addEventListener("status", refresh);  // the run's status changed without a journal record
  source.addEventListener("end", function () {
    source.close();
    refresh();
    say("The run has ended.");
  });
})();
