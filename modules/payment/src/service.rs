//! The in-process [`Payments`]: charges through the gateway, one handler for
//! every provider answer and webhook, refunds, payouts released by a durable
//! job, and the ledger every movement is written to.

use std::sync::Arc;

use async_trait::async_trait;
use hometrip_kernel::db::{Db, DbError};
use hometrip_kernel::events::{Envelope, EventBus};
use hometrip_kernel::jobs::{Job, JobHandler, NewJob, Scheduler};
use hometrip_kernel::money::{is_currency, Money};
use hometrip_kernel::time::{Clock, Instant};
use hometrip_kernel::{ErrorCode, Id, Problem};
use serde::{Deserialize, Serialize};

use crate::api::*;
use crate::domain::{self, Posting};
use crate::gateway::{EventSink, GatewayError, GatewayEvent, Intent, IntentRequest, PaymentGateway, ProviderRefund};
use crate::store::{self, Journal, LedgerTxRow, PaymentRow, PaymentUpdate, PayoutRow};

pub const PAYOUT_JOB: &str = "payment.release_payout";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookReceipt {
    pub received: bool,
    /// The event id was handled before: acknowledged, not applied again.
    pub duplicate: bool,
}

pub use crate::api::PayoutAccount;

pub struct PaymentService {
    db: Db,
    bus: Arc<EventBus>,
    jobs: Arc<Scheduler>,
    clock: Clock,
    gateway: Arc<dyn PaymentGateway>,
    settings: PaymentSettings,
}

fn db_err(e: DbError) -> Problem {
    Problem::from(e)
}

fn gateway_problem(e: GatewayError) -> Problem {
    match e {
        GatewayError::Invalid(m) => Problem::new(ErrorCode::ValidationFailed, m),
        GatewayError::Unavailable(m) => {
            tracing::warn!(error = %m, "payment provider unavailable");
            Problem::new(ErrorCode::BadGateway, "the payment provider did not answer; try again").retry_after(2)
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct PayoutJob {
    booking_id: Id,
}

impl PaymentService {
    pub fn new(
        db: Db,
        bus: Arc<EventBus>,
        jobs: Arc<Scheduler>,
        gateway: Arc<dyn PaymentGateway>,
        settings: PaymentSettings,
    ) -> Arc<Self> {
        let clock = jobs.clock().clone();
        Arc::new(PaymentService { db, bus, jobs, clock, gateway, settings })
    }

    /// Registers the payout job.
    pub async fn register_jobs(self: &Arc<Self>) {
        self.jobs.register(PAYOUT_JOB, Arc::clone(self) as Arc<dyn JobHandler>).await;
    }

    pub fn gateway(&self) -> &Arc<dyn PaymentGateway> {
        &self.gateway
    }

    fn view(&self, row: &PaymentRow) -> Payment {
        let breakdown: Breakdown = serde_json::from_str(&row.breakdown).unwrap_or_default();
        let refunded: Breakdown = serde_json::from_str(&row.refunded_breakdown).unwrap_or_default();
        let (host_earnings, platform_revenue) =
            domain::earnings(&breakdown, &refunded, self.settings.host_fee_bps, row.status == "succeeded");
        Payment {
            host_earnings: Money::new(host_earnings, &row.currency),
            platform_revenue: Money::new(platform_revenue, &row.currency),
            id: row.id,
            booking_id: row.booking_id,
            guest_id: row.guest_id,
            host_id: row.host_id,
            amount: Money::new(row.amount, &row.currency),
            breakdown: serde_json::from_str(&row.breakdown).unwrap_or_default(),
            status: PaymentStatus::parse(&row.status),
            capture_method: if row.capture_method == "manual" {
                CaptureMethod::Manual
            } else {
                CaptureMethod::Automatic
            },
            refunded: Money::new(row.refunded, &row.currency),
            refunded_breakdown: serde_json::from_str(&row.refunded_breakdown).unwrap_or_default(),
            provider_ref: row.provider_ref.clone(),
            next_action_url: row.next_action_url.clone(),
            failure_code: row.failure_code.clone(),
            failure_message: row.failure_message.clone(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }

    fn event(&self, event_type: &str, row: &PaymentRow) -> Result<Envelope, DbError> {
        Envelope::new(MODULE, event_type, &PaymentEvent { payment: self.view(row) })
    }

    fn journal(
        kind: &str,
        key: String,
        row: &PaymentRow,
        description: &str,
        postings: Vec<Posting>,
        at: Instant,
    ) -> Journal {
        Journal {
            tx: LedgerTxRow {
                id: Id::new(),
                kind: kind.to_owned(),
                idempotency_key: key,
                booking_id: Some(row.booking_id),
                payment_id: Some(row.id),
                guest_id: Some(row.guest_id),
                host_id: Some(row.host_id),
                currency: row.currency.clone(),
                description: description.to_owned(),
                occurred_at: at,
            },
            postings,
        }
    }

    async fn reload(&self, id: Id) -> Result<PaymentRow, Problem> {
        store::payment(&self.db, id).await.map_err(db_err)?.ok_or_else(|| Problem::not_found("payment"))
    }

    /// Applies what the provider says about an intent: from the API's answer,
    /// a webhook or reconciliation, in any order, any number of times. Only
    /// forward moves are written, each once, with its ledger entry and event.
    pub async fn apply_intent(&self, intent: &Intent) -> Result<(), Problem> {
        for _ in 0..3 {
            let found = match intent.payment_id {
                Some(id) => store::payment(&self.db, id).await.map_err(db_err)?,
                None => store::payment_by_ref(&self.db, &intent.id).await.map_err(db_err)?,
            };
            let Some(current) = found else {
                tracing::warn!(intent = %intent.id, "provider event for an unknown payment");
                return Ok(());
            };
            let from = PaymentStatus::parse(&current.status);
            let ref_missing = current.provider_ref.is_none();
            if from == intent.status && !ref_missing {
                return Ok(());
            }
            if from != intent.status && !domain::may_move(from, intent.status) {
                return Ok(());
            }
            let now = self.clock.now();
            let mut row = current.clone();
            row.status = intent.status.as_str().to_owned();
            row.live = intent.status.is_live();
            row.provider_ref = Some(intent.id.clone());
            row.next_action_url = intent.next_action_url.clone();
            row.failure_code = intent.failure_code.clone();
            row.failure_message = intent.failure_message.clone();
            row.updated_at = now;
            let moved = from != intent.status;
            let breakdown: Breakdown = serde_json::from_str(&row.breakdown).unwrap_or_default();
            let journal = (moved && intent.status == PaymentStatus::Succeeded).then(|| {
                Self::journal(
                    "charge",
                    format!("charge:{}", row.id),
                    &row,
                    "Payment for a stay",
                    domain::charge(&breakdown, row.host_id, self.settings.host_fee_bps),
                    now,
                )
            });
            let event_type = match intent.status {
                PaymentStatus::Succeeded => Some(PAYMENT_SUCCEEDED),
                PaymentStatus::RequiresCapture => Some(PAYMENT_AUTHORIZED),
                PaymentStatus::Failed => Some(PAYMENT_FAILED),
                PaymentStatus::Canceled => Some("payment.canceled"),
                _ => None,
            };
            let event = match event_type.filter(|_| moved) {
                Some(t) => Some(self.event(t, &row).map_err(db_err)?),
                None => None,
            };
            if store::update_payment(&self.db, PaymentUpdate { from: &current.status, row: &row, journal, event })
                .await
                .map_err(db_err)?
            {
                self.bus.poke();
                return Ok(());
            }
            // Someone else moved it meanwhile: look again.
        }
        Ok(())
    }

    /// Sends a processing payment to the provider (again): the idempotency
    /// key is the payment's own, so a retry after a crash finds the same intent.
    async fn submit(&self, row: &PaymentRow) -> Result<PaymentRow, Problem> {
        let req = IntentRequest {
            payment_id: row.id,
            booking_id: row.booking_id,
            amount: row.amount,
            currency: row.currency.clone(),
            capture: if row.capture_method == "manual" { CaptureMethod::Manual } else { CaptureMethod::Automatic },
            payment_method: row.payment_method.clone(),
            idempotency_key: format!("hometrip-payment-{}", row.id),
        };
        match self.gateway.create_intent(&req).await {
            Ok(intent) => self.apply_intent(&intent).await?,
            Err(GatewayError::Invalid(message)) => {
                let failed = Intent {
                    id: row.provider_ref.clone().unwrap_or_else(|| format!("rejected_{}", row.id)),
                    status: PaymentStatus::Failed,
                    amount: row.amount,
                    payment_id: Some(row.id),
                    next_action_url: None,
                    failure_code: Some("invalid_request".to_owned()),
                    failure_message: Some(message.clone()),
                };
                self.apply_intent(&failed).await?;
                return Err(Problem::field("payment_method", &message));
            }
            Err(e) => return Err(gateway_problem(e)),
        }
        self.reload(row.id).await
    }

    /// Brings an in-flight payment up to date with the provider.
    async fn refresh(&self, row: PaymentRow) -> Result<PaymentRow, Problem> {
        match PaymentStatus::parse(&row.status) {
            PaymentStatus::Processing => match self.submit(&row).await {
                Ok(r) => Ok(r),
                // Unreachable provider: the payment stays in flight, as it is.
                Err(p) if p.code == ErrorCode::BadGateway => Ok(row),
                Err(p) => Err(p),
            },
            PaymentStatus::RequiresAction => {
                if let Some(reference) = &row.provider_ref {
                    if let Ok(intent) = self.gateway.retrieve_intent(reference).await {
                        self.apply_intent(&intent).await?;
                        return self.reload(row.id).await;
                    }
                }
                Ok(row)
            }
            _ => Ok(row),
        }
    }

    /// Handles a provider event once per event id (webhooks and the simulated
    /// provider's deliveries).
    pub async fn handle_gateway_event(&self, event_id: &str, event: GatewayEvent) -> Result<bool, Problem> {
        let kind = match &event {
            GatewayEvent::Intent(i) => format!("payment_intent.{}", i.status.as_str()),
            GatewayEvent::Refund(_) => "refund.created".to_owned(),
            GatewayEvent::Account(_) => "account.updated".to_owned(),
        };
        self.apply_event(event).await?;
        // Recorded after handling: a crash in between redelivers, and handling is idempotent.
        store::first_sight_of_event(&self.db, event_id, &kind).await.map_err(db_err)
    }

    async fn apply_event(&self, event: GatewayEvent) -> Result<(), Problem> {
        match event {
            GatewayEvent::Intent(intent) => self.apply_intent(&intent).await,
            GatewayEvent::Refund(refund) => {
                let parts = refund.parts;
                self.apply_provider_refund(&refund, parts).await
            }
            GatewayEvent::Account(a) => {
                store::update_account_status(&self.db, &a.id, a.payouts_enabled, a.details_submitted)
                    .await
                    .map(|_| ())
                    .map_err(db_err)
            }
        }
    }

    /// A Stripe webhook delivery: the signature is checked (400 otherwise),
    /// each event id is handled once (a replay is acknowledged, not redone),
    /// and events may come in any order or before our own API call returns.
    pub async fn stripe_webhook(&self, payload: &[u8], signature: Option<&str>) -> Result<WebhookReceipt, Problem> {
        let secret = &self.settings.stripe.webhook_secret;
        if secret.is_empty() {
            return Err(Problem::new(ErrorCode::BadRequest, "Stripe webhooks are not configured"));
        }
        let tolerance = if self.settings.stripe.webhook_tolerance_secs > 0 {
            self.settings.stripe.webhook_tolerance_secs
        } else {
            300
        };
        crate::stripe::verify_signature(payload, signature, secret, chrono::Utc::now().timestamp(), tolerance)
            .map_err(|e| Problem::new(ErrorCode::BadRequest, e.to_string()))?;
        let (id, event_type, event) =
            crate::stripe::parse_event(payload).map_err(|e| Problem::new(ErrorCode::BadRequest, e))?;
        if store::seen_event(&self.db, &id).await.map_err(db_err)? {
            return Ok(WebhookReceipt { received: true, duplicate: true });
        }
        if let Some(event) = event {
            self.apply_event(event).await?;
        }
        let first = store::first_sight_of_event(&self.db, &id, &event_type).await.map_err(db_err)?;
        Ok(WebhookReceipt { received: true, duplicate: !first })
    }

    /// The host's payout account: opened at the provider on first call, with
    /// a fresh onboarding link while details are missing.
    pub async fn payout_account(
        &self,
        host: Id,
        email: Option<&str>,
        public_url: &str,
    ) -> Result<PayoutAccount, Problem> {
        let row = match store::host_account(&self.db, host).await.map_err(db_err)? {
            Some(r) => r,
            None => {
                let account = self
                    .gateway
                    .create_account(host, email, &format!("hometrip-account-{host}"))
                    .await
                    .map_err(gateway_problem)?;
                let status = self.gateway.account_status(&account).await.map_err(gateway_problem)?;
                let row = store::HostAccountRow {
                    host_id: host,
                    provider: self.gateway.name().to_owned(),
                    account_id: account,
                    payouts_enabled: status.payouts_enabled,
                    details_submitted: status.details_submitted,
                    updated_at: self.clock.now(),
                };
                store::save_host_account(&self.db, &row).await.map_err(db_err)?;
                row
            }
        };
        let onboarding_url = if row.details_submitted {
            None
        } else {
            let base = public_url.trim_end_matches('/');
            Some(
                self.gateway
                    .onboarding_link(
                        &row.account_id,
                        &format!("{base}/host/payouts?refresh=1"),
                        &format!("{base}/host/payouts"),
                    )
                    .await
                    .map_err(gateway_problem)?,
            )
        };
        Ok(PayoutAccount {
            account_id: row.account_id,
            payouts_enabled: row.payouts_enabled,
            details_submitted: row.details_submitted,
            onboarding_url,
        })
    }

    /// The host's payout account as the provider sees it now.
    pub async fn payout_account_status(&self, host: Id) -> Result<PayoutAccount, Problem> {
        let Some(mut row) = store::host_account(&self.db, host).await.map_err(db_err)? else {
            return Err(Problem::not_found("payout account"));
        };
        let status = self.gateway.account_status(&row.account_id).await.map_err(gateway_problem)?;
        row.payouts_enabled = status.payouts_enabled;
        row.details_submitted = status.details_submitted;
        row.updated_at = self.clock.now();
        store::save_host_account(&self.db, &row).await.map_err(db_err)?;
        Ok(PayoutAccount {
            account_id: row.account_id,
            payouts_enabled: row.payouts_enabled,
            details_submitted: row.details_submitted,
            onboarding_url: None,
        })
    }

    /// Where a host's payout goes: their account (opened offline on the
    /// simulated provider; with Stripe, only once the host has onboarded).
    async fn payout_destination(&self, host: Id) -> Result<String, String> {
        match store::host_account(&self.db, host).await.map_err(|e| e.to_string())? {
            Some(a) if a.payouts_enabled => Ok(a.account_id),
            Some(_) => Err("the host's payout account is not enabled yet".to_owned()),
            None if self.gateway.name() == "simulated" => {
                self.payout_account(host, None, "").await.map(|a| a.account_id).map_err(|p| p.detail)
            }
            None => Err("the host has not set up payouts yet".to_owned()),
        }
    }

    /// Records a provider refund once (by its id). Parts are those asked for,
    /// or for a refund made elsewhere (the provider's dashboard) the rest of
    /// the charge in proportion.
    async fn apply_provider_refund(&self, refund: &ProviderRefund, parts: Option<Breakdown>) -> Result<(), Problem> {
        let Some(row) = store::payment_by_ref(&self.db, &refund.intent_id).await.map_err(db_err)? else {
            tracing::warn!(refund = %refund.id, "refund of an unknown payment");
            return Ok(());
        };
        let now = self.clock.now();
        // Worked out from the payment as it stands under its row lock.
        let work_out = |row: &PaymentRow| -> Option<store::RefundWrite> {
            let charged: Breakdown = serde_json::from_str(&row.breakdown).unwrap_or_default();
            let before: Breakdown = serde_json::from_str(&row.refunded_breakdown).unwrap_or_default();
            let parts = parts.unwrap_or_else(|| proportional_parts(&charged, &before, refund.amount));
            if !domain::refundable(&charged, &before, &parts) {
                tracing::warn!(refund = %refund.id, "refund larger than what is left of the charge; not recorded");
                return None;
            }
            let after = domain::add(&before, &parts);
            let journal = Self::journal(
                "refund",
                format!("refund:{}", refund.id),
                row,
                "Refund",
                domain::refund(&charged, &before, &parts, row.host_id, self.settings.host_fee_bps),
                now,
            );
            let refunded_breakdown = serde_json::to_string(&after).ok()?;
            let mut updated = row.clone();
            updated.refunded = after.total();
            updated.refunded_breakdown = refunded_breakdown.clone();
            let event = self.event(PAYMENT_REFUNDED, &updated).ok()?;
            Some(store::RefundWrite { refunded_total: after.total(), refunded_breakdown, journal, event })
        };
        if store::record_refund(&self.db, row.id, work_out).await.map_err(db_err)? {
            self.bus.poke();
        }
        Ok(())
    }

    async fn live_payment(&self, booking_id: Id) -> Result<PaymentRow, Problem> {
        match store::payment_of_booking(&self.db, booking_id).await.map_err(db_err)? {
            Some(row) if row.live => Ok(row),
            _ => Err(Problem::new(ErrorCode::Conflict, "the booking has no payment in progress")),
        }
    }

    // ---- Payouts --------------------------------------------------------------

    async fn release_payout(&self, booking_id: Id) -> Result<(), String> {
        let Some(payout) = store::payout_of_booking(&self.db, booking_id).await.map_err(|e| e.to_string())? else {
            return Ok(());
        };
        if payout.status != "scheduled" {
            return Ok(());
        }
        let account = domain::host_payable(payout.host_id);
        let balance = |booking| store::balance(&self.db, &account, &payout.currency, booking);
        // What this stay still owes the host, less what the host owes overall (penalties).
        let due_for_stay = -balance(Some(booking_id)).await.map_err(|e| e.to_string())?;
        let due_overall = -balance(None).await.map_err(|e| e.to_string())?;
        let amount = due_for_stay.min(due_overall);
        let now = self.clock.now();
        let mut settled = payout.clone();
        if amount <= 0 {
            settled.status = "skipped".to_owned();
            settled.amount = 0;
            store::settle_payout(&self.db, &settled, None, None).await.map_err(|e| e.to_string())?;
            return Ok(());
        }
        let destination = self.payout_destination(payout.host_id).await?;
        let reference = self
            .gateway
            .transfer(&destination, amount, &payout.currency, &format!("hometrip-payout-{}", payout.id))
            .await
            .map_err(|e| e.to_string())?;
        settled.status = "paid".to_owned();
        settled.amount = amount;
        settled.paid_at = Some(now);
        settled.provider_ref = Some(reference);
        let journal = Journal {
            tx: LedgerTxRow {
                id: Id::new(),
                kind: "payout".to_owned(),
                idempotency_key: format!("payout:{}", payout.id),
                booking_id: Some(booking_id),
                payment_id: None,
                guest_id: None,
                host_id: Some(payout.host_id),
                currency: payout.currency.clone(),
                description: "Payout to your bank account".to_owned(),
                occurred_at: now,
            },
            postings: domain::payout(payout.host_id, amount),
        };
        let event = Envelope::new(MODULE, PAYOUT_PAID, &PayoutEvent { payout: payout_view(&settled) })
            .map_err(|e| e.to_string())?;
        store::settle_payout(&self.db, &settled, Some(&journal), Some(&event)).await.map_err(|e| e.to_string())?;
        self.bus.poke();
        Ok(())
    }

    pub async fn payouts(
        &self,
        host: Id,
        cursor: Option<Id>,
        limit: i64,
    ) -> Result<(Vec<Payout>, Option<Id>), Problem> {
        let rows = store::payouts_of_host(&self.db, host, cursor, limit).await.map_err(db_err)?;
        let next = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.id)).flatten();
        Ok((rows.iter().map(payout_view).collect(), next))
    }

    /// The caller's ledger transactions, signed from their side.
    pub async fn transactions(
        &self,
        user: Id,
        cursor: Option<Id>,
        limit: i64,
    ) -> Result<(Vec<TransactionView>, Option<Id>), Problem> {
        let rows = store::transactions_of(&self.db, user, cursor, limit).await.map_err(db_err)?;
        let next = (rows.len() as i64 == limit).then(|| rows.last().map(|(t, _)| t.id)).flatten();
        let mine = domain::host_payable(user);
        let items = rows
            .iter()
            .map(|(tx, entries)| {
                let sum = |account: &str| entries.iter().filter(|(a, _)| a == account).map(|(_, m)| *m).sum::<i64>();
                let amount = if tx.host_id == Some(user) {
                    match tx.kind.as_str() {
                        // Money that reached the host's bank.
                        "payout" => sum(&mine),
                        _ => -sum(&mine),
                    }
                } else {
                    // The guest's card: charges out, refunds in.
                    -sum(domain::CASH)
                };
                TransactionView {
                    id: tx.id,
                    kind: tx.kind.clone(),
                    booking_id: tx.booking_id,
                    amount: Money::new(amount, &tx.currency),
                    occurred_at: tx.occurred_at,
                    description: tx.description.clone(),
                }
            })
            .collect();
        Ok((items, next))
    }

    /// Sum of the ledger per currency (zero everywhere when it balances).
    pub async fn trial_balance(&self) -> Result<Vec<(String, i64)>, Problem> {
        store::trial_balance(&self.db).await.map_err(db_err)
    }
}

/// `amount` spread over what is left of each part, in proportion; the last
/// part takes the rounding.
fn proportional_parts(charged: &Breakdown, before: &Breakdown, amount: i64) -> Breakdown {
    let left = [
        charged.accommodation - before.accommodation,
        charged.cleaning_fee - before.cleaning_fee,
        charged.service_fee - before.service_fee,
        charged.taxes - before.taxes,
    ];
    let total: i64 = left.iter().sum();
    if total <= 0 {
        return Breakdown::default();
    }
    let amount = amount.min(total);
    let mut parts = [0i64; 4];
    let mut given = 0;
    for i in 0..3 {
        parts[i] = i64::try_from(i128::from(left[i]) * i128::from(amount) / i128::from(total)).unwrap_or(0);
        given += parts[i];
    }
    parts[3] = (amount - given).min(left[3]);
    // Whatever the last part could not take goes to the first with room.
    let mut rest = amount - given - parts[3];
    for i in 0..3 {
        let room = left[i] - parts[i];
        let take = rest.min(room);
        parts[i] += take;
        rest -= take;
    }
    Breakdown { accommodation: parts[0], cleaning_fee: parts[1], service_fee: parts[2], taxes: parts[3] }
}

fn payout_view(row: &PayoutRow) -> Payout {
    Payout {
        id: row.id,
        booking_id: row.booking_id,
        host_id: row.host_id,
        amount: Money::new(row.amount, &row.currency),
        status: match row.status.as_str() {
            "paid" => PayoutStatus::Paid,
            "skipped" => PayoutStatus::Skipped,
            _ => PayoutStatus::Scheduled,
        },
        release_at: row.release_at,
        paid_at: row.paid_at,
        provider_ref: row.provider_ref.clone(),
    }
}

#[async_trait]
impl JobHandler for PaymentService {
    async fn run(&self, job: &Job) -> Result<(), String> {
        let payload: PayoutJob = job.decode()?;
        self.release_payout(payload.booking_id).await
    }
}

#[async_trait]
impl EventSink for PaymentService {
    async fn deliver(&self, event_id: &str, event: GatewayEvent) -> Result<(), String> {
        self.handle_gateway_event(event_id, event).await.map(|_| ()).map_err(|p| p.detail)
    }
}

#[async_trait]
impl Payments for PaymentService {
    async fn charge(&self, req: ChargeRequest) -> Result<Payment, Problem> {
        if let Some(row) = store::payment_by_key(&self.db, &req.idempotency_key).await.map_err(db_err)? {
            return Ok(self.view(&self.refresh(row).await?));
        }
        if let Some(row) = store::payment_of_booking(&self.db, req.booking_id).await.map_err(db_err)? {
            if row.live {
                return Ok(self.view(&self.refresh(row).await?));
            }
        }
        let b = req.breakdown;
        if !is_currency(&req.currency) {
            return Err(Problem::field("currency", "must be an ISO 4217 code"));
        }
        if [b.accommodation, b.cleaning_fee, b.service_fee, b.taxes].iter().any(|v| *v < 0) || b.total() <= 0 {
            return Err(Problem::field("amount", "must be positive"));
        }
        if req.payment_method.trim().is_empty() || req.payment_method.len() > 255 {
            return Err(Problem::field("payment_method", "is required"));
        }
        let now = self.clock.now();
        let row = PaymentRow {
            id: Id::new(),
            booking_id: req.booking_id,
            guest_id: req.guest_id,
            host_id: req.host_id,
            currency: req.currency.clone(),
            amount: b.total(),
            breakdown: serde_json::to_string(&b).map_err(Problem::internal)?,
            status: PaymentStatus::Processing.as_str().to_owned(),
            live: true,
            capture_method: req.capture.as_str().to_owned(),
            payment_method: req.payment_method.trim().to_owned(),
            refunded: 0,
            refunded_breakdown: serde_json::to_string(&Breakdown::default()).map_err(Problem::internal)?,
            provider: self.gateway.name().to_owned(),
            provider_ref: None,
            idempotency_key: req.idempotency_key.clone(),
            next_action_url: None,
            failure_code: None,
            failure_message: None,
            created_at: now,
            updated_at: now,
        };
        match store::insert_payment(&self.db, &row).await {
            Ok(()) => {}
            Err(DbError::Conflict(_)) => {
                // A concurrent request won: answer with its payment.
                let existing = match store::payment_by_key(&self.db, &req.idempotency_key).await.map_err(db_err)? {
                    Some(r) => Some(r),
                    None => store::payment_of_booking(&self.db, req.booking_id).await.map_err(db_err)?,
                };
                return match existing {
                    Some(r) => Ok(self.view(&r)),
                    None => Err(Problem::new(ErrorCode::Conflict, "a payment for this booking is in progress")),
                };
            }
            Err(e) => return Err(db_err(e)),
        }
        Ok(self.view(&self.submit(&row).await?))
    }

    async fn capture(&self, booking_id: Id) -> Result<Payment, Problem> {
        let row = self.refresh(self.live_payment(booking_id).await?).await?;
        match PaymentStatus::parse(&row.status) {
            PaymentStatus::Succeeded => return Ok(self.view(&row)),
            PaymentStatus::RequiresCapture => {}
            other => {
                return Err(Problem::new(
                    ErrorCode::Conflict,
                    format!("the payment is {}, not authorised", other.as_str()),
                ))
            }
        }
        let reference = row.provider_ref.clone().unwrap_or_default();
        let intent =
            self.gateway.capture(&reference, &format!("hometrip-capture-{}", row.id)).await.map_err(gateway_problem)?;
        self.apply_intent(&intent).await?;
        Ok(self.view(&self.reload(row.id).await?))
    }

    async fn cancel_authorization(&self, booking_id: Id) -> Result<Option<Payment>, Problem> {
        let Some(row) = store::payment_of_booking(&self.db, booking_id).await.map_err(db_err)? else { return Ok(None) };
        if !row.live {
            return Ok(Some(self.view(&row)));
        }
        let row = self.refresh(row).await?;
        match PaymentStatus::parse(&row.status) {
            PaymentStatus::RequiresCapture | PaymentStatus::RequiresAction => {
                let reference = row.provider_ref.clone().unwrap_or_default();
                let intent = self
                    .gateway
                    .cancel(&reference, &format!("hometrip-cancel-{}", row.id))
                    .await
                    .map_err(gateway_problem)?;
                self.apply_intent(&intent).await?;
                Ok(Some(self.view(&self.reload(row.id).await?)))
            }
            PaymentStatus::Processing => {
                Err(Problem::new(ErrorCode::ServiceUnavailable, "the payment is still in flight").retry_after(5))
            }
            _ => Ok(Some(self.view(&row))),
        }
    }

    async fn refund(&self, req: RefundRequest) -> Result<Payment, Problem> {
        let row = match store::payment_of_booking(&self.db, req.booking_id).await.map_err(db_err)? {
            Some(r) if r.status == PaymentStatus::Succeeded.as_str() => r,
            _ => return Err(Problem::new(ErrorCode::Conflict, "the booking has no captured payment")),
        };
        if req.parts.total() == 0 {
            return Ok(self.view(&row));
        }
        let charged: Breakdown = serde_json::from_str(&row.breakdown).unwrap_or_default();
        let before: Breakdown = serde_json::from_str(&row.refunded_breakdown).unwrap_or_default();
        if !domain::refundable(&charged, &before, &req.parts) {
            // Nothing left to give back: an earlier attempt refunded it.
            return Ok(self.view(&row));
        }
        let reference = row.provider_ref.clone().unwrap_or_default();
        let refund = self
            .gateway
            .refund(&reference, &req.parts, &format!("hometrip-refund-{}", req.idempotency_key))
            .await
            .map_err(gateway_problem)?;
        self.apply_provider_refund(&refund, Some(req.parts)).await?;
        Ok(self.view(&self.reload(row.id).await?))
    }

    async fn schedule_payout(&self, booking_id: Id, host_id: Id, release_at: Instant) -> Result<(), Problem> {
        let currency = store::payment_of_booking(&self.db, booking_id)
            .await
            .map_err(db_err)?
            .map(|p| p.currency)
            .ok_or_else(|| Problem::new(ErrorCode::Conflict, "the booking has no payment"))?;
        let row = PayoutRow {
            id: Id::new(),
            booking_id,
            host_id,
            currency,
            amount: 0,
            status: "scheduled".to_owned(),
            release_at,
            paid_at: None,
            provider_ref: None,
            created_at: self.clock.now(),
        };
        let job = NewJob::new(PAYOUT_JOB, format!("payout:{booking_id}"), release_at, &PayoutJob { booking_id });
        store::schedule_payout(&self.db, &row, &job).await.map_err(db_err)?;
        self.jobs.scheduled(std::slice::from_ref(&job));
        Ok(())
    }

    async fn record_host_penalty(&self, booking_id: Id, host_id: Id, amount: Money) -> Result<(), Problem> {
        if amount.amount <= 0 {
            return Ok(());
        }
        let journal = Journal {
            tx: LedgerTxRow {
                id: Id::new(),
                kind: "host_penalty".to_owned(),
                idempotency_key: format!("penalty:{booking_id}"),
                booking_id: Some(booking_id),
                payment_id: None,
                guest_id: None,
                host_id: Some(host_id),
                currency: amount.currency.clone(),
                description: "Cancellation fee for a cancelled stay".to_owned(),
                occurred_at: self.clock.now(),
            },
            postings: domain::host_penalty(host_id, amount.amount),
        };
        store::journal(&self.db, &journal).await.map_err(db_err)?;
        Ok(())
    }

    async fn payment_for(&self, booking_id: Id) -> Result<Option<Payment>, Problem> {
        match store::payment_of_booking(&self.db, booking_id).await.map_err(db_err)? {
            Some(row) => Ok(Some(self.view(&self.refresh(row).await?))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refund_made_elsewhere_is_spread_over_what_is_left() {
        let charged = Breakdown { accommodation: 10_000, cleaning_fee: 2_000, service_fee: 1_680, taxes: 500 };
        let before = Breakdown { cleaning_fee: 2_000, ..Breakdown::default() };
        let parts = proportional_parts(&charged, &before, 5_000);
        assert_eq!(parts.total(), 5_000);
        assert_eq!(parts.cleaning_fee, 0);
        assert!(domain::refundable(&charged, &before, &parts));
        let all = proportional_parts(&charged, &Breakdown::default(), 99_999);
        assert_eq!(all, charged);
    }
}
