//! Loads the layered configuration: embedded `config/default.toml`, then
//! `config/<profile>.toml`, then `HOMETRIP_*` variables. Only the binary reads
//! configuration; modules receive their typed part.

use std::collections::BTreeMap;
use std::path::PathBuf;

use config::{Config, Environment, File, FileFormat};
use hometrip_admin::api::AdminSettings;
use hometrip_analytics::api::AnalyticsSettings;
use hometrip_auth::api::AuthSettings;
use hometrip_booking::api::BookingSettings;
use hometrip_kernel::settings::{DatabaseSettings, LogSettings, RedisSettings, ServerSettings};
use hometrip_listing::api::ListingSettings;
use hometrip_message::api::MessageSettings;
use hometrip_notification::api::NotificationSettings;
use hometrip_payment::api::PaymentSettings;
use hometrip_realtime::api::RealtimeSettings;
use hometrip_review::api::ReviewSettings;
use hometrip_search::api::SearchSettings;
use hometrip_user::api::UserSettings;
use serde::{Deserialize, Serialize};

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub profile: String,
    /// The modules this process runs (`--modules`, `HOMETRIP_MODULES`); empty: all built in.
    pub modules: Vec<String>,
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub amqp: AmqpSettings,
    pub log: LogSettings,
    pub telemetry: TelemetrySettings,
    pub services: ServicesSettings,
    pub admin: AdminSettings,
    pub analytics: AnalyticsSettings,
    pub auth: AuthSettings,
    pub user: UserSettings,
    pub message: MessageSettings,
    pub realtime: RealtimeSettings,
    pub review: ReviewSettings,
    pub notification: NotificationSettings,
    pub listing: ListingSettings,
    pub search: SearchSettings,
    pub booking: BookingSettings,
    pub payment: PaymentSettings,
    pub jobs: JobSettings,
    pub events: EventSettings,
    pub outbound: hometrip_kernel::outbound::OutboundSettings,
    pub testing: TestingSettings,
    pub web: hometrip_web::WebSettings,
}

/// Traces: exported over OTLP/HTTP when an endpoint is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `http://jaeger:4318`; empty: nothing exported.
    pub otlp_endpoint: String,
    /// The share of new traces recorded (parent-based: a request arriving
    /// with a sampling decision keeps it).
    pub sample_ratio: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSettings {
    /// Whether this process delivers the outbox's events to subscribers. Off
    /// in all but one of several processes sharing a database (one relay is
    /// enough), or to hold deliveries back; events wait in the outbox.
    pub relay: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    pub poll_ms: u64,
    pub lease_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TestingSettings {
    /// `POST /internal/testing/clock` moves the booking and payment clock forward.
    pub clock_control: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AmqpSettings {
    pub url: String,
    /// Prefix of the exchange and queue names (`<namespace>.events`).
    pub namespace: String,
    /// `quorum` (replicated; the default) or `classic` subscriber queues.
    pub queue_type: String,
    /// Unused queues are deleted after this long (0: never): throwaway
    /// deployments such as test platforms.
    pub queue_expires_secs: u64,
}

/// The deployment's service credential, and where the modules this process
/// does not run live: `services.<module>.{urls, balance, weights}`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ServicesSettings {
    pub token: String,
    /// Mutual TLS between the services (all three files, or none).
    #[serde(default)]
    pub tls: TlsFiles,
    #[serde(flatten)]
    pub modules: BTreeMap<String, UpstreamConfig>,
}

/// PEM files: the deployment's CA, this process's certificate (naming its
/// module) and key (`hometrip certs` makes them for development).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    #[serde(default)]
    pub ca_file: String,
    #[serde(default)]
    pub cert_file: String,
    #[serde(default)]
    pub key_file: String,
}

impl TlsFiles {
    pub fn is_set(&self) -> bool {
        !(self.ca_file.is_empty() && self.cert_file.is_empty() && self.key_file.is_empty())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Base URLs of the replicas (`http://booking-1:4004,http://booking-2:4004`).
    #[serde(default, deserialize_with = "comma_list")]
    pub urls: Vec<String>,
    #[serde(default)]
    pub balance: hometrip_kernel::upstream::Balance,
    /// One per URL, for `weighted`.
    #[serde(default, deserialize_with = "comma_list")]
    pub weights: Vec<u32>,
}

/// A list written as a TOML array or as one comma-separated string (the
/// environment's form).
fn comma_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr + Deserialize<'de>,
    T::Err: std::fmt::Display,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw<T> {
        Text(String),
        Number(u64),
        List(Vec<T>),
    }
    match Raw::<T>::deserialize(d)? {
        Raw::List(items) => Ok(items),
        Raw::Number(n) => n.to_string().parse().map(|v| vec![v]).map_err(serde::de::Error::custom),
        Raw::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .collect(),
    }
}

impl Settings {
    /// Reads every layer; an unknown key or a wrong value names the key.
    /// The settings of `config_file` and the environment; `modules`, when
    /// not empty (`serve --modules`), replaces `modules` before the checks,
    /// since some apply only to the modules a process runs.
    pub fn load(config_file: Option<&std::path::Path>, modules: &[String]) -> Result<Settings, String> {
        let profile = std::env::var("HOMETRIP_PROFILE").unwrap_or_default();
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if !profile.is_empty() {
            if profile.contains(['/', '\\', '.']) {
                return Err(format!("HOMETRIP_PROFILE: {profile:?} is not a profile name"));
            }
            let path = PathBuf::from("config").join(format!("{profile}.toml"));
            if !path.exists() {
                return Err(format!("HOMETRIP_PROFILE: {} does not exist", path.display()));
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml));
        }
        if let Some(file) = config_file {
            builder = builder.add_source(File::from(file.to_path_buf()).format(FileFormat::Toml));
        }
        builder = builder.add_source(
            Environment::with_prefix("HOMETRIP")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("server.cors_origins")
                .with_list_parse_key("server.trusted_proxies")
                .with_list_parse_key("outbound.allow_networks")
                .with_list_parse_key("modules"),
        );
        let config = builder.build().map_err(|e| format!("configuration: {e}"))?;
        let mut settings: Settings = config.try_deserialize().map_err(|e| format!("configuration: {e}"))?;
        settings.take_verbatim_env();
        if !modules.is_empty() {
            settings.modules = modules.to_vec();
        }
        settings.check()?;
        Ok(settings)
    }

    /// Values the environment source would parse as numbers (`+15005550006`
    /// becomes 15005550006: the `+` is lost) are taken as written.
    fn take_verbatim_env(&mut self) {
        let twilio = &mut self.notification.twilio;
        for (var, field) in [
            ("HOMETRIP_NOTIFICATION__TWILIO__FROM", &mut twilio.from),
            ("HOMETRIP_NOTIFICATION__TWILIO__AUTH_TOKEN", &mut twilio.auth_token),
            ("HOMETRIP_NOTIFICATION__TWILIO__ACCOUNT_SID", &mut twilio.account_sid),
        ] {
            if let Ok(value) = std::env::var(var) {
                *field = value;
            }
        }
    }

    /// The port to listen on: `server.port`, or (0) the seed port of the
    /// process's first module — 3001, the gateway's, for the whole platform.
    pub fn port(&self, first_module: Option<u16>) -> u16 {
        match self.server.port {
            0 => first_module.unwrap_or(3001),
            p => p,
        }
    }

    /// Rules serde cannot express, each naming its key.
    fn check(&self) -> Result<(), String> {
        if let Some(problem) = self.web.problem() {
            return Err(problem);
        }
        let pk = &self.payment.stripe.publishable_key;
        let stripe_key = pk.starts_with("pk_") && pk.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !pk.is_empty() && !stripe_key {
            return Err("payment.stripe.publishable_key: Stripe's pk_test_... or pk_live_... key".to_owned());
        }
        if !self.amqp.url.is_empty() && !self.amqp.url.starts_with("amqp://") && !self.amqp.url.starts_with("amqps://")
        {
            return Err("amqp.url: use amqp://user:password@host:5672/%2f".to_owned());
        }
        if self.amqp.namespace.is_empty()
            || !self.amqp.namespace.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err("amqp.namespace: letters, digits, '-', '_' and '.'".to_owned());
        }
        if !matches!(self.amqp.queue_type.as_str(), "quorum" | "classic") {
            return Err("amqp.queue_type: quorum or classic".to_owned());
        }
        let t = &self.telemetry;
        if !t.otlp_endpoint.is_empty()
            && !t.otlp_endpoint.starts_with("http://")
            && !t.otlp_endpoint.starts_with("https://")
        {
            return Err(
                "telemetry.otlp_endpoint: an http:// or https:// URL (OTLP over HTTP, e.g. http://jaeger:4318)"
                    .to_owned(),
            );
        }
        if !(0.0..=1.0).contains(&t.sample_ratio) {
            return Err("telemetry.sample_ratio: a number from 0 to 1".to_owned());
        }
        let tls = &self.services.tls;
        if tls.is_set() && (tls.ca_file.is_empty() || tls.cert_file.is_empty() || tls.key_file.is_empty()) {
            return Err("services.tls: ca_file, cert_file and key_file go together".to_owned());
        }
        for module in self.services.modules.keys() {
            if crate::modules::find(module).is_none() {
                return Err(format!("services.{module}: unknown module"));
            }
        }
        let url = &self.database.url;
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err("database.url: use sqlite://<path> or postgres://...".to_owned());
        }
        if !self.redis.url.is_empty()
            && !self.redis.url.starts_with("redis://")
            && !self.redis.url.starts_with("rediss://")
        {
            return Err("redis.url: use redis://host:port".to_owned());
        }
        if url::Url::parse(&self.server.public_url).is_err() {
            return Err("server.public_url: not a URL".to_owned());
        }
        if self.auth.access_ttl_secs < 60 || self.auth.access_ttl_secs > 3600 {
            return Err("auth.access_ttl_secs: must be between 60 and 3600".to_owned());
        }
        if self.auth.session_idle_days < 1 || self.auth.session_idle_days > self.auth.session_ttl_days {
            return Err("auth.session_idle_days: must be between 1 and auth.session_ttl_days".to_owned());
        }
        if self.auth.session_ttl_days < 1 || self.auth.session_ttl_days > 365 {
            return Err("auth.session_ttl_days: must be between 1 and 365".to_owned());
        }
        hometrip_kernel::http::TrustedProxies::parse(&self.server.trusted_proxies)
            .map_err(|e| format!("server.trusted_proxies: {e}"))?;
        if self.server.rate_limit.max == 0 || self.server.rate_limit.window_secs == 0 {
            return Err("server.rate_limit: max and window_secs must be positive".to_owned());
        }
        for provider in self.auth.oauth.keys() {
            if !matches!(provider.as_str(), "google" | "facebook") {
                return Err(format!("auth.oauth.{provider}: unknown provider (google, facebook)"));
            }
        }
        if !matches!(self.payment.provider.as_str(), "simulated" | "stripe") {
            return Err("payment.provider: use simulated or stripe".to_owned());
        }
        // Payment's settings matter only where payment runs.
        let runs_payment = self.modules.is_empty() || self.modules.iter().any(|m| m.trim() == "payment");
        if runs_payment
            && self.profile == "production"
            && self.payment.provider == "simulated"
            && !self.payment.simulated_in_production
        {
            return Err("payment.provider: the production profile needs stripe (the simulated provider confirms \
                        bookings without money; set payment.simulated_in_production = true for a staging deployment)"
                .to_owned());
        }
        if runs_payment && self.payment.provider == "stripe" && self.payment.stripe.secret_key.is_empty() {
            return Err("payment.stripe.secret_key: required when payment.provider is stripe".to_owned());
        }
        if !(0..=5000).contains(&self.payment.host_fee_bps) {
            return Err("payment.host_fee_bps: must be between 0 and 5000".to_owned());
        }
        if !(0..=5000).contains(&self.listing.non_refundable_discount_bps) {
            return Err("listing.non_refundable_discount_bps: must be between 0 and 5000".to_owned());
        }
        if self.booking.hold_minutes < 1 || self.booking.hold_minutes > 24 * 60 {
            return Err("booking.hold_minutes: must be between 1 and 1440".to_owned());
        }
        if self.booking.host_response_hours < 1 || self.booking.host_response_hours > 72 {
            return Err("booking.host_response_hours: must be between 1 and 72".to_owned());
        }
        if self.booking.payout_delay_hours < 0 || self.booking.payout_delay_hours > 24 * 30 {
            return Err("booking.payout_delay_hours: must be between 0 and 720".to_owned());
        }
        if !(0..=10_000).contains(&self.booking.host_penalty_bps) {
            return Err("booking.host_penalty_bps: must be between 0 and 10000".to_owned());
        }
        let feed_run = self.listing.ical_sync_budget_secs.saturating_add(self.listing.ical_fetch_timeout_secs);
        if self.listing.ical_fetch_timeout_secs == 0 || feed_run >= self.listing.ical_sync_interval_secs.max(60) {
            return Err("listing.ical_sync_budget_secs: with ical_fetch_timeout_secs (at least 1), must stay under \
                        ical_sync_interval_secs (a run ends before the next one starts)"
                .to_owned());
        }
        if self.jobs.poll_ms < 10 || self.jobs.lease_secs < 5 {
            return Err("jobs: poll_ms must be at least 10 and lease_secs at least 5".to_owned());
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("hometrip.db").display())
        } else {
            self.database.url.clone()
        }
    }

    /// The effective configuration with every secret replaced.
    pub fn redacted(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        redact(&mut value, "");
        value
    }
}

fn redact(value: &mut serde_json::Value, key: &str) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                redact(v, k);
            }
        }
        serde_json::Value::String(s) if !s.is_empty() => {
            let secret = ["secret", "password", "token", "pem", "encryption_key"].iter().any(|w| key.contains(w));
            if secret {
                *s = "***".to_owned();
            } else if key == "url" || key.ends_with("_url") {
                *s = hometrip_kernel::db::redact_url(s);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_load() {
        let config = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml)).build();
        let settings: Result<Settings, _> = config.and_then(|c| c.try_deserialize());
        let Ok(settings) = settings else { panic!("defaults do not load: {settings:?}") };
        assert!(settings.check().is_ok());
        assert_eq!(settings.port(None), 3001);
        assert_eq!(settings.port(Some(4004)), 4004);
        assert!(settings.database_url().starts_with("sqlite://"));
    }

    #[test]
    fn secrets_are_redacted() {
        let mut v = serde_json::json!({"auth": {"jwt_private_key_pem": "KEY", "oauth": {"google": {"client_secret": "s", "client_id": "id"}}},
            "database": {"url": "postgres://u:pw@h/db"}, "services": {"token": "t"}});
        redact(&mut v, "");
        assert_eq!(v["auth"]["jwt_private_key_pem"], "***");
        assert_eq!(v["auth"]["oauth"]["google"]["client_secret"], "***");
        assert_eq!(v["auth"]["oauth"]["google"]["client_id"], "id");
        assert_eq!(v["services"]["token"], "***");
        assert_eq!(v["database"]["url"], "postgres://u:***@h/db");
    }
}
