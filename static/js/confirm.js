// A form with a data-confirm question is sent only once the user confirms it. (An inline
// onsubmit would need 'unsafe-inline' in the Content-Security-Policy.)
(() => {
  "use strict";

  document.addEventListener("submit", (event) => {
    const question = event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
