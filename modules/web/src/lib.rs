//! The web app people use in a browser: server-rendered pages that call the
//! modules' traits (local or remote, like the API does), served on the
//! gateway's port. Every page works without JavaScript; the scripts of
//! `assets/` only enhance. Assets are embedded in the binary under
//! content-hashed names.

mod account_pages;
mod account_words;
mod admin_event_pages;
mod admin_key_pages;
mod admin_moderation_pages;
mod admin_pages;
mod admin_user_pages;
mod admin_words;
mod api_key_pages;
mod api_key_words;
mod assets;
mod booking_views;
mod earnings_pages;
mod format;
mod host_calendar_pages;
mod host_listing_pages;
mod host_pages;
mod host_words;
mod inbox_pages;
mod inbox_words;
mod listing_form;
mod locale;
mod map;
mod notification_pages;
mod notification_settings_pages;
mod pages;
mod payout_pages;
mod provider_pages;
mod review_pages;
mod review_words;
mod search_page;
mod session;
mod settings_pages;
mod settings_words;
mod trip_pages;
mod trip_words;
mod uploads;

use std::sync::Arc;

use actix_web::{guard, web};
use hometrip_admin::api::AuditLog;
use hometrip_analytics::api::{HostFigures, OperatorFigures};
use hometrip_auth::api::{AccountAdmin, AccountSecurity, Accounts, ApiKeys, Sessions};
use hometrip_booking::api::{BookingAdmin, Reservations};
use hometrip_kernel::auth_context::AccessVerifier;
use hometrip_kernel::events::DeadLetterDesk;
use hometrip_kernel::http::TrustedProxies;
use hometrip_listing::api::{HostListings, ListingModeration, Listings};
use hometrip_message::api::Inbox;
use hometrip_notification::api::{NotificationCenter, NotificationPreferences};
use hometrip_payment::api::HostPayouts;
use hometrip_review::api::{Moderation, ReviewDesk};
use hometrip_search::api::Search;
use hometrip_user::api::{Profiles, UserAdmin, Users};
use sha2::{Digest, Sha512};

pub use map::WebSettings;

/// What the pages call, and how they keep sessions.
pub struct Web {
    listings: Arc<dyn Listings>,
    host_listings: Arc<dyn HostListings>,
    figures: Arc<dyn HostFigures>,
    review_desk: Arc<dyn ReviewDesk>,
    moderation: Arc<dyn Moderation>,
    booking_admin: Arc<dyn BookingAdmin>,
    operator_figures: Arc<dyn OperatorFigures>,
    audit_log: Arc<dyn AuditLog>,
    user_admin: Arc<dyn UserAdmin>,
    account_admin: Arc<dyn AccountAdmin>,
    search: Arc<dyn Search>,
    reservations: Arc<dyn Reservations>,
    accounts: Arc<dyn Accounts>,
    sessions: Arc<dyn Sessions>,
    security: Arc<dyn AccountSecurity>,
    api_keys: Arc<dyn ApiKeys>,
    users: Arc<dyn Users>,
    profiles: Arc<dyn Profiles>,
    inbox: Arc<dyn Inbox>,
    notifications: Arc<dyn NotificationCenter>,
    notification_settings: Arc<dyn NotificationPreferences>,
    listing_moderation: Arc<dyn ListingModeration>,
    dead_letters: Arc<dyn DeadLetterDesk>,
    payouts: Arc<dyn HostPayouts>,
    verifier: Arc<AccessVerifier>,
    /// Signs the forms' CSRF tokens.
    csrf_key: [u8; 64],
    secure_cookies: bool,
    /// `server.public_url`: where providers send the browser back.
    public_url: String,
    /// The pages' Content-Security-Policy (a tile server's origin among its images).
    csp: Arc<str>,
    /// The checkout page's, which lets Stripe Elements in when configured.
    checkout_csp: Arc<str>,
    stripe_key: String,
    map: WebSettings,
    rotations: session::Rotations,
    /// Whose `X-Forwarded-For` to believe (sign-in limits count per address).
    trusted_proxies: TrustedProxies,
}

pub struct WebDeps {
    pub listings: Arc<dyn Listings>,
    pub host_listings: Arc<dyn HostListings>,
    pub figures: Arc<dyn HostFigures>,
    pub review_desk: Arc<dyn ReviewDesk>,
    pub moderation: Arc<dyn Moderation>,
    pub booking_admin: Arc<dyn BookingAdmin>,
    pub operator_figures: Arc<dyn OperatorFigures>,
    pub audit_log: Arc<dyn AuditLog>,
    pub user_admin: Arc<dyn UserAdmin>,
    pub account_admin: Arc<dyn AccountAdmin>,
    pub search: Arc<dyn Search>,
    pub reservations: Arc<dyn Reservations>,
    pub accounts: Arc<dyn Accounts>,
    pub sessions: Arc<dyn Sessions>,
    pub security: Arc<dyn AccountSecurity>,
    pub api_keys: Arc<dyn ApiKeys>,
    pub users: Arc<dyn Users>,
    pub profiles: Arc<dyn Profiles>,
    pub inbox: Arc<dyn Inbox>,
    pub notifications: Arc<dyn NotificationCenter>,
    pub notification_settings: Arc<dyn NotificationPreferences>,
    pub listing_moderation: Arc<dyn ListingModeration>,
    pub dead_letters: Arc<dyn DeadLetterDesk>,
    pub payouts: Arc<dyn HostPayouts>,
    pub verifier: Arc<AccessVerifier>,
    /// The deployment's shared secret (the service credential): every
    /// gateway derives the same CSRF key from it.
    pub secret: String,
    /// `server.public_url`: cookies are `Secure` when it is HTTPS.
    pub public_url: String,
    pub trusted_proxies: TrustedProxies,
    pub settings: WebSettings,
    /// Stripe Elements on the checkout page (`pk_...`); empty: test cards only.
    pub stripe_publishable_key: String,
}

impl Web {
    pub fn new(d: WebDeps) -> Arc<Web> {
        let tiles = map::origin(&d.settings.map_tiles_url);
        let csrf_key: [u8; 64] = Sha512::digest(format!("hometrip web csrf\n{}", d.secret).as_bytes()).into();
        Arc::new(Web {
            listings: d.listings,
            host_listings: d.host_listings,
            figures: d.figures,
            review_desk: d.review_desk,
            moderation: d.moderation,
            booking_admin: d.booking_admin,
            operator_figures: d.operator_figures,
            audit_log: d.audit_log,
            user_admin: d.user_admin,
            account_admin: d.account_admin,
            search: d.search,
            reservations: d.reservations,
            accounts: d.accounts,
            sessions: d.sessions,
            security: d.security,
            api_keys: d.api_keys,
            users: d.users,
            profiles: d.profiles,
            inbox: d.inbox,
            notifications: d.notifications,
            notification_settings: d.notification_settings,
            listing_moderation: d.listing_moderation,
            dead_letters: d.dead_letters,
            payouts: d.payouts,
            verifier: d.verifier,
            csrf_key,
            secure_cookies: d.public_url.starts_with("https://"),
            public_url: d.public_url.clone(),
            csp: pages::content_security_policy(tiles.as_deref(), false).into(),
            checkout_csp: pages::content_security_policy(tiles.as_deref(), !d.stripe_publishable_key.is_empty()).into(),
            stripe_key: d.stripe_publishable_key,
            map: d.settings,
            rotations: session::Rotations::default(),
            trusted_proxies: d.trusted_proxies,
        })
    }
}

/// The admin console alone, for the admin module's own port when it runs
/// apart: its pages, signing in and out, the assets; `/` leads to it.
pub fn console_routes(web_app: Arc<Web>) -> impl Fn(&mut web::ServiceConfig) + Clone {
    let data = web::Data::from(web_app);
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(data.clone())
            .app_data(web::Data::new(ConsoleOnly))
            .route(
                "/",
                web::get()
                    .to(|| async { actix_web::HttpResponse::Found().insert_header(("location", "/admin")).finish() }),
            )
            .configure(console)
            .route("/sign-in", web::get().to(account_pages::sign_in_form))
            .route("/sign-in", web::post().to(account_pages::sign_in))
            .route("/sign-out", web::post().to(account_pages::sign_out))
            .route("/assets/{name}", web::get().to(assets::serve));
    }
}

/// Marks the admin process's own port, where only the console answers (no
/// sign-in with a provider: its callback is the gateway's).
pub(crate) struct ConsoleOnly;

/// The console's pages.
fn console(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(admin_pages::overview))
        .route("/admin/users", web::get().to(admin_user_pages::users))
        .route("/admin/users/{id}/{action}", web::post().to(admin_user_pages::user_action))
        .route("/admin/users/{id}/api-keys", web::get().to(admin_key_pages::keys))
        .route("/admin/users/{user}/api-keys/{key}/revoke", web::post().to(admin_key_pages::revoke))
        .route("/admin/reviews", web::get().to(admin_pages::reviews))
        .route("/admin/reviews/{id}/{action}", web::post().to(admin_pages::decide))
        .route("/admin/bookings", web::get().to(admin_pages::bookings))
        .route("/admin/bookings/{id}/refund", web::post().to(admin_pages::refund))
        .route("/admin/audit", web::get().to(admin_pages::audit))
        .route("/admin/listings", web::get().to(admin_moderation_pages::listings))
        .route("/admin/listings/{id}/{action}", web::post().to(admin_moderation_pages::listing_action))
        .route("/admin/appeals", web::get().to(admin_moderation_pages::appeals))
        .route("/admin/appeals/{id}", web::post().to(admin_moderation_pages::decide_appeal))
        .route("/admin/events", web::get().to(admin_event_pages::dead_letters))
        .route("/admin/events/{id}/replay", web::post().to(admin_event_pages::replay));
}

/// A multipart body (a form with files).
fn multipart(ctx: &guard::GuardContext<'_>) -> bool {
    ctx.header::<actix_web::http::header::ContentType>()
        .is_some_and(|t| t.0.type_() == "multipart" && t.0.subtype() == "form-data")
}

/// Mounts the pages and their assets.
pub fn routes(web_app: Arc<Web>) -> impl Fn(&mut web::ServiceConfig) + Clone {
    let data = web::Data::from(web_app);
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(data.clone())
            .route("/", web::get().to(pages::home))
            .route("/search", web::get().to(search_page::search))
            .route("/listings/{id}", web::get().to(pages::listing))
            .route("/listings/{id}/book", web::post().to(trip_pages::book))
            .route("/checkout/{id}", web::get().to(trip_pages::checkout))
            .route("/checkout/{id}", web::post().to(trip_pages::pay))
            .route("/listings/{id}/contact", web::post().to(inbox_pages::contact))
            .route("/inbox", web::get().to(inbox_pages::inbox))
            .route("/inbox/{id}", web::get().to(inbox_pages::conversation))
            .route("/inbox/{id}", web::post().guard(guard::fn_guard(multipart)).to(inbox_pages::send_with_files))
            .route("/inbox/{id}", web::post().to(inbox_pages::send))
            .route("/inbox/{id}/read", web::post().to(inbox_pages::read))
            .route("/inbox/{id}/attachments/{attachment}", web::get().to(inbox_pages::attachment))
            .route("/notifications", web::get().to(notification_pages::notifications))
            .route("/notifications/unread", web::get().to(notification_pages::unread))
            .route("/notifications/read-all", web::post().to(notification_pages::mark_read))
            .route("/notifications/{id}/read", web::post().to(notification_pages::mark_read))
            .route("/account/avatar", web::post().to(settings_pages::upload_avatar))
            .route("/trips", web::get().to(trip_pages::trips))
            .route("/trips/{id}", web::get().to(trip_pages::trip))
            .route("/trips/{id}/cancel", web::post().to(trip_pages::cancel))
            .route("/account", web::get().to(settings_pages::account))
            .route("/account", web::post().to(settings_pages::save_profile))
            .route("/account/security", web::get().to(settings_pages::security))
            .route("/account/notifications", web::get().to(notification_settings_pages::settings))
            .route("/account/notifications", web::post().to(notification_settings_pages::save))
            .route("/account/phone", web::post().to(notification_settings_pages::phone))
            .route("/account/phone/verify", web::post().to(notification_settings_pages::phone))
            .route("/account/password", web::post().to(settings_pages::change_password))
            .route("/account/2fa/setup", web::post().to(settings_pages::two_factor_setup))
            .route("/account/2fa/enable", web::post().to(settings_pages::two_factor_enable))
            .route("/account/2fa/disable", web::post().to(settings_pages::two_factor_disable))
            .route("/account/sessions/revoke-others", web::post().to(settings_pages::revoke_others))
            .route("/account/api-keys", web::get().to(api_key_pages::keys))
            .route("/account/api-keys", web::post().to(api_key_pages::create))
            .route("/account/api-keys/{id}/{action}", web::post().to(api_key_pages::act))
            .configure(console)
            .route("/reviews", web::get().to(review_pages::to_write))
            .route("/reviews/{booking}", web::get().to(review_pages::write_form))
            .route("/reviews/{booking}", web::post().to(review_pages::submit))
            .route("/reviews/{review}/response", web::post().to(review_pages::respond_to))
            .route("/host/listings", web::get().to(host_listing_pages::listings))
            .route("/host/listings", web::post().to(host_listing_pages::create))
            .route("/host/listings/new", web::get().to(host_listing_pages::new_form))
            .route("/host/listings/{id}/edit", web::get().to(host_listing_pages::edit_form))
            .route("/host/listings/{id}/edit", web::post().to(host_listing_pages::update))
            .route("/host/listings/{id}/photos", web::post().to(host_listing_pages::upload))
            .route("/host/listings/{id}/photos/{photo}/{action}", web::post().to(host_listing_pages::photo_action))
            .route("/host/listings/{id}/calendar", web::get().to(host_calendar_pages::calendar))
            .route("/host/listings/{id}/calendar", web::post().to(host_calendar_pages::edit))
            .route("/host/listings/{id}/calendar/imports", web::post().to(host_calendar_pages::add_import))
            .route(
                "/host/listings/{id}/calendar/imports/{import}/{action}",
                web::post().to(host_calendar_pages::feed_action),
            )
            .route("/host/listings/{id}/calendar/{target}/{action}", web::post().to(host_calendar_pages::feed_action))
            .route("/host/listings/{id}/{action}", web::post().to(host_listing_pages::set_status))
            .route("/host/earnings", web::get().to(earnings_pages::earnings))
            .route("/host/earnings.csv", web::get().to(earnings_pages::csv))
            .route("/host/payouts", web::get().to(payout_pages::payouts))
            .route("/host/payouts/account", web::post().to(payout_pages::open_account))
            .route("/host/reservations", web::get().to(host_pages::reservations))
            .route("/host/reservations/{id}/{action}", web::post().to(host_pages::answer))
            .route("/sign-in", web::get().to(account_pages::sign_in_form))
            .route("/sign-in", web::post().to(account_pages::sign_in))
            .route("/sign-in/second-factor", web::post().to(provider_pages::second_factor))
            .route("/sign-in/oauth/{provider}", web::get().to(provider_pages::start))
            .route("/sign-in/oauth/{provider}/callback", web::get().to(provider_pages::callback))
            .route("/sign-up", web::get().to(account_pages::sign_up_form))
            .route("/sign-up", web::post().to(account_pages::sign_up))
            .route("/sign-out", web::post().to(account_pages::sign_out))
            .route("/verify-email", web::get().to(account_pages::verify_email_form))
            .route("/verify-email", web::post().to(account_pages::verify_email))
            .route("/forgot-password", web::get().to(account_pages::forgot_form))
            .route("/forgot-password", web::post().to(account_pages::forgot))
            .route("/reset-password", web::get().to(account_pages::reset_form))
            .route("/reset-password", web::post().to(account_pages::reset))
            .route("/assets/{name}", web::get().to(assets::serve));
    }
}
