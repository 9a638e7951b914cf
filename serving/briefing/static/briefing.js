// Submit the filters on change; open an area clicked (or Enter on) on the map.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  if (form) {
    form.addEventListener("change", function () { form.submit(); });
  }
  function open(code) {
    var params = new URLSearchParams(window.location.search);
    params.set("area", code);
    window.location.href = "/?" + params.toString() + "#detail";
  }
  var map = document.getElementById("map");
  if (map) {
    map.addEventListener("click", function (event) {
      var code = event.target.getAttribute && event.target.getAttribute("data-code");
      if (code) { open(code); }
    });
    map.addEventListener("keydown", function (event) {
      var code = event.target.getAttribute && event.target.getAttribute("data-code");
      if (code && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); open(code); }
    });
  }
  var detail = document.getElementById("detail");
  if (detail && window.location.hash === "#detail") { detail.focus(); }
})();
