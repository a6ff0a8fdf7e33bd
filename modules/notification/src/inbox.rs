//! What users do with their notifications: read them, choose channels and
//! quiet hours, verify a phone number for SMS, subscribe browsers to push;
//! and Twilio's status callbacks.

use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{ErrorCode, FieldError, Id, Problem};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::api::{NotificationCenter, NotificationList};
use crate::catalogue;
use crate::channels::TWILIO_WEBHOOK_PATH;
use crate::deliver::{db_err, view};
use crate::service::NotificationService;
use crate::store::{self, PhoneRow, PreferencesRow, SubscriptionRow};

const CODE_VALID_MINUTES: i64 = 10;
const CODE_ATTEMPTS: i32 = 5;

pub use crate::api::{PhoneStatus, PreferencesBody, QuietHours};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionKeys {
    pub p256dh: String,
    pub auth: String,
}

/// A browser's `PushSubscription`, as `toJSON()` gives it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PushSubscriptionBody {
    pub endpoint: String,
    pub keys: SubscriptionKeys,
    #[serde(default, rename = "expirationTime")]
    pub expiration_time: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Subscription {
    pub id: Id,
    pub endpoint: String,
    pub created_at: Instant,
}

fn code_hash(user: Id, code: &str) -> String {
    hex::encode(sha2::Sha256::digest(format!("{user}:{code}").as_bytes()))
}

impl NotificationService {
    pub async fn list(
        &self,
        user: Id,
        unread: bool,
        cursor: Option<Id>,
        limit: i64,
    ) -> Result<NotificationList, Problem> {
        let rows = store::list(&self.db, user, unread, cursor, limit).await.map_err(db_err)?;
        let next_cursor = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.id.to_string())).flatten();
        let unread_count = store::unread_count(&self.db, user).await.map_err(db_err)?;
        Ok(NotificationList { items: rows.iter().map(view).collect(), unread_count, next_cursor })
    }

    pub async fn read(&self, user: Id, id: Option<Id>) -> Result<(), Problem> {
        if let Some(id) = id {
            if !store::exists(&self.db, user, id).await.map_err(db_err)? {
                return Err(Problem::not_found("notification"));
            }
        }
        store::mark_read(&self.db, user, id, Instant::now()).await.map_err(db_err)?;
        Ok(())
    }

    pub async fn preferences(&self, user: Id) -> Result<PreferencesBody, Problem> {
        let prefs = self.preferences_of(user).await?;
        let hhmm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        Ok(PreferencesBody {
            channels: prefs.channels,
            quiet_hours: prefs.quiet.map(|(f, t)| QuietHours { from: hhmm(f), to: hhmm(t) }),
            time_zone: Some(prefs.time_zone.name().to_owned()),
        })
    }

    pub async fn set_preferences(&self, user: Id, body: PreferencesBody) -> Result<PreferencesBody, Problem> {
        let mut errors = Vec::new();
        for (kind, channels) in &body.channels {
            if !catalogue::is_kind(kind) {
                errors.push(FieldError::new(format!("channels.{kind}"), "unknown notification kind"));
            } else if catalogue::is_security(kind) && !channels.email {
                errors.push(FieldError::new(format!("channels.{kind}.email"), "security emails cannot be turned off"));
            }
        }
        let quiet = match &body.quiet_hours {
            None => None,
            Some(q) => match (catalogue::parse_hhmm(&q.from), catalogue::parse_hhmm(&q.to)) {
                (Some(_), Some(_)) if q.from != q.to => Some((q.from.clone(), q.to.clone())),
                _ => {
                    errors.push(FieldError::new("quiet_hours", "from and to are different HH:MM times"));
                    None
                }
            },
        };
        let time_zone = body.time_zone.clone().unwrap_or_else(|| "UTC".to_owned());
        if time_zone.parse::<chrono_tz::Tz>().is_err() {
            errors.push(FieldError::new("time_zone", "not an IANA time zone"));
        }
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
        let row = PreferencesRow {
            user_id: user,
            channels: serde_json::to_string(&body.channels).map_err(Problem::internal)?,
            quiet_from: quiet.as_ref().map(|q| q.0.clone()),
            quiet_to: quiet.map(|q| q.1),
            time_zone,
            updated_at: Instant::now(),
        };
        store::save_preferences(&self.db, &row).await.map_err(db_err)?;
        self.preferences(user).await
    }

    /// Starts verifying `phone`: a 6-digit code goes to it by SMS.
    /// `GET /users/me/phone`: the number SMS go to, if any.
    pub async fn phone_of(&self, user: Id) -> Result<Option<PhoneStatus>, Problem> {
        let row = store::phone(&self.db, user).await.map_err(db_err)?;
        Ok(row.map(|r| PhoneStatus { phone: r.phone, verified: r.verified }))
    }

    pub async fn set_phone(&self, user: Id, phone: &str) -> Result<PhoneStatus, Problem> {
        let e164 = e164(phone)
            .ok_or_else(|| Problem::field("phone", "not a valid phone number in E.164 form (+33612345678)"))?;
        if let Some(current) = store::phone(&self.db, user).await.map_err(db_err)? {
            // One code a minute.
            if current
                .code_expires_at
                .is_some_and(|at| at.minus(chrono::Duration::minutes(CODE_VALID_MINUTES - 1)) > Instant::now())
            {
                return Err(
                    Problem::new(ErrorCode::RateLimited, "a code was sent less than a minute ago").retry_after(60)
                );
            }
        }
        let code = format!("{:06}", rand::random::<u32>() % 1_000_000);
        let row = PhoneRow {
            user_id: user,
            phone: e164.clone(),
            verified: false,
            code_hash: Some(code_hash(user, &code)),
            code_expires_at: Some(Instant::now().plus(chrono::Duration::minutes(CODE_VALID_MINUTES))),
            attempts: 0,
            updated_at: Instant::now(),
        };
        store::save_phone(&self.db, &row).await.map_err(db_err)?;
        let locale = self.users.profile(user).await?.map(|p| p.locale).unwrap_or_default();
        let text = if locale == "fr" {
            format!("HomeTrip : votre code de vérification est {code}. Il expire dans {CODE_VALID_MINUTES} minutes.")
        } else {
            format!("HomeTrip: your verification code is {code}. It expires in {CODE_VALID_MINUTES} minutes.")
        };
        let sent = self.sms.send(&format!("phone-{user}-{}", Id::new()), &e164, &text).await.map_err(|e| {
            tracing::warn!(error = %e, "verification SMS not sent");
            Problem::new(ErrorCode::BadGateway, "the SMS could not be sent; try again")
        })?;
        if let Some((sid, status)) = sent {
            store::record_sms(&self.db, &sid, user, &status).await.map_err(db_err)?;
        }
        Ok(PhoneStatus { phone: e164, verified: false })
    }

    pub async fn verify_phone(&self, user: Id, code: &str) -> Result<PhoneStatus, Problem> {
        let wrong = || Problem::field("code", "wrong or expired code");
        let mut row =
            store::phone(&self.db, user).await.map_err(db_err)?.ok_or_else(|| Problem::not_found("phone number"))?;
        if row.verified {
            return Ok(PhoneStatus { phone: row.phone, verified: true });
        }
        let live = row.code_expires_at.is_some_and(|at| at > Instant::now()) && row.attempts < CODE_ATTEMPTS;
        if !live {
            return Err(wrong());
        }
        let given = code_hash(user, code.trim());
        let matches = row
            .code_hash
            .as_deref()
            .is_some_and(|h| hometrip_kernel::http::constant_time_eq(h.as_bytes(), given.as_bytes()));
        if !matches {
            row.attempts += 1;
            store::save_phone(&self.db, &row).await.map_err(db_err)?;
            return Err(wrong());
        }
        row.verified = true;
        row.code_hash = None;
        row.code_expires_at = None;
        row.updated_at = Instant::now();
        store::save_phone(&self.db, &row).await.map_err(db_err)?;
        Ok(PhoneStatus { phone: row.phone, verified: true })
    }

    pub fn push_key(&self) -> String {
        self.push.public_key.clone()
    }

    pub async fn subscribe_push(&self, user: Id, body: PushSubscriptionBody) -> Result<Subscription, Problem> {
        let url = url::Url::parse(&body.endpoint).map_err(|_| Problem::field("endpoint", "not a URL"))?;
        if url.scheme() != "https" && !(self.settings.push.allow_private_endpoints && url.scheme() == "http") {
            return Err(Problem::field("endpoint", "push endpoints are https URLs"));
        }
        if self.push.check_endpoint(&url).is_err() {
            return Err(Problem::field("endpoint", "push endpoints are on public addresses"));
        }
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let key_ok = b64.decode(body.keys.p256dh.trim_end_matches('=')).is_ok_and(|k| k.len() == 65 && k[0] == 4);
        let auth_ok = b64.decode(body.keys.auth.trim_end_matches('=')).is_ok_and(|a| a.len() == 16);
        if !key_ok || !auth_ok {
            return Err(Problem::field(
                "keys",
                "p256dh is an uncompressed P-256 point and auth 16 bytes, in base64url",
            ));
        }
        let row = SubscriptionRow {
            id: Id::new(),
            user_id: user,
            endpoint: body.endpoint,
            p256dh: body.keys.p256dh,
            auth: body.keys.auth,
            created_at: Instant::now(),
        };
        let row = store::add_subscription(&self.db, &row).await.map_err(db_err)?;
        Ok(Subscription { id: row.id, endpoint: row.endpoint, created_at: row.created_at })
    }

    pub async fn push_subscriptions(&self, user: Id) -> Result<Vec<Subscription>, Problem> {
        let rows = store::subscriptions(&self.db, user).await.map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|r| Subscription { id: r.id, endpoint: r.endpoint, created_at: r.created_at })
            .collect())
    }

    pub async fn unsubscribe_push(&self, user: Id, id: Id) -> Result<(), Problem> {
        if store::delete_subscription(&self.db, id, Some(user)).await.map_err(db_err)? {
            Ok(())
        } else {
            Err(Problem::not_found("subscription"))
        }
    }

    /// A Twilio status callback, checked against `X-Twilio-Signature`.
    pub async fn twilio_status(&self, signature: Option<&str>, params: Vec<(String, String)>) -> Result<(), Problem> {
        let forbidden = || Problem::forbidden("the request is not signed by Twilio");
        let token = self.sms.auth_token().ok_or_else(forbidden)?;
        let url = format!("{}{TWILIO_WEBHOOK_PATH}", self.public_url.trim_end_matches('/'));
        let expected = crate::channels::twilio_signature(token, &url, &params);
        let given = signature.ok_or_else(forbidden)?;
        if !hometrip_kernel::http::constant_time_eq(expected.as_bytes(), given.as_bytes()) {
            return Err(forbidden());
        }
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let (Some(sid), Some(status)) = (get("MessageSid"), get("MessageStatus")) else {
            return Err(Problem::field("MessageSid", "MessageSid and MessageStatus are required"));
        };
        // Callbacks of messages we did not send are acknowledged and ignored.
        store::update_sms_status(&self.db, &sid, &status).await.map_err(db_err)?;
        Ok(())
    }

    pub async fn sms_status(&self, sid: &str) -> Result<Option<String>, Problem> {
        store::sms_status(&self.db, sid).await.map_err(db_err)
    }
}

/// `phone` in E.164 if it is a valid number written in international form.
fn e164(phone: &str) -> Option<String> {
    let trimmed = phone.trim();
    if !trimmed.starts_with('+') {
        return None;
    }
    let parsed = rlibphonenumber::PhoneNumber::parse(trimmed, None).ok()?;
    parsed.is_valid().then(|| parsed.format_as(rlibphonenumber::PhoneNumberFormat::E164).into_owned())
}

/// [`NotificationCenter`] in process: the notifications page calls the same
/// use cases as the API's routes.
#[async_trait::async_trait]
impl NotificationCenter for NotificationService {
    async fn list(
        &self,
        user: &AuthUser,
        unread_only: bool,
        cursor: Option<Id>,
        limit: u32,
    ) -> Result<NotificationList, Problem> {
        let limit = hometrip_kernel::http::PageQuery { limit: Some(limit), cursor: None }.limit()?;
        NotificationService::list(self, user.id, unread_only, cursor, limit).await
    }

    async fn mark_read(&self, user: &AuthUser, id: Option<Id>) -> Result<(), Problem> {
        NotificationService::read(self, user.id, id).await
    }
}

#[async_trait::async_trait]
impl crate::api::NotificationPreferences for NotificationService {
    async fn preferences(&self, user: &AuthUser) -> Result<PreferencesBody, Problem> {
        NotificationService::preferences(self, user.id).await
    }

    async fn set_preferences(&self, user: &AuthUser, prefs: &PreferencesBody) -> Result<PreferencesBody, Problem> {
        NotificationService::set_preferences(self, user.id, prefs.clone()).await
    }

    async fn phone(&self, user: &AuthUser) -> Result<Option<PhoneStatus>, Problem> {
        self.phone_of(user.id).await
    }

    async fn set_phone(&self, user: &AuthUser, phone: &str) -> Result<PhoneStatus, Problem> {
        NotificationService::set_phone(self, user.id, phone).await
    }

    async fn verify_phone(&self, user: &AuthUser, code: &str) -> Result<PhoneStatus, Problem> {
        NotificationService::verify_phone(self, user.id, code).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_taken_in_international_form_only() {
        assert_eq!(e164("+33 6 12 34 56 78").as_deref(), Some("+33612345678"));
        assert_eq!(e164("+1 415 555 2671").as_deref(), Some("+14155552671"));
        assert_eq!(e164("06 12 34 56 78"), None);
        assert_eq!(e164("+33 1"), None);
    }
}
