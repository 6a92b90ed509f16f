// caveat console: small enhancements. Every page works without them.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  // Copy buttons: <button data-copy="ID" hidden> copies the value of the
  // element ID. They stay hidden without this script.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.dataset.copy);
    if (!source) {
      return;
    }
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      var done = function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = label; }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(source.value).then(done, function () {
          source.select();
        });
        return;
      }
      source.select();
      if (document.execCommand("copy")) {
        done();
      }
    });
  });

  // The create-token form: the app and the commands apply to some
  // profiles only; without this script all fields show, with their hints.
  var form = document.getElementById("new-token-form");
  if (form) {
    var app = document.getElementById("app-field");
    var commands = document.getElementById("commands-field");
    var update = function () {
      var checked = form.querySelector("input[name=profile]:checked");
      if (!checked) {
        return;
      }
      app.hidden = !checked.hasAttribute("data-needs-app");
      document.getElementById("app").disabled = app.hidden;
      commands.hidden = checked.value !== "machine-exec";
      document.getElementById("commands").disabled = commands.hidden;
    };
    form.querySelectorAll("input[name=profile]").forEach(function (input) {
      input.addEventListener("change", update);
    });
    update();
  }
});
