// Progressive enhancement of the run page: while the run goes on, follow its journal as
// Server-Sent Events and swap in the parts of the page the server renders again (the
// summary, what it waits on, the steps). Without this script the page is complete as served;
// the Content-Security-Policy allows no inline script, so this file is all there is.
(function () {
  "use strict";
  var timeline = document.getElementById("timeline");
  if (!timeline || !timeline.dataset.events || !window.EventSource) {
    return;
  }
  var parts = ["summary", "waiting", "timeline"];
  var live = document.getElementById("live");
  var source = new EventSource(timeline.dataset.events);
  var busy = false;
  var again = false;

  function say(text) {
    live.textContent = text;
    live.hidden = false;
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
    fetch(window.location.pathname, {credentials: "same-origin"})
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

  say("Live: this page follows the run as it goes.");
  source.onmessage = refresh;
  source.addEventListener("end", function () {
    source.close();
    refresh();
    say("The run has ended.");
  });
})();
