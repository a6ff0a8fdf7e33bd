// HomeTrip's pages work without this script; it only enhances them:
// filters apply as soon as they change, the check-out date cannot precede
// the check-in date, and the page reports its analytics event (a session
// id kept for the tab, no cookie).
(function () {
  "use strict";

  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      select.form.requestSubmit();
    });
  });

  var checkIn = document.getElementById("check_in");
  var checkOut = document.getElementById("check_out");
  if (checkIn && checkOut) {
    var now = new Date();
    var pad = function (n) { return String(n).padStart(2, "0"); };
    // The visitor's own today, not UTC's.
    var today = now.getFullYear() + "-" + pad(now.getMonth() + 1) + "-" + pad(now.getDate());
    checkIn.min = today;
    var follow = function () {
      if (!checkIn.value) return;
      var next = new Date(checkIn.value + "T00:00:00Z");
      next.setUTCDate(next.getUTCDate() + 1);
      checkOut.min = next.toISOString().slice(0, 10);
      if (checkOut.value && checkOut.value < checkOut.min) checkOut.value = checkOut.min;
    };
    checkIn.addEventListener("change", follow);
    follow();
  }

  // Suggestions for the search box (cities and titles), as the visitor types.
  var q = document.getElementById("q");
  var suggestions = document.getElementById("q-suggestions");
  if (q && suggestions && window.fetch) {
    var timer;
    var asked = "";
    q.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var typed = q.value.trim();
        if (typed.length < 2 || typed === asked) return;
        asked = typed;
        fetch("/api/v1/search/autocomplete?q=" + encodeURIComponent(typed), { headers: { accept: "application/json" } })
          .then(function (r) { return r.ok ? r.json() : { suggestions: [] }; })
          .then(function (found) {
            if (typed !== asked) return;
            suggestions.replaceChildren.apply(suggestions, (found.suggestions || []).map(function (s) {
              var option = document.createElement("option");
              option.value = s.text;
              return option;
            }));
          })
          .catch(function () {});
      }, 150);
    });
  }

  var name = document.body.dataset.event;
  if (!name || !navigator.sendBeacon) return;
  var session;
  try {
    session = sessionStorage.getItem("ht_session");
    if (!session) {
      session = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2)).replace(/[^A-Za-z0-9_-]/g, "");
      sessionStorage.setItem("ht_session", session);
    }
  } catch (e) {
    session = undefined;
  }
  var event = { name: name, session_id: session };
  if (document.body.dataset.listing) event.listing_id = document.body.dataset.listing;
  if (name === "page_view") event.props = { path: location.pathname.slice(0, 200) };
  if (name === "search") {
    var q = new URLSearchParams(location.search).get("q");
    event.props = q ? { q: q.slice(0, 200) } : {};
  }
  var body = new Blob([JSON.stringify({ events: [event] })], { type: "application/json" });
  navigator.sendBeacon("/api/v1/analytics/events", body);
})();
