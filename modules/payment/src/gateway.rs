//! The payment provider behind a trait: the simulated provider (the embedded
//! default, Stripe's test cards offline) and Stripe. Both report state changes
//! as [`GatewayEvent`]s, the way Stripe's webhooks do, into one handler.
//! The Stripe provider is in `stripe.rs`.

use std::sync::Arc;

use async_trait::async_trait;
use hometrip_kernel::db::prelude::*;
use hometrip_kernel::db::{Db, DbError};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{run, transaction, Id};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::api::{Breakdown, CaptureMethod, PaymentStatus};
use crate::store::schema::{sim_intents, sim_refunds};

#[derive(Debug, Clone)]
pub struct IntentRequest {
    pub payment_id: Id,
    pub booking_id: Id,
    pub amount: i64,
    pub currency: String,
    pub capture: CaptureMethod,
    pub payment_method: String,
    pub idempotency_key: String,
}

/// A provider's payment intent, as much of it as HomeTrip uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub id: String,
    pub status: PaymentStatus,
    pub amount: i64,
    /// Our payment id, from the intent's metadata.
    pub payment_id: Option<Id>,
    pub next_action_url: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderRefund {
    pub id: String,
    pub intent_id: String,
    pub amount: i64,
    /// The parts we asked for, carried in the refund's metadata, so a webhook
    /// that arrives before our API call returns records the same split.
    pub parts: Option<Breakdown>,
}

/// A host's payout account at the provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountStatus {
    pub id: String,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
}

/// What a provider tells us happened, from an API answer or a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GatewayEvent {
    Intent(Intent),
    Refund(ProviderRefund),
    Account(AccountStatus),
}

/// Metadata key of our payment id on a provider intent.
pub const PAYMENT_ID_KEY: &str = "hometrip_payment_id";
/// Metadata key of a refund's parts (JSON).
pub const REFUND_PARTS_KEY: &str = "hometrip_refund_parts";

#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// The request was wrong (unknown object, amount over the charge...).
    #[error("{0}")]
    Invalid(String),
    /// The provider did not answer, or failed: try again with the same key.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
}

/// Where a provider's events go (the payment service).
#[async_trait]
pub trait EventSink: Send + Sync {
    async fn deliver(&self, event_id: &str, event: GatewayEvent) -> Result<(), String>;
}

/// A payment provider. Every mutating call carries an idempotency key: the
/// same key returns the first answer, never a second charge.
#[async_trait]
pub trait PaymentGateway: Send + Sync {
    fn name(&self) -> &'static str;
    /// Creates and confirms an intent with the payment method.
    async fn create_intent(&self, req: &IntentRequest) -> Result<Intent, GatewayError>;
    async fn retrieve_intent(&self, id: &str) -> Result<Intent, GatewayError>;
    async fn capture(&self, id: &str, idempotency_key: &str) -> Result<Intent, GatewayError>;
    async fn cancel(&self, id: &str, idempotency_key: &str) -> Result<Intent, GatewayError>;
    async fn refund(
        &self,
        intent_id: &str,
        parts: &Breakdown,
        idempotency_key: &str,
    ) -> Result<ProviderRefund, GatewayError>;
    /// Sends money to a host's account; returns the transfer's reference.
    async fn transfer(
        &self,
        account: &str,
        amount: i64,
        currency: &str,
        idempotency_key: &str,
    ) -> Result<String, GatewayError>;
    /// Opens a payout account for a host (Connect Express).
    async fn create_account(
        &self,
        host_id: Id,
        email: Option<&str>,
        idempotency_key: &str,
    ) -> Result<String, GatewayError>;
    /// Where the host fills in their payout details.
    async fn onboarding_link(&self, account: &str, refresh_url: &str, return_url: &str)
        -> Result<String, GatewayError>;
    async fn account_status(&self, account: &str) -> Result<AccountStatus, GatewayError>;
}

// ---- The simulated provider -------------------------------------------------------

/// Stripe's test mode, offline: `pm_card_visa` (and the other succeeding test
/// cards) succeed, `pm_card_chargeDeclined` and friends decline with Stripe's
/// codes, `pm_card_authenticationRequired` needs 3-D Secure at
/// `next_action_url` first. Its intents live in the database, so a restart
/// keeps them, and every change is also delivered to the sink as a webhook
/// would be, a moment later.
pub struct SimulatedGateway {
    db: Db,
    public_url: String,
    sink: OnceCell<Arc<dyn EventSink>>,
}

#[derive(Queryable, Selectable, Insertable, Clone)]
#[diesel(table_name = sim_intents)]
struct SimIntent {
    id: String,
    idempotency_key: String,
    payment_id: Id,
    amount: i64,
    currency: String,
    capture_method: String,
    payment_method: String,
    status: String,
    failure_code: Option<String>,
    amount_refunded: i64,
    created_at: Instant,
}

/// What a test card does.
enum Card {
    Succeeds,
    Declines(&'static str),
    NeedsAuthentication,
}

fn card(payment_method: &str) -> Option<Card> {
    Some(match payment_method {
        "pm_card_visa" | "pm_card_mastercard" | "pm_card_amex" | "pm_card_visa_debit" => Card::Succeeds,
        "pm_card_chargeDeclined" => Card::Declines("card_declined"),
        "pm_card_chargeDeclinedInsufficientFunds" => Card::Declines("insufficient_funds"),
        "pm_card_chargeDeclinedExpiredCard" => Card::Declines("expired_card"),
        "pm_card_authenticationRequired" | "pm_card_threeDSecure2Required" => Card::NeedsAuthentication,
        _ => return None,
    })
}

/// Stripe's messages for its decline codes.
fn decline_message(code: &str) -> String {
    match code {
        "insufficient_funds" => "Your card has insufficient funds.",
        "expired_card" => "Your card has expired.",
        _ => "Your card was declined.",
    }
    .to_owned()
}

impl SimulatedGateway {
    pub fn new(db: Db, public_url: &str) -> Arc<Self> {
        Arc::new(SimulatedGateway {
            db,
            public_url: public_url.trim_end_matches('/').to_owned(),
            sink: OnceCell::new(),
        })
    }

    pub fn set_sink(&self, sink: Arc<dyn EventSink>) {
        let _ = self.sink.set(sink);
    }

    fn view(&self, i: &SimIntent) -> Intent {
        let status = PaymentStatus::parse(&i.status);
        Intent {
            id: i.id.clone(),
            status,
            amount: i.amount,
            payment_id: Some(i.payment_id),
            next_action_url: (status == PaymentStatus::RequiresAction)
                .then(|| format!("{}/api/v1/payments/simulated/{}/authenticate", self.public_url, i.id)),
            failure_code: i.failure_code.clone(),
            failure_message: i.failure_code.as_deref().map(decline_message),
        }
    }

    /// Delivers the event a webhook would carry, after the API answer.
    fn emit(&self, event: GatewayEvent) {
        if let Some(sink) = self.sink.get().cloned() {
            let id = format!("evt_sim_{}", Id::new().0.simple());
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                if let Err(e) = sink.deliver(&id, event).await {
                    tracing::warn!(error = %e, event = %id, "simulated webhook not handled");
                }
            });
        }
    }

    async fn load(&self, id: &str) -> Result<SimIntent, GatewayError> {
        self.find(id).await?.ok_or_else(|| GatewayError::Invalid(format!("No such payment_intent: '{id}'")))
    }

    async fn find(&self, id: &str) -> Result<Option<SimIntent>, GatewayError> {
        let id = id.to_owned();
        let found: Option<SimIntent> = run!(self.db, |conn| {
            sim_intents::table
                .find(&id)
                .select(SimIntent::as_select())
                .first(conn)
                .await
                .optional()
                .map_err(DbError::from)
        })
        .map_err(unavailable)?;
        Ok(found)
    }

    async fn set_status(&self, id: &str, from: &[&str], to: PaymentStatus) -> Result<Intent, GatewayError> {
        let current = self.load(id).await?;
        if current.status == to.as_str() {
            return Ok(self.view(&current));
        }
        if !from.contains(&current.status.as_str()) {
            return Err(GatewayError::Invalid(format!(
                "This PaymentIntent's status is {}, which does not allow this action",
                current.status
            )));
        }
        let key = id.to_owned();
        run!(self.db, |conn| {
            diesel::update(sim_intents::table.find(&key))
                .set(sim_intents::status.eq(to.as_str()))
                .execute(conn)
                .await
                .map_err(DbError::from)
        })
        .map_err(unavailable)?;
        let updated = self.load(id).await?;
        let intent = self.view(&updated);
        self.emit(GatewayEvent::Intent(intent.clone()));
        Ok(intent)
    }

    /// Completes 3-D Secure for an intent (the page the guest is sent to).
    /// `None` for an intent this provider never made.
    pub async fn authenticate(&self, id: &str) -> Result<Option<Intent>, GatewayError> {
        let Some(current) = self.find(id).await? else { return Ok(None) };
        let to = if current.capture_method == CaptureMethod::Manual.as_str() {
            PaymentStatus::RequiresCapture
        } else {
            PaymentStatus::Succeeded
        };
        self.set_status(id, &["requires_action"], to).await.map(Some)
    }
}

/// Deterministic per key: a replayed call names the same object.
fn digest(key: &str) -> String {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(key.as_bytes());
    hex::encode(digest)[..24].to_owned()
}

fn unavailable(e: DbError) -> GatewayError {
    GatewayError::Unavailable(e.to_string())
}

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    fn name(&self) -> &'static str {
        "simulated"
    }

    async fn create_intent(&self, req: &IntentRequest) -> Result<Intent, GatewayError> {
        let Some(card) = card(&req.payment_method) else {
            return Err(GatewayError::Invalid(format!("No such PaymentMethod: '{}'", req.payment_method)));
        };
        let (status, failure) = match card {
            Card::Succeeds if req.capture == CaptureMethod::Manual => (PaymentStatus::RequiresCapture, None),
            Card::Succeeds => (PaymentStatus::Succeeded, None),
            Card::Declines(code) => (PaymentStatus::Failed, Some(code.to_owned())),
            Card::NeedsAuthentication => (PaymentStatus::RequiresAction, None),
        };
        let row = SimIntent {
            id: format!("pi_sim_{}", Id::new().0.simple()),
            idempotency_key: req.idempotency_key.clone(),
            payment_id: req.payment_id,
            amount: req.amount,
            currency: req.currency.clone(),
            capture_method: req.capture.as_str().to_owned(),
            payment_method: req.payment_method.clone(),
            status: status.as_str().to_owned(),
            failure_code: failure,
            amount_refunded: 0,
            created_at: Instant::now(),
        };
        // The same idempotency key replays the first intent, as Stripe does.
        let key = req.idempotency_key.clone();
        let (stored, created): (SimIntent, bool) = transaction!(self.db, |conn| {
            let existing: Option<SimIntent> = sim_intents::table
                .filter(sim_intents::idempotency_key.eq(&key))
                .select(SimIntent::as_select())
                .first(conn)
                .await
                .optional()?;
            match existing {
                Some(e) => Ok::<_, DbError>((e, false)),
                None => {
                    diesel::insert_into(sim_intents::table).values(&row).execute(conn).await?;
                    Ok((row.clone(), true))
                }
            }
        })
        .map_err(unavailable)?;
        let intent = self.view(&stored);
        if created {
            self.emit(GatewayEvent::Intent(intent.clone()));
        }
        Ok(intent)
    }

    async fn retrieve_intent(&self, id: &str) -> Result<Intent, GatewayError> {
        self.load(id).await.map(|i| self.view(&i))
    }

    async fn capture(&self, id: &str, _idempotency_key: &str) -> Result<Intent, GatewayError> {
        self.set_status(id, &["requires_capture"], PaymentStatus::Succeeded).await
    }

    async fn cancel(&self, id: &str, _idempotency_key: &str) -> Result<Intent, GatewayError> {
        self.set_status(id, &["requires_capture", "requires_action"], PaymentStatus::Canceled).await
    }

    async fn refund(
        &self,
        intent_id: &str,
        parts: &Breakdown,
        idempotency_key: &str,
    ) -> Result<ProviderRefund, GatewayError> {
        let amount = parts.total();
        let asked = *parts;
        let key = idempotency_key.to_owned();
        let intent = intent_id.to_owned();
        let refund_id = format!("re_sim_{}", Id::new().0.simple());
        let outcome: Result<(ProviderRefund, bool), String> = transaction!(self.db, |conn| {
            let existing: Option<(String, String, i64)> = sim_refunds::table
                .filter(sim_refunds::idempotency_key.eq(&key))
                .select((sim_refunds::id, sim_refunds::intent_id, sim_refunds::amount))
                .first(conn)
                .await
                .optional()?;
            if let Some((id, intent_id, amount)) = existing {
                return Ok::<_, DbError>(Ok((ProviderRefund { id, intent_id, amount, parts: Some(asked) }, false)));
            }
            let current: Option<(String, i64, i64)> = sim_intents::table
                .find(&intent)
                .select((sim_intents::status, sim_intents::amount, sim_intents::amount_refunded))
                .first(conn)
                .await
                .optional()?;
            let Some((status, total, refunded)) = current else {
                return Ok(Err(format!("No such payment_intent: '{intent}'")));
            };
            if status != "succeeded" {
                return Ok(Err(format!("PaymentIntent {intent} has not been captured")));
            }
            if amount <= 0 || refunded + amount > total {
                return Ok(Err(format!(
                    "Refund amount ({amount}) is greater than unrefunded amount on charge ({})",
                    total - refunded
                )));
            }
            diesel::update(sim_intents::table.find(&intent))
                .set(sim_intents::amount_refunded.eq(refunded + amount))
                .execute(conn)
                .await?;
            diesel::insert_into(sim_refunds::table)
                .values((
                    sim_refunds::id.eq(&refund_id),
                    sim_refunds::idempotency_key.eq(&key),
                    sim_refunds::intent_id.eq(&intent),
                    sim_refunds::amount.eq(amount),
                    sim_refunds::created_at.eq(Instant::now()),
                ))
                .execute(conn)
                .await?;
            Ok(Ok((
                ProviderRefund { id: refund_id.clone(), intent_id: intent.clone(), amount, parts: Some(asked) },
                true,
            )))
        })
        .map_err(unavailable)?;
        let (refund, created) = outcome.map_err(GatewayError::Invalid)?;
        if created {
            self.emit(GatewayEvent::Refund(refund.clone()));
        }
        Ok(refund)
    }

    async fn transfer(
        &self,
        _account: &str,
        _amount: i64,
        _currency: &str,
        idempotency_key: &str,
    ) -> Result<String, GatewayError> {
        Ok(format!("tr_sim_{}", digest(idempotency_key)))
    }

    async fn create_account(&self, host_id: Id, _email: Option<&str>, _key: &str) -> Result<String, GatewayError> {
        Ok(format!("acct_sim_{}", host_id.0.simple()))
    }

    async fn onboarding_link(
        &self,
        account: &str,
        _refresh_url: &str,
        return_url: &str,
    ) -> Result<String, GatewayError> {
        // Nothing to fill in offline: the link leads straight back.
        Ok(format!("{return_url}?account={account}"))
    }

    async fn account_status(&self, account: &str) -> Result<AccountStatus, GatewayError> {
        Ok(AccountStatus { id: account.to_owned(), payouts_enabled: true, details_submitted: true })
    }
}
