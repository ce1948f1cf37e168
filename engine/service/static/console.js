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

  function swap(text) {
    var fresh = new DOMParser().parseFromString(text, "text/html");
    parts.forEach(function (id) {
      var now = document.getElementById(id);
      var next = fresh.getElementById(id);
      if (now && next) {
        now.replaceWith(document.adoptNode(next));
      }
    });
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
