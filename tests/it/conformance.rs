//! One conformance suite per module trait, run against the in-process service
//! and against the HTTP client talking to a served instance over loopback.
//! Both must behave the same.

use std::sync::Arc;

use hometrip_auth::api::{Accounts, AuthSettings};
use hometrip_auth::client::AccountsClient;
use hometrip_auth::service::{AuthDeps, AuthService};
use hometrip_kernel::cache::MemoryCache;
use hometrip_kernel::db::Db;
use hometrip_kernel::events::{EventBus, RetryPolicy};
use hometrip_kernel::files::FileStore;
use hometrip_kernel::{ErrorCode, Id};
use hometrip_listing::api::{ListingSettings, Listings, Rate};
use hometrip_listing::client::ListingsClient;
use hometrip_listing::domain::TermsPatch;
use hometrip_listing::service::{ListingService, Viewer};
use hometrip_user::api::{UserSettings, Users};
use hometrip_user::client::UsersClient;
use hometrip_user::service::UserService;

use crate::support::*;

async fn accounts_suite(accounts: Arc<dyn Accounts>, id: Id, email: &str) {
    let found = accounts.account(id).await.unwrap().expect("the account exists");
    assert_eq!(found.id, id);
    assert_eq!(found.email, email);
    assert!(!found.email_verified);
    assert!(found.roles.is_empty());
    assert!(accounts.account(Id::new()).await.unwrap().is_none());
    assert_eq!(accounts.account_by_email(&email.to_uppercase()).await.unwrap().map(|a| a.id), Some(id));
    assert!(accounts.account_by_email("nobody@example.com").await.unwrap().is_none());
    assert!(accounts.account_by_email("not an email").await.unwrap().is_none());
    let jwks = accounts.jwks().await.unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].kty, "OKP");
    let promoted = accounts.set_role(id, "admin", true).await.unwrap();
    assert_eq!(promoted.roles, vec!["admin".to_owned()]);
    let demoted = accounts.set_role(id, "admin", false).await.unwrap();
    assert!(demoted.roles.is_empty());
    let bad = accounts.set_role(id, "superuser", true).await.unwrap_err();
    assert_eq!(bad.code, ErrorCode::ValidationFailed);
    assert_eq!(bad.status, 422);
    let missing = accounts.set_role(Id::new(), "admin", true).await.unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);
}

async fn users_suite(users: Arc<dyn Users>, id: Id, email: &str) {
    let p = users.profile(id).await.unwrap().expect("profile created from the registration event");
    assert_eq!(p.id, id);
    assert_eq!(p.email, email);
    assert_eq!(p.display_name, "Conformance");
    assert_eq!(p.locale, "fr");
    assert_eq!(p.currency, "EUR");
    assert!(p.notification_channels.email);
    assert!(users.profile(Id::new()).await.unwrap().is_none());
}

/// `id` is a published listing at 120 EUR a night, 2 nights minimum, 4 guests.
async fn listings_suite(listings: Arc<dyn Listings>, id: Id) {
    let found = listings.listing(id).await.unwrap().expect("the listing exists");
    assert_eq!(found.id, id);
    assert_eq!(found.nightly_price.as_ref().map(|m| m.amount), Some(12_000));
    assert!(listings.listing(Id::new()).await.unwrap().is_none());
    let day = |n: i64| chrono::Utc::now().date_naive() + chrono::Duration::days(n);
    let q = listings.quote(id, day(10), day(12), 2, Rate::Standard).await.unwrap();
    assert_eq!(q.nights, 2);
    assert_eq!(q.nightly_subtotal.amount, 24_000);
    let cheap = listings.quote(id, day(10), day(12), 2, Rate::NonRefundable).await.unwrap();
    assert_eq!((cheap.rate, cheap.discounts.amount - q.discounts.amount), (Rate::NonRefundable, 2_400));
    let too_short = listings.quote(id, day(10), day(11), 2, Rate::Standard).await.unwrap_err();
    assert_eq!((too_short.status, too_short.code), (422, ErrorCode::ValidationFailed));
    let too_many = listings.quote(id, day(10), day(12), 9, Rate::Standard).await.unwrap_err();
    assert_eq!(too_many.status, 422);
    let missing = listings.quote(Id::new(), day(10), day(12), 2, Rate::Standard).await.unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);
    assert!(listings.taken_nights(id, day(0), day(30)).await.unwrap().is_empty());
    assert!(listings.taken_nights_of(&[id, Id::new()], day(0), day(30)).await.unwrap().is_empty());
    let page = listings.published(None, 10).await.unwrap();
    assert!(page.iter().any(|l| l.id == id));
    assert!(listings.published(Some(id), 10).await.unwrap().iter().all(|l| l.id > id));
    // By ids: the ones that exist, whatever their status; too many ids is a 422.
    let of = listings.listings_of(&[Id::new(), id]).await.unwrap();
    assert_eq!(of.iter().map(|l| l.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(of[0].nightly_price.as_ref().map(|m| m.amount), Some(12_000));
    let too_many: Vec<Id> = (0..1001).map(|_| Id::new()).collect();
    assert_eq!(listings.listings_of(&too_many).await.unwrap_err().status, 422);
}

fn listing_patch() -> TermsPatch {
    serde_json::from_value(listing_patch_json()).unwrap()
}

fn listing_patch_json() -> serde_json::Value {
    serde_json::json!({
        "title": "Conformance loft", "description": "A loft", "property_type": "loft",
        "address": {"line1": "1 rue", "city": "Lyon", "postal_code": "69001", "country": "FR"},
        "location": {"lat": 45.76, "lon": 4.83}, "max_guests": 4, "min_nights": 2,
        "nightly_price": {"amount": 12000, "currency": "EUR"}
    })
}

fn auth_settings() -> AuthSettings {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let config = config::Config::builder().add_source(config::File::from(path)).build().unwrap();
    config.get::<AuthSettings>("auth").unwrap()
}

struct InProcess {
    auth: Arc<AuthService>,
    users: Arc<UserService>,
    listings: Arc<ListingService>,
    bus: Arc<EventBus>,
    dir: std::path::PathBuf,
}

async fn in_process() -> InProcess {
    let dir = std::env::temp_dir().join(format!("hometrip-conf-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = match fresh_database().await {
        Some(pg) => pg,
        None => format!("sqlite://{}", dir.join("db.sqlite").display()),
    };
    let db = Db::connect(&url, 4, 1).await.unwrap();
    db.migrate(
        &url,
        vec![
            hometrip_kernel::events::MIGRATIONS,
            hometrip_auth::store::MIGRATIONS,
            hometrip_user::store::MIGRATIONS,
            hometrip_listing::store::MIGRATIONS,
        ],
    )
    .await
    .unwrap();
    let bus = EventBus::new(db.clone(), RetryPolicy::default());
    let cache = MemoryCache::new();
    let auth = AuthService::new(AuthDeps {
        db: db.clone(),
        bus: bus.clone(),
        cache,
        settings: auth_settings(),
        data_dir: dir.clone(),
        event_sealer: hometrip_kernel::sealed::Sealer::from_credential("conformance"),
        clock: hometrip_kernel::time::Clock::system(),
    })
    .unwrap();
    let files = FileStore::local(&dir.join("files"), "/files").unwrap();
    let listing_settings = ListingSettings {
        service_fee_bps: 1400,
        occupancy_tax_bps: 500,
        non_refundable_discount_bps: 1000,
        photo_max_bytes: 1 << 22,
        max_photos: 10,
        ical_sync_interval_secs: 3600,
        ical_allow_private_hosts: true,
        ical_fetch_timeout_secs: 10,
        ical_sync_budget_secs: 300,
    };
    let feeds = hometrip_kernel::outbound::Outbound::new(
        &Default::default(),
        hometrip_listing::feeds::feed_purpose(&listing_settings),
    )
    .unwrap();
    let listings = ListingService::new(db.clone(), bus.clone(), files.clone(), listing_settings, feeds);
    let users = UserService::new(
        db,
        bus.clone(),
        files,
        auth.clone() as Arc<dyn Accounts>,
        UserSettings { avatar_max_bytes: 1 << 20, document_max_bytes: 1 << 20 },
    );
    users.subscribe().await;
    InProcess { auth, users, listings, bus, dir }
}

#[tokio::test]
async fn accounts_and_users_in_process() {
    let p = in_process().await;
    let email = unique_email("conf");
    let account = p.auth.register(&email, PASSWORD, "Conformance", "fr").await.unwrap();
    p.bus.relay_once(100).await.unwrap();
    accounts_suite(p.auth.clone(), account.id, &email).await;
    users_suite(p.users.clone(), account.id, &email).await;
    let host = Viewer { id: account.id, admin: false };
    let listing = p.listings.create(account.id, &listing_patch()).await.unwrap();
    p.listings.add_photos(listing.id, host, vec![png(64, 64)]).await.unwrap();
    p.listings.publish(listing.id, host).await.unwrap();
    listings_suite(p.listings.clone(), listing.id).await;
    let _ = std::fs::remove_dir_all(&p.dir);
}

#[tokio::test]
async fn accounts_and_users_over_http() {
    let server = Server::start().await;
    let api = server.client();
    let email = unique_email("conf");
    let r = api
        .send(
            api.http
                .post(server.url("/api/v1/auth/register"))
                .header("accept-language", "fr-FR,fr;q=0.9")
                .json(&serde_json::json!({"email": email, "password": PASSWORD, "display_name": "Conformance"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id: Id = r.body["user"]["id"].as_str().unwrap().parse().unwrap();
    server.wait_email(&email, "Confirmez").await;
    let remote = |module: &str| server.remote(module);
    accounts_suite(Arc::new(AccountsClient::new(remote("auth"))), id, &email).await;
    users_suite(Arc::new(UsersClient::new(remote("user"))), id, &email).await;
    let login = api.login(&email, PASSWORD).await;
    let host = api.with_token(login.body["access_token"].as_str().unwrap());
    let created = host.post("/api/v1/listings", serde_json::to_value(listing_patch_json()).unwrap()).await;
    let listing_id = created.body["id"].as_str().unwrap().to_owned();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(png(64, 64)).file_name("p.png").mime_str("image/png").unwrap());
    let up =
        host.send(host.http.post(server.url(&format!("/api/v1/listings/{listing_id}/photos"))).multipart(form)).await;
    assert_eq!(up.status, 201, "{}", up.text);
    assert_eq!(host.post(&format!("/api/v1/listings/{listing_id}/publish"), serde_json::json!({})).await.status, 200);
    listings_suite(Arc::new(ListingsClient::new(remote("listing"))), listing_id.parse().unwrap()).await;

    // Internal routes need the service credential.
    let bad = server.remote_as("auth", "wrong");
    let err = AccountsClient::new(bad).account(id).await.unwrap_err();
    assert_eq!(err.status, 401);
    // Through the gateway's public port internal routes do not exist at all.
    let through_public = api.get(&format!("/internal/auth/accounts/{id}")).await;
    if crate::shape::is_split() {
        assert_eq!(through_public.problem(404), "not_found");
    } else {
        assert_eq!(through_public.problem(401), "unauthenticated");
    }
}

/// The booking and payment traits over HTTP (their clients and internal
/// routes) agree with what the in-process services show on the public API.
#[tokio::test]
async fn bookings_and_payments_over_http() {
    use hometrip_booking::api::{BookingStatus, Bookings};
    use hometrip_booking::client::BookingsClient;
    use hometrip_payment::api::{Breakdown, PaymentStatus, Payments, RefundRequest};
    use hometrip_payment::client::PaymentsClient;

    let server = Server::start().await;
    let (host, _) = server.client().signed_up(&unique_email("confhost")).await;
    let (guest, _) = server.client().signed_up(&unique_email("confguest")).await;
    let mut body = listing_patch_json();
    body["instant_book"] = serde_json::json!(true);
    let created = host.post("/api/v1/listings", body).await;
    let listing_id = created.body["id"].as_str().unwrap().to_owned();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(png(64, 64)).file_name("p.png").mime_str("image/png").unwrap());
    host.send(host.http.post(server.url(&format!("/api/v1/listings/{listing_id}/photos"))).multipart(form)).await;
    assert_eq!(host.post(&format!("/api/v1/listings/{listing_id}/publish"), serde_json::json!({})).await.status, 200);
    let day = |n: i64| (chrono::Utc::now().date_naive() + chrono::Duration::days(n)).to_string();
    let b = guest
        .post(
            "/api/v1/bookings",
            serde_json::json!({"listing_id": listing_id, "check_in": day(20), "check_out": day(23), "guests": 2}),
        )
        .await;
    assert_eq!(b.status, 201, "{}", b.text);
    let id: Id = b.body["id"].as_str().unwrap().parse().unwrap();
    let paid = guest
        .post(&format!("/api/v1/bookings/{id}/payment"), serde_json::json!({"payment_method": "pm_card_visa"}))
        .await;
    assert_eq!(paid.body["booking_status"], "confirmed", "{}", paid.text);

    let remote = |module: &str| server.remote(module);
    let bookings = BookingsClient::new(remote("booking"));
    let payments = PaymentsClient::new(remote("payment"));
    let seen = bookings.booking(id).await.unwrap().expect("the booking exists");
    assert_eq!((seen.id, seen.status, seen.nights), (id, BookingStatus::Confirmed, 3));
    assert_eq!(seen.price.total.amount, b.body["price"]["total"]["amount"].as_i64().unwrap());
    assert!(bookings.booking(Id::new()).await.unwrap().is_none());

    let payment = payments.payment_for(id).await.unwrap().expect("the booking has a payment");
    assert_eq!(payment.status, PaymentStatus::Succeeded);
    assert_eq!(payment.amount, seen.price.total);
    assert!(payments.payment_for(Id::new()).await.unwrap().is_none());
    // A partial refund through the client shows in the guest's ledger.
    let parts = Breakdown { accommodation: 1_000, ..Breakdown::default() };
    let refunded = payments
        .refund(RefundRequest { booking_id: id, parts, reason: "goodwill".into(), idempotency_key: "conf-1".into() })
        .await
        .unwrap();
    assert_eq!(refunded.refunded.amount, 1_000);
    let t = guest.get("/api/v1/payments/transactions").await;
    assert!(t.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["kind"] == "refund" && x["amount"]["amount"] == 1_000));
    // Problems pass through the client unchanged.
    let again = payments.capture(id).await.unwrap();
    assert_eq!(again.status, PaymentStatus::Succeeded, "capturing a captured payment answers it");
    let none = payments.capture(Id::new()).await.unwrap_err();
    assert_eq!((none.status, none.code), (409, ErrorCode::Conflict));
}
