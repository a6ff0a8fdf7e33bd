//! Assembly: builds the modules this process runs from the modules table
//! (`modules.rs`) and serves them behind the edge; in a process that runs
//! the gateway, every public path of a module running elsewhere is proxied to
//! it. Whether a module trait is local or remote is decided here, once.

use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use hometrip_gateway::{EdgeSettings, Ops, Proxy, RouteTable};
use hometrip_kernel::api_keys::{ApiKeyVerifier, KeyAuthority};
use hometrip_kernel::auth_context::AccessVerifier;
use hometrip_kernel::cache::{Cache, MemoryCache, RateLimiter, RedisCache};
use hometrip_kernel::db::{Db, MigrationSet};
use hometrip_kernel::events::{EventBus, RetryPolicy};
use hometrip_kernel::files::FileStore;
use hometrip_kernel::http::{PublicUrl, ServiceToken, TrustedProxies};
use hometrip_kernel::jobs::{Scheduler, SchedulerSettings};
use hometrip_kernel::time::Clock;
use utoipa::OpenApi;

use crate::modules::{self, Module};
use crate::settings::Settings;
use crate::wiring::{Mount, Wiring};

/// The migrations of the kernel and of the modules this process runs, in
/// table order: each database holds only its own modules' tables.
pub fn migrations(local: &[&Module]) -> Vec<MigrationSet> {
    let mut sets = vec![hometrip_kernel::events::MIGRATIONS];
    sets.extend(local.iter().filter_map(|m| m.migrations));
    sets
}

pub async fn connect_db(settings: &Settings) -> Result<Db, String> {
    let url = settings.database_url();
    // The HTTP workers and the background runtime each use their own connections.
    Db::connect(&url, settings.database.max_connections, settings.server.worker_count() + 1)
        .await
        .map_err(|e| format!("database.url ({}): {e}", hometrip_kernel::db::redact_url(&url)))
}

pub async fn migrate(settings: &Settings, db: &Db) -> Result<usize, String> {
    let local = modules::select(&settings.modules)?;
    db.migrate(&settings.database_url(), migrations(&local)).await.map_err(|e| e.to_string())
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

fn service_tls(settings: &Settings) -> Result<Option<Arc<hometrip_kernel::tls::ServiceTls>>, String> {
    let t = &settings.services.tls;
    if !t.is_set() {
        return Ok(None);
    }
    let path = |s: &str| std::path::PathBuf::from(s);
    hometrip_kernel::tls::ServiceTls::load(&path(&t.ca_file), &path(&t.cert_file), &path(&t.key_file)).map(Some)
}

/// The modules of one process, built and wired.
pub struct Platform {
    pub wiring: Wiring,
    pub modules: Vec<&'static Module>,
    pub mounts: Vec<Mount>,
    pub verifier: Arc<AccessVerifier>,
    /// API keys' checks at this process's edge (where auth can be reached).
    pub keys: Option<Arc<ApiKeyVerifier>>,
    /// Serves pages (the gateway's, or the console on the admin process's
    /// port): they read the session with the verifier, so this process is
    /// not ready before auth's keys are loaded.
    pub serves_pages: bool,
}

impl Platform {
    pub async fn build(settings: &Settings) -> Result<Platform, String> {
        let modules = modules::select(&settings.modules)?;
        std::fs::create_dir_all(&settings.data_dir)
            .map_err(|e| format!("data_dir ({}): {e}", settings.data_dir.display()))?;
        let db = connect_db(settings).await?;
        if settings.database.migrate_on_start {
            let applied =
                db.migrate(&settings.database_url(), migrations(&modules)).await.map_err(|e| e.to_string())?;
            tracing::info!(applied, "migrations applied");
        }
        let cache = connect_cache(settings).await?;
        let bus = EventBus::new(db.clone(), RetryPolicy::default());
        if !settings.amqp.url.is_empty() {
            let queues = hometrip_kernel::broker::QueueSettings {
                kind: settings.amqp.queue_type.clone(),
                expires_secs: settings.amqp.queue_expires_secs,
            };
            bus.set_broker(hometrip_kernel::broker::Broker::new(&settings.amqp.url, &settings.amqp.namespace, queues));
        }
        let files = FileStore::local(&settings.data_dir.join("files"), "/files")?;
        let jobs = Scheduler::new(
            db.clone(),
            Clock::system(),
            SchedulerSettings {
                poll: Duration::from_millis(settings.jobs.poll_ms),
                lease: Duration::from_secs(settings.jobs.lease_secs),
                ..SchedulerSettings::default()
            },
        );
        let local = modules.iter().map(|m| m.name).collect();
        let mut wiring = Wiring::new(
            Arc::new(settings.clone()),
            db,
            Arc::clone(&cache),
            bus,
            files,
            jobs,
            service_token(settings)?,
            local,
            service_tls(settings)?,
        )?;
        let mut mounts = Vec::new();
        for module in &modules {
            if let Some(start) = module.start {
                mounts.push(start(&mut wiring).await?);
            }
        }
        // The gateway fronts every module, those without public routes too
        // (readiness, dead letters): those running elsewhere need their URLs.
        if wiring.local.contains("gateway") {
            for module in modules::MODULES.iter().filter(|m| m.exists) {
                if !wiring.local.contains(module.name) {
                    wiring.upstream(module)?;
                }
            }
        }
        let verifier = AccessVerifier::new(cache);
        // The web app's pages answer on the gateway's port, over the
        // modules' traits (local here, or clients of their replicas); the
        // admin console also on admin's own port when it runs apart.
        let mut serves_pages = false;
        if wiring.local.contains("gateway") {
            let web_app = web_app(&mut wiring, settings, &verifier)?;
            mounts.push(Mount::new(hometrip_web::routes(web_app)));
            serves_pages = true;
        } else if wiring.local.contains("admin") && wiring.tls.is_none() {
            // Under mutual TLS the modules take calls from the gateway and
            // their named callers only (admin calls none): the console is
            // the gateway's alone, and this process builds no clients for it.
            match web_app(&mut wiring, settings, &verifier) {
                Ok(web_app) => {
                    mounts.push(Mount::new(hometrip_web::console_routes(web_app)));
                    serves_pages = true;
                }
                // Without every module's address the console is the gateway's only.
                Err(e) => tracing::info!(reason = %e, "the admin console is not served on this port"),
            }
        }
        let can_verify = wiring.local.contains("auth")
            || wiring.settings.services.modules.get("auth").is_some_and(|a| !a.urls.is_empty());
        let mut keys = None;
        if can_verify {
            let accounts = wiring.require::<dyn hometrip_auth::api::Accounts>("auth")?;
            load_keys(accounts, Arc::clone(&verifier), wiring.local.contains("auth")).await?;
            let authority = wiring.require::<dyn KeyAuthority>("auth")?;
            keys = Some(ApiKeyVerifier::new(authority, Arc::clone(&wiring.cache), wiring.jobs.clock().clone()));
        }
        Ok(Platform { wiring, modules, mounts, verifier, keys, serves_pages })
    }

    pub fn runs(&self, module: &str) -> bool {
        self.wiring.local.contains(module)
    }

    /// The local service of `module` (CLI commands work on it).
    #[allow(dead_code)] // unused in a build without the CLI's modules
    pub fn local<T: Send + Sync + 'static>(&self, module: &str) -> Result<Arc<T>, String> {
        self.wiring.kept::<Arc<T>>().ok_or_else(|| {
            format!("this command needs the {module} module in this process (--modules / HOMETRIP_MODULES)")
        })
    }
}

/// The token verifier's public keys: from the local auth service at once, or
/// from auth's replicas, retried in the background until they answer (the
/// gateway can start before auth does; tokens fail until then).
async fn load_keys(
    accounts: Arc<dyn hometrip_auth::api::Accounts>,
    verifier: Arc<AccessVerifier>,
    local: bool,
) -> Result<(), String> {
    if local {
        let keys = accounts.jwks().await.map_err(|p| p.detail)?;
        return verifier.set_keys(&keys).await;
    }
    tokio::spawn(async move {
        let mut wait = Duration::from_millis(200);
        loop {
            match accounts.jwks().await {
                Ok(keys) => match verifier.set_keys(&keys).await {
                    Ok(()) => {
                        tracing::info!("token keys loaded from the auth service");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "auth's token keys are unusable"),
                },
                Err(p) => tracing::warn!(error = %p.detail, "auth's token keys are not available yet"),
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    });
    Ok(())
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

trait ModifyDoc {
    fn modify_doc(&self, doc: &mut utoipa::openapi::OpenApi);
}

impl<T: utoipa::Modify> ModifyDoc for T {
    fn modify_doc(&self, doc: &mut utoipa::openapi::OpenApi) {
        self.modify(doc);
    }
}

/// The OpenAPI document of the modules this process runs.
pub fn openapi_document(local: &[&Module]) -> utoipa::openapi::OpenApi {
    let mut doc = RootApi::openapi();
    for module in local {
        if let Some(part) = module.openapi {
            doc.merge(part());
        }
    }
    BearerAuth.modify_doc(&mut doc);
    hometrip_gateway::scopes::document(&mut doc);
    hometrip_gateway::problems::document(&mut doc);
    doc
}

/// Keeps the gateway's OpenAPI document merged with the documents of the
/// modules behind it (each process serves its own modules' document).
fn spawn_openapi_merge(ops: web::Data<Ops>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let complete = ops.refresh_openapi().await;
            tokio::time::sleep(if complete { Duration::from_secs(60) } else { Duration::from_secs(2) }).await;
        }
    })
}

pub async fn serve(settings: Settings) -> Result<(), String> {
    let metrics = hometrip_gateway::install_metrics()?;
    let trusted =
        TrustedProxies::parse(&settings.server.trusted_proxies).map_err(|e| format!("server.trusted_proxies: {e}"))?;
    let mut platform = Platform::build(&settings).await?;
    let wiring = &platform.wiring;
    let mut tasks = Vec::new();
    for upstream in wiring.upstreams() {
        upstream.resolve().await;
        tasks.push(upstream.spawn_watch(wiring.http.clone()));
    }
    // Without the relay, events wait in the outbox for a process that has it.
    if settings.events.relay {
        tasks.push(wiring.bus.spawn_relay());
    }
    if let Some(broker) = wiring.bus.broker() {
        tasks.push(broker.spawn_keepalive());
        tasks.extend(broker.spawn_consumers(&wiring.bus).await);
    }
    for mount in &mut platform.mounts {
        for start in mount.serve.drain(..) {
            tasks.push(start());
        }
    }
    tasks.push(wiring.jobs.spawn());
    if let Some(keys) = &platform.keys {
        tasks.push(keys.spawn_flush(Duration::from_secs(settings.auth.api_keys.last_used_flush_secs.max(1))));
    }
    let wiring = &platform.wiring;
    let openapi = openapi_document(&platform.modules).to_json().map_err(|e| e.to_string())?;
    let public_files: Vec<String> =
        platform.mounts.iter().flat_map(|m| m.public_files.iter().map(|p| (*p).to_owned())).collect();
    let ops = web::Data::new(Ops {
        db: wiring.db.clone(),
        cache: Arc::clone(&wiring.cache),
        bus: Arc::clone(&wiring.bus),
        files: wiring.files.clone(),
        metrics,
        openapi: std::sync::RwLock::new(openapi.clone()),
        local_openapi: openapi,
        openapi_complete: std::sync::atomic::AtomicBool::new(wiring.upstreams().is_empty()),
        http: wiring.http.clone(),
        service_token: wiring.service_token.clone(),
        upstreams: wiring.upstreams(),
        broker: wiring.bus.broker().cloned(),
        token_keys: platform.serves_pages.then(|| Arc::clone(&platform.verifier)),
        public_file_prefixes: public_files.clone(),
        metrics_public: settings.server.metrics_public,
        metrics_token: settings.server.metrics_token.clone(),
    });
    let proxy = if platform.runs("gateway") && !wiring.upstreams().is_empty() {
        let routes = RouteTable::new(modules::MODULES.iter().flat_map(|m| m.routes.iter().map(move |r| (*r, m.name))));
        Some(web::Data::new(Proxy {
            routes,
            upstreams: wiring.upstreams().into_iter().map(|u| (u.module.clone(), u)).collect(),
            http: hometrip_gateway::proxy::upstream_client(wiring.tls.as_deref())?,
            service_token: wiring.service_token.clone(),
            trusted_proxies: trusted.clone(),
            timeout: Duration::from_secs(60),
        }))
    } else {
        None
    };
    if proxy.is_some() {
        tasks.push(spawn_openapi_merge(ops.clone()));
    }
    let edge = web::Data::new(EdgeSettings {
        limiter: RateLimiter::new(Arc::clone(&wiring.cache)),
        per_ip: settings.server.rate_limit,
        per_account: settings.auth.rate_limit_per_account,
        per_api_key: settings.auth.api_keys.rate_limit,
        trusted_proxies: trusted.clone(),
        hsts: settings.server.public_url.starts_with("https://"),
    });
    let verifier = web::Data::from(Arc::clone(&platform.verifier));
    let keys = platform.keys.clone().map(web::Data::from);
    let jobs = web::Data::from(Arc::clone(&wiring.jobs));
    let audit = web::Data::new(hometrip_gateway::audit::AuditSink {
        bus: Arc::clone(&wiring.bus),
        clock: wiring.jobs.clock().clone(),
    });
    let clock_control = settings.testing.clock_control;
    if clock_control {
        tracing::warn!("testing.clock_control is on: the booking clock can be moved forward");
    }
    let token = web::Data::new(ServiceToken(wiring.service_token.clone()));
    let public_url = web::Data::new(PublicUrl(settings.server.public_url.clone()));
    let cors_origins = settings.server.cors_origins.clone();
    let roots: Vec<crate::wiring::Configure> = platform.mounts.iter().map(|m| Arc::clone(&m.root)).collect();
    let apis: Vec<fn(&mut web::ServiceConfig)> = platform.mounts.iter().filter_map(|m| m.api).collect();
    let serves_files = !public_files.is_empty();
    let port = settings.port(platform.modules.first().map(|m| m.port));
    let names: Vec<&str> = platform.modules.iter().map(|m| m.name).collect();
    // The gateway's own port is the public entry (TLS ends at the balancer
    // in front of it); every other process serves mutual TLS when set.
    let serve_tls = wiring.tls.clone().filter(|_| !platform.runs("gateway"));
    let mtls = serve_tls.is_some();
    let allowed = web::Data::new(crate::mtls::AllowedCallers(crate::mtls::allowed_callers(&platform.modules)));

    let server = HttpServer::new(move || {
        let mut cors = Cors::default()
            .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
            .allowed_headers(["authorization", "content-type", "idempotency-key", "x-request-id", "accept-language"])
            .expose_headers(["x-request-id", "retry-after"])
            .max_age(3600);
        for origin in &cors_origins {
            cors = if origin == "*" { cors.allow_any_origin() } else { cors.allowed_origin(origin) };
        }
        let apis = apis.clone();
        let mut app = App::new()
            .app_data(hometrip_kernel::http::json_config())
            .app_data(hometrip_kernel::http::query_config())
            .app_data(hometrip_kernel::http::path_config())
            .app_data(web::PayloadConfig::new(hometrip_kernel::http::JSON_LIMIT))
            .app_data(ops.clone())
            .app_data(edge.clone())
            .app_data(verifier.clone())
            .app_data(jobs.clone())
            .app_data(audit.clone())
            .app_data(token.clone())
            .app_data(public_url.clone())
            .app_data(allowed.clone())
            .configure(hometrip_gateway::ops_routes)
            .configure(|cfg| {
                if serves_files {
                    hometrip_gateway::file_routes(cfg);
                }
                for root in &roots {
                    root(cfg);
                }
                if clock_control {
                    cfg.service(
                        web::scope("/internal/testing")
                            .route("/clock", web::post().to(advance_clock))
                            .route("/jobs/run", web::post().to(run_jobs)),
                    );
                }
            })
            .service(web::scope("/api/v1").configure(move |cfg| {
                for api in &apis {
                    api(cfg);
                }
            }));
        if let Some(keys) = &keys {
            app = app.app_data(keys.clone());
        }
        app = match &proxy {
            Some(proxy) => app.app_data(proxy.clone()).default_service(web::to(hometrip_gateway::proxy::forward)),
            None => app.default_service(web::to(hometrip_gateway::middleware::not_found)),
        };
        app.wrap(actix_web::middleware::Condition::new(mtls, from_fn(crate::mtls::only_allowed_callers)))
            .wrap(hometrip_gateway::errors_as_problems())
            // Same-origin only when no origin is configured: no CORS work per request.
            .wrap(actix_web::middleware::Condition::new(!cors_origins.is_empty(), cors))
            // Inside the edge: it has verified the caller.
            .wrap(from_fn(hometrip_gateway::audit::record))
            .wrap(from_fn(hometrip_gateway::edge))
    })
    .workers(settings.server.worker_count())
    .shutdown_timeout(10);
    let address = (settings.server.host.as_str(), port);
    let server = match &serve_tls {
        // A module process behind the gateway: HTTPS, a client certificate required.
        Some(tls) => server.on_connect(keep_peer_certificate).bind_rustls_0_23(address, tls.server_config()?),
        None => server.bind(address),
    }
    .map_err(|e| format!("server.port ({}:{port}): {e}", settings.server.host))?;
    tracing::info!(host = %settings.server.host, port, modules = %names.join(","), "HomeTrip listening");
    let result = server.run().await.map_err(|e| e.to_string());
    // The last uses of API keys, not left for a flush that will not come.
    if let Some(keys) = &platform.keys {
        keys.flush().await;
    }
    for task in tasks {
        task.abort();
    }
    // Give in-flight relay work a moment; undelivered events stay in the outbox.
    tokio::time::sleep(Duration::from_millis(50)).await;
    result
}

/// Keeps the client certificate of a TLS connection for its requests.
fn keep_peer_certificate(conn: &dyn std::any::Any, ext: &mut actix_web::dev::Extensions) {
    use actix_tls::accept::rustls_0_23::TlsStream;
    if let Some(stream) = conn.downcast_ref::<TlsStream<actix_web::rt::net::TcpStream>>() {
        if let Some(cert) = stream.get_ref().1.peer_certificates().and_then(|c| c.first()) {
            ext.insert(hometrip_kernel::tls::PeerCertificate(cert.clone().into_owned()));
        }
    }
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
    // Due jobs the scheduler's own loop took first: their outcome is part
    // of the run the caller asked for (up to 10 s).
    for _ in 0..200 {
        if jobs.running().await.map_err(hometrip_kernel::Problem::from)? == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        ran += jobs.run_due(100).await.map_err(hometrip_kernel::Problem::from)?;
    }
    Ok(actix_web::HttpResponse::Ok().json(serde_json::json!({ "ran": ran })))
}

/// Dead letters of this process and of every module it reaches (the
/// gateway reaches them all; the admin process, every module but the gateway).
fn dead_letter_desk(wiring: &mut Wiring) -> Result<Arc<dyn hometrip_kernel::events::DeadLetterDesk>, String> {
    for module in modules::MODULES.iter().filter(|m| m.exists) {
        let configured = wiring.settings.services.modules.get(module.name).is_some_and(|s| !s.urls.is_empty());
        if !wiring.local.contains(module.name) && configured {
            wiring.upstream(module)?;
        }
    }
    Ok(hometrip_gateway::dead_letters::ParkedEvents::new(
        Arc::clone(&wiring.bus),
        wiring.http.clone(),
        wiring.service_token.clone(),
        wiring.upstreams(),
    ))
}

/// The web app over the modules' traits, as this process reaches them.
fn web_app(
    wiring: &mut Wiring,
    settings: &Settings,
    verifier: &Arc<AccessVerifier>,
) -> Result<Arc<hometrip_web::Web>, String> {
    Ok(hometrip_web::Web::new(hometrip_web::WebDeps {
        listings: wiring.require::<dyn hometrip_listing::api::Listings>("listing")?,
        host_listings: wiring.require::<dyn hometrip_listing::api::HostListings>("listing")?,
        figures: wiring.require::<dyn hometrip_analytics::api::HostFigures>("analytics")?,
        review_desk: wiring.require::<dyn hometrip_review::api::ReviewDesk>("review")?,
        moderation: wiring.require::<dyn hometrip_review::api::Moderation>("review")?,
        booking_admin: wiring.require::<dyn hometrip_booking::api::BookingAdmin>("booking")?,
        operator_figures: wiring.require::<dyn hometrip_analytics::api::OperatorFigures>("analytics")?,
        audit_log: wiring.require::<dyn hometrip_admin::api::AuditLog>("admin")?,
        user_admin: wiring.require::<dyn hometrip_user::api::UserAdmin>("user")?,
        account_admin: wiring.require::<dyn hometrip_auth::api::AccountAdmin>("auth")?,
        search: wiring.require::<dyn hometrip_search::api::Search>("search")?,
        reservations: wiring.require::<dyn hometrip_booking::api::Reservations>("booking")?,
        accounts: wiring.require::<dyn hometrip_auth::api::Accounts>("auth")?,
        sessions: wiring.require::<dyn hometrip_auth::api::Sessions>("auth")?,
        security: wiring.require::<dyn hometrip_auth::api::AccountSecurity>("auth")?,
        api_keys: wiring.require::<dyn hometrip_auth::api::ApiKeys>("auth")?,
        users: wiring.require::<dyn hometrip_user::api::Users>("user")?,
        profiles: wiring.require::<dyn hometrip_user::api::Profiles>("user")?,
        inbox: wiring.require::<dyn hometrip_message::api::Inbox>("message")?,
        notifications: wiring.require::<dyn hometrip_notification::api::NotificationCenter>("notification")?,
        notification_settings: wiring
            .require::<dyn hometrip_notification::api::NotificationPreferences>("notification")?,
        listing_moderation: wiring.require::<dyn hometrip_listing::api::ListingModeration>("listing")?,
        payouts: wiring.require::<dyn hometrip_payment::api::HostPayouts>("payment")?,
        // Last: every module it reads them from is wired by now.
        dead_letters: dead_letter_desk(wiring)?,
        verifier: Arc::clone(verifier),
        secret: wiring.service_token.clone(),
        public_url: settings.server.public_url.clone(),
        trusted_proxies: hometrip_kernel::http::TrustedProxies::parse(&settings.server.trusted_proxies)
            .map_err(|e| format!("server.trusted_proxies: {e}"))?,
        settings: settings.web.clone(),
        // Elements only where payments go to Stripe.
        stripe_publishable_key: match settings.payment.provider.as_str() {
            "stripe" => settings.payment.stripe.publishable_key.clone(),
            _ => String::new(),
        },
    }))
}
