//! Wiring: builds each module from the settings and mounts it on the gateway.
//! This is the one place that decides which implementation of a module trait
//! a process uses.

use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use hometrip_auth::api::Accounts;
use hometrip_auth::service::{AuthDeps, AuthService};
use hometrip_booking::api::Bookings;
use hometrip_booking::service::BookingService;
use hometrip_gateway::{EdgeSettings, Ops};
use hometrip_kernel::auth_context::AccessVerifier;
use hometrip_kernel::cache::{Cache, MemoryCache, RateLimiter, RedisCache};
use hometrip_kernel::db::{Db, MigrationSet};
use hometrip_kernel::events::{EventBus, RetryPolicy};
use hometrip_kernel::files::FileStore;
use hometrip_kernel::http::{PublicUrl, ServiceToken, TrustedProxies};
use hometrip_kernel::jobs::{Scheduler, SchedulerSettings};
use hometrip_kernel::outbound::Outbound;
use hometrip_kernel::time::Clock;
use hometrip_listing::api::Listings;
use hometrip_listing::service::ListingService;
use hometrip_notification::service::NotificationService;
use hometrip_payment::api::Payments;
use hometrip_payment::gateway::{EventSink, PaymentGateway, SimulatedGateway};
use hometrip_payment::service::PaymentService;
use hometrip_search::service::SearchService;
use hometrip_search::store::SearchIndex;
use hometrip_user::api::Users;
use hometrip_user::service::UserService;
use utoipa::OpenApi;

use crate::settings::Settings;

/// Every module's migrations, in dependency order.
pub fn migrations() -> Vec<MigrationSet> {
    vec![
        hometrip_kernel::events::MIGRATIONS,
        hometrip_auth::store::MIGRATIONS,
        hometrip_user::store::MIGRATIONS,
        hometrip_listing::store::MIGRATIONS,
        hometrip_booking::store::MIGRATIONS,
        hometrip_payment::store::MIGRATIONS,
    ]
}

pub async fn connect_db(settings: &Settings) -> Result<Db, String> {
    let url = settings.database_url();
    // The HTTP workers and the background runtime each use their own connections.
    Db::connect(&url, settings.database.max_connections, settings.server.worker_count() + 1)
        .await
        .map_err(|e| format!("database.url ({}): {e}", hometrip_kernel::db::redact_url(&url)))
}

pub async fn migrate(settings: &Settings, db: &Db) -> Result<usize, String> {
    db.migrate(&settings.database_url(), migrations()).await.map_err(|e| e.to_string())
}

async fn connect_cache(settings: &Settings) -> Result<Arc<dyn Cache>, String> {
    if settings.redis.url.is_empty() {
        return Ok(MemoryCache::new());
    }
    let cache = RedisCache::connect(&settings.redis.url, &settings.redis.key_prefix)
        .await
        .map_err(|e| format!("redis.url ({}): {e}", hometrip_kernel::db::redact_url(&settings.redis.url)))?;
    if let Err(e) = cache.ping().await {
        tracing::warn!(error = %e, "redis does not answer yet; /health/ready reports it");
    }
    Ok(cache)
}

fn service_token(settings: &Settings) -> Result<String, String> {
    if !settings.services.token.is_empty() {
        return Ok(settings.services.token.clone());
    }
    let path = settings.data_dir.join("keys/service.token");
    hometrip_kernel::files::read_or_create_secret(&path, || Ok(hex::encode(rand::random::<[u8; 32]>())))
        .map(|t| t.trim().to_owned())
}

/// The modules of one process, built and wired.
pub struct Platform {
    pub db: Db,
    pub cache: Arc<dyn Cache>,
    pub bus: Arc<EventBus>,
    pub files: FileStore,
    pub auth: Arc<AuthService>,
    pub users: Arc<UserService>,
    pub listings: Arc<ListingService>,
    pub jobs: Arc<Scheduler>,
    pub payments: Arc<PaymentService>,
    pub simulated: Option<Arc<SimulatedGateway>>,
    pub bookings: Arc<BookingService>,
    pub verifier: Arc<AccessVerifier>,
    pub service_token: String,
}

impl Platform {
    pub async fn build(settings: &Settings) -> Result<Platform, String> {
        std::fs::create_dir_all(&settings.data_dir)
            .map_err(|e| format!("data_dir ({}): {e}", settings.data_dir.display()))?;
        let db = connect_db(settings).await?;
        if settings.database.migrate_on_start {
            let applied = migrate(settings, &db).await?;
            tracing::info!(applied, "migrations applied");
        }
        if !settings.amqp.url.is_empty() {
            tracing::warn!("amqp.url is set, but this build dispatches events in process only");
        }
        let cache = connect_cache(settings).await?;
        let bus = EventBus::new(db.clone(), RetryPolicy::default());
        let files = FileStore::local(&settings.data_dir.join("files"), "/files")?;
        let service_token = service_token(settings)?;
        // Email tokens travel sealed in events under the deployment's credential.
        let event_sealer = hometrip_kernel::sealed::Sealer::from_credential(&service_token);
        let auth = AuthService::new(AuthDeps {
            db: db.clone(),
            bus: Arc::clone(&bus),
            cache: Arc::clone(&cache),
            settings: settings.auth.clone(),
            data_dir: settings.data_dir.clone(),
            event_sealer: event_sealer.clone(),
        })?;
        let accounts: Arc<dyn Accounts> = Arc::clone(&auth) as Arc<dyn Accounts>;
        let verifier = AccessVerifier::new(Arc::clone(&cache));
        verifier.set_keys(&auth.jwk_set()).await?;
        let users = UserService::new(db.clone(), Arc::clone(&bus), files.clone(), accounts, settings.user.clone());
        users.subscribe().await;
        let users_api: Arc<dyn Users> = Arc::clone(&users) as Arc<dyn Users>;
        let notifications = NotificationService::new(
            &settings.notification,
            &settings.data_dir,
            &settings.server.public_url,
            users_api,
            event_sealer,
        )?;
        notifications.subscribe(&bus).await;
        let feeds = Outbound::new(&settings.outbound, hometrip_listing::feeds::feed_purpose(&settings.listing))?;
        let listings =
            ListingService::new(db.clone(), Arc::clone(&bus), files.clone(), settings.listing.clone(), feeds);
        listings.subscribe().await;
        let jobs = Scheduler::new(
            db.clone(),
            Clock::system(),
            SchedulerSettings {
                poll: Duration::from_millis(settings.jobs.poll_ms),
                lease: Duration::from_secs(settings.jobs.lease_secs),
                ..SchedulerSettings::default()
            },
        );
        listings.register_jobs(&jobs).await.map_err(|p| format!("listing jobs: {}", p.detail))?;
        let (gateway, simulated): (Arc<dyn PaymentGateway>, Option<Arc<SimulatedGateway>>) =
            match settings.payment.provider.as_str() {
                "simulated" => {
                    let sim = SimulatedGateway::new(db.clone(), &settings.server.public_url);
                    (Arc::clone(&sim) as Arc<dyn PaymentGateway>, Some(sim))
                }
                _ => {
                    let stripe = hometrip_payment::stripe::StripeGateway::new(
                        &settings.payment.stripe,
                        &settings.server.public_url,
                    )?;
                    (Arc::new(stripe) as Arc<dyn PaymentGateway>, None)
                }
            };
        let payments =
            PaymentService::new(db.clone(), Arc::clone(&bus), Arc::clone(&jobs), gateway, settings.payment.clone());
        payments.register_jobs().await;
        if let Some(sim) = &simulated {
            sim.set_sink(Arc::clone(&payments) as Arc<dyn EventSink>);
        }
        let bookings = BookingService::new(
            db.clone(),
            Arc::clone(&bus),
            Arc::clone(&jobs),
            Arc::clone(&listings) as Arc<dyn Listings>,
            Arc::clone(&payments) as Arc<dyn Payments>,
            settings.booking.clone(),
        );
        bookings.subscribe().await.map_err(|p| format!("booking timers: {}", p.detail))?;
        Ok(Platform {
            db,
            cache,
            bus,
            files,
            auth,
            users,
            listings,
            jobs,
            payments,
            simulated,
            bookings,
            verifier,
            service_token,
        })
    }
}

/// The search index lives in one process: the one serving search (it holds
/// the index's writer lock).
pub async fn search_service(settings: &Settings, platform: &Platform) -> Result<Arc<SearchService>, String> {
    let dir = settings.data_dir.join("search").join("index");
    let heap = settings.search.writer_heap_bytes;
    let index = tokio::task::spawn_blocking(move || SearchIndex::open(&dir, heap))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{e} (is another hometrip process using the data dir?)"))?;
    let listings: Arc<dyn Listings> = Arc::clone(&platform.listings) as Arc<dyn Listings>;
    let search = SearchService::new(Arc::new(index), listings);
    search.subscribe(&platform.bus).await;
    Ok(search)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "HomeTrip API", description = "Vacation-rental marketplace: the public HTTP contract."),
    modifiers(&BearerAuth)
)]
struct RootApi;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = RootApi::openapi();
    doc.merge(hometrip_auth::http::AuthApi::openapi());
    doc.merge(hometrip_user::http::UserApi::openapi());
    doc.merge(hometrip_listing::http::ListingApi::openapi());
    doc.merge(hometrip_search::http::SearchApi::openapi());
    doc.merge(hometrip_booking::http::BookingApi::openapi());
    doc.merge(hometrip_payment::http::PaymentApi::openapi());
    BearerAuth.modify_doc(&mut doc);
    doc
}

trait ModifyDoc {
    fn modify_doc(&self, doc: &mut utoipa::openapi::OpenApi);
}

impl<T: utoipa::Modify> ModifyDoc for T {
    fn modify_doc(&self, doc: &mut utoipa::openapi::OpenApi) {
        self.modify(doc);
    }
}

pub async fn serve(settings: Settings) -> Result<(), String> {
    let metrics = hometrip_gateway::install_metrics()?;
    let trusted =
        TrustedProxies::parse(&settings.server.trusted_proxies).map_err(|e| format!("server.trusted_proxies: {e}"))?;
    let platform = Platform::build(&settings).await?;
    let search = search_service(&settings, &platform).await?;
    // Without the relay, events wait in the outbox for a process that has it.
    let relay = settings.events.relay.then(|| platform.bus.spawn_relay());
    let committer = search.spawn_committer();
    if search.is_empty() {
        // A new or rebuilt index: fill it from the listings in the background.
        let search = Arc::clone(&search);
        tokio::spawn(async move {
            match search.reindex().await {
                Ok(n) => tracing::info!(listings = n, "search index built"),
                Err(e) => tracing::error!(error = %e.detail, "search index build failed"),
            }
        });
    }
    let scheduler = platform.jobs.spawn();
    let openapi = openapi_document().to_json().map_err(|e| e.to_string())?;

    let ops = web::Data::new(Ops {
        db: platform.db.clone(),
        cache: Arc::clone(&platform.cache),
        bus: Arc::clone(&platform.bus),
        files: platform.files.clone(),
        metrics,
        openapi,
        public_file_prefixes: vec!["avatars/".to_owned(), "photos/".to_owned()],
        metrics_public: settings.server.metrics_public,
        metrics_token: settings.server.metrics_token.clone(),
    });
    let edge = web::Data::new(EdgeSettings {
        limiter: RateLimiter::new(Arc::clone(&platform.cache)),
        per_ip: settings.server.rate_limit,
        per_account: settings.auth.rate_limit_per_account,
        trusted_proxies: trusted.clone(),
        hsts: settings.server.public_url.starts_with("https://"),
    });
    let auth_web = web::Data::new(hometrip_auth::http::AuthWeb {
        service: Arc::clone(&platform.auth),
        public_url: settings.server.public_url.clone(),
        trusted_proxies: trusted.clone(),
    });
    let verifier = web::Data::from(Arc::clone(&platform.verifier));
    let users = hometrip_user::http::data(&platform.users);
    let accounts_dyn: web::Data<dyn Accounts> = web::Data::from(Arc::clone(&platform.auth) as Arc<dyn Accounts>);
    let listings = hometrip_listing::http::data(&platform.listings);
    let search_data = web::Data::from(Arc::clone(&search));
    let listings_dyn: web::Data<dyn Listings> = web::Data::from(Arc::clone(&platform.listings) as Arc<dyn Listings>);
    let users_dyn: web::Data<dyn Users> = web::Data::from(Arc::clone(&platform.users) as Arc<dyn Users>);
    let bookings = hometrip_booking::http::data(&platform.bookings);
    let bookings_dyn: web::Data<dyn Bookings> = web::Data::from(Arc::clone(&platform.bookings) as Arc<dyn Bookings>);
    let payments = hometrip_payment::http::data(&platform.payments);
    let payments_dyn: web::Data<dyn Payments> = web::Data::from(Arc::clone(&platform.payments) as Arc<dyn Payments>);
    let simulated = platform.simulated.as_ref().map(|s| web::Data::from(Arc::clone(s)));
    let jobs = web::Data::from(Arc::clone(&platform.jobs));
    let clock_control = settings.testing.clock_control;
    if clock_control {
        tracing::warn!("testing.clock_control is on: the booking clock can be moved forward");
    }
    let token = web::Data::new(ServiceToken(platform.service_token.clone()));
    let public_url = web::Data::new(PublicUrl(settings.server.public_url.clone()));
    let cors_origins = settings.server.cors_origins.clone();

    let server = HttpServer::new(move || {
        let mut cors = Cors::default()
            .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
            .allowed_headers(["authorization", "content-type", "idempotency-key", "x-request-id", "accept-language"])
            .expose_headers(["x-request-id", "retry-after"])
            .max_age(3600);
        for origin in &cors_origins {
            cors = if origin == "*" { cors.allow_any_origin() } else { cors.allowed_origin(origin) };
        }
        App::new()
            .app_data(hometrip_kernel::http::json_config())
            .app_data(hometrip_kernel::http::query_config())
            .app_data(hometrip_kernel::http::path_config())
            .app_data(web::PayloadConfig::new(hometrip_kernel::http::JSON_LIMIT))
            .app_data(ops.clone())
            .app_data(edge.clone())
            .app_data(auth_web.clone())
            .app_data(verifier.clone())
            .app_data(users.clone())
            .app_data(accounts_dyn.clone())
            .app_data(users_dyn.clone())
            .app_data(listings.clone())
            .app_data(listings_dyn.clone())
            .app_data(search_data.clone())
            .app_data(bookings.clone())
            .app_data(bookings_dyn.clone())
            .app_data(payments.clone())
            .app_data(payments_dyn.clone())
            .app_data(jobs.clone())
            .configure(|cfg| {
                if let Some(sim) = &simulated {
                    cfg.app_data(sim.clone());
                }
            })
            .app_data(token.clone())
            .app_data(public_url.clone())
            .configure(hometrip_gateway::ops_routes)
            .configure(hometrip_auth::http::internal_routes)
            .configure(hometrip_user::http::internal_routes)
            .configure(hometrip_listing::http::internal_routes)
            .configure(hometrip_booking::http::internal_routes)
            .configure(hometrip_payment::http::internal_routes)
            .configure(|cfg| {
                if clock_control {
                    cfg.service(
                        web::scope("/internal/testing")
                            .route("/clock", web::post().to(advance_clock))
                            .route("/jobs/run", web::post().to(run_jobs)),
                    );
                }
            })
            .service(
                web::scope("/api/v1")
                    .configure(hometrip_auth::http::routes)
                    .configure(hometrip_user::http::routes)
                    .configure(hometrip_listing::http::routes)
                    .configure(hometrip_search::http::routes)
                    .configure(hometrip_booking::http::routes)
                    .configure(hometrip_payment::http::routes),
            )
            .default_service(web::to(hometrip_gateway::middleware::not_found))
            .wrap(hometrip_gateway::errors_as_problems())
            // Same-origin only when no origin is configured: no CORS work per request.
            .wrap(actix_web::middleware::Condition::new(!cors_origins.is_empty(), cors))
            .wrap(from_fn(hometrip_gateway::edge))
    })
    .workers(settings.server.worker_count())
    .shutdown_timeout(10)
    .bind((settings.server.host.as_str(), settings.server.port))
    .map_err(|e| format!("server.port ({}:{}): {e}", settings.server.host, settings.server.port))?;
    tracing::info!(host = %settings.server.host, port = settings.server.port, "HomeTrip listening");
    let result = server.run().await.map_err(|e| e.to_string());
    if let Some(relay) = relay {
        relay.abort();
    }
    scheduler.abort();
    committer.abort();
    // Give in-flight relay work a moment; undelivered events stay in the outbox.
    tokio::time::sleep(Duration::from_millis(50)).await;
    result
}

#[derive(serde::Deserialize)]
struct ClockAdvance {
    advance_seconds: i64,
}

/// Tests only (`testing.clock_control`): moves the booking and payment clock
/// forward and runs the timers that became due.
async fn advance_clock(
    _: hometrip_kernel::http::InternalCaller,
    jobs: web::Data<Scheduler>,
    body: web::Json<ClockAdvance>,
) -> Result<actix_web::HttpResponse, hometrip_kernel::Problem> {
    if body.advance_seconds < 0 {
        return Err(hometrip_kernel::Problem::field("advance_seconds", "the clock only moves forward"));
    }
    let offset = jobs.clock().advance(body.advance_seconds);
    jobs.poke();
    Ok(actix_web::HttpResponse::Ok().json(serde_json::json!({ "offset_seconds": offset, "now": jobs.clock().now() })))
}

/// Tests only: runs every due timer now, until none is left.
async fn run_jobs(
    _: hometrip_kernel::http::InternalCaller,
    jobs: web::Data<Scheduler>,
) -> Result<actix_web::HttpResponse, hometrip_kernel::Problem> {
    let mut ran = 0;
    for _ in 0..20 {
        match jobs.run_due(100).await.map_err(hometrip_kernel::Problem::from)? {
            0 => break,
            n => ran += n,
        }
    }
    Ok(actix_web::HttpResponse::Ok().json(serde_json::json!({ "ran": ran })))
}
