// The menu and contents buttons on narrow screens.
//
// sphinx-book-theme 1.1 draws its own header buttons (.primary-toggle, .secondary-toggle) while
// pydata-sphinx-theme's header, which holds the first buttons with those classes, is hidden.
// Both themes attach their click handlers to `document.querySelector(".primary-toggle")`, the
// first match: the hidden button. So the visible button opened nothing at 390 px and 800 px.
// Each visible button forwards its click to the first button of its kind, whose handler opens
// the sidebar dialog.
document.addEventListener("DOMContentLoaded", () => {
  for (const kind of [".primary-toggle", ".secondary-toggle"]) {
    const buttons = Array.from(document.querySelectorAll(kind));
    const first = buttons[0];
    for (const button of buttons.slice(1)) {
      button.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopPropagation();
        first.click();
      });
    }
  }
});
