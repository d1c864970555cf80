// The agent page's chat panel: keep the newest message in view, keep the cursor in the
// message box after each turn, and send with Ctrl+Enter (Cmd+Enter on a Mac).
(function () {
  "use strict";
  function settle(focus) {
    var transcript = document.querySelector("#chat .transcript");
    if (transcript) { transcript.scrollTop = transcript.scrollHeight; }
    var box = document.getElementById("chat-message");
    if (box && focus) { box.focus(); }
  }
  document.addEventListener("DOMContentLoaded", function () { settle(false); });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "chat") { settle(true); }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) &&
        event.target.id === "chat-message" && event.target.form) {
      event.preventDefault();
      event.target.form.requestSubmit();
    }
  });
})();
