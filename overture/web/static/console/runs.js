// The run viewer's live part is replaced every 2 s while the run goes on (htmx polling,
// templates/console/_run_live.html). Keep each step's details open or closed as the
// reader left them across those swaps.
(function () {
  "use strict";
  var state = {};
  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (details.tagName === "DETAILS" && details.id) { state[details.id] = details.open; }
  }, true);
  document.addEventListener("htmx:afterSettle", function () {
    Object.keys(state).forEach(function (id) {
      var details = document.getElementById(id);
      if (details && details.open !== state[id]) { details.open = state[id]; }
    });
  });
})();
