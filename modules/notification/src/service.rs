//! The notification service: account-security emails straight from auth's
//! events (over SMTP when configured, else as `.eml` files under
//! `<data_dir>/outbox/mail/`, readable by the server's user only: they hold
//! single-use links); the catalogue's notifications from the other modules'
//! events go through `deliver`, the user's own settings through `inbox`.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use hometrip_auth::api::{
    AccountEvent, EmailTokenIssued, ImpersonationStarted, EMAIL_VERIFICATION_REQUESTED, IMPERSONATION_STARTED,
    PASSWORD_CHANGED, PASSWORD_RESET_REQUESTED, TWO_FACTOR_DISABLED,
};
use hometrip_booking::api::Bookings;
use hometrip_kernel::db::Db;
use hometrip_kernel::events::{Envelope, EventBus, EventHandler};
use hometrip_kernel::jobs::{JobHandler, Scheduler};
use hometrip_kernel::sealed::Sealer;
use hometrip_listing::api::Listings;
use hometrip_user::api::Users;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::api::NotificationSettings;
use crate::channels::{Push, Sms};
use crate::domain::{self, Template};

enum Mailer {
    Files(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// What the notification module is built from.
pub struct NotificationDeps {
    pub settings: NotificationSettings,
    pub data_dir: PathBuf,
    pub public_url: String,
    pub db: Db,
    pub bus: Arc<EventBus>,
    pub jobs: Arc<Scheduler>,
    pub users: Arc<dyn Users>,
    pub listings: Arc<dyn Listings>,
    pub bookings: Arc<dyn Bookings>,
    pub outbound: hometrip_kernel::outbound::OutboundSettings,
    /// Opens the tokens auth seals into its events (the deployment's service credential).
    pub sealer: Sealer,
}

pub struct NotificationService {
    mailer: Mailer,
    from: Mailbox,
    pub(crate) users: Arc<dyn Users>,
    pub(crate) listings: Arc<dyn Listings>,
    pub(crate) bookings: Arc<dyn Bookings>,
    pub(crate) public_url: String,
    sealer: Sealer,
    pub(crate) db: Db,
    pub(crate) bus: Arc<EventBus>,
    pub(crate) jobs: Arc<Scheduler>,
    pub(crate) sms: Sms,
    pub(crate) push: Push,
    pub(crate) settings: NotificationSettings,
}

impl NotificationService {
    pub fn new(deps: NotificationDeps) -> Result<Arc<Self>, String> {
        let settings = &deps.settings;
        let from: Mailbox = settings.from.parse().map_err(|e| format!("notification.from: {e}"))?;
        let mailer = if settings.smtp.url.trim().is_empty() {
            let dir = deps.data_dir.join("outbox").join("mail");
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            Mailer::Files(dir)
        } else {
            let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.smtp.url)
                .map_err(|e| format!("notification.smtp.url: {e}"))?
                .build();
            Mailer::Smtp(transport)
        };
        let sms = Sms::new(&settings.twilio, &deps.data_dir, &deps.public_url)?;
        let push = Push::new(&settings.push, &deps.data_dir, &deps.outbound)?;
        Ok(Arc::new(NotificationService {
            mailer,
            from,
            users: deps.users,
            listings: deps.listings,
            bookings: deps.bookings,
            public_url: deps.public_url,
            sealer: deps.sealer,
            db: deps.db,
            bus: deps.bus,
            jobs: deps.jobs,
            sms,
            push,
            settings: deps.settings,
        }))
    }

    pub async fn subscribe(self: &Arc<Self>, bus: &EventBus) {
        let handler: Arc<dyn EventHandler> = Arc::clone(self) as Arc<dyn EventHandler>;
        bus.subscribe(
            "notification.email",
            &[
                EMAIL_VERIFICATION_REQUESTED,
                PASSWORD_RESET_REQUESTED,
                PASSWORD_CHANGED,
                TWO_FACTOR_DISABLED,
                IMPERSONATION_STARTED,
            ],
            Arc::clone(&handler),
        )
        .await;
        bus.subscribe("notification.activity", crate::deliver::ACTIVITY_EVENTS, Arc::clone(&handler)).await;
        // Never published: the subscriber of parked deliveries, for replays.
        bus.subscribe(crate::deliver::DELIVERIES, &[crate::deliver::DELIVERY_FAILED], handler).await;
        let jobs = Arc::clone(self) as Arc<dyn JobHandler>;
        self.jobs.register(crate::deliver::DELIVER_JOB, Arc::clone(&jobs)).await;
        self.jobs.register(crate::deliver::DIGEST_JOB, Arc::clone(&jobs)).await;
        self.jobs.register(crate::deliver::REMINDER_JOB, jobs).await;
    }

    pub(crate) async fn send(&self, id: &str, to: &str, rendered: domain::Rendered) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|e| format!("recipient: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(format!("<{id}@hometrip>")))
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(rendered.text))
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(rendered.html)),
            )
            .map_err(|e| e.to_string())?;
        match &self.mailer {
            Mailer::Files(dir) => {
                // Named by event id: a redelivery rewrites the same file, never a second email.
                let path = dir.join(format!("{id}.eml"));
                let tmp = dir.join(format!(".{id}.eml.tmp"));
                write_private(&tmp, &message.formatted()).await.map_err(|e| e.to_string())?;
                tokio::fs::rename(&tmp, &path).await.map_err(|e| e.to_string())
            }
            Mailer::Smtp(transport) => transport.send(message).await.map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

/// Writes a file only its owner can read (0600): an email holds a single-use link.
async fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let (path, bytes) = (path.to_owned(), bytes.to_owned());
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path)?;
        // A leftover of an earlier attempt keeps its mode: set it again.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(&bytes)
    })
    .await
    .map_err(std::io::Error::other)?
}

impl NotificationService {
    /// A notice to the owner about a change to their account's security.
    /// The owner learns an admin is viewing their account: when, why, until when.
    async fn account_viewed(&self, event: &Envelope) -> Result<(), String> {
        let e: ImpersonationStarted = event.decode()?;
        let p = self.users.profile(e.user_id).await.map_err(|p| p.to_string())?.ok_or("profile not found")?;
        let (when, until) = (
            event.occurred_at.0.format("%Y-%m-%d %H:%M UTC").to_string(),
            e.expires_at.0.format("%H:%M UTC").to_string(),
        );
        let said = if p.locale == "fr" {
            format!("le {when} jusqu'à {until}, motif : {}", e.reason)
        } else {
            format!("on {when} until {until}, reason: {}", e.reason)
        };
        let link = domain::link(&self.public_url, Template::AccountViewed, "");
        let rendered = domain::render(Template::AccountViewed, &p.locale, &p.display_name, &link, &said);
        self.send(&event.id.to_string(), &p.email, rendered).await
    }

    async fn account_notice(&self, event: &Envelope, template: Template) -> Result<(), String> {
        let e: AccountEvent = event.decode()?;
        // Retried (then parked) if the profile is not there yet: it carries the address.
        let p = self.users.profile(e.user_id).await.map_err(|p| p.to_string())?.ok_or("profile not found")?;
        let when = event.occurred_at.0.format("%Y-%m-%d %H:%M UTC").to_string();
        let when = if p.locale == "fr" { format!("le {when}") } else { format!("on {when}") };
        let rendered =
            domain::render(template, &p.locale, &p.display_name, &domain::link(&self.public_url, template, ""), &when);
        self.send(&event.id.to_string(), &p.email, rendered).await
    }
}

#[async_trait]
impl EventHandler for NotificationService {
    async fn handle(&self, event: &Envelope) -> Result<(), String> {
        let template = match event.event_type.as_str() {
            EMAIL_VERIFICATION_REQUESTED => Template::VerifyEmail,
            PASSWORD_RESET_REQUESTED => Template::ResetPassword,
            PASSWORD_CHANGED => return self.account_notice(event, Template::PasswordChanged).await,
            TWO_FACTOR_DISABLED => return self.account_notice(event, Template::TwoFactorDisabled).await,
            IMPERSONATION_STARTED => return self.account_viewed(event).await,
            crate::deliver::DELIVERY_FAILED => return self.redeliver(event).await,
            _ => return self.activity(event).await,
        };
        let e: EmailTokenIssued = event.decode()?;
        // Not retryable: a value that does not open never will (wrong credential or tampered).
        let token = self
            .sealer
            .open(&EmailTokenIssued::seal_context(&event.event_type, e.user_id), &e.sealed_token)
            .map_err(|err| format!("email token: {err}"))?;
        // The profile's language wins; the one given at sign-up covers a profile not made yet.
        let profile = self.users.profile(e.user_id).await.map_err(|p| p.to_string())?;
        let (locale, name) = match &profile {
            Some(p) => (p.locale.clone(), p.display_name.clone()),
            None => (e.locale.clone(), e.display_name.clone()),
        };
        // Rounded to the minute: the token's expiry is set a few microseconds before the event.
        let minutes = ((e.expires_at.0 - event.occurred_at.0).num_seconds() + 30).max(60) / 60;
        let rendered = domain::render(
            template,
            &locale,
            &name,
            &domain::link(&self.public_url, template, &token),
            &domain::human_duration(minutes, &locale),
        );
        self.send(&event.id.to_string(), &e.email, rendered).await
    }
}
