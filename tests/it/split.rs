//! Faults of the split shape (`TEST_SHAPE=split`; the other shapes have no
//! processes to lose): a module down, a consumer down, the broker down, a
//! replica lost mid-read, and each database holding only its module's tables.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::shape::is_split;
use crate::support::*;

#[tokio::test]
async fn a_module_down_answers_503_at_once_and_its_return_needs_no_restart() {
    if !is_split() {
        return;
    }
    let server = Server::start_with(&[]).await;
    let split = server.split.clone().unwrap();
    let api = server.client();
    let missing = format!("/api/v1/listings/{}", uuid::Uuid::now_v7());
    assert_eq!(api.get(&missing).await.status, 404);
    split.kill("listing");
    for _ in 0..5 {
        let started = Instant::now();
        let r = api.get(&missing).await;
        assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
        assert_eq!(r.problem(503), "service_unavailable");
        assert!(r.headers.contains_key("retry-after"), "{:?}", r.headers);
    }
    // The other modules' paths keep answering.
    assert_eq!(api.get("/api/v1/auth/jwks.json").await.status, 200);
    let (guest, _) = api.signed_up(&unique_email("while-down")).await;
    assert_eq!(guest.get("/api/v1/users/me").await.status, 200);
    let ready = api.get("/health/ready").await;
    let listing = ready.body["upstreams"].as_array().unwrap().iter().find(|u| u["module"] == "listing").cloned();
    assert_eq!(listing.unwrap()["available"], false, "{}", ready.text);
    // Back: requests succeed again, nothing else restarted.
    split.launch("listing");
    let mut status = 0;
    for _ in 0..100 {
        status = api.get(&missing).await.status;
        if status == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 404, "listing never came back");
}

#[tokio::test]
async fn an_event_committed_while_its_consumer_is_down_is_delivered_once() {
    if !is_split() {
        return;
    }
    let server = Server::start_with(&[]).await;
    let split = server.split.clone().unwrap();
    split.kill("notification");
    let email = unique_email("while-notification-down");
    let r = server.client().register(&email, "Patient").await;
    assert_eq!(r.status, 201, "{}", r.text);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(server.emails().iter().all(|e| e.to != email));
    split.launch("notification");
    server.wait_email(&email, "").await;
    // Redeliveries, if any, are recognised: one email.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(server.emails().iter().filter(|e| e.to == email).count(), 1);
}

/// A TCP relay to RabbitMQ that can drop every connection and refuse new
/// ones: the broker "dies" for one platform only.
struct BrokerLink {
    port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl BrokerLink {
    async fn start(target: String) -> BrokerLink {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (up2, gen2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let (up3, gen3) = (up2.clone(), gen2.clone());
                tokio::spawn(async move {
                    let born = gen3.load(Ordering::SeqCst);
                    let Ok(mut broker) = tokio::net::TcpStream::connect(&target).await else { return };
                    let relay = tokio::io::copy_bidirectional(&mut client, &mut broker);
                    let cut = async {
                        while up3.load(Ordering::SeqCst) && gen3.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! { _ = relay => {}, _ = cut => {} }
                });
            }
        });
        BrokerLink { port, up, generation }
    }

    fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_broker_outage_mid_stream_loses_no_event_and_applies_none_twice() {
    if !is_split() {
        return;
    }
    let amqp = url::Url::parse(&std::env::var("TEST_AMQP_URL").unwrap()).unwrap();
    let link = BrokerLink::start(format!("{}:{}", amqp.host_str().unwrap(), amqp.port().unwrap_or(5672))).await;
    let mut through = amqp.clone();
    through.set_host(Some("127.0.0.1")).unwrap();
    through.set_port(Some(link.port)).unwrap();
    // Quorum queues, as deployed (the other test platforms use classic ones).
    let server =
        Server::start_with(&[("HOMETRIP_AMQP__URL", through.as_str()), ("HOMETRIP_AMQP__QUEUE_TYPE", "quorum")]).await;
    let api = server.client();
    let emails: Vec<String> = (0..12).map(|i| unique_email(&format!("outage{i}"))).collect();
    for (i, email) in emails.iter().enumerate() {
        if i == 4 {
            link.down();
        }
        if i == 8 {
            // Readiness names the broker while it is away (degraded: the
            // process still serves, its events wait in the outbox).
            let mut named = false;
            for _ in 0..150 {
                let r = api.get("/health/ready").await;
                if r.status == 200 && r.body["degraded"].as_array().is_some_and(|d| d.contains(&json!("rabbitmq"))) {
                    named = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(named, "readiness never named the broker: {}", api.get("/health/ready").await.text);
            link.up();
        }
        let r = api.register(email, "Outage").await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    for email in &emails {
        server.wait_email(email, "").await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for email in &emails {
        assert_eq!(server.emails().iter().filter(|e| &e.to == email).count(), 1, "{email}");
        // The profile (the user module's projection of the registration) exists once.
        let l = api.login(email, PASSWORD).await;
        let me = api.with_token(l.body["access_token"].as_str().unwrap());
        eventually(&me, "/api/v1/users/me", |b| b["email"] == json!(email)).await;
    }
}

#[tokio::test]
async fn losing_a_booking_replica_during_reads_costs_clients_no_5xx() {
    if !is_split() {
        return;
    }
    let server = Server::start_with(&[]).await;
    let split = server.split.clone().unwrap();
    let (guest, _) = server.client().signed_up(&unique_email("reader")).await;
    let mut statuses = Vec::new();
    for round in 0..120 {
        if round == 40 {
            split.kill("booking-2");
        }
        let batch = (0..4).map(|_| guest.get("/api/v1/bookings?role=guest"));
        statuses.extend(futures_util::future::join_all(batch).await.into_iter().map(|r| (round, r.status, r.text)));
    }
    let failed: Vec<_> = statuses.iter().filter(|(_, status, _)| *status != 200).collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", split.logs());
}

#[tokio::test]
async fn each_database_holds_only_its_modules_tables() {
    if !is_split() {
        return;
    }
    let server = Server::start().await;
    let kernel = ["__diesel_schema_migrations", "dead_letters", "inbox", "jobs", "outbox_events"];
    let owned: &[(&str, &[&str])] = &[
        ("auth", &["accounts", "refresh_tokens", "email_tokens", "recovery_codes", "oauth_identities", "api_keys"]),
        ("user", &["profiles"]),
        (
            "listing",
            &[
                "listings",
                "listing_photos",
                "calendar_nights",
                "night_prices",
                "calendar_imports",
                "listing_guest_access",
            ],
        ),
        ("booking", &["bookings", "booking_nights", "booking_listing_locks", "booking_idempotency"]),
        (
            "payment",
            &[
                "payments",
                "payouts",
                "ledger_transactions",
                "ledger_entries",
                "webhook_events",
                "host_accounts",
                "sim_intents",
                "sim_refunds",
            ],
        ),
        (
            "notification",
            &[
                "notifications",
                "notification_preferences",
                "phone_numbers",
                "push_subscriptions",
                "message_digests",
                "sms_messages",
            ],
        ),
        (
            "message",
            &[
                "conversations",
                "messages",
                "message_attachments",
                "contact_unlocks",
                "conversation_admin_reads",
                "quick_replies",
                "scheduled_messages",
            ],
        ),
        ("review", &["review_stays", "reviews", "review_flags", "review_appeals", "listing_ratings", "review_market"]),
        ("admin", &["audit_log", "audit_head", "audit_verifications"]),
        (
            "analytics",
            &[
                "analytics_events",
                "analytics_salts",
                "analytics_visitors",
                "analytics_session_steps",
                "platform_daily",
                "platform_monthly",
                "listing_daily",
                "host_daily",
                "analytics_listings",
                "analytics_blocked",
                "analytics_bookings",
                "analytics_applied",
            ],
        ),
        ("realtime", &["presence_last_seen"]),
        ("search", &[]),
        ("gateway", &[]),
    ];
    for (module, tables) in owned {
        let url = server.database_of(module).unwrap();
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let rows = client
            .query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename", &[])
            .await
            .unwrap();
        let mut have: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
        have.sort();
        let mut want: Vec<String> = kernel.iter().chain(tables.iter()).map(|t| (*t).to_owned()).collect();
        want.sort();
        assert_eq!(have, want, "the {module} database");
    }
}

#[tokio::test]
async fn mutual_tls_between_services_refuses_strangers_and_callers_the_table_does_not_name() {
    if !is_split() {
        return;
    }
    let server = Server::start_split_with_tls(&[]).await;
    let split = server.split.clone().unwrap();
    let certs = split.certs.clone().unwrap();
    let ca = certs.join("ca.pem");

    // The flows through the gateway cross every hop over mutual TLS: auth and
    // user (sign-up), listing and search, booking → listing and payment.
    let api = server.client();
    let (host, _) = api.signed_up(&unique_email("mtls-host")).await;
    let (guest, _) = api.signed_up(&unique_email("mtls-guest")).await;
    let listing = publish_listing(&server, &host, house("Maison chiffrée")).await;
    let id = book_and_pay(&guest, &listing, 40).await;
    eventually(&guest, "/api/v1/search/listings?q=chiffr%C3%A9e", |r| {
        r["items"].as_array().unwrap().iter().any(|i| i["id"] == listing.as_str())
    })
    .await;

    let booking_base = split.bases_of("booking").remove(0);
    assert!(booking_base.starts_with("https://"), "{booking_base}");
    let live = format!("{booking_base}/health/live");
    // No client certificate: the handshake fails.
    let anonymous = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let refused = anonymous.get(&live).send().await;
    assert!(refused.as_ref().is_err_and(|e| e.is_connect() || e.is_request()), "{refused:?}");
    // A certificate of another CA: refused at the handshake too.
    let other = split.dir.join("other-ca");
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_hometrip"))
        .args(["certs", "--modules", "gateway", "--hosts", "127.0.0.1", "--out"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let stranger = crate::shape::client_with(&ca, &other, "gateway");
    assert!(stranger.get(&live).send().await.is_err(), "another CA's certificate was accepted");
    // Plain HTTP to a TLS port: no answer.
    let plain = reqwest::get(live.replacen("https://", "http://", 1)).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // The platform's CA, but a module that never calls booking: health
    // answers, an internal route does not (403); the gateway's does.
    let internal = format!("{booking_base}/internal/booking/bookings/{id}");
    let search = crate::shape::client_with(&ca, &certs, "search");
    assert_eq!(search.get(&live).send().await.unwrap().status(), 200);
    let r = search.get(&internal).header("x-hometrip-service-token", &split.token).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let gateway = split.http();
    let r = gateway.get(&internal).header("x-hometrip-service-token", &split.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
