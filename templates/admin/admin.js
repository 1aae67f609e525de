// Tidings organiser pages: two small enhancements, each optional.
// 1. The editor's preview follows the text as it is typed (the "Preview"
//    button does the same without script, by reloading the page).
// 2. An update's delivery figures follow the send without reloading.
(function () {
  "use strict";

  function livePreview(form) {
    var frame = document.getElementById("preview-html");
    var text = document.getElementById("preview-text");
    var state = document.getElementById("preview-state");
    if (!frame || !text || !window.fetch || !window.URLSearchParams) return;
    var timer = null;
    var asked = 0;
    function refresh() {
      var mine = ++asked;
      var body = new URLSearchParams(new FormData(form));
      fetch("/admin/updates/render", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" },
        body: body.toString()
      }).then(function (res) {
        if (!res.ok) throw new Error(String(res.status));
        return res.json();
      }).then(function (p) {
        if (mine !== asked) return;
        frame.srcdoc = p.html;
        text.textContent = p.text;
      }).catch(function () {
        if (state) state.textContent = "The preview could not be updated; press “Preview” to try again.";
      });
    }
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 400);
    });
    var button = document.getElementById("preview-button");
    if (button) {
      button.addEventListener("click", function (e) {
        e.preventDefault();
        refresh();
      });
    }
  }

  function liveProgress(section) {
    var url = section.getAttribute("data-live");
    var fallback = document.getElementById("progress-live");
    if (!url || !window.fetch) return;
    if (fallback) fallback.textContent = "(updates as it sends)";
    function set(id, value) {
      var el = document.getElementById(id);
      if (el) el.textContent = String(value);
    }
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (res) { return res.json(); })
        .then(function (p) {
          var bar = document.getElementById("progress-bar");
          if (bar) { bar.value = p.percent; bar.textContent = p.percent + "%"; }
          set("progress-percent", p.percent);
          set("stat-total", p.total);
          set("stat-sent", p.sent);
          set("stat-pending", p.pending);
          set("stat-failed", p.failed);
          set("stat-bounced", p.bounced);
          set("stat-skipped", p.skipped);
          set("status", p.status);
          if (p.status === "sending") {
            setTimeout(poll, 3000);
          } else if (fallback) {
            var link = document.createElement("a");
            link.href = window.location.pathname;
            link.textContent = "reload the page for what you can do next";
            fallback.textContent = "(now " + p.status + ": ";
            fallback.appendChild(link);
            fallback.appendChild(document.createTextNode(")"));
          }
        })
        .catch(function () { setTimeout(poll, 10000); });
    }
    setTimeout(poll, 3000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("update-form");
    if (form) livePreview(form);
    var progress = document.querySelector("[data-live]");
    if (progress) liveProgress(progress);
  });
})();
