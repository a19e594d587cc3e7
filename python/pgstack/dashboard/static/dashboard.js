// pgstack dashboard: confirmation before actions, overview refresh, live job page.
// Served from the same origin under a Content-Security-Policy that allows no inline
// script; everything shown was escaped by the server or is set with textContent.
(function () {
  "use strict";

  // Every action form asks first. Without JavaScript the server asks on a page.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) {
      return;
    }
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    var confirmed = form.querySelector("input[name=confirmed]");
    if (confirmed) {
      confirmed.value = "1";
    }
  });

  var main = document.getElementById("main");

  // The overview: fetch the page's main part again every few seconds.
  var refreshMs = main ? Number(main.dataset.refreshMs || 0) : 0;
  if (refreshMs > 0) {
    window.setInterval(function () {
      if (document.hidden) {
        return;
      }
      fetch(window.location.href, {
        headers: { "X-Pgstack-Fragment": "1" },
        credentials: "same-origin",
      })
        .then(function (response) {
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html !== null) {
            main.innerHTML = html;
          }
        })
        .catch(function () {});
    }, refreshMs);
  }

  // A job's page: follow the job every second while it can still change.
  var job = document.querySelector("[data-job-api]");
  if (!job || job.dataset.final === "true") {
    return;
  }
  var api = job.dataset.jobApi;

  function show(data) {
    if (data.status === "dead" && data.url) {
      window.location.assign(data.url);
      return false;
    }
    Object.keys(data.fields).forEach(function (name) {
      job.querySelectorAll('[data-field="' + name + '"]').forEach(function (element) {
        element.textContent = data.fields[name];
      });
    });
    var bar = document.getElementById("progress");
    if (bar) {
      bar.value = data.progress === null ? 0 : data.progress;
    }
    job.querySelectorAll("[data-status-badge]").forEach(function (badge) {
      badge.className = "badge status-" + data.status;
      badge.textContent = data.status;
    });
    job.querySelectorAll("[data-show-for]").forEach(function (form) {
      form.hidden = data.actions.indexOf(form.dataset.showFor) < 0;
    });
    if (data.final) {
      job.dataset.final = "true";
      var note = document.getElementById("live-note");
      if (note) {
        note.textContent = "Finished.";
      }
    }
    return !data.final;
  }

  function poll() {
    fetch(api, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        if (show(data)) {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () {
        window.setTimeout(poll, 3000);
      });
  }

  window.setTimeout(poll, 1000);
})();
