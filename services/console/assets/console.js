// Hookline console: the copy button beside a secret shown once. Loaded as a file (the CSP
// refuses inline script); without it the secret stays selectable text.
"use strict";
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  var field = document.getElementById(button.getAttribute("data-copy"));
  var status = document.getElementById(button.getAttribute("aria-describedby"));
  if (!field || !navigator.clipboard) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(field.value).then(
      function () { status.textContent = "Copied to the clipboard."; },
      function () {
        field.select();
        status.textContent = "Copying was refused: the secret is selected, copy it with the keyboard.";
      }
    );
  });
});
