// The Telegram login page follows its login: a new QR code when Telegram rotates it, and
// the page again when what it says changes (the step, Telegram's word, an answer checked) (asked every second; a script file, for the CSP).
(function () {
  var box = document.getElementById("tg-login");
  if (!box) { return; }
  var state = box.getAttribute("data-state");
  var key = box.getAttribute("data-key");
  if (state === "done" || state === "failed" || state === "expired") { return; }
  function look() {
    var ask = new XMLHttpRequest();
    ask.open("GET", box.getAttribute("data-poll"));
    ask.onload = function () {
      if (ask.status !== 200) { return setTimeout(look, 2000); }
      var now = JSON.parse(ask.responseText);
      if (now.key !== key) { window.location.reload(); return; }
      var img = document.getElementById("qr");
      if (img && now.qr && img.getAttribute("src") !== now.qr) { img.setAttribute("src", now.qr); }
      setTimeout(look, 1000);
    };
    ask.onerror = function () { setTimeout(look, 2000); };
    ask.send();
  }
  setTimeout(look, 1000);
})();
