//! The modules table: the one place that knows every module. Each entry says
//! once what the module is (name, port in the split shape, the public paths
//! it serves, its migrations) and how to build it here (its local service:
//! subscriptions, jobs, routes) or reach it elsewhere (its client). The binary
//! assembles any subset from it; a module whose cargo feature is off has no
//! local constructor and is only ever a client.

use std::sync::Arc;

use actix_web::web;
use futures_util::future::LocalBoxFuture;
use hometrip_kernel::db::MigrationSet;
use hometrip_kernel::remote::RemoteClient;

use crate::wiring::{Mount, Wiring};

pub type Start = for<'a> fn(&'a mut Wiring) -> LocalBoxFuture<'a, Result<Mount, String>>;

pub struct Module {
    pub name: &'static str,
    /// Its port when it runs as a service of its own (the seed's).
    pub port: u16,
    /// The modules whose traits it calls: with mutual TLS a module process
    /// takes calls only from the gateway and from the modules that call it.
    pub calls: &'static [&'static str],
    /// Public path patterns it serves (`*` one segment, `**` the rest): the
    /// gateway's routing table.
    pub routes: &'static [&'static str],
    pub migrations: Option<MigrationSet>,
    /// Builds the local service; `None` when not compiled in (or not there yet).
    pub start: Option<Start>,
    /// Registers its trait's HTTP client (modules other modules call).
    pub remote: Option<fn(&mut Wiring, RemoteClient)>,
    /// Its part of the OpenAPI document.
    pub openapi: Option<fn() -> utoipa::openapi::OpenApi>,
    /// Whether this version of HomeTrip has it at all.
    pub exists: bool,
}

/// In dependency order: a module is started after the local modules it calls.
pub static MODULES: &[Module] = &[
    Module {
        name: "gateway",
        port: 3001,
        calls: &[],
        routes: &[],
        migrations: None,
        // The edge and the proxy are wired by the binary itself (`app::serve`).
        start: None,
        remote: None,
        openapi: None,
        exists: true,
    },
    Module {
        name: "admin",
        port: 3003,
        calls: &[],
        routes: &["/api/v1/admin/audit", "/api/v1/admin/audit/**"],
        #[cfg(feature = "admin")]
        migrations: Some(hometrip_admin::store::MIGRATIONS),
        #[cfg(not(feature = "admin"))]
        migrations: None,
        #[cfg(feature = "admin")]
        start: Some(local::admin),
        #[cfg(not(feature = "admin"))]
        start: None,
        remote: Some(|w, c| {
            w.provide::<dyn hometrip_admin::api::AuditLog>(Arc::new(hometrip_admin::client::AuditClient::new(c)))
        }),
        #[cfg(feature = "admin")]
        openapi: Some(<hometrip_admin::http::AdminApi as utoipa::OpenApi>::openapi),
        #[cfg(not(feature = "admin"))]
        openapi: None,
        exists: true,
    },
    Module {
        name: "auth",
        port: 4001,
        calls: &[],
        routes: &[
            "/api/v1/auth/**",
            "/api/v1/api-keys",
            "/api/v1/api-keys/**",
            "/api/v1/admin/api-keys/**",
            "/api/v1/admin/users/*/api-keys",
            "/api/v1/admin/users/*/roles",
            "/api/v1/admin/users/*/suspend",
            "/api/v1/admin/users/*/reinstate",
            "/api/v1/admin/users/*/impersonate",
        ],
        #[cfg(feature = "auth")]
        migrations: Some(hometrip_auth::store::MIGRATIONS),
        #[cfg(not(feature = "auth"))]
        migrations: None,
        #[cfg(feature = "auth")]
        start: Some(local::auth),
        #[cfg(not(feature = "auth"))]
        start: None,
        remote: Some(|w, c| {
            let security = Arc::new(hometrip_auth::client::AccountSecurityClient::new(c.clone()));
            w.provide::<dyn hometrip_auth::api::AccountAdmin>(Arc::clone(&security) as _);
            w.provide::<dyn hometrip_auth::api::AccountSecurity>(security);
            let keys = Arc::new(hometrip_auth::client::ApiKeysClient::new(c.clone()));
            w.provide::<dyn hometrip_auth::api::ApiKeys>(Arc::clone(&keys) as _);
            w.provide::<dyn hometrip_kernel::api_keys::KeyAuthority>(keys);
            let client = Arc::new(hometrip_auth::client::AccountsClient::new(c));
            w.provide::<dyn hometrip_auth::api::Accounts>(Arc::clone(&client) as Arc<dyn hometrip_auth::api::Accounts>);
            w.provide::<dyn hometrip_auth::api::Sessions>(client);
        }),
        #[cfg(feature = "auth")]
        openapi: Some(<hometrip_auth::http::AuthApi as utoipa::OpenApi>::openapi),
        #[cfg(not(feature = "auth"))]
        openapi: None,
        exists: true,
    },
    Module {
        name: "user",
        port: 4002,
        calls: &["auth"],
        routes: &["/api/v1/users/**", "/api/v1/admin/users/**", "/files/avatars/**"],
        #[cfg(feature = "user")]
        migrations: Some(hometrip_user::store::MIGRATIONS),
        #[cfg(not(feature = "user"))]
        migrations: None,
        #[cfg(feature = "user")]
        start: Some(local::user),
        #[cfg(not(feature = "user"))]
        start: None,
        remote: Some(|w, c| {
            let client = Arc::new(hometrip_user::client::UsersClient::new(c));
            w.provide::<dyn hometrip_user::api::Profiles>(Arc::clone(&client) as _);
            w.provide::<dyn hometrip_user::api::UserAdmin>(Arc::clone(&client) as _);
            w.provide::<dyn hometrip_user::api::Users>(client)
        }),
        #[cfg(feature = "user")]
        openapi: Some(<hometrip_user::http::UserApi as utoipa::OpenApi>::openapi),
        #[cfg(not(feature = "user"))]
        openapi: None,
        exists: true,
    },
    Module {
        name: "listing",
        port: 4003,
        calls: &[],
        routes: &["/api/v1/listings/**", "/api/v1/amenities", "/api/v1/admin/listings/**", "/files/photos/**"],
        #[cfg(feature = "listing")]
        migrations: Some(hometrip_listing::store::MIGRATIONS),
        #[cfg(not(feature = "listing"))]
        migrations: None,
        #[cfg(feature = "listing")]
        start: Some(local::listing),
        #[cfg(not(feature = "listing"))]
        start: None,
        remote: Some(|w, c| {
            let client = Arc::new(hometrip_listing::client::ListingsClient::new(c));
            w.provide::<dyn hometrip_listing::api::HostListings>(Arc::clone(&client) as _);
            w.provide::<dyn hometrip_listing::api::ListingModeration>(Arc::clone(&client) as _);
            w.provide::<dyn hometrip_listing::api::Listings>(client)
        }),
        #[cfg(feature = "listing")]
        openapi: Some(<hometrip_listing::http::ListingApi as utoipa::OpenApi>::openapi),
        #[cfg(not(feature = "listing"))]
        openapi: None,
        exists: true,
    },
    Module {
        name: "search",
        port: 4010,
        calls: &["listing"],
        routes: &["/api/v1/search/**", "/api/v1/listings/*/similar", "/api/v1/admin/search/**"],
        migrations: None,
        #[cfg(feature = "search")]
        start: Some(local::search),
        #[cfg(not(feature = "search"))]
        start: None,
        remote: Some(|w, c| {
            w.provide::<dyn hometrip_search::api::Search>(Arc::new(hometrip_search::client::SearchClient::new(c)))
        }),
        #[cfg(feature = "search")]
        openapi: Some(<hometrip_search::http::SearchApi as utoipa::OpenApi>::openapi),
        #[cfg(not(feature = "search"))]
        openapi: None,
        exists: true,
    },
    Module {
        name: "payment",
        port: 4005,
        calls: &[],
        routes: &["/api/v1/payments/**", "/api/v1/payouts/**"],
        #[cfg(feature = "payment")]
        migrations: Some(hometrip_payment::store::MIGRATIONS),
        #[cfg(not(feature = "payment"))]
        migrations: None,
        #[cfg(feature = "payment")]
        start: Some(local::payment),
        #[cfg(not(feature = "payment"))]
        start: None,
        remote: Some(|w, c| {
            let client = Arc::new(hometrip_payment::client::PaymentsClient::new(c));
            w.provide::<dyn hometrip_payment::api::HostPayouts>(Arc::clone(&client) as _);
            w.provide::<dyn hometrip_payment::api::Payments>(client)
        }),
        #[cfg(feature = "payment")]
        openapi: Some(<hometrip_payment::http::PaymentApi as utoipa::OpenApi>::openapi),
        #[cfg(not(feature = "payment"))]
        openapi: None,
        exists: true,
    },
    Module {
        name: "booking",
        port: 4004,
        calls: &["listing", "payment"],
        routes: &["/api/v1/bookings/**", "/api/v1/admin/bookings/**"],
        #[cfg(feature = "booking")]
        migrations: Some(hometrip_booking::store::MIGRATIONS),
        #[cfg(not(feature = "booking"))]
        migrations: None,
        #[cfg(feature = "booking")]
        start: Some(local::booking),
        #[cfg(not(feature = "booking"))]
        start: None,
        remote: Some(|w, c| {
            let client = Arc::new(hometrip_booking::client::BookingsClient::new(c));
            w.provide::<dyn hometrip_booking::api::Reservations>(Arc::clone(&client) as _);
            w.provide::<dyn hometrip_booking::api::BookingAdmin>(Arc::clone(&client) as _);
            w.provide::<dyn hometrip_booking::api::Bookings>(client)
        }),
        #[cfg(feature = "booking")]
        openapi: Some(<hometrip_booking::http::BookingApi as utoipa::OpenApi>::openapi),
        #[cfg(not(feature = "booking"))]
        openapi: None,
        exists: true,
    },
    Module {
        name: "message",
        port: 4006,
        calls: &["listing", "booking", "user"],
        routes: &[
            "/api/v1/conversations",
            "/api/v1/conversations/**",
            "/api/v1/quick-replies",
            "/api/v1/quick-replies/**",
            "/api/v1/admin/conversations/**",
        ],
        #[cfg(feature = "message")]
        migrations: Some(hometrip_message::store::MIGRATIONS),
        #[cfg(not(feature = "message"))]
        migrations: None,
        #[cfg(feature = "message")]
        start: Some(local::message),
        #[cfg(not(feature = "message"))]
        start: None,
        remote: Some(|w, c| {
            let client = Arc::new(hometrip_message::client::MessagesClient::new(c));
            w.provide::<dyn hometrip_message::api::Inbox>(Arc::clone(&client) as _);
            w.provide::<dyn hometrip_message::api::Messages>(client)
        }),
        #[cfg(feature = "message")]
        openapi: Some(<hometrip_message::http::MessageApi as utoipa::OpenApi>::openapi),
        #[cfg(not(feature = "message"))]
        openapi: None,
        exists: true,
    },
    Module {
        name: "notification",
        port: 4009,
        calls: &["user", "listing", "booking"],
        routes: &[
            "/api/v1/notifications",
            "/api/v1/notifications/**",
            "/api/v1/users/me/phone",
            "/api/v1/users/me/phone/verify",
            "/api/v1/admin/notifications/**",
        ],
        #[cfg(feature = "notification")]
        migrations: Some(hometrip_notification::store::MIGRATIONS),
        #[cfg(not(feature = "notification"))]
        migrations: None,
        #[cfg(feature = "notification")]
        start: Some(local::notification),
        #[cfg(not(feature = "notification"))]
        start: None,
        remote: Some(|w, c| {
            let client = Arc::new(hometrip_notification::client::NotificationsClient::new(c));
            w.provide::<dyn hometrip_notification::api::NotificationCenter>(Arc::clone(&client) as _);
            w.provide::<dyn hometrip_notification::api::NotificationPreferences>(Arc::clone(&client) as _);
            w.provide::<dyn hometrip_notification::api::Notifications>(client)
        }),
        #[cfg(feature = "notification")]
        openapi: Some(<hometrip_notification::http::NotificationApi as utoipa::OpenApi>::openapi),
        #[cfg(not(feature = "notification"))]
        openapi: None,
        exists: true,
    },
    Module {
        name: "realtime",
        port: 3002,
        calls: &["message", "listing", "notification"],
        routes: &["/ws"],
        #[cfg(feature = "realtime")]
        migrations: Some(hometrip_realtime::store::MIGRATIONS),
        #[cfg(not(feature = "realtime"))]
        migrations: None,
        #[cfg(feature = "realtime")]
        start: Some(local::realtime),
        #[cfg(not(feature = "realtime"))]
        start: None,
        remote: None,
        openapi: None,
        exists: true,
    },
    Module {
        name: "review",
        port: 4007,
        calls: &["booking", "user"],
        routes: &[
            "/api/v1/bookings/*/reviews",
            "/api/v1/listings/*/reviews",
            "/api/v1/users/*/reviews",
            "/api/v1/reviews/**",
            "/api/v1/admin/reviews",
            "/api/v1/admin/reviews/**",
        ],
        #[cfg(feature = "review")]
        migrations: Some(hometrip_review::store::MIGRATIONS),
        #[cfg(not(feature = "review"))]
        migrations: None,
        #[cfg(feature = "review")]
        start: Some(local::review),
        #[cfg(not(feature = "review"))]
        start: None,
        remote: Some(|w, c| {
            let client = Arc::new(hometrip_review::client::ReviewsClient::new(c));
            w.provide::<dyn hometrip_review::api::ReviewDesk>(Arc::clone(&client) as _);
            w.provide::<dyn hometrip_review::api::Moderation>(Arc::clone(&client) as _);
            w.provide::<dyn hometrip_review::api::Reviews>(client)
        }),
        #[cfg(feature = "review")]
        openapi: Some(<hometrip_review::http::ReviewApi as utoipa::OpenApi>::openapi),
        #[cfg(not(feature = "review"))]
        openapi: None,
        exists: true,
    },
    Module {
        name: "analytics",
        port: 4008,
        calls: &["listing"],
        routes: &["/api/v1/analytics/**", "/api/v1/admin/analytics/**"],
        #[cfg(feature = "analytics")]
        migrations: Some(hometrip_analytics::store::MIGRATIONS),
        #[cfg(not(feature = "analytics"))]
        migrations: None,
        #[cfg(feature = "analytics")]
        start: Some(local::analytics),
        #[cfg(not(feature = "analytics"))]
        start: None,
        remote: Some(|w, c| {
            let client = Arc::new(hometrip_analytics::client::AnalyticsClient::new(c));
            w.provide::<dyn hometrip_analytics::api::OperatorFigures>(Arc::clone(&client) as _);
            w.provide::<dyn hometrip_analytics::api::HostFigures>(client)
        }),
        #[cfg(feature = "analytics")]
        openapi: Some(<hometrip_analytics::http::AnalyticsApi as utoipa::OpenApi>::openapi),
        #[cfg(not(feature = "analytics"))]
        openapi: None,
        exists: true,
    },
];

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module").field("name", &self.name).field("port", &self.port).finish_non_exhaustive()
    }
}

pub fn find(name: &str) -> Option<&'static Module> {
    MODULES.iter().find(|m| m.name == name)
}

impl Module {
    /// Compiled into this binary.
    pub fn built(&self) -> bool {
        self.start.is_some() || (self.name == "gateway" && cfg!(feature = "gateway"))
    }
}

/// The modules a process runs: `--modules` / `modules` (empty: every module
/// compiled in), checked against the table and this build.
pub fn select(requested: &[String]) -> Result<Vec<&'static Module>, String> {
    if requested.is_empty() {
        return Ok(MODULES.iter().filter(|m| m.built()).collect());
    }
    let mut chosen = Vec::new();
    for name in requested.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let module = find(name).ok_or_else(|| {
            let known: Vec<&str> = MODULES.iter().map(|m| m.name).collect();
            format!("--modules: unknown module {name:?} (known: {})", known.join(", "))
        })?;
        if !module.exists {
            return Err(format!("--modules: the {name} module is not part of this version of HomeTrip yet"));
        }
        if !module.built() {
            return Err(format!("--modules: this binary was built without the {name} module (cargo feature {name})"));
        }
        chosen.push(module);
    }
    // Table order, once each.
    Ok(MODULES.iter().filter(|m| chosen.iter().any(|c| c.name == m.name)).collect())
}

/// The local constructors, one per module compiled in.
mod local {
    #[allow(unused_imports)]
    use super::*;

    #[cfg(feature = "admin")]
    pub fn admin<'a>(w: &'a mut Wiring) -> LocalBoxFuture<'a, Result<Mount, String>> {
        Box::pin(async move {
            let admin = hometrip_admin::service::AdminService::new(
                w.db.clone(),
                Arc::clone(&w.bus),
                Arc::clone(&w.jobs),
                w.settings.admin.clone(),
            );
            admin.subscribe().await?;
            w.provide::<dyn hometrip_admin::api::AuditLog>(Arc::clone(&admin) as _);
            let data: web::Data<hometrip_admin::service::AdminService> = hometrip_admin::http::data(&admin);
            Ok(Mount::new(move |cfg| {
                cfg.app_data(data.clone());
            })
            .api(hometrip_admin::http::routes))
        })
    }

    #[cfg(feature = "auth")]
    pub fn auth<'a>(w: &'a mut Wiring) -> LocalBoxFuture<'a, Result<Mount, String>> {
        Box::pin(async move {
            use hometrip_auth::api::Accounts;
            use hometrip_auth::service::{AuthDeps, AuthService};
            let auth = AuthService::new(AuthDeps {
                db: w.db.clone(),
                bus: Arc::clone(&w.bus),
                cache: Arc::clone(&w.cache),
                settings: w.settings.auth.clone(),
                data_dir: w.settings.data_dir.clone(),
                event_sealer: w.event_sealer.clone(),
                clock: w.jobs.clock().clone(),
            })?;
            w.provide::<dyn Accounts>(Arc::clone(&auth) as Arc<dyn Accounts>);
            w.provide::<dyn hometrip_auth::api::ApiKeys>(Arc::clone(&auth) as _);
            w.provide::<dyn hometrip_kernel::api_keys::KeyAuthority>(Arc::clone(&auth) as _);
            w.provide::<dyn hometrip_auth::api::Sessions>(Arc::clone(&auth) as Arc<dyn hometrip_auth::api::Sessions>);
            w.provide::<dyn hometrip_auth::api::AccountSecurity>(Arc::clone(&auth) as _);
            w.provide::<dyn hometrip_auth::api::AccountAdmin>(Arc::clone(&auth) as _);
            w.keep(Arc::clone(&auth));
            let trusted = hometrip_kernel::http::TrustedProxies::parse(&w.settings.server.trusted_proxies)?;
            let web_data = web::Data::new(hometrip_auth::http::AuthWeb {
                service: Arc::clone(&auth),
                public_url: w.settings.server.public_url.clone(),
                trusted_proxies: trusted,
            });
            let sessions: web::Data<dyn hometrip_auth::api::Sessions> =
                web::Data::from(Arc::clone(&auth) as Arc<dyn hometrip_auth::api::Sessions>);
            let accounts: web::Data<dyn Accounts> = web::Data::from(auth as Arc<dyn Accounts>);
            Ok(Mount::new(move |cfg| {
                cfg.app_data(web_data.clone()).app_data(accounts.clone()).app_data(sessions.clone());
                hometrip_auth::http::internal_routes(cfg);
            })
            .api(hometrip_auth::http::routes))
        })
    }

    #[cfg(feature = "user")]
    pub fn user<'a>(w: &'a mut Wiring) -> LocalBoxFuture<'a, Result<Mount, String>> {
        Box::pin(async move {
            use hometrip_user::api::Users;
            let accounts = w.require::<dyn hometrip_auth::api::Accounts>("auth")?;
            let users = hometrip_user::service::UserService::new(
                w.db.clone(),
                Arc::clone(&w.bus),
                w.files.clone(),
                accounts,
                w.settings.user.clone(),
            );
            users.subscribe().await;
            w.provide::<dyn Users>(Arc::clone(&users) as Arc<dyn Users>);
            w.provide::<dyn hometrip_user::api::Profiles>(Arc::clone(&users) as _);
            w.provide::<dyn hometrip_user::api::UserAdmin>(Arc::clone(&users) as _);
            let data = hometrip_user::http::data(&users);
            let dyn_data: web::Data<dyn Users> = web::Data::from(users as Arc<dyn Users>);
            Ok(Mount::new(move |cfg| {
                cfg.app_data(data.clone()).app_data(dyn_data.clone());
                hometrip_user::http::internal_routes(cfg);
            })
            .api(hometrip_user::http::routes)
            .files(&["avatars/"]))
        })
    }

    #[cfg(feature = "notification")]
    pub fn notification<'a>(w: &'a mut Wiring) -> LocalBoxFuture<'a, Result<Mount, String>> {
        Box::pin(async move {
            use hometrip_notification::api::Notifications;
            use hometrip_notification::service::{NotificationDeps, NotificationService};
            let notifications = NotificationService::new(NotificationDeps {
                settings: w.settings.notification.clone(),
                data_dir: w.settings.data_dir.clone(),
                public_url: w.settings.server.public_url.clone(),
                db: w.db.clone(),
                bus: Arc::clone(&w.bus),
                jobs: Arc::clone(&w.jobs),
                users: w.require::<dyn hometrip_user::api::Users>("user")?,
                listings: w.require::<dyn hometrip_listing::api::Listings>("listing")?,
                bookings: w.require::<dyn hometrip_booking::api::Bookings>("booking")?,
                outbound: w.settings.outbound.clone(),
                sealer: w.event_sealer.clone(),
            })?;
            notifications.subscribe(&w.bus).await;
            w.provide::<dyn Notifications>(Arc::clone(&notifications) as Arc<dyn Notifications>);
            w.provide::<dyn hometrip_notification::api::NotificationCenter>(Arc::clone(&notifications) as _);
            w.provide::<dyn hometrip_notification::api::NotificationPreferences>(Arc::clone(&notifications) as _);
            let data = hometrip_notification::http::data(&notifications);
            let dyn_data: web::Data<dyn Notifications> = web::Data::from(notifications as Arc<dyn Notifications>);
            Ok(Mount::new(move |cfg| {
                cfg.app_data(data.clone()).app_data(dyn_data.clone());
                hometrip_notification::http::internal_routes(cfg);
            })
            .api(hometrip_notification::http::routes))
        })
    }

    #[cfg(feature = "listing")]
    pub fn listing<'a>(w: &'a mut Wiring) -> LocalBoxFuture<'a, Result<Mount, String>> {
        Box::pin(async move {
            use hometrip_listing::api::Listings;
            let feeds = hometrip_kernel::outbound::Outbound::new(
                &w.settings.outbound,
                hometrip_listing::feeds::feed_purpose(&w.settings.listing),
            )?;
            let listings = hometrip_listing::service::ListingService::new(
                w.db.clone(),
                Arc::clone(&w.bus),
                w.files.clone(),
                w.settings.listing.clone(),
                feeds,
            );
            listings.subscribe().await;
            listings.register_jobs(&w.jobs).await.map_err(|p| format!("listing jobs: {}", p.detail))?;
            w.provide::<dyn Listings>(Arc::clone(&listings) as Arc<dyn Listings>);
            w.provide::<dyn hometrip_listing::api::ListingModeration>(Arc::clone(&listings) as _);
            let desk = hometrip_listing::host_desk::HostDesk::new(Arc::clone(&listings), &w.settings.server.public_url);
            w.provide::<dyn hometrip_listing::api::HostListings>(desk);
            w.keep(Arc::clone(&listings));
            let data = hometrip_listing::http::data(&listings);
            let dyn_data: web::Data<dyn Listings> = web::Data::from(listings as Arc<dyn Listings>);
            Ok(Mount::new(move |cfg| {
                cfg.app_data(data.clone()).app_data(dyn_data.clone());
                hometrip_listing::http::internal_routes(cfg);
            })
            .api(hometrip_listing::http::routes)
            .files(&["photos/"]))
        })
    }

    #[cfg(feature = "search")]
    pub fn search<'a>(w: &'a mut Wiring) -> LocalBoxFuture<'a, Result<Mount, String>> {
        Box::pin(async move {
            let listings = w.require::<dyn hometrip_listing::api::Listings>("listing")?;
            let dir = w.settings.data_dir.join("search").join("index");
            let heap = w.settings.search.writer_heap_bytes;
            let index = tokio::task::spawn_blocking(move || hometrip_search::store::SearchIndex::open(&dir, heap))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("{e} (is another hometrip process using the data dir?)"))?;
            let search = hometrip_search::service::SearchService::new(Arc::new(index), listings);
            search.subscribe(&w.bus).await;
            w.provide::<dyn hometrip_search::api::Search>(Arc::clone(&search) as Arc<dyn hometrip_search::api::Search>);
            w.keep(Arc::clone(&search));
            let data = web::Data::from(Arc::clone(&search));
            let committer = Arc::clone(&search);
            Ok(Mount::new(move |cfg| {
                cfg.app_data(data.clone());
            })
            .api(hometrip_search::http::routes)
            .on_serve(move || committer.spawn_committer())
            .on_serve(move || {
                tokio::spawn(async move {
                    // A new or rebuilt index: fill it from the listings in the
                    // background, waiting for the listing service if it is not up yet.
                    let mut wait = std::time::Duration::from_millis(500);
                    while search.is_empty() {
                        match search.reindex().await {
                            Ok(n) => {
                                tracing::info!(listings = n, "search index built");
                                break;
                            }
                            Err(e) => tracing::warn!(error = %e.detail, "search index build failed; retrying"),
                        }
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(std::time::Duration::from_secs(30));
                    }
                })
            }))
        })
    }

    #[cfg(feature = "payment")]
    pub fn payment<'a>(w: &'a mut Wiring) -> LocalBoxFuture<'a, Result<Mount, String>> {
        Box::pin(async move {
            use hometrip_payment::api::Payments;
            use hometrip_payment::gateway::{EventSink, PaymentGateway, SimulatedGateway};
            let settings = Arc::clone(&w.settings);
            let (gateway, simulated): (Arc<dyn PaymentGateway>, Option<Arc<SimulatedGateway>>) =
                match settings.payment.provider.as_str() {
                    "simulated" => {
                        let sim = SimulatedGateway::new(w.db.clone(), &settings.server.public_url);
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
            let payments = hometrip_payment::service::PaymentService::new(
                w.db.clone(),
                Arc::clone(&w.bus),
                Arc::clone(&w.jobs),
                gateway,
                settings.payment.clone(),
            );
            payments.register_jobs().await;
            if let Some(sim) = &simulated {
                sim.set_sink(Arc::clone(&payments) as Arc<dyn EventSink>);
            }
            w.provide::<dyn Payments>(Arc::clone(&payments) as Arc<dyn Payments>);
            let desk =
                hometrip_payment::payout_desk::PayoutDesk::new(Arc::clone(&payments), &settings.server.public_url);
            w.provide::<dyn hometrip_payment::api::HostPayouts>(desk);
            let data = hometrip_payment::http::data(&payments);
            let dyn_data: web::Data<dyn Payments> = web::Data::from(payments as Arc<dyn Payments>);
            let sim = simulated.map(web::Data::from);
            Ok(Mount::new(move |cfg| {
                cfg.app_data(data.clone()).app_data(dyn_data.clone());
                if let Some(sim) = &sim {
                    cfg.app_data(sim.clone());
                }
                hometrip_payment::http::internal_routes(cfg);
            })
            .api(hometrip_payment::http::routes))
        })
    }

    #[cfg(feature = "message")]
    pub fn message<'a>(w: &'a mut Wiring) -> LocalBoxFuture<'a, Result<Mount, String>> {
        Box::pin(async move {
            use hometrip_message::api::Messages;
            let listings = w.require::<dyn hometrip_listing::api::Listings>("listing")?;
            let messages = hometrip_message::service::MessageService::new(hometrip_message::service::MessageDeps {
                db: w.db.clone(),
                bus: Arc::clone(&w.bus),
                files: w.files.clone(),
                listings,
                bookings: w.require::<dyn hometrip_booking::api::Bookings>("booking")?,
                users: w.require::<dyn hometrip_user::api::Users>("user")?,
                jobs: Arc::clone(&w.jobs),
                limiter: hometrip_kernel::cache::RateLimiter::new(Arc::clone(&w.cache)),
                settings: w.settings.message.clone(),
            });
            messages.subscribe().await;
            w.provide::<dyn Messages>(Arc::clone(&messages) as Arc<dyn Messages>);
            w.provide::<dyn hometrip_message::api::Inbox>(Arc::clone(&messages) as _);
            let data = hometrip_message::http::data(&messages);
            let dyn_data: web::Data<dyn Messages> = web::Data::from(messages as Arc<dyn Messages>);
            Ok(Mount::new(move |cfg| {
                cfg.app_data(data.clone()).app_data(dyn_data.clone());
                hometrip_message::http::internal_routes(cfg);
            })
            .api(hometrip_message::http::routes))
        })
    }

    #[cfg(feature = "review")]
    pub fn review<'a>(w: &'a mut Wiring) -> LocalBoxFuture<'a, Result<Mount, String>> {
        Box::pin(async move {
            use hometrip_review::api::Reviews;
            use hometrip_review::service::{ReviewDeps, ReviewService};
            let reviews = ReviewService::new(ReviewDeps {
                db: w.db.clone(),
                bus: Arc::clone(&w.bus),
                jobs: Arc::clone(&w.jobs),
                bookings: w.require::<dyn hometrip_booking::api::Bookings>("booking")?,
                users: w.require::<dyn hometrip_user::api::Users>("user")?,
                limiter: hometrip_kernel::cache::RateLimiter::new(Arc::clone(&w.cache)),
                settings: w.settings.review.clone(),
            });
            reviews.subscribe().await?;
            w.provide::<dyn Reviews>(Arc::clone(&reviews) as Arc<dyn Reviews>);
            w.provide::<dyn hometrip_review::api::ReviewDesk>(Arc::clone(&reviews) as _);
            w.provide::<dyn hometrip_review::api::Moderation>(Arc::clone(&reviews) as _);
            let data = hometrip_review::http::data(&reviews);
            let dyn_data: web::Data<dyn Reviews> = web::Data::from(reviews as Arc<dyn Reviews>);
            Ok(Mount::new(move |cfg| {
                cfg.app_data(data.clone()).app_data(dyn_data.clone());
                hometrip_review::http::internal_routes(cfg);
            })
            .api(hometrip_review::http::routes))
        })
    }

    #[cfg(feature = "analytics")]
    pub fn analytics<'a>(w: &'a mut Wiring) -> LocalBoxFuture<'a, Result<Mount, String>> {
        Box::pin(async move {
            use hometrip_analytics::service::{AnalyticsDeps, AnalyticsService};
            let analytics = AnalyticsService::new(AnalyticsDeps {
                db: w.db.clone(),
                bus: Arc::clone(&w.bus),
                jobs: Arc::clone(&w.jobs),
                listings: w.require::<dyn hometrip_listing::api::Listings>("listing")?,
                limiter: hometrip_kernel::cache::RateLimiter::new(Arc::clone(&w.cache)),
                settings: w.settings.analytics.clone(),
            });
            analytics.subscribe().await?;
            w.provide::<dyn hometrip_analytics::api::HostFigures>(Arc::clone(&analytics) as _);
            w.provide::<dyn hometrip_analytics::api::OperatorFigures>(Arc::clone(&analytics) as _);
            let trusted = hometrip_kernel::http::TrustedProxies::parse(&w.settings.server.trusted_proxies)?;
            let data =
                web::Data::new(hometrip_analytics::http::AnalyticsWeb { service: analytics, trusted_proxies: trusted });
            Ok(Mount::new(move |cfg| {
                cfg.app_data(data.clone());
            })
            .api(hometrip_analytics::http::routes))
        })
    }

    #[cfg(feature = "realtime")]
    pub fn realtime<'a>(w: &'a mut Wiring) -> LocalBoxFuture<'a, Result<Mount, String>> {
        Box::pin(async move {
            use hometrip_realtime::{fanout::Fanout, hub::Hub, presence::Presence};
            let messages = w.require::<dyn hometrip_message::api::Messages>("message")?;
            let listings = w.require::<dyn hometrip_listing::api::Listings>("listing")?;
            let notifications = w.require::<dyn hometrip_notification::api::Notifications>("notification")?;
            let settings = w.settings.realtime.clone();
            let hub = Hub::new(settings.max_queued_bytes);
            let redis = &w.settings.redis;
            // Without Redis a process's sockets are the whole platform's.
            let (fanout, presence) = if redis.url.is_empty() {
                (Fanout::local(Arc::clone(&hub)), Presence::Local(hub))
            } else {
                let ttl = std::time::Duration::from_secs(settings.presence_ttl_secs);
                let pool = Fanout::redis_pool(&redis.url)?;
                (
                    Fanout::redis(hub, pool.clone(), &redis.url, &redis.key_prefix),
                    Presence::redis(pool, &redis.key_prefix, ttl),
                )
            };
            let realtime = hometrip_realtime::service::RealtimeService::new(
                w.db.clone(),
                fanout,
                presence,
                messages,
                listings,
                notifications,
                settings,
            );
            realtime.subscribe(&w.bus).await;
            let data = web::Data::from(Arc::clone(&realtime));
            let listener = Arc::clone(&realtime.fanout);
            Ok(Mount::new(move |cfg| {
                cfg.app_data(data.clone());
                hometrip_realtime::socket::routes(cfg);
            })
            .on_serve(move || listener.spawn_listener().unwrap_or_else(|| tokio::spawn(async {})))
            .on_serve(move || realtime.spawn_presence()))
        })
    }

    #[cfg(feature = "booking")]
    pub fn booking<'a>(w: &'a mut Wiring) -> LocalBoxFuture<'a, Result<Mount, String>> {
        Box::pin(async move {
            use hometrip_booking::api::Bookings;
            let listings = w.require::<dyn hometrip_listing::api::Listings>("listing")?;
            let payments = w.require::<dyn hometrip_payment::api::Payments>("payment")?;
            let bookings = hometrip_booking::service::BookingService::new(
                w.db.clone(),
                Arc::clone(&w.bus),
                Arc::clone(&w.jobs),
                listings,
                payments,
                w.settings.booking.clone(),
            );
            bookings.subscribe().await.map_err(|p| format!("booking timers: {}", p.detail))?;
            w.provide::<dyn Bookings>(Arc::clone(&bookings) as Arc<dyn Bookings>);
            w.provide::<dyn hometrip_booking::api::Reservations>(Arc::clone(&bookings) as _);
            w.provide::<dyn hometrip_booking::api::BookingAdmin>(Arc::clone(&bookings) as _);
            let data = hometrip_booking::http::data(&bookings);
            let dyn_data: web::Data<dyn Bookings> = web::Data::from(bookings as Arc<dyn Bookings>);
            Ok(Mount::new(move |cfg| {
                cfg.app_data(data.clone()).app_data(dyn_data.clone());
                hometrip_booking::http::internal_routes(cfg);
            })
            .api(hometrip_booking::http::routes))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_every_module_once_with_the_seed_ports() {
        let names: Vec<&str> = MODULES.iter().map(|m| m.name).collect();
        for expected in [
            "gateway",
            "realtime",
            "admin",
            "auth",
            "user",
            "listing",
            "booking",
            "payment",
            "message",
            "review",
            "analytics",
            "notification",
            "search",
        ] {
            assert_eq!(names.iter().filter(|n| **n == expected).count(), 1, "{expected}");
        }
        let port = |n: &str| find(n).map(|m| m.port);
        assert_eq!(port("gateway"), Some(3001));
        assert_eq!(port("booking"), Some(4004));
        assert_eq!(port("search"), Some(4010));
        let mut ports: Vec<u16> = MODULES.iter().map(|m| m.port).collect();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), MODULES.len());
    }

    #[test]
    fn a_selection_is_checked_against_the_table() {
        assert!(select(&["bookng".to_owned()]).unwrap_err().contains("unknown module"));
        let chosen = select(&["booking".to_owned(), "auth".to_owned(), "auth".to_owned()]);
        #[cfg(all(feature = "auth", feature = "booking"))]
        assert_eq!(chosen.unwrap().iter().map(|m| m.name).collect::<Vec<_>>(), vec!["auth", "booking"]);
        #[cfg(not(all(feature = "auth", feature = "booking")))]
        assert!(chosen.is_err());
    }

    #[test]
    fn every_public_path_has_one_owner() {
        let table =
            hometrip_gateway::RouteTable::new(MODULES.iter().flat_map(|m| m.routes.iter().map(move |r| (*r, m.name))));
        for (path, owner) in [
            ("/api/v1/auth/login", "auth"),
            ("/api/v1/admin/users/x/roles", "auth"),
            ("/api/v1/admin/users", "user"),
            ("/api/v1/users/me", "user"),
            ("/files/avatars/a.jpg", "user"),
            ("/api/v1/listings", "listing"),
            ("/api/v1/listings/x/calendar.ics", "listing"),
            ("/api/v1/listings/x/similar", "search"),
            ("/api/v1/search/listings", "search"),
            ("/api/v1/bookings/quote", "booking"),
            ("/api/v1/payments/webhooks/stripe", "payment"),
            ("/api/v1/payouts/account", "payment"),
            ("/files/photos/x/y.jpg", "listing"),
            ("/api/v1/conversations", "message"),
            ("/ws", "realtime"),
            ("/api/v1/quick-replies/x", "message"),
            ("/api/v1/users/me/phone", "notification"),
            ("/api/v1/users/me/phone/verify", "notification"),
            ("/api/v1/users/me/avatar", "user"),
            ("/api/v1/notifications/read-all", "notification"),
            ("/api/v1/conversations/x/messages", "message"),
        ] {
            assert_eq!(table.module_for(path), Some(owner), "{path}");
        }
    }
}
