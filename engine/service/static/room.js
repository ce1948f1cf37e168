// Progressive enhancement of a drill room: follow the room's stream (its journal and its
// own changes: people, roles, questions) and swap in the parts of the page the server
// renders again for this person. The page is complete without it; the state is the
// server's, so a reload or a reconnect picks up where the person was, and EventSource
// resumes the stream from the last event it saw (Last-Event-ID).
(function () {
  "use strict";
  var room = document.getElementById("room");
  if (!room || !room.dataset.stream || !window.EventSource) {
    return;
  }
  var parts = ["room-state", "room-waiting", "room-happened", "room-steps", "room-card", "room-trainer"];
  var live = document.getElementById("live");
  var source = new EventSource(room.dataset.stream);
  var busy = false;
  var again = false;

  function say(text) {
    live.textContent = text;
    live.hidden = false;
  }

  // Replace a part only when it changed, and give focus back to the element of the same id,
  // so a person choosing an answer keeps their place.
  function swap(text) {
    var fresh = new DOMParser().parseFromString(text, "text/html");
    var focused = document.activeElement && document.activeElement.id;
    parts.forEach(function (id) {
      var now = document.getElementById(id);
      var next = fresh.getElementById(id);
      if (now && next && now.innerHTML !== next.innerHTML) {
        now.replaceWith(document.adoptNode(next));
      } else if (now && !next) {
        now.remove();
      } else if (!now && next) {
        room.appendChild(document.adoptNode(next));
      }
    });
    if (focused && document.activeElement === document.body && document.getElementById(focused)) {
      document.getElementById(focused).focus();
    }
  }

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

  say("Live: this page follows the drill.");
  source.onmessage = refresh;
  source.addEventListener("room", refresh);
  source.onerror = function () { say("Reconnecting…"); };
  source.onopen = function () { say("Live: this page follows the drill."); };
  source.addEventListener("end", function () {
    source.close();
    refresh();
    say("The drill has ended.");
  });
})();
