//! The realtime gateway over real WebSockets: live messages, read receipts,
//! typing, heartbeats, booking and calendar pushes, resume without gaps or
//! duplicates, fan-out across processes, presence, and the slow reader.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::messages::{host_and_guest, start_conversation};
use crate::shape::is_split;
use crate::support::*;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_url(server: &Server) -> String {
    server.url("/ws").replacen("http", "ws", 1)
}

fn token(api: &Api) -> String {
    api.token.clone().unwrap()
}

async fn connect(server: &Server, api: &Api) -> Ws {
    let mut req = ws_url(server).into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {}", token(api)).parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("websocket connects");
    ws
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Frame::text(frame.to_string())).await.expect("frame sent");
}

/// The next frame of type `kind`, skipping others (presence, pings).
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    let wait = Duration::from_secs(if is_split() { 30 } else { 10 });
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} frame within {wait:?}"))
            .expect("socket open")
            .expect("frame");
        if let Frame::Text(text) = frame {
            let v: Value = serde_json::from_str(&text).expect("JSON frame");
            if v["type"] == kind {
                return v;
            }
        }
    }
}

/// Asserts that no frame of type `kind` arrives within `wait`.
async fn none_of(ws: &mut Ws, kind: &str, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Frame::Text(text) = frame {
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_ne!(v["type"], kind, "unexpected frame {v}");
        }
    }
}

#[tokio::test]
async fn guests_and_hosts_talk_live_with_receipts_typing_and_heartbeats() {
    let server = Server::start().await;
    let (host, guest, listing) = host_and_guest(&server).await;

    // No token, or a bad one: 401 before any upgrade.
    let refused = tokio_tungstenite::connect_async(ws_url(&server)).await.unwrap_err();
    assert!(matches!(&refused, tokio_tungstenite::tungstenite::Error::Http(r) if r.status() == 401), "{refused:?}");
    let bad = tokio_tungstenite::connect_async(format!("{}?access_token=nope", ws_url(&server))).await.unwrap_err();
    assert!(matches!(&bad, tokio_tungstenite::tungstenite::Error::Http(r) if r.status() == 401), "{bad:?}");

    let mut guest_ws = connect(&server, &guest).await;
    // Browsers pass the token as a query parameter.
    let (mut host_ws, _) =
        tokio_tungstenite::connect_async(format!("{}?access_token={}", ws_url(&server), token(&host)))
            .await
            .expect("query-token socket");
    send(&mut host_ws, json!({"type": "ping"})).await;
    next_of(&mut host_ws, "pong").await;
    send(&mut guest_ws, json!({"type": "ping"})).await;
    next_of(&mut guest_ws, "pong").await;

    let conv = start_conversation(&guest, &listing, "Is early check-in possible?").await;
    let created = next_of(&mut host_ws, "message.created").await;
    assert_eq!(created["data"]["conversation_id"], json!(conv));
    assert_eq!(created["data"]["seq"], 1);
    assert_eq!(created["data"]["body"], "Is early check-in possible?");
    // The sender's own sockets get it too (other devices).
    assert_eq!(next_of(&mut guest_ws, "message.created").await["data"]["seq"], 1);

    let r = host.post(&format!("/api/v1/conversations/{conv}/read"), json!({"up_to_seq": 1})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let read = next_of(&mut guest_ws, "conversation.read").await;
    assert_eq!(read["data"]["conversation_id"], json!(conv));
    assert_eq!(read["data"]["up_to_seq"], 1);

    send(&mut guest_ws, json!({"type": "typing", "conversation_id": conv})).await;
    let typing = next_of(&mut host_ws, "typing").await;
    assert_eq!(typing["data"]["conversation_id"], json!(conv));
    // Typing in someone else's conversation is refused.
    let (stranger, _) = server.client().signed_up(&unique_email("stranger")).await;
    let mut stranger_ws = connect(&server, &stranger).await;
    send(&mut stranger_ws, json!({"type": "typing", "conversation_id": conv})).await;
    next_of(&mut stranger_ws, "error").await;
    none_of(&mut host_ws, "typing", Duration::from_millis(500)).await;

    // The booking's progress reaches guest and host, the calendar the host.
    book_and_pay(&guest, &listing, 20).await;
    loop {
        let update = next_of(&mut guest_ws, "booking.updated").await;
        if update["data"]["status"] == "confirmed" {
            break;
        }
    }
    next_of(&mut host_ws, "calendar.updated").await;

    // A frame over 64 KiB closes the socket with 1009.
    send(&mut stranger_ws, json!({"type": "ping", "pad": "x".repeat(70 * 1024)})).await;
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), stranger_ws.next()).await.expect("closed in time") {
            Some(Ok(Frame::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(closed.map(|f| f.code), Some(CloseCode::Size));
}

fn seqs_in_order(frames: &[Value]) -> Vec<i64> {
    frames.iter().map(|f| f["data"]["seq"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn a_resumed_socket_gets_exactly_the_missed_messages() {
    let server = Server::start().await;
    let (host, guest, listing) = host_and_guest(&server).await;
    let conv = start_conversation(&guest, &listing, "one").await;
    let path = format!("/api/v1/conversations/{conv}/messages");
    let mut host_ws = connect(&server, &host).await;
    send(&mut host_ws, json!({"type": "resume", "conversations": {&conv: 0}})).await;
    assert_eq!(next_of(&mut host_ws, "message.created").await["data"]["seq"], 1);
    host_ws.close(None).await.unwrap();

    // Missed while away.
    for body in ["two", "three", "four"] {
        assert_eq!(guest.post(&path, json!({"body": body})).await.status, 201);
    }
    let mut host_ws = connect(&server, &host).await;
    send(&mut host_ws, json!({"type": "resume", "conversations": {&conv: 1}})).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next_of(&mut host_ws, "message.created").await);
    }
    assert_eq!(seqs_in_order(&got), vec![2, 3, 4]);
    assert_eq!(got[0]["data"]["body"], "two");
    // Then live, once each.
    assert_eq!(guest.post(&path, json!({"body": "five"})).await.status, 201);
    assert_eq!(next_of(&mut host_ws, "message.created").await["data"]["seq"], 5);
    none_of(&mut host_ws, "message.created", Duration::from_millis(800)).await;
    // A conversation the caller is not part of is not back-filled.
    let (stranger, _) = server.client().signed_up(&unique_email("stranger")).await;
    let mut stranger_ws = connect(&server, &stranger).await;
    send(&mut stranger_ws, json!({"type": "resume", "conversations": {&conv: 0}})).await;
    none_of(&mut stranger_ws, "message.created", Duration::from_millis(800)).await;
}

/// Two processes on one database and Redis (or the split shape's two
/// realtime replicas behind the gateway); `None` where processes cannot
/// share (SQLite without Redis).
async fn two_processes(env: &[(&str, &str)]) -> Option<(Server, Server)> {
    let first = Server::start_with(env).await;
    if !is_split() && (first.database_of("message").is_none() || redis_url().is_none()) {
        return None;
    }
    let second = Server::start_sharing(&first, env).await;
    Some((first, second))
}

/// A user registered once, signed in on both processes (each signs its own tokens).
async fn user_on_both(a: &Server, b: &Server, prefix: &str) -> (Api, Api) {
    let email = unique_email(prefix);
    let r = a.client().register(&email, "Test User").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let on = |s: &Server| {
        let email = email.clone();
        let client = s.client();
        async move {
            let l = client.login(&email, PASSWORD).await;
            assert_eq!(l.status, 200, "{}", l.text);
            client.with_token(l.body["access_token"].as_str().unwrap())
        }
    };
    (on(a).await, on(b).await)
}

#[tokio::test]
async fn a_message_reaches_every_socket_whichever_process_holds_it() {
    let Some((a, b)) = two_processes(&[]).await else { return };
    let (host, host_on_b) = user_on_both(&a, &b, "host").await;
    let (guest, _) = user_on_both(&a, &b, "guest").await;
    let listing = publish_listing(&a, &host, house("Maison partagée")).await;
    // In the split shape the gateway spreads sockets over the realtime
    // replicas: several sockets of one user land on both.
    let mut on_b = Vec::new();
    for _ in 0..3 {
        on_b.push(connect(&b, &host_on_b).await);
    }
    let conv = start_conversation(&guest, &listing, "Across processes").await;
    for ws in &mut on_b {
        let frame = next_of(ws, "message.created").await;
        assert_eq!(frame["data"]["conversation_id"], json!(conv));
        assert_eq!(frame["data"]["seq"], 1);
    }
    // And back: a post through b reaches a socket on a.
    let mut guest_on_a = connect(&a, &guest).await;
    send(&mut guest_on_a, json!({"type": "ping"})).await;
    next_of(&mut guest_on_a, "pong").await;
    let reply = host_on_b.post(&format!("/api/v1/conversations/{conv}/messages"), json!({"body": "Received"})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(next_of(&mut guest_on_a, "message.created").await["data"]["seq"], 2);
}

#[tokio::test]
async fn presence_follows_sockets_and_a_dead_process() {
    if is_split() {
        // The split shape's replicas are shared by the suite: killing one is
        // the fault tests' business (`split.rs`).
        return;
    }
    let env = [("HOMETRIP_REALTIME__PRESENCE_TTL_SECS", "3")];
    let Some((a, mut b)) = two_processes(&env).await else { return };
    let (host, host_on_b) = user_on_both(&a, &b, "host").await;
    let (guest, _) = user_on_both(&a, &b, "guest").await;
    let listing = publish_listing(&a, &host, house("Maison de présence")).await;
    start_conversation(&guest, &listing, "Are you there?").await;
    let mut guest_ws = connect(&a, &guest).await;
    send(&mut guest_ws, json!({"type": "ping"})).await;
    next_of(&mut guest_ws, "pong").await;
    let host_id = crate::messages::user_id(&host);

    let _host_ws = connect(&b, &host_on_b).await;
    let online = next_of(&mut guest_ws, "presence").await;
    assert_eq!(online["data"]["user_id"], json!(host_id));
    assert_eq!(online["data"]["online"], true);

    // The process holding the host's socket dies: offline within the TTL.
    b.kill();
    let offline = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let p = next_of(&mut guest_ws, "presence").await;
            if p["data"]["user_id"] == json!(host_id) && p["data"]["online"] == false {
                return p;
            }
        }
    })
    .await
    .expect("the host went offline");
    assert!(offline["data"]["last_seen_at"].is_string(), "{offline}");
    // A socket opening later is told the host's last time online.
    let mut guest_again = connect(&a, &guest).await;
    let seen = next_of(&mut guest_again, "presence").await;
    assert_eq!(seen["data"]["online"], false);
    assert!(seen["data"]["last_seen_at"].is_string(), "{seen}");
}

#[tokio::test]
async fn presence_goes_to_counterparts_only() {
    let server = Server::start().await;
    let (host, guest, listing) = host_and_guest(&server).await;
    start_conversation(&guest, &listing, "Hello").await;
    let (stranger, _) = server.client().signed_up(&unique_email("stranger")).await;
    let mut guest_ws = connect(&server, &guest).await;
    let mut stranger_ws = connect(&server, &stranger).await;
    send(&mut guest_ws, json!({"type": "ping"})).await;
    next_of(&mut guest_ws, "pong").await;
    let host_ws = connect(&server, &host).await;
    let p = next_of(&mut guest_ws, "presence").await;
    assert_eq!(p["data"]["online"], true);
    none_of(&mut stranger_ws, "presence", Duration::from_millis(800)).await;
    drop(host_ws);
    loop {
        let p = next_of(&mut guest_ws, "presence").await;
        if p["data"]["online"] == false {
            break;
        }
    }
}

#[tokio::test]
async fn a_slow_reader_is_cut_off_while_fast_readers_keep_receiving() {
    let server = Server::start_with(&[
        ("HOMETRIP_MESSAGE__SENDS_PER_MINUTE", "1000000"),
        ("HOMETRIP_SERVER__RATE_LIMIT__MAX", "1000000"),
        ("HOMETRIP_AUTH__RATE_LIMIT_PER_ACCOUNT__MAX", "1000000"),
        ("HOMETRIP_SERVER__METRICS_TOKEN", SCRAPER),
        // The slow client answers no heartbeat either: what closes it here
        // must be the queue, not the heartbeat's timeout.
        ("HOMETRIP_REALTIME__HEARTBEAT_SECS", "120"),
    ])
    .await;
    let (host, guest, listing) = host_and_guest(&server).await;
    let conv = start_conversation(&guest, &listing, "start").await;
    let path = format!("/api/v1/conversations/{conv}/messages");

    // The slow reader: a guest socket on a small receive buffer that is
    // never read until the end.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut req = ws_url(&server).into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {}", token(&guest)).parse().unwrap());
    let (mut slow, _) = tokio_tungstenite::client_async(req, stream).await.expect("slow socket");
    slow.send(Frame::text(json!({"type": "ping"}).to_string())).await.unwrap();
    // The fast reader: the host, reading as frames come.
    let mut fast = connect(&server, &host).await;
    send(&mut fast, json!({"type": "ping"})).await;
    next_of(&mut fast, "pong").await;

    // Until the server has cut the slow socket off: every buffer between it
    // and the slow client fills first (kernel buffers of a few MiB, and in
    // the split shape the gateway hop's as well).
    let body = "x".repeat(5_000);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<i64>();
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while let Ok(Some(expected)) = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            while seqs.last().is_none_or(|s| *s < expected) {
                let frame = next_of(&mut fast, "message.created").await;
                seqs.push(frame["data"]["seq"].as_i64().unwrap());
            }
        }
        seqs
    });
    let mut last_seq = 1;
    for _ in 0..40 {
        for _ in 0..200 {
            let r = host.post(&path, json!({"body": body})).await;
            assert_eq!(r.status, 201, "{}", r.text);
            last_seq = r.body["seq"].as_i64().unwrap();
        }
        tx.send(last_seq).unwrap();
        if slow_consumers(&server).await > 0 {
            break;
        }
    }
    assert!(slow_consumers(&server).await > 0, "the slow socket was never cut off: {}", server.logs());
    drop(tx);
    let seqs = tokio::time::timeout(Duration::from_secs(120), reader).await.expect("the fast reader kept up").unwrap();
    assert_eq!(seqs, (2..=last_seq).collect::<Vec<_>>(), "the fast reader got every message, in order");
    let count = last_seq - 1;

    // The slow reader finds, after what was already on its way, 4008.
    let mut received = 0;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(60), slow.next()).await.expect("the slow socket ends") {
            Some(Ok(Frame::Close(frame))) => break frame,
            Some(Ok(Frame::Text(_))) => received += 1,
            Some(Ok(_)) => {}
            other => panic!("expected a close frame after {received} frames, got {other:?}"),
        }
    };
    assert_eq!(close.map(|f| u16::from(f.code)), Some(4008));
    assert!(received < count, "the slow reader was cut off ({received} of {count})");
}

const SCRAPER: &str = "realtime-test-scraper";

/// A metric's value on each process running realtime (in `bases_of` order).
async fn metric_per_process(server: &Server, name: &str) -> Vec<u64> {
    let (bases, http) = match &server.split {
        Some(split) => (split.bases_of("realtime"), split.http()),
        None => (vec![server.service("realtime").0], reqwest::Client::new()),
    };
    let mut values = Vec::new();
    for base in bases {
        let text = http.get(format!("{base}/metrics")).bearer_auth(SCRAPER).send().await.unwrap().text().await.unwrap();
        let value = text
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .sum::<f64>();
        values.push(value as u64);
    }
    values
}

/// Sockets cut off for reading too slowly, over the processes running realtime.
async fn slow_consumers(server: &Server) -> u64 {
    metric_per_process(server, "realtime_slow_consumers_total").await.iter().sum()
}

/// Open sockets per realtime process (in `bases_of("realtime")` order).
async fn sockets_per_process(server: &Server) -> Vec<u64> {
    metric_per_process(server, "realtime_sockets").await
}

#[tokio::test]
async fn presence_goes_offline_when_the_realtime_replica_holding_a_user_dies() {
    if !is_split() {
        return; // The one-process shapes: `presence_follows_sockets_and_a_dead_process`.
    }
    let server = Server::start_with(&[
        ("HOMETRIP_REALTIME__PRESENCE_TTL_SECS", "3"),
        ("HOMETRIP_SERVER__METRICS_TOKEN", SCRAPER),
    ])
    .await;
    let (host, guest, listing) = host_and_guest(&server).await;
    start_conversation(&guest, &listing, "Still there?").await;
    let mut guest_ws = connect(&server, &guest).await;
    send(&mut guest_ws, json!({"type": "ping"})).await;
    next_of(&mut guest_ws, "pong").await;
    let with_guest = sockets_per_process(&server).await;
    let guest_replica = with_guest.iter().position(|n| *n == 1).expect("the guest's socket is somewhere");
    // The gateway balances sockets over the replicas: one of the host's lands
    // on the other replica (those on the guest's would keep the host online).
    let mut tries = 0;
    let (host_replica, _host_ws) = loop {
        let mut ws = connect(&server, &host).await;
        send(&mut ws, json!({"type": "ping"})).await;
        next_of(&mut ws, "pong").await;
        let now = sockets_per_process(&server).await;
        if now[guest_replica] == 1 {
            break ((0..now.len()).find(|r| *r != guest_replica && now[*r] > 0).unwrap(), ws);
        }
        drop(ws);
        tries += 1;
        assert!(tries < 6, "every host socket went to the guest's replica: {now:?}");
        while sockets_per_process(&server).await[guest_replica] > 1 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let names = ["realtime", "realtime-2"];
    server.split.as_ref().unwrap().kill(names[host_replica]);
    let host_id = crate::messages::user_id(&host);
    let offline = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let p = next_of(&mut guest_ws, "presence").await;
            if p["data"]["user_id"] == json!(host_id) && p["data"]["online"] == false {
                return p;
            }
        }
    })
    .await
    .expect("the host went offline when their replica died");
    assert!(offline["data"]["last_seen_at"].is_string());
}
