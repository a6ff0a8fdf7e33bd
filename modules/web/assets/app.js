// HomeTrip's pages work without this script; it only enhances them:
// filters apply as soon as they change, the check-out date cannot precede
// the check-in date, photo uploads show their progress, and the page reports its analytics event (a session
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

  // Photo uploads show their progress; the form still posts without this.
  document.querySelectorAll("form[data-upload]").forEach(function (form) {
    var bar = form.querySelector("progress[data-progress]");
    if (!bar || !window.XMLHttpRequest || !window.FormData) return;
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      bar.hidden = false;
      bar.value = 0;
      xhr.upload.addEventListener("progress", function (p) {
        if (p.lengthComputable) bar.value = Math.round((p.loaded / p.total) * 100);
      });
      // The answer is the page the form leads to (or says what went wrong).
      xhr.addEventListener("load", function () {
        if (xhr.status < 400 && xhr.responseURL) {
          location.assign(xhr.responseURL);
        } else {
          var shown = new DOMParser().parseFromString(xhr.responseText, "text/html");
          document.replaceChild(document.adoptNode(shown.documentElement), document.documentElement);
        }
      });
      xhr.addEventListener("error", function () { form.submit(); });
      xhr.send(new FormData(form));
    });
  });

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

  var bell = document.getElementById("notifications-link");
  var badge = document.getElementById("header-unread");
  var toast = document.getElementById("toast");
  var unread = 0;
  var showUnread = function () {
    badge.hidden = unread <= 0;
    var said = document.createElement("span");
    said.className = "visually-hidden";
    said.textContent = " " + bell.dataset.unreadLabel;
    badge.replaceChildren(document.createTextNode(unread > 99 ? "99+" : String(unread)), said);
  };
  var notified = function (n) {
    if (!bell) return;
    unread += 1;
    showUnread();
    var link = document.createElement("a");
    // Only this site's paths: a notification's link is never a script.
    link.href = typeof n.link === "string" && /^\/(?![\/\\])[\x21-\x7e]*$/.test(n.link) ? n.link : "/notifications";
    link.textContent = n.title || bell.textContent;
    toast.replaceChildren(link);
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { toast.replaceChildren(); }, 10000);
  };
  if (bell && window.fetch) {
    fetch("/notifications/unread", { credentials: "same-origin", headers: { accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (count) {
        if (count) {
          unread = count.unread;
          showUnread();
        }
      })
      .catch(function () {});
  }

  // A conversation's page: messages, typing and read receipts as they
  // happen, over the /ws socket (the session cookie opens it). The page
  // works without it; a reload shows the same.
  var thread = document.querySelector("section.thread[data-conversation]");
  if (thread && window.WebSocket && window.fetch) {
    var conversation = thread.dataset.conversation;
    var me = thread.dataset.me;
    var list = thread.querySelector("ol.messages");
    var typing = thread.querySelector(".typing");
    var csrf = thread.querySelector("input[name=csrf]");
    var lastSeq = function () {
      var items = list.querySelectorAll("li[data-seq]");
      return items.length ? Number(items[items.length - 1].dataset.seq) : 0;
    };
    var markRead = function (seq) {
      fetch("/inbox/" + conversation + "/read", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "csrf=" + encodeURIComponent(csrf.value) + "&up_to_seq=" + seq,
        credentials: "same-origin"
      }).catch(function () {});
    };
    var seenUpTo = function (seq) {
      list.querySelectorAll("li.mine[data-seq]").forEach(function (li) {
        if (Number(li.dataset.seq) <= seq && !li.querySelector(".seen")) {
          var seen = document.createElement("p");
          seen.className = "hint seen";
          seen.textContent = thread.dataset.seen;
          li.appendChild(seen);
        }
      });
    };
    var append = function (m) {
      if (m.conversation_id !== conversation || document.getElementById("m" + m.seq)) return;
      var li = document.createElement("li");
      li.id = "m" + m.seq;
      li.dataset.seq = m.seq;
      li.className = "message" + (m.sender_id === me ? " mine" : "");
      var head = document.createElement("p");
      head.className = "sender";
      var who = document.createElement("strong");
      who.textContent = m.sender_id === me ? thread.dataset.you : thread.dataset.with;
      head.appendChild(who);
      li.appendChild(head);
      var body = document.createElement("div");
      body.className = "body";
      m.body.split("\n").forEach(function (line) {
        var p = document.createElement("p");
        p.textContent = line;
        body.appendChild(p);
      });
      li.appendChild(body);
      (m.attachments || []).forEach(function (a) {
        var p = document.createElement("p");
        var link = document.createElement("a");
        // This site's own address for it (the API's wants a bearer token).
        link.href = "/inbox/" + encodeURIComponent(conversation) + "/attachments/" + encodeURIComponent(a.id);
        link.textContent = thread.dataset.attachment;
        p.appendChild(link);
        li.appendChild(p);
      });
      list.appendChild(li);
      if (m.sender_id !== me) {
        typing.hidden = true;
        if (document.visibilityState === "visible") markRead(m.seq);
      }
    };
    var connect = function (delay) {
      var socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
      socket.onopen = function () {
        delay = 1000;
        var resume = {};
        resume[conversation] = lastSeq();
        socket.send(JSON.stringify({ type: "resume", conversations: resume }));
        thread.dataset.live = "true";
      };
      socket.onmessage = function (event) {
        var frame;
        try { frame = JSON.parse(event.data); } catch (e) { return; }
        var d = frame.data || {};
        if (frame.type === "message.created") {
          append(d);
        } else if (frame.type === "typing" && d.conversation_id === conversation && d.user_id !== me) {
          typing.hidden = false;
          clearTimeout(typing.timer);
          typing.timer = setTimeout(function () { typing.hidden = true; }, 5000);
        } else if (frame.type === "conversation.read" && d.conversation_id === conversation && d.reader_id !== me) {
          seenUpTo(d.up_to_seq);
        } else if (frame.type === "notification.created") {
          notified(d);
        }
      };
      socket.onclose = function () {
        thread.dataset.live = "false";
        setTimeout(function () { connect(Math.min(delay * 2, 30000)); }, delay);
      };
      thread.socket = socket;
    };
    connect(1000);
    // Replies go without leaving the page while the socket is up (the
    // message comes back as a frame); otherwise, or when the server has
    // something to say about it, the form posts as it would without script.
    var form = thread.querySelector("form.reply");
    form.addEventListener("submit", function (event) {
      if (thread.dataset.live !== "true" || form.dataset.sending === "true") return;
      event.preventDefault();
      form.dataset.sending = "true";
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        redirect: "manual"
      }).then(function (r) {
        if (r.type === "opaqueredirect" || r.status === 303) {
          form.reset();
          form.querySelector("input[name=client_message_id]").value =
            crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
          form.dataset.sending = "false";
        } else {
          form.submit();
        }
      }).catch(function () { form.submit(); });
    });
    var box = thread.querySelector("textarea[name=body]");
    var toldTyping = 0;
    box.addEventListener("input", function () {
      var now = Date.now();
      if (now - toldTyping > 3000 && thread.socket && thread.socket.readyState === 1) {
        toldTyping = now;
        thread.socket.send(JSON.stringify({ type: "typing", conversation_id: conversation }));
      }
    });
  }

  // Stripe Elements where Stripe is configured: its card field replaces the
  // test cards, and the form posts the payment method Stripe.js made (the
  // server confirms the payment as with any card). Without script, or when
  // Stripe.js does not load, the test cards stay.
  var pay = document.querySelector("form.pay[data-stripe-key]");
  if (pay && window.Promise) {
    var stripeJs = document.createElement("script");
    stripeJs.src = "https://js.stripe.com/v3/";
    stripeJs.onload = function () {
      if (!window.Stripe) return;
      var stripe = window.Stripe(pay.dataset.stripeKey);
      var card = stripe.elements().create("card");
      var field = document.getElementById("card-field");
      var cardError = document.getElementById("card-error");
      field.hidden = false;
      card.mount("#card-element");
      pay.querySelectorAll(".test-cards").forEach(function (set) { set.hidden = true; set.disabled = true; });
      var method = document.createElement("input");
      method.type = "hidden";
      method.name = "payment_method";
      pay.appendChild(method);
      pay.addEventListener("submit", function (event) {
        if (method.value) return;
        event.preventDefault();
        stripe.createPaymentMethod({ type: "card", card: card }).then(function (made) {
          if (made.error) {
            cardError.textContent = made.error.message || "";
            return;
          }
          method.value = made.paymentMethod.id;
          pay.submit();
        });
      });
    };
    document.head.appendChild(stripeJs);
  }

  // The header's notifications, live: the unread count, and each new one
  // in a toast that links to it. Without script the link lists them.
  if (bell && !thread && window.WebSocket) {
    var listen = function (delay) {
      var socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
      socket.onopen = function () { delay = 1000; };
      socket.onmessage = function (event) {
        var frame;
        try { frame = JSON.parse(event.data); } catch (e) { return; }
        if (frame.type === "notification.created") notified(frame.data || {});
      };
      socket.onclose = function () {
        setTimeout(function () { listen(Math.min(delay * 2, 30000)); }, delay);
      };
    };
    listen(1000);
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
