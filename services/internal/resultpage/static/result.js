// Live result page: the server renders the current tally into the HTML; this
// keeps it current from the /events Server-Sent Events stream (pushed by the
// server on every change, no polling). Without JavaScript or EventSource the
// page still shows the tally as of loading.
(function () {
  "use strict";

  var root = document.getElementById("result");
  if (!root || typeof window.EventSource === "undefined") {
    return;
  }

  function byId(id) {
    return document.getElementById(id);
  }

  var labelA = byId("label-a");
  var labelB = byId("label-b");
  var pctA = byId("pct-a");
  var pctB = byId("pct-b");
  var barA = byId("bar-a");
  var barB = byId("bar-b");
  var total = byId("total");

  // Same rule as the server (resultpage.Percentages): a's share rounded half
  // up, b gets the rest, 50/50 with no votes.
  function percentages(a, b) {
    var t = a + b;
    if (t <= 0) {
      return [50, 50];
    }
    var pa = Math.floor((200 * a + t) / (2 * t));
    return [pa, 100 - pa];
  }

  function votesText(n) {
    if (n === 0) {
      return "No votes yet";
    }
    if (n === 1) {
      return "1 vote";
    }
    return n + " votes";
  }

  function render(t) {
    var p = percentages(t.a, t.b);
    labelA.textContent = t.option_a;
    labelB.textContent = t.option_b;
    pctA.textContent = p[0] + "%";
    pctB.textContent = p[1] + "%";
    barA.style.width = p[0] + "%";
    barB.style.width = p[1] + "%";
    total.textContent = votesText(t.a + t.b);
  }

  function valid(t) {
    return t && typeof t.a === "number" && typeof t.b === "number" &&
      typeof t.option_a === "string" && typeof t.option_b === "string";
  }

  // The server ends every stream after some minutes (to rebalance replicas)
  // and the browser reconnects at once; only an outage that lasts is shown.
  var offlineTimer = null;

  function online() {
    clearTimeout(offlineTimer);
    offlineTimer = null;
    root.classList.remove("offline");
  }

  function offline() {
    if (offlineTimer === null) {
      offlineTimer = setTimeout(function () {
        root.classList.add("offline");
      }, 5000);
    }
  }

  function connect() {
    var es = new EventSource(root.getAttribute("data-events") || "events");
    es.onopen = online;
    es.onmessage = function (e) {
      var t;
      try {
        t = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      if (valid(t)) {
        online();
        render(t);
      }
    };
    es.onerror = function () {
      offline();
      // The browser retries on its own after a dropped stream, but gives up
      // for good after an error status (e.g. 503 while the database is
      // away): start over then, with jitter so a fleet does not stampede.
      if (es.readyState === window.EventSource.CLOSED) {
        es.close();
        setTimeout(connect, 3000 + Math.random() * 4000);
      }
    };
  }

  connect();
})();
