//! Stripe as the payment provider, through async-stripe: PaymentIntents
//! (automatic capture for instant book, manual for requests to book), refunds,
//! Connect Express accounts with onboarding links, transfers to hosts — every
//! mutating call with an idempotency key — and the webhook's signature check
//! and event parsing.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use hometrip_kernel::Id;
use serde::Deserialize;
use sha2::Sha256;
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_connect::account::{CreateAccount, CreateAccountType, RetrieveAccount};
use stripe_connect::account_link::{CreateAccountLink, CreateAccountLinkType};
use stripe_connect::transfer::CreateTransfer;
use stripe_core::payment_intent::{
    CancelPaymentIntent, CapturePaymentIntent, CreatePaymentIntent, RetrievePaymentIntent,
};
use stripe_core::refund::CreateRefund;
use stripe_shared::{PaymentIntentCaptureMethod, PaymentIntentStatus};

use crate::api::{Breakdown, CaptureMethod, PaymentStatus, StripeSettings};
use crate::gateway::{
    AccountStatus, GatewayError, GatewayEvent, Intent, IntentRequest, PaymentGateway, ProviderRefund, PAYMENT_ID_KEY,
    REFUND_PARTS_KEY,
};

pub struct StripeGateway {
    client: Client,
    /// Where Stripe sends the guest back after 3-D Secure.
    return_url: String,
}

impl StripeGateway {
    pub fn new(settings: &StripeSettings, public_url: &str) -> Result<Self, String> {
        let mut builder = ClientBuilder::new(settings.secret_key.clone()).timeout(Duration::from_secs(20));
        if !settings.api_base.is_empty() {
            builder = builder.url(format!("{}/", settings.api_base.trim_end_matches('/')));
        }
        let client = builder.build().map_err(|e| format!("payment.stripe: {e}"))?;
        Ok(StripeGateway { client, return_url: format!("{}/trips", public_url.trim_end_matches('/')) })
    }
}

fn strategy(key: &str) -> Result<RequestStrategy, GatewayError> {
    IdempotencyKey::new(key)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| GatewayError::Invalid(format!("idempotency key: {e}")))
}

fn failure(e: StripeError) -> GatewayError {
    match e {
        // 409: the same idempotency key is still being processed (a double
        // click, a retry racing the first call): not an answer, ask again later.
        StripeError::Stripe(_, 409) => GatewayError::Unavailable("Stripe is still processing this request".to_owned()),
        StripeError::Stripe(api, status) if (400..500).contains(&status) && status != 429 => {
            GatewayError::Invalid(api.message.clone().unwrap_or_else(|| format!("Stripe answered {status}")))
        }
        other => GatewayError::Unavailable(other.to_string()),
    }
}

fn currency(code: &str) -> Result<stripe_types::Currency, GatewayError> {
    code.to_ascii_lowercase().parse().map_err(|_| GatewayError::Invalid(format!("unsupported currency {code}")))
}

fn status_of(s: &PaymentIntentStatus) -> PaymentStatus {
    match s {
        PaymentIntentStatus::Succeeded => PaymentStatus::Succeeded,
        PaymentIntentStatus::RequiresCapture => PaymentStatus::RequiresCapture,
        PaymentIntentStatus::RequiresAction | PaymentIntentStatus::RequiresConfirmation => {
            PaymentStatus::RequiresAction
        }
        PaymentIntentStatus::Canceled => PaymentStatus::Canceled,
        // Declined: Stripe asks for another payment method.
        PaymentIntentStatus::RequiresPaymentMethod => PaymentStatus::Failed,
        _ => PaymentStatus::Processing,
    }
}

fn intent_of(pi: &stripe_shared::PaymentIntent) -> Intent {
    let error = pi.last_payment_error.as_deref();
    let status = status_of(&pi.status);
    Intent {
        id: pi.id.to_string(),
        status,
        amount: pi.amount,
        payment_id: pi.metadata.get(PAYMENT_ID_KEY).and_then(|v| v.parse().ok()),
        next_action_url: pi.next_action.as_ref().and_then(|n| n.redirect_to_url.as_ref()).and_then(|r| r.url.clone()),
        failure_code: (status == PaymentStatus::Failed)
            .then(|| error.and_then(|e| e.decline_code.clone().or_else(|| e.code.as_ref().map(|c| c.to_string()))))
            .flatten(),
        failure_message: (status == PaymentStatus::Failed).then(|| error.and_then(|e| e.message.clone())).flatten(),
    }
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    fn name(&self) -> &'static str {
        "stripe"
    }

    async fn create_intent(&self, req: &IntentRequest) -> Result<Intent, GatewayError> {
        let metadata = HashMap::from([
            (PAYMENT_ID_KEY.to_owned(), req.payment_id.to_string()),
            ("hometrip_booking_id".to_owned(), req.booking_id.to_string()),
        ]);
        let capture = match req.capture {
            CaptureMethod::Automatic => PaymentIntentCaptureMethod::Automatic,
            CaptureMethod::Manual => PaymentIntentCaptureMethod::Manual,
        };
        let answer = CreatePaymentIntent::new(req.amount, currency(&req.currency)?)
            .capture_method(capture)
            .confirm(true)
            .payment_method(req.payment_method.clone())
            .return_url(self.return_url.clone())
            .metadata(metadata)
            .customize()
            .request_strategy(strategy(&req.idempotency_key)?)
            .send(&self.client)
            .await;
        match answer {
            Ok(pi) => Ok(intent_of(&pi)),
            // A decline is an answer (402 card_error), with the intent when Stripe made one.
            Err(StripeError::Stripe(api, 402)) => Ok(match &api.payment_intent {
                Some(pi) => Intent {
                    failure_code: api.decline_code.clone().or_else(|| api.code.as_ref().map(|c| c.to_string())),
                    failure_message: api.message.clone(),
                    ..intent_of(pi)
                },
                None => Intent {
                    id: format!("declined_{}", req.payment_id),
                    status: PaymentStatus::Failed,
                    amount: req.amount,
                    payment_id: Some(req.payment_id),
                    next_action_url: None,
                    failure_code: api.decline_code.clone().or_else(|| api.code.as_ref().map(|c| c.to_string())),
                    failure_message: api.message.clone(),
                },
            }),
            Err(e) => Err(failure(e)),
        }
    }

    async fn retrieve_intent(&self, id: &str) -> Result<Intent, GatewayError> {
        RetrievePaymentIntent::new(id).send(&self.client).await.map(|pi| intent_of(&pi)).map_err(failure)
    }

    async fn capture(&self, id: &str, idempotency_key: &str) -> Result<Intent, GatewayError> {
        CapturePaymentIntent::new(id)
            .customize()
            .request_strategy(strategy(idempotency_key)?)
            .send(&self.client)
            .await
            .map(|pi| intent_of(&pi))
            .map_err(failure)
    }

    async fn cancel(&self, id: &str, idempotency_key: &str) -> Result<Intent, GatewayError> {
        CancelPaymentIntent::new(id)
            .customize()
            .request_strategy(strategy(idempotency_key)?)
            .send(&self.client)
            .await
            .map(|pi| intent_of(&pi))
            .map_err(failure)
    }

    async fn refund(
        &self,
        intent_id: &str,
        parts: &Breakdown,
        idempotency_key: &str,
    ) -> Result<ProviderRefund, GatewayError> {
        let encoded = serde_json::to_string(parts).map_err(|e| GatewayError::Invalid(e.to_string()))?;
        let refund = CreateRefund::new()
            .payment_intent(intent_id.to_owned())
            .amount(parts.total())
            .metadata(HashMap::from([(REFUND_PARTS_KEY.to_owned(), encoded)]))
            .customize()
            .request_strategy(strategy(idempotency_key)?)
            .send(&self.client)
            .await
            .map_err(failure)?;
        Ok(ProviderRefund {
            id: refund.id.to_string(),
            intent_id: intent_id.to_owned(),
            amount: refund.amount,
            parts: Some(*parts),
        })
    }

    async fn transfer(
        &self,
        account: &str,
        amount: i64,
        code: &str,
        idempotency_key: &str,
    ) -> Result<String, GatewayError> {
        CreateTransfer::new(currency(code)?, account.to_owned())
            .amount(amount)
            .customize()
            .request_strategy(strategy(idempotency_key)?)
            .send(&self.client)
            .await
            .map(|t| t.id.to_string())
            .map_err(failure)
    }

    async fn create_account(
        &self,
        host_id: Id,
        email: Option<&str>,
        idempotency_key: &str,
    ) -> Result<String, GatewayError> {
        let mut create = CreateAccount::new()
            .type_(CreateAccountType::Express)
            .metadata(HashMap::from([("hometrip_host_id".to_owned(), host_id.to_string())]));
        if let Some(e) = email {
            create = create.email(e.to_owned());
        }
        create
            .customize()
            .request_strategy(strategy(idempotency_key)?)
            .send(&self.client)
            .await
            .map(|a| a.id.to_string())
            .map_err(failure)
    }

    async fn onboarding_link(
        &self,
        account: &str,
        refresh_url: &str,
        return_url: &str,
    ) -> Result<String, GatewayError> {
        CreateAccountLink::new(account.to_owned(), CreateAccountLinkType::AccountOnboarding)
            .refresh_url(refresh_url.to_owned())
            .return_url(return_url.to_owned())
            .customize()
            .request_strategy(strategy(&format!("hometrip-link-{}", Id::new()))?)
            .send(&self.client)
            .await
            .map(|l| l.url)
            .map_err(failure)
    }

    async fn account_status(&self, account: &str) -> Result<AccountStatus, GatewayError> {
        let a = RetrieveAccount::new(account.to_owned()).send(&self.client).await.map_err(failure)?;
        Ok(AccountStatus {
            id: a.id.to_string(),
            payouts_enabled: a.payouts_enabled.unwrap_or(false),
            details_submitted: a.details_submitted.unwrap_or(false),
        })
    }
}

// ---- Webhooks -------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header has no timestamp or no v1 signature")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    #[error("no v1 signature matches the payload")]
    Mismatch,
}

/// Checks a `Stripe-Signature` header (`t=<unix>,v1=<hex>[,v1=...]`): an
/// HMAC-SHA256 with the endpoint's secret over `"<t>.<payload>"`, any of the
/// `v1` values may match (secrets being rolled), and `t` within `tolerance`
/// seconds of `now` (replays of old deliveries are refused).
pub fn verify_signature(
    payload: &[u8],
    header: Option<&str>,
    secret: &str,
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp: Option<i64> = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse().ok(),
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now_unix - t).abs() > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    for candidate in &signatures {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| SignatureError::Mismatch)?;
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        // Constant-time comparison.
        if mac.verify_slice(candidate).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

#[derive(Debug, Deserialize)]
struct WebhookEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    data: WebhookData,
}

#[derive(Debug, Deserialize)]
struct WebhookData {
    object: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct IntentObject {
    id: String,
    status: String,
    amount: i64,
    #[serde(default)]
    metadata: HashMap<String, String>,
    #[serde(default)]
    next_action: Option<serde_json::Value>,
    #[serde(default)]
    last_payment_error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct RefundObject {
    id: String,
    amount: i64,
    payment_intent: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct AccountObject {
    id: String,
    #[serde(default)]
    payouts_enabled: bool,
    #[serde(default)]
    details_submitted: bool,
}

/// A webhook delivery: its event id and what it tells us, or `None` for an
/// event type HomeTrip does not act on (acknowledged all the same).
pub fn parse_event(payload: &[u8]) -> Result<(String, String, Option<GatewayEvent>), String> {
    let event: WebhookEvent = serde_json::from_slice(payload).map_err(|e| format!("not a Stripe event: {e}"))?;
    let object = event.data.object;
    let parsed = match event.event_type.as_str() {
        t if t.starts_with("payment_intent.") => {
            let pi: IntentObject = serde_json::from_value(object).map_err(|e| format!("{t}: {e}"))?;
            let status = match pi.status.as_str() {
                "succeeded" => PaymentStatus::Succeeded,
                "requires_capture" => PaymentStatus::RequiresCapture,
                "requires_action" | "requires_confirmation" => PaymentStatus::RequiresAction,
                "canceled" => PaymentStatus::Canceled,
                "requires_payment_method" => PaymentStatus::Failed,
                _ => PaymentStatus::Processing,
            };
            let error = |key: &str| {
                pi.last_payment_error.as_ref().and_then(|e| e.get(key)).and_then(|v| v.as_str()).map(str::to_owned)
            };
            Some(GatewayEvent::Intent(Intent {
                payment_id: pi.metadata.get(PAYMENT_ID_KEY).and_then(|v| v.parse().ok()),
                next_action_url: pi
                    .next_action
                    .as_ref()
                    .and_then(|n| n.pointer("/redirect_to_url/url"))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
                failure_code: (status == PaymentStatus::Failed)
                    .then(|| error("decline_code").or_else(|| error("code")))
                    .flatten(),
                failure_message: (status == PaymentStatus::Failed).then(|| error("message")).flatten(),
                id: pi.id,
                status,
                amount: pi.amount,
            }))
        }
        "refund.created" | "refund.updated" | "charge.refund.updated" => {
            let r: RefundObject = serde_json::from_value(object).map_err(|e| format!("refund: {e}"))?;
            match (r.payment_intent, r.status.as_deref()) {
                (Some(intent_id), None | Some("succeeded") | Some("pending")) => {
                    Some(GatewayEvent::Refund(ProviderRefund {
                        id: r.id,
                        intent_id,
                        amount: r.amount,
                        parts: r.metadata.get(REFUND_PARTS_KEY).and_then(|p| serde_json::from_str(p).ok()),
                    }))
                }
                _ => None,
            }
        }
        "account.updated" => {
            let a: AccountObject = serde_json::from_value(object).map_err(|e| format!("account: {e}"))?;
            Some(GatewayEvent::Account(AccountStatus {
                id: a.id,
                payouts_enabled: a.payouts_enabled,
                details_submitted: a.details_submitted,
            }))
        }
        _ => None,
    };
    Ok((event.id, event.event_type, parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, payload: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
        mac.update(format!("{t}.").as_bytes());
        mac.update(payload);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn signatures_are_checked_like_stripe_does() {
        let body = br#"{"id":"evt_1"}"#;
        let good = sign("whsec_a", 1_000, body);
        let other = sign("whsec_b", 1_000, body);
        let header = format!("t=1000,v1={other},v1={good},v0=ignored");
        assert_eq!(verify_signature(body, Some(&header), "whsec_a", 1_100, 300), Ok(()));
        assert_eq!(verify_signature(body, Some(&header), "whsec_a", 1_400, 300), Err(SignatureError::Stale));
        assert_eq!(verify_signature(b"{}", Some(&header), "whsec_a", 1_100, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(body, Some("v1=00"), "whsec_a", 1_100, 300), Err(SignatureError::Malformed));
        assert_eq!(verify_signature(body, None, "whsec_a", 1_100, 300), Err(SignatureError::Missing));
    }

    #[test]
    fn webhook_events_become_gateway_events() {
        let body = serde_json::json!({"id": "evt_2", "type": "payment_intent.payment_failed", "data": {"object": {
            "id": "pi_1", "object": "payment_intent", "status": "requires_payment_method", "amount": 5000,
            "metadata": {"hometrip_payment_id": "01930000-0000-7000-8000-000000000000"},
            "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds", "message": "No."}}}});
        let (id, kind, event) = parse_event(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((id.as_str(), kind.as_str()), ("evt_2", "payment_intent.payment_failed"));
        let Some(GatewayEvent::Intent(i)) = event else { panic!("not an intent: {event:?}") };
        assert_eq!(i.status, PaymentStatus::Failed);
        assert_eq!(i.failure_code.as_deref(), Some("insufficient_funds"));
        assert!(i.payment_id.is_some());
        let ignored = serde_json::json!({"id": "evt_3", "type": "customer.created", "data": {"object": {}}});
        assert!(matches!(parse_event(ignored.to_string().as_bytes()), Ok((_, _, None))));
        assert!(parse_event(b"not json").is_err());
    }
}
