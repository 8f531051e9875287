(function () {
  "use strict";
  var doc = document;

  // Copy buttons: shown only when this script runs; without it the command is still there,
  // selectable in one click (user-select: all).
  function wire(button) {
    var target = doc.getElementById(button.getAttribute("data-copy"));
    if (!target) return;
    button.hidden = false;
    function said(text) {
      button.textContent = text;
      setTimeout(function () { button.textContent = "Copy"; }, 1600);
    }
    function bySelection() {
      var range = doc.createRange();
      range.selectNodeContents(target);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      var copied = false;
      try { copied = doc.execCommand("copy"); } catch (e) { copied = false; }
      said(copied ? "Copied" : "Selected: press Ctrl+C");
    }
    button.addEventListener("click", function () {
      var text = target.textContent;
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () { said("Copied"); }, bySelection);
      } else {
        bySelection();
      }
    });
  }
  Array.prototype.forEach.call(doc.querySelectorAll("button[data-copy]"), wire);

  // The side-by-side switch works without script; this only remembers the choice.
  var toggle = doc.getElementById("split");
  if (toggle) {
    try {
      if (window.localStorage.getItem("git-codex-review-split") === "1") toggle.checked = true;
      toggle.addEventListener("change", function () {
        window.localStorage.setItem("git-codex-review-split", toggle.checked ? "1" : "0");
      });
    } catch (e) { /* no storage from file:// here: the switch still works */ }
  }

  doc.documentElement.setAttribute("data-ready", "1");
})();
