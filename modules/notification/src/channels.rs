//! The channels that leave the platform: SMS (Twilio's Messages API, or
//! files under `<data_dir>/outbox/sms/`) and Web Push (RFC 8030, payloads
//! encrypted per RFC 8291 by `web-push-native`, VAPID per RFC 8292).

use std::path::PathBuf;

use base64::Engine as _;
use hmac::Mac as _;
use hometrip_kernel::outbound::{Outbound, Purpose};
use serde::Deserialize;

use crate::api::{PushSettings, TwilioSettings};

const TWILIO_API: &str = "https://api.twilio.com";

pub enum Sms {
    Files(PathBuf),
    Twilio { http: reqwest::Client, api_base: String, settings: TwilioSettings, status_callback: String },
}

#[derive(Deserialize)]
struct TwilioMessage {
    sid: String,
    status: Option<String>,
}

impl Sms {
    pub fn new(settings: &TwilioSettings, data_dir: &std::path::Path, public_url: &str) -> Result<Sms, String> {
        if settings.account_sid.trim().is_empty() {
            let dir = data_dir.join("outbox").join("sms");
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            return Ok(Sms::Files(dir));
        }
        if settings.auth_token.is_empty() || settings.from.is_empty() {
            return Err("notification.twilio: account_sid needs auth_token and from".to_owned());
        }
        let api_base = if settings.api_base.is_empty() { TWILIO_API } else { settings.api_base.as_str() };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Sms::Twilio {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
            settings: settings.clone(),
            status_callback: format!("{}{}", public_url.trim_end_matches('/'), TWILIO_WEBHOOK_PATH),
        })
    }

    /// Sends `body` to `to` (E.164); `id` names the delivery (its file, or
    /// Twilio's idempotency on our side). Twilio's message sid when sent there.
    pub async fn send(&self, id: &str, to: &str, body: &str) -> Result<Option<(String, String)>, String> {
        match self {
            Sms::Files(dir) => {
                let json = serde_json::json!({"to": to, "body": body}).to_string();
                let (path, tmp) = (dir.join(format!("{id}.json")), dir.join(format!(".{id}.json.tmp")));
                tokio::fs::write(&tmp, json).await.map_err(|e| e.to_string())?;
                tokio::fs::rename(&tmp, &path).await.map_err(|e| e.to_string())?;
                Ok(None)
            }
            Sms::Twilio { http, api_base, settings, status_callback } => {
                let url = format!("{api_base}/2010-04-01/Accounts/{}/Messages.json", settings.account_sid);
                let form =
                    [("To", to), ("From", settings.from.as_str()), ("Body", body), ("StatusCallback", status_callback)];
                let res = http
                    .post(url)
                    .basic_auth(&settings.account_sid, Some(&settings.auth_token))
                    .form(&form)
                    .send()
                    .await
                    .map_err(|e| format!("twilio: {e}"))?;
                let status = res.status();
                if !status.is_success() {
                    let text = res.text().await.unwrap_or_default();
                    return Err(format!("twilio answered {status}: {}", text.chars().take(300).collect::<String>()));
                }
                let m: TwilioMessage = res.json().await.map_err(|e| format!("twilio answer: {e}"))?;
                Ok(Some((m.sid, m.status.unwrap_or_else(|| "queued".to_owned()))))
            }
        }
    }

    pub fn auth_token(&self) -> Option<&str> {
        match self {
            Sms::Twilio { settings, .. } => Some(&settings.auth_token),
            Sms::Files(_) => None,
        }
    }
}

pub const TWILIO_WEBHOOK_PATH: &str = "/api/v1/notifications/webhooks/twilio";

/// Twilio's request signature: HMAC-SHA1 under the auth token of the full
/// URL followed by each POST parameter's name and value, sorted by name,
/// in base64.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()) else { return String::new() };
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// What a push service said.
pub enum PushOutcome {
    Delivered,
    /// 404 or 410: the subscription is gone for good.
    Gone,
}

pub struct Push {
    key: jsonwebtoken::EncodingKey,
    /// The uncompressed P-256 public key, base64url.
    pub public_key: String,
    subject: String,
    outbound: Outbound,
}

impl Push {
    pub fn new(
        settings: &PushSettings,
        data_dir: &std::path::Path,
        outbound: &hometrip_kernel::outbound::OutboundSettings,
    ) -> Result<Push, String> {
        use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
        let pem = if settings.vapid_private_key_pem.trim().is_empty() {
            let path = data_dir.join("keys").join("vapid.pem");
            hometrip_kernel::files::read_or_create_secret(&path, || {
                let key = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
                key.to_pkcs8_pem(LineEnding::LF).map(|p| p.to_string()).map_err(|e| e.to_string())
            })?
        } else {
            settings.vapid_private_key_pem.clone()
        };
        let secret = p256::SecretKey::from_pkcs8_pem(pem.trim())
            .map_err(|e| format!("notification.push.vapid_private_key_pem: {e}"))?;
        let public = secret.public_key();
        let encoded = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&public, false);
        let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.trim().as_bytes())
            .map_err(|e| format!("notification.push.vapid_private_key_pem: {e}"))?;
        let purpose = Purpose {
            user_agent: "HomeTrip push",
            timeout: std::time::Duration::from_secs(10),
            connect_timeout: std::time::Duration::from_secs(3),
            max_redirects: 0,
            allow_private: settings.allow_private_endpoints,
        };
        let subject =
            if settings.subject.is_empty() { "mailto:ops@hometrip.local".to_owned() } else { settings.subject.clone() };
        Ok(Push {
            key,
            public_key: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(encoded.as_bytes()),
            subject,
            outbound: Outbound::new(outbound, purpose)?,
        })
    }

    /// Whether pushes to `endpoint` would be allowed (the kernel's outbound rules).
    pub fn check_endpoint(&self, endpoint: &url::Url) -> Result<(), String> {
        self.outbound.check(endpoint).map_err(|e| e.to_string())
    }

    /// The VAPID JWT for an endpoint: audience its origin, valid 12 hours.
    fn vapid(&self, endpoint: &url::Url) -> Result<String, String> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            aud: String,
            exp: i64,
            sub: &'a str,
        }
        let aud = endpoint.origin().ascii_serialization();
        let claims = Claims { aud, exp: chrono::Utc::now().timestamp() + 12 * 3600, sub: &self.subject };
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256), &claims, &self.key)
            .map_err(|e| e.to_string())
    }

    pub async fn send(&self, endpoint: &str, p256dh: &str, auth: &str, payload: &[u8]) -> Result<PushOutcome, String> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let url = url::Url::parse(endpoint).map_err(|e| format!("endpoint: {e}"))?;
        let ua_public =
            p256::PublicKey::from_sec1_bytes(&b64.decode(p256dh.trim_end_matches('=')).map_err(|e| e.to_string())?)
                .map_err(|e| format!("p256dh: {e}"))?;
        let auth = b64.decode(auth.trim_end_matches('=')).map_err(|e| e.to_string())?;
        if auth.len() != 16 {
            return Err("auth: not 16 bytes".to_owned());
        }
        let builder = web_push_native::WebPushBuilder::new(
            endpoint.parse().map_err(|e| format!("endpoint: {e}"))?,
            ua_public,
            *web_push_native::Auth::from_slice(&auth),
        );
        let request = builder.build(payload.to_vec()).map_err(|e| e.to_string())?;
        let mut rb = self.outbound.request(reqwest::Method::POST, &url).map_err(|e| e.to_string())?;
        for (name, value) in request.headers() {
            rb = rb.header(name.as_str(), value.as_bytes());
        }
        let vapid = self.vapid(&url)?;
        rb = rb
            .header("authorization", format!("vapid t={vapid}, k={}", self.public_key))
            .header("urgency", "normal")
            .body(request.into_body());
        let res = self.outbound.send(rb).await.map_err(|e| e.to_string())?;
        match res.status().as_u16() {
            200..=299 => Ok(PushOutcome::Delivered),
            404 | 410 => Ok(PushOutcome::Gone),
            status => Err(format!("push service answered {status}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_signatures_follow_twilios_documented_example() {
        // The example of Twilio's "Webhooks security" page.
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(
            twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }
}
