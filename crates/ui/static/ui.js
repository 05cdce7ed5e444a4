// keymint's web UI: the little that plain HTML cannot do. Every page works without it.
//
// - Copy buttons: a <button data-copy="ID" hidden> copies the text of the element with that id.
//   The buttons stay hidden without this script, so nobody sees a button that does nothing.
// - Countdowns: a <time data-countdown datetime="RFC 3339" hidden> shows the time left, every
//   second, and says "expired" at the end (the page states the expiry itself in plain text). Its words are the only change: screen readers are not
//   interrupted (the element is a role="timer", which is not announced as it ticks).
"use strict";

(function () {
  function announce(button, text) {
    var status = document.getElementById(button.getAttribute("aria-controls") || "");
    button.textContent = text;
    if (status) {
      status.textContent = text;
    }
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain HTTP (a dev server on another host): the clipboard API is not offered, so copy
    // through a selected, off-screen text area.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.appendChild(area);
      area.select();
      var done = false;
      try {
        done = document.execCommand("copy");
      } catch (e) {
        done = false;
      }
      document.body.removeChild(area);
      if (done) {
        resolve();
      } else {
        reject(new Error("copy refused"));
      }
    });
  }

  function setUpCopy(button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) {
      return;
    }
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      copyText(source.textContent).then(
        function () {
          announce(button, "Copied");
          window.setTimeout(function () {
            button.textContent = label;
          }, 2000);
        },
        function () {
          // The text is selectable: select it so one keystroke copies it.
          var range = document.createRange();
          range.selectNodeContents(source);
          var selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          announce(button, "Selected: press Ctrl+C to copy");
        }
      );
    });
  }

  function left(ms) {
    if (ms <= 0) {
      return "expired";
    }
    var s = Math.floor(ms / 1000);
    var d = Math.floor(s / 86400);
    var h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60);
    var parts = [];
    if (d > 0) {
      parts.push(d + "d");
    }
    if (d > 0 || h > 0) {
      parts.push(h + "h");
    }
    parts.push(m + "m");
    parts.push((s % 60) + "s");
    return parts.join(" ") + " left";
  }

  function setUpCountdown(element) {
    var end = Date.parse(element.getAttribute("datetime"));
    if (isNaN(end)) {
      return;
    }
    element.setAttribute("role", "timer");
    element.hidden = false;
    function tick() {
      var remaining = end - Date.now();
      element.textContent = left(remaining);
      if (remaining > 0) {
        window.setTimeout(tick, 1000 - (Date.now() % 1000));
      }
    }
    tick();
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), setUpCopy);
    Array.prototype.forEach.call(document.querySelectorAll("time[data-countdown]"), setUpCountdown);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
