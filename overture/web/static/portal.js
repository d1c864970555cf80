// The portal's small behaviours, loaded from this origin (the CSP allows no inline
// script). Every page works without it: the chat form then posts as any form does.
(function () {
  "use strict";

  // Close the account menu when clicking elsewhere or pressing Escape.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.p-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    document.querySelectorAll("details.p-menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    });
  });

  // The chat: the answer is read as server-sent events while the agent writes it.
  // `delta` adds text, `restart` clears what came so far, `done` holds the answer as
  // stored, `error` a sentence for the person.
  // One message: who says it (for screen readers) and what they say.
  function bubble(list, role, who, text) {
    var item = document.createElement("li");
    item.className = "p-msg p-msg-" + role;
    var label = document.createElement("span");
    label.className = "p-sr";
    label.textContent = who + ": ";
    var body = document.createElement("span");
    body.className = "p-msg-body";
    body.textContent = text || "";
    item.appendChild(label);
    item.appendChild(body);
    list.appendChild(item);
    item.scrollIntoView({block: "nearest"});
    return body;
  }

  function events(buffer, onEvent) {
    var parts = buffer.split("\n\n");
    var rest = parts.pop();
    parts.forEach(function (block) {
      var name = "message";
      var data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event: ") === 0) { name = line.slice(7); }
        else if (line.indexOf("data: ") === 0) { data.push(line.slice(6)); }
      });
      if (data.length) { onEvent(name, JSON.parse(data.join("\n"))); }
    });
    return rest;
  }

  function send(form) {
    var field = form.querySelector("textarea[name=content]");
    var problem = form.querySelector(".p-field-error");
    var button = form.querySelector("button[type=submit]");
    var list = document.getElementById("transcript");
    var text = field.value.trim();
    if (!text) {
      problem.textContent = "Type a message first.";
      problem.hidden = false;
      field.setAttribute("aria-invalid", "true");
      field.focus();
      return;
    }
    problem.hidden = true;
    field.removeAttribute("aria-invalid");
    var hint = list.querySelector("[data-empty]");
    if (hint) { hint.remove(); }
    var body = new FormData(form);
    bubble(list, "user", "You", text);
    var answer = bubble(list, "assistant", form.getAttribute("data-assistant"), "");
    var item = answer.parentNode;
    item.setAttribute("aria-busy", "true");
    field.value = "";
    button.disabled = true;

    function finish() {
      item.removeAttribute("aria-busy");
      button.disabled = false;
      field.focus();
    }
    function failed(message) {
      item.className = "p-msg p-msg-error";
      answer.textContent = message;
    }
    function onEvent(name, data) {
      if (name === "delta") { answer.textContent += data.text; }
      else if (name === "restart") { answer.textContent = ""; }
      else if (name === "done") { answer.textContent = data.message; }
      else if (name === "error") { failed(data.message); }
      item.scrollIntoView({block: "nearest"});
    }

    fetch(form.action, {method: "POST", body: body, credentials: "same-origin",
                        headers: {Accept: "text/event-stream"}})
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("text/event-stream") !== 0 || !response.body) {
          throw new Error("unexpected answer " + response.status);
        }
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) { events(buffer + "\n\n", onEvent); return; }
            buffer = events(buffer + decoder.decode(chunk.value, {stream: true}), onEvent);
            return pump();
          });
        }
        return pump();
      })
      .catch(function () { failed("The message could not be sent. Please reload the page and try again."); })
      .then(finish);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-chat") || !window.fetch
        || !window.TextDecoder || !window.ReadableStream) { return; }
    event.preventDefault();
    send(form);
  });

  // Enter sends, Shift+Enter starts a new line.
  document.addEventListener("keydown", function (event) {
    var field = event.target;
    if (event.key === "Enter" && !event.shiftKey && field.form
        && field.form.hasAttribute("data-chat")) {
      event.preventDefault();
      field.form.requestSubmit();
    }
  });
})();
