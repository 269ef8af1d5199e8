// Filter forms (form[data-apply-on-choice]: the leaderboard's and the audit's). A choice
// made with the mouse or a finger applies at once. From the keyboard, the arrow keys move
// through a select's options without leaving the page (changing a setting does not change
// the page under the user, WCAG 3.2.2); Enter on the select, or the Show button, applies.
// A select with data-resets="NAME" empties the field NAME when it changes (a new prompt
// set has other boards and categories).
(function () {
  "use strict";
  document.querySelectorAll("form[data-apply-on-choice]").forEach((form) => {
    let byKeyboard = false;
    const apply = () => (form.requestSubmit ? form.requestSubmit() : form.submit());

    form.addEventListener("pointerdown", () => { byKeyboard = false; });
    form.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target.matches("select")) {
        event.preventDefault();  // Chromium would open the options list
        apply();
      } else if (event.key !== "Tab" && event.key !== "Shift") {
        byKeyboard = true;
      }
    });
    form.addEventListener("change", (event) => {
      const reset = event.target.dataset.resets;
      if (reset && form.elements[reset]) form.elements[reset].value = "";
      if (!byKeyboard) apply();
    });
  });
})();
