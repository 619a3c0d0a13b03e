// The linking page: ask the panel for the instance's state and QR code every few seconds
// (the gateway rotates the code) until it is authorized, then keep watching slowly. The
// page's own words come from its data- attributes (the panel's language); a gateway's
// state is shown as the gateway names it.
(function () {
  var section = document.getElementById("link");
  if (!section) { return; }
  var url = section.getAttribute("data-url");
  var unknown = section.getAttribute("data-unknown") || "?";
  var state = document.getElementById("state");
  var note = document.getElementById("note");
  var box = document.getElementById("qr-box");
  var image = document.getElementById("qr");
  function show(answer) {
    state.textContent = answer.state === "unknown" ? unknown : answer.state;
    note.textContent = answer.note || "";
    if (answer.qr) {
      var src = "data:image/png;base64," + answer.qr;
      if (image.getAttribute("src") !== src) { image.setAttribute("src", src); }
      box.hidden = false;
    } else {
      box.hidden = true;
      image.removeAttribute("src");
    }
    return answer.state === "authorized" ? 10000 : 2000;
  }
  function ask() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : {state: "unknown", note: "HTTP " + r.status}; })
      .then(function (answer) { setTimeout(ask, show(answer)); })
      .catch(function () { state.textContent = unknown; setTimeout(ask, 5000); });
  }
  ask();
})();
