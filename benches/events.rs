//! Events over RabbitMQ between two processes, with the kernel's outbox,
//! relay (publisher confirms) and consumer (inbox, ack after commit):
//!
//! 1. latency from commit to the handler in the other process, at a
//!    sustained rate (one event per transaction, as a request writes them);
//! 2. the relay's sustained maximum: a backlog drained with confirms.
//!
//! `cargo bench --bench events` (needs BENCH_DATABASE_URL, a PostgreSQL
//! server URL, and BENCH_AMQP_URL; defaults are the local ones).
//! RATE (events/s, 1000) and SECONDS (10) tune the first part.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hometrip_kernel::broker::Broker;
use hometrip_kernel::db::Db;
use hometrip_kernel::events::{Envelope, EventBus, EventHandler, OutboxWrite, RetryPolicy};

const PING: &str = "bench.ping";

fn env(key: &str, default: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

async fn database(server: &str, name: &str) -> String {
    use hometrip_kernel::diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(server).await.unwrap();
    let _ = hometrip_kernel::diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}")).execute(&mut conn).await;
    hometrip_kernel::diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    let mut url = url::Url::parse(server).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

async fn bus(url: &str, amqp: &str, namespace: &str) -> Arc<EventBus> {
    let db = Db::connect(url, 8, 1).await.unwrap();
    db.migrate(url, vec![hometrip_kernel::events::MIGRATIONS]).await.unwrap();
    let bus = EventBus::new(db, RetryPolicy::default());
    let queues = hometrip_kernel::broker::QueueSettings { kind: "quorum".to_owned(), expires_secs: 120 };
    bus.set_broker(Broker::new(amqp, namespace, queues));
    bus
}

struct Sink {
    latencies_us: Mutex<Vec<i64>>,
}

#[async_trait::async_trait]
impl EventHandler for Sink {
    async fn handle(&self, event: &Envelope) -> Result<(), String> {
        let us = (chrono::Utc::now() - event.occurred_at.0).num_microseconds().unwrap_or(i64::MAX);
        self.latencies_us.lock().unwrap().push(us);
        Ok(())
    }
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// The consuming process: counts events and prints latencies when `expect` arrived.
async fn consume(url: String, amqp: String, namespace: String, expect: usize) {
    let bus = bus(&url, &amqp, &namespace).await;
    let sink = Arc::new(Sink { latencies_us: Mutex::new(Vec::new()) });
    bus.subscribe("bench.sink", &[PING], Arc::clone(&sink) as Arc<dyn EventHandler>).await;
    let broker = Arc::clone(bus.broker().unwrap());
    let _tasks = broker.spawn_consumers(&bus).await;
    println!("ready");
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut all = sink.latencies_us.lock().unwrap().clone();
        if all.len() >= expect {
            all.sort();
            println!(
                "{} {:.2} {:.2} {:.2}",
                all.len(),
                percentile(&all, 0.5),
                percentile(&all, 0.99),
                percentile(&all, 1.0)
            );
            return;
        }
    }
}

async fn publish_one(bus: &EventBus, n: usize) {
    let event = Envelope::new("bench", PING, &serde_json::json!({ "n": n })).unwrap();
    let db = bus.db();
    let r: Result<(), hometrip_kernel::db::DbError> = hometrip_kernel::transaction!(db, |conn| {
        conn.append_event(&event).await?;
        Ok::<_, hometrip_kernel::db::DbError>(())
    });
    r.unwrap();
    bus.poke();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if args.get(1).map(String::as_str) == Some("consume") {
        let expect = args[5].parse().unwrap();
        rt.block_on(consume(args[2].clone(), args[3].clone(), args[4].clone(), expect));
        return;
    }
    if args.iter().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` lists benches; nothing to run here.
    }
    let server = env("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres");
    let amqp = env("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f");
    let rate: usize = env("RATE", "1000").parse().unwrap();
    let seconds: usize = env("SECONDS", "10").parse().unwrap();
    rt.block_on(async move {
        let namespace = format!("bench-{}", hometrip_kernel::Id::new());
        let publisher_db = database(&server, "ht_bench_events_pub").await;
        let consumer_db = database(&server, "ht_bench_events_sub").await;
        let publisher = bus(&publisher_db, &amqp, &namespace).await;
        let _relay = publisher.spawn_relay();

        // 1. Sustained rate, measured in the other process.
        let total = rate * seconds;
        let run = |expect: usize| {
            std::process::Command::new(&args[0])
                .args(["consume", &consumer_db, &amqp, &namespace, &expect.to_string()])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let child = run(total);
        // The consumer declares its queue before the first event is published.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let started = std::time::Instant::now();
        let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate as u64));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for n in 0..total {
            ticker.tick().await;
            publish_one(&publisher, n).await;
        }
        let offered = total as f64 / started.elapsed().as_secs_f64();
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().unwrap_or_default().to_owned();
        let f: Vec<&str> = line.split_whitespace().collect();
        println!(
            "commit -> handler in another process: {} events at {offered:.0}/s offered: p50 {} ms, p99 {} ms, max {} ms",
            f.first().unwrap_or(&"?"),
            f.get(1).unwrap_or(&"?"),
            f.get(2).unwrap_or(&"?"),
            f.get(3).unwrap_or(&"?")
        );

        // 2. The relay's maximum: a backlog of 20,000 rows, drained with confirms.
        let backlog = 20_000;
        for chunk in 0..(backlog / 500) {
            let events: Vec<Envelope> = (0..500)
                .map(|i| Envelope::new("bench", "bench.unrouted", &serde_json::json!({ "n": chunk * 500 + i })).unwrap())
                .collect();
            let db = publisher.db();
            let r: Result<(), hometrip_kernel::db::DbError> = hometrip_kernel::transaction!(db, |conn| {
                conn.append_events(&events).await?;
                Ok::<_, hometrip_kernel::db::DbError>(())
            });
            r.unwrap();
        }
        let started = std::time::Instant::now();
        publisher.poke();
        loop {
            if publisher.backlog().await.unwrap() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        println!("relay with confirms: {backlog} events in {secs:.2} s = {:.0} events/s", backlog as f64 / secs);
    });
}
