// The playground's only script: refresh the chats every second and a half, unless the
// visitor is typing or picking a file (then the page waits, so nothing typed is lost).
(function () {
  "use strict";
  var live = document.getElementById("live");
  var url = document.body.getAttribute("data-fragment");
  if (!live || !url) { return; }
  function busy() {
    var el = document.activeElement;
    if (!el) { return false; }
    if (el.tagName === "TEXTAREA" && el.value) { return true; }
    if (el.tagName === "INPUT" && (el.type === "file" || el.type === "text" || el.type === "")) { return true; }
    var files = live.querySelectorAll("input[type=file]");
    for (var i = 0; i < files.length; i++) { if (files[i].value) { return true; } }
    var texts = live.querySelectorAll("textarea");
    for (var j = 0; j < texts.length; j++) { if (texts[j].value) { return true; } }
    return false;
  }
  function refresh() {
    if (busy()) { return; }
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && !busy()) {
          var box = document.getElementById("messages");
          var atBottom = box && box.scrollTop + box.clientHeight >= box.scrollHeight - 20;
          live.innerHTML = html;
          var again = document.getElementById("messages");
          if (again && atBottom) { again.scrollTop = again.scrollHeight; }
        }
      }).catch(function () {});
  }
  var box = document.getElementById("messages");
  if (box) { box.scrollTop = box.scrollHeight; }
  setInterval(refresh, 1500);
})();
