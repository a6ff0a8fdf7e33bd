//! The broadcast fan-out shootout's load client, in the manner of hashrocket's
//! websocket-shootout: connect clients in steps, send broadcasts to all of
//! them, and measure, per broadcast, the time from its sending to the last
//! client's receipt; a step passes when that time's p95 is under 500 ms and
//! every client got every broadcast exactly once.
//!
//! Two kinds of target:
//! - `echo`: a bare broadcast server (`ws_bare_actix`, `benches/node/ws-broadcast.js`):
//!   a sender socket writes `{"b":<n>}` and the server relays it to every socket;
//! - `hometrip`: HomeTrip's `/ws`, every socket a device of one host; the
//!   broadcast is a guest's message in their conversation (HTTP POST), which
//!   reaches every socket of the host as `message.created` through the
//!   message store, the outbox and the realtime module.
//!
//! And `chat`: chat delivery between two HomeTrip processes sharing a
//! database and Redis: a guest posts to the first at a sustained rate, the
//! host's socket is held by the second; latency from the POST's sending to
//! the frame's arrival, p50 and p99.
//!
//!   cargo bench --bench ws_fanout -- echo ws://127.0.0.1:9001/ 500,1000,2000
//!   cargo bench --bench ws_fanout -- hometrip http://127.0.0.1:3001 500,1000,2000
//!   cargo bench --bench ws_fanout -- chat http://127.0.0.1:3001 http://127.0.0.1:3101 100 20
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const BROADCASTS: usize = 20;
const PAUSE: Duration = Duration::from_millis(100);
const WAIT: Duration = Duration::from_secs(3);

/// Per client, per broadcast: how many times it arrived (and when, first).
struct Board {
    counts: Vec<AtomicU32>,
    /// Nanoseconds since `origin` of the first receipt; 0: none.
    at: Vec<std::sync::atomic::AtomicU64>,
    origin: Instant,
}

impl Board {
    fn new(clients: usize) -> Arc<Board> {
        let n = clients * BROADCASTS;
        Arc::new(Board {
            counts: (0..n).map(|_| AtomicU32::new(0)).collect(),
            at: (0..n).map(|_| std::sync::atomic::AtomicU64::new(0)).collect(),
            origin: Instant::now(),
        })
    }

    fn mark(&self, client: usize, b: usize) {
        if b >= BROADCASTS {
            return;
        }
        let i = client * BROADCASTS + b;
        if self.counts[i].fetch_add(1, Ordering::Relaxed) == 0 {
            self.at[i].store(self.origin.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
    }
}

/// What identifies a broadcast in a frame the client receives.
fn broadcast_of(target: &str, text: &str) -> Option<usize> {
    let v: Value = serde_json::from_str(text).ok()?;
    match target {
        "hometrip" if v["type"] == "message.created" => v["data"]["body"].as_str()?.strip_prefix("b")?.parse().ok(),
        "hometrip" => None,
        _ => v["b"].as_u64().map(|b| b as usize),
    }
}

struct HomeTrip {
    base: String,
    host_token: String,
    guest: reqwest::Client,
    guest_token: String,
    conversation: String,
}

async fn post(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut rb = http.post(url).json(&body);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let res = rb.send().await.expect("request");
    let status = res.status();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {v}");
    v
}

async fn sign_up(http: &reqwest::Client, base: &str, who: &str) -> String {
    let email = format!("{who}-{}@bench.example", uuid::Uuid::now_v7().simple());
    let password = "correct horse battery staple";
    post(
        http,
        format!("{base}/api/v1/auth/register"),
        None,
        json!({"email": email, "password": password, "display_name": who}),
    )
    .await;
    let login =
        post(http, format!("{base}/api/v1/auth/login"), None, json!({"email": email, "password": password})).await;
    login["access_token"].as_str().unwrap().to_owned()
}

async fn hometrip_setup(base: &str) -> HomeTrip {
    let http = reqwest::Client::new();
    let host_token = sign_up(&http, base, "host").await;
    let guest_token = sign_up(&http, base, "guest").await;
    let listing = post(
        &http,
        format!("{base}/api/v1/listings"),
        Some(&host_token),
        json!({
            "title": "Fan-out", "description": "A listing for the bench.", "property_type": "house",
            "address": {"line1": "1 rue A", "city": "Lyon", "postal_code": "69001", "country": "FR"},
            "location": {"lat": 45.76, "lon": 4.83}, "max_guests": 2, "bedrooms": 1, "beds": 1, "bathrooms": 1.0,
            "amenities": [], "nightly_price": {"amount": 10000, "currency": "EUR"}, "instant_book": true,
            "cancellation_policy": "flexible", "min_nights": 1, "max_nights": 10
        }),
    )
    .await;
    let conv = post(
        &http,
        format!("{base}/api/v1/conversations"),
        Some(&guest_token),
        json!({"listing_id": listing["id"], "body": "hello"}),
    )
    .await;
    HomeTrip {
        base: base.to_owned(),
        host_token,
        guest: http,
        guest_token,
        conversation: conv["id"].as_str().unwrap().to_owned(),
    }
}

async fn connect(
    url: &str,
    token: Option<&str>,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = url.into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    for attempt in 0..5 {
        match tokio_tungstenite::connect_async(req.clone()).await {
            Ok((ws, _)) => return ws,
            Err(e) if attempt < 4 => {
                eprintln!("connect failed ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("connect: {e}"),
        }
    }
    unreachable!()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn step(target: &str, url: &str, ht: Option<&HomeTrip>, clients: usize) -> (f64, f64, usize, usize) {
    let board = Board::new(clients);
    let ws_url = match ht {
        Some(h) => format!("{}/ws", h.base.replacen("http", "ws", 1)),
        None => url.to_owned(),
    };
    let token = ht.map(|h| h.host_token.clone());
    let mut tasks = Vec::with_capacity(clients);
    // Connect in batches, each socket read by its own task.
    for chunk in (0..clients).collect::<Vec<_>>().chunks(100) {
        let mut sockets = Vec::new();
        for _ in chunk {
            sockets.push(connect(&ws_url, token.as_deref()));
        }
        let sockets = futures_util::future::join_all(sockets).await;
        for (client, ws) in chunk.iter().copied().zip(sockets) {
            let board = Arc::clone(&board);
            let target = target.to_owned();
            tasks.push(tokio::spawn(async move {
                let (_, mut read) = ws.split();
                while let Some(Ok(frame)) = read.next().await {
                    if let Message::Text(text) = frame {
                        if let Some(b) = broadcast_of(&target, &text) {
                            board.mark(client, b);
                        }
                    }
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut sender = match ht {
        Some(_) => None,
        None => Some(connect(url, None).await),
    };
    let mut latencies = Vec::new();
    for b in 0..BROADCASTS {
        let sent = board.origin.elapsed();
        match (ht, sender.as_mut()) {
            (Some(h), _) => {
                post(
                    &h.guest,
                    format!("{}/api/v1/conversations/{}/messages", h.base, h.conversation),
                    Some(&h.guest_token),
                    json!({"body": format!("b{b}")}),
                )
                .await;
            }
            (None, Some(ws)) => ws.send(Message::text(json!({"b": b}).to_string())).await.unwrap(),
            (None, None) => unreachable!(),
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let done = (0..clients).all(|c| board.counts[c * BROADCASTS + b].load(Ordering::Relaxed) > 0);
            if done || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let last = (0..clients).map(|c| board.at[c * BROADCASTS + b].load(Ordering::Relaxed)).max().unwrap_or(0);
        if last > 0 {
            latencies.push((Duration::from_nanos(last).saturating_sub(sent)).as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(PAUSE).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let missed = board.counts.iter().filter(|c| c.load(Ordering::Relaxed) == 0).count();
    let duplicated = board.counts.iter().filter(|c| c.load(Ordering::Relaxed) > 1).count();
    for t in tasks {
        t.abort();
    }
    drop(sender);
    latencies.sort_by(|a, b| a.total_cmp(b));
    (percentile(&latencies, 0.5), percentile(&latencies, 0.95), missed, duplicated)
}

async fn chat(base_a: &str, base_b: &str, rate: u64, seconds: u64) {
    let http = reqwest::Client::new();
    let ht = hometrip_setup(base_a).await;
    // The host signs in on the second process too (each process signs its own tokens).
    let host_email = {
        let me: Value = http
            .get(format!("{base_a}/api/v1/users/me"))
            .bearer_auth(&ht.host_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        me["email"].as_str().unwrap().to_owned()
    };
    let login = post(
        &http,
        format!("{base_b}/api/v1/auth/login"),
        None,
        json!({"email": host_email, "password": "correct horse battery staple"}),
    )
    .await;
    let token_b = login["access_token"].as_str().unwrap().to_owned();
    let ws = connect(&format!("{}/ws", base_b.replacen("http", "ws", 1)), Some(&token_b)).await;
    let total = (rate * seconds) as usize;
    let origin = Instant::now();
    let sent_at: Arc<Vec<std::sync::atomic::AtomicU64>> =
        Arc::new((0..total).map(|_| std::sync::atomic::AtomicU64::new(0)).collect());
    let got_at: Arc<Vec<std::sync::atomic::AtomicU64>> =
        Arc::new((0..total).map(|_| std::sync::atomic::AtomicU64::new(0)).collect());
    let reader = {
        let got_at = Arc::clone(&got_at);
        tokio::spawn(async move {
            let (_, mut read) = ws.split();
            while let Some(Ok(frame)) = read.next().await {
                if let Message::Text(text) = frame {
                    if let Some(n) = broadcast_of("hometrip", &text) {
                        if n < total {
                            got_at[n].store(origin.elapsed().as_nanos() as u64, Ordering::Relaxed);
                        }
                    }
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    let mut posts = Vec::new();
    for n in 0..total {
        tick.tick().await;
        let (http, sent_at) = (ht.guest.clone(), Arc::clone(&sent_at));
        let (url, token) =
            (format!("{}/api/v1/conversations/{}/messages", ht.base, ht.conversation), ht.guest_token.clone());
        posts.push(tokio::spawn(async move {
            sent_at[n].store(origin.elapsed().as_nanos() as u64, Ordering::Relaxed);
            post(&http, url, Some(&token), json!({"body": format!("b{n}")})).await;
        }));
    }
    for p in posts {
        p.await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    reader.abort();
    let mut latencies: Vec<f64> = (0..total)
        .filter_map(|n| {
            let (s, g) = (sent_at[n].load(Ordering::Relaxed), got_at[n].load(Ordering::Relaxed));
            (g > 0).then(|| g.saturating_sub(s) as f64 / 1e6)
        })
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    println!("chat\trate_per_s\tmessages\tdelivered\tp50_ms\tp99_ms\tmax_ms");
    println!(
        "chat\t{rate}\t{total}\t{}\t{:.1}\t{:.1}\t{:.1}",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if let [mode, a, b, rate, seconds] = args.as_slice() {
        if mode == "chat" {
            chat(a, b, rate.parse().unwrap(), seconds.parse().unwrap()).await;
            return;
        }
    }
    let (target, url, steps) = match args.as_slice() {
        [t, u, s, ..] => (t.clone(), u.clone(), s.clone()),
        _ => {
            eprintln!("usage: ws_fanout echo|hometrip <url> <clients,clients,...>");
            std::process::exit(2);
        }
    };
    let ht = if target == "hometrip" { Some(hometrip_setup(&url).await) } else { None };
    println!("target\tclients\tp50_ms\tp95_ms\tmissed\tduplicated\tpass");
    for clients in steps.split(',').filter_map(|s| s.trim().parse::<usize>().ok()) {
        let (p50, p95, missed, duplicated) = step(&target, &url, ht.as_ref(), clients).await;
        let pass = p95 < 500.0 && missed == 0 && duplicated == 0;
        println!("{target}\t{clients}\t{p50:.1}\t{p95:.1}\t{missed}\t{duplicated}\t{pass}");
        if !pass {
            break;
        }
    }
}
