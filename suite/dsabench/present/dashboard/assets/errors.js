/* dsabench dashboard: runs first, in <head>, so that every later error is seen.
   Uncaught errors, unhandled promise rejections and console.error calls are counted on
   the html element's data-js-errors attribute and listed in the js-errors block, where a person sees them and
   the browser test reads them from the dumped DOM. */
(function () {
  "use strict";
  var seen = [];
  function flush() {
    var box = document.getElementById("js-errors");
    if (!box) { return; }
    box.textContent = seen.join("\n");
    box.hidden = seen.length === 0;
  }
  function record(text) {
    seen.push(String(text));
    document.documentElement.setAttribute("data-js-errors", String(seen.length));
    flush();
  }
  window.addEventListener("error", function (ev) {
    record("error: " + ev.message + " (" + ev.filename + ":" + ev.lineno + ")");
  });
  window.addEventListener("unhandledrejection", function (ev) {
    record("unhandled rejection: " + ev.reason);
  });
  var original = console.error;
  console.error = function () {
    record("console.error: " + Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
  document.addEventListener("DOMContentLoaded", flush);
})();
