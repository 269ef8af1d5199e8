// Answers and prompts on a page: the server's sanitised HTML (arena/rendering.py, the one
// Markdown renderer; nothing here parses Markdown or builds HTML from a text) or the raw
// text, each with a "Raw text" toggle (a button with aria-pressed). Pages that show an
// answer from the battle API (battle, side by side) use it like this:
//
//   const toggle = arenaTexts.rawToggle("answer A");   // a button for the box's header
//   arenaTexts.textBox(box, toggle);                   // box: an element with an id
//   arenaTexts.setBody(box, answer.text, answer.html); // "" html: the raw text (streaming)
//
// A page rendered on the server (the "markdown" template filter) writes the box with its
// .markdown and (hidden) .text views and a hidden <button class="raw-toggle" data-for=
// "<box id>" data-server>; this file wires and shows such toggles when it loads.
(function () {
  "use strict";

  // Give ``box`` its two views (.markdown: the HTML, .text: the raw text) unless it has
  // them, and wire ``toggle`` to switch between them.
  function textBox(box, toggle) {
    for (const cls of ["markdown", "text"]) {
      if (box.querySelector(":scope > ." + cls)) continue;
      const view = document.createElement("div");
      view.className = cls;
      box.append(view);
    }
    toggle.dataset.for = box.id;
    toggle.addEventListener("click", () => {
      box.dataset.raw = box.dataset.raw === "1" ? "0" : "1";
      showBody(box);
    });
  }

  function rawToggle(label) {
    const toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "secondary raw-toggle";
    toggle.textContent = "Raw text";
    toggle.setAttribute("aria-label", "Raw text of " + label);
    toggle.setAttribute("aria-pressed", "false");
    return toggle;
  }

  // Show ``text``: as ``html`` (the server's rendering of it) unless the reader asked for
  // the raw text, or there is no HTML yet (an answer still streaming).
  function setBody(box, text, html) {
    box.querySelector(":scope > .text").textContent = text;
    // Sanitised on the server (arena.rendering: an nh3 allow-list) from this very text.
    box.querySelector(":scope > .markdown").innerHTML = html || "";
    box.dataset.html = html ? "1" : "0";
    showBody(box);
  }

  function showBody(box) {
    const raw = box.dataset.raw === "1" || box.dataset.html !== "1";
    box.querySelector(":scope > .text").hidden = !raw;
    box.querySelector(":scope > .markdown").hidden = raw;
    const toggle = document.querySelector('.raw-toggle[data-for="' + box.id + '"]');
    if (toggle) {
      toggle.setAttribute("aria-pressed", String(box.dataset.raw === "1"));
      toggle.disabled = box.dataset.html !== "1";
    }
  }

  for (const toggle of document.querySelectorAll("button.raw-toggle[data-for][data-server]")) {
    const box = document.getElementById(toggle.dataset.for);
    if (!box) continue;
    textBox(box, toggle);
    box.dataset.html = "1";
    toggle.hidden = false;
    showBody(box);
  }

  window.arenaTexts = Object.freeze({ textBox, rawToggle, setBody });
})();
