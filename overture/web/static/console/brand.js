// The Brand page: the preview and the contrast list follow the form as it is edited.
// The server checks the same pairs with the same formula (tenants/brand_style.py) and
// refuses a failing one; this only says so before saving. Colours are set through the
// CSSOM (element.style.setProperty), which the CSP allows, never as style text.
(function () {
  "use strict";
  var HEX = /^#[0-9a-fA-F]{6}$/;
  var WHITE = "#ffffff", INK = "#1b2130", BLACK = "#000000", TEXT = 4.5;

  function channel(c) {
    var s = c / 255;
    return s <= 0.04045 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
  }
  function luminance(hex) {
    var n = parseInt(hex.slice(1), 16);
    return 0.2126 * channel((n >> 16) & 255) + 0.7152 * channel((n >> 8) & 255) +
      0.0722 * channel(n & 255);
  }
  function contrast(a, b) {
    var la = luminance(a), lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }
  function readableOn(bg) {
    var inks = [WHITE, INK, BLACK];
    for (var i = 0; i < inks.length; i++) {
      if (contrast(inks[i], bg) >= TEXT) { return inks[i]; }
    }
    return contrast(WHITE, bg) >= contrast(BLACK, bg) ? WHITE : BLACK;
  }
  function colour(name) {
    var field = document.querySelector('[data-colour="' + name + '"]');
    if (!field) { return null; }
    var value = field.value.trim();
    return HEX.test(value) ? value.toLowerCase() : field.getAttribute("data-inherited");
  }

  function update() {
    var preview = document.getElementById("brand-preview");
    if (!preview) { return; }
    var roles = {};
    roles.primary = colour("primary");
    roles.accent = colour("accent");
    if (!roles.primary || !roles.accent) { return; }
    roles["on-primary"] = readableOn(roles.primary);
    roles["on-accent"] = readableOn(roles.accent);
    preview.style.setProperty("--pv-primary", roles.primary);
    preview.style.setProperty("--pv-accent", roles.accent);
    preview.style.setProperty("--pv-on-primary", roles["on-primary"]);
    preview.style.setProperty("--pv-on-accent", roles["on-accent"]);
    var font = document.getElementById("b-font");
    if (font && font.selectedOptions.length) {
      preview.style.setProperty("--pv-font", font.selectedOptions[0].getAttribute("data-family"));
    }
    document.querySelectorAll("#contrast-list li").forEach(function (item) {
      var fg = roles[item.getAttribute("data-fg")] || item.getAttribute("data-fg");
      var bg = roles[item.getAttribute("data-bg")] || item.getAttribute("data-bg");
      var needed = parseFloat(item.getAttribute("data-needed"));
      var ratio = contrast(fg, bg);
      var ok = ratio >= needed;
      var swatch = item.querySelector(".swatch");
      swatch.style.setProperty("color", fg);
      swatch.style.setProperty("background-color", bg);
      item.querySelector("strong").textContent = (Math.floor(ratio * 100) / 100).toFixed(2) + ":1";
      item.querySelector(".contrast-verdict").textContent = ok ? "passes" : "too low";
      item.classList.toggle("contrast-ok", ok);
      item.classList.toggle("contrast-bad", !ok);
    });
  }

  document.addEventListener("input", function (event) {
    var target = event.target;
    var forId = target.getAttribute && target.getAttribute("data-colour-for");
    if (forId) { document.getElementById(forId).value = target.value; }
    if (target.hasAttribute && target.hasAttribute("data-colour")) {
      var picker = document.querySelector('[data-colour-for="' + target.id + '"]');
      if (picker && HEX.test(target.value.trim())) { picker.value = target.value.trim().toLowerCase(); }
    }
    update();
  });
  document.addEventListener("change", update);
  document.addEventListener("DOMContentLoaded", update);
})();
