//! Events between modules: a transactional outbox, a relay that delivers in
//! order at least once, subscribers made idempotent by an inbox of processed
//! event ids, retries with backoff, and a dead-letter table an admin can replay.
//!
//! A state change and the events it causes commit in one transaction: the store
//! calls [`OutboxWrite::append_event`] on the transaction's connection.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use diesel::QueryResult;

use crate::db::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, RwLock};
use tracing::Instrument as _;

use crate::db::{Db, DbError, PgConn, SqliteConn};
use crate::ids::Id;
use crate::time::Instant;

pub mod schema {
    diesel::table! {
        use diesel::sql_types::*;
        use crate::db::sql::*;
        outbox_events (seq) {
            seq -> BigInt,
            id -> DbUuid,
            event_type -> Text,
            source -> Text,
            occurred_at -> DbInstant,
            trace_context -> Nullable<Text>,
            data -> Text,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use crate::db::sql::*;
        inbox (event_id, subscriber) {
            event_id -> DbUuid,
            subscriber -> Text,
            processed_at -> DbInstant,
        }
    }
    diesel::table! {
        use diesel::sql_types::*;
        use crate::db::sql::*;
        dead_letters (id) {
            id -> DbUuid,
            subscriber -> Text,
            event_id -> DbUuid,
            event_type -> Text,
            envelope -> Text,
            error -> Text,
            attempts -> Integer,
            failed_at -> DbInstant,
            replayed_at -> Nullable<DbInstant>,
        }
    }
}
use schema::{dead_letters, inbox, outbox_events};

/// The event envelope every module publishes and consumes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub id: Id,
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: Instant,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<String>,
    /// The payload as JSON text: written to the outbox and read back as it
    /// is, and decoded once, by its subscriber, into the type it expects
    /// (a `serde_json::Value` in between cost a tree of allocations per event
    /// on each side).
    pub data: Box<serde_json::value::RawValue>,
}

impl Envelope {
    pub fn new(source: &str, event_type: &str, data: &impl Serialize) -> Result<Self, DbError> {
        Ok(Envelope {
            id: Id::new(),
            event_type: event_type.to_owned(),
            occurred_at: Instant::now(),
            source: source.to_owned(),
            // The W3C traceparent of the span that made the change, so its
            // deliveries join the trace (none when traces are not recorded).
            trace_context: crate::telemetry::traceparent(),
            data: serde_json::value::to_raw_value(data)
                .map_err(|e| DbError::Encoding(format!("event encoding: {e}")))?,
        })
    }

    /// Decodes the payload as the publisher's type.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(self.data.get()).map_err(|e| format!("{} payload: {e}", self.event_type))
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = outbox_events)]
struct OutboxRow {
    id: Id,
    event_type: String,
    source: String,
    occurred_at: Instant,
    trace_context: Option<String>,
    data: String,
}

/// An envelope as an outbox row to insert, borrowing its text (the payload
/// is the bulk of it).
#[derive(Insertable)]
#[diesel(table_name = outbox_events)]
struct OutboxInsert<'a> {
    id: Id,
    event_type: &'a str,
    source: &'a str,
    occurred_at: Instant,
    trace_context: Option<&'a str>,
    data: &'a str,
}

impl<'a> OutboxInsert<'a> {
    fn from_envelope(e: &'a Envelope) -> Self {
        OutboxInsert {
            id: e.id,
            event_type: &e.event_type,
            source: &e.source,
            occurred_at: e.occurred_at,
            trace_context: e.trace_context.as_deref(),
            data: e.data.get(),
        }
    }
}

impl OutboxRow {
    fn into_envelope(self) -> Envelope {
        Envelope {
            id: self.id,
            event_type: self.event_type,
            occurred_at: self.occurred_at,
            source: self.source,
            trace_context: self.trace_context,
            // Written from an envelope, so JSON; anything else reads as null.
            data: serde_json::value::RawValue::from_string(self.data).unwrap_or_default(),
        }
    }
}

/// The span of one delivery, named after the event type, in the trace of
/// the change that published it.
fn delivery_span(subscriber: &str, event: &Envelope) -> tracing::Span {
    let span = tracing::info_span!(
        "deliver",
        otel.name = %event.event_type,
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        subscriber,
        event_id = %event.id,
        attempt = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::set_parent(&span, event.trace_context.as_deref());
    // For the log lines of the delivery (retries, parking).
    if let Some(id) = event.trace_context.as_deref().and_then(crate::telemetry::trace_id) {
        span.record("trace_id", id);
    }
    span
}

/// Marks a delivery span failed (the caller logs the error in its scope).
fn failed(span: &tracing::Span) {
    span.record("otel.status_code", "ERROR");
}

/// Writes events into the outbox on the connection of the caller's transaction.
pub trait OutboxWrite {
    fn append_event(&mut self, event: &Envelope) -> impl Future<Output = QueryResult<()>> + Send;
    /// Several events in order: one statement on PostgreSQL; row by row on
    /// SQLite, where diesel-async's wrapper has no multi-row insert (and the
    /// caller's transaction holds the lock anyway).
    fn append_events(&mut self, events: &[Envelope]) -> impl Future<Output = QueryResult<()>> + Send;
}

macro_rules! impl_outbox_write {
    ($($conn:ty: $multi_row:tt),*) => {$(
        impl OutboxWrite for $conn {
            async fn append_event(&mut self, event: &Envelope) -> QueryResult<()> {
                diesel::insert_into(outbox_events::table)
                    .values(OutboxInsert::from_envelope(event))
                    .cached()
                    .execute(self)
                    .await
                    .map(|_| ())
            }

            async fn append_events(&mut self, events: &[Envelope]) -> QueryResult<()> {
                impl_outbox_write!(@many $multi_row, self, events)
            }
        }
    )*};
    (@many true, $self:ident, $events:ident) => {{
        if $events.is_empty() {
            return Ok(());
        }
        let rows: Vec<OutboxInsert> = $events.iter().map(OutboxInsert::from_envelope).collect();
        diesel::insert_into(outbox_events::table).values(rows).cached().execute($self).await.map(|_| ())
    }};
    (@many false, $self:ident, $events:ident) => {{
        for event in $events {
            $self.append_event(event).await?;
        }
        Ok(())
    }};
}
// On a shared PostgreSQL connection reference too, so a caller can pipeline
// the insert with its other statements.
impl_outbox_write!(PgConn: true, &PgConn: true, SqliteConn: false);

/// Records handled deliveries (subscriber, event id) in the inbox: one
/// statement on PostgreSQL; row by row on SQLite, where diesel-async's wrapper
/// has no multi-row insert (and the caller's transaction holds the lock anyway).
trait InboxWrite {
    fn record_deliveries(
        &mut self,
        deliveries: &[(String, Id)],
        at: Instant,
    ) -> impl Future<Output = QueryResult<()>> + Send;
}

/// An inbox row as insertable column values.
type InboxRow<'a> = (
    diesel::dsl::Eq<inbox::subscriber, &'a String>,
    diesel::dsl::Eq<inbox::event_id, Id>,
    diesel::dsl::Eq<inbox::processed_at, Instant>,
);

fn inbox_row((subscriber, event_id): &(String, Id), at: Instant) -> InboxRow<'_> {
    (inbox::subscriber.eq(subscriber), inbox::event_id.eq(*event_id), inbox::processed_at.eq(at))
}

impl InboxWrite for PgConn {
    async fn record_deliveries(&mut self, deliveries: &[(String, Id)], at: Instant) -> QueryResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = deliveries.iter().map(|d| inbox_row(d, at)).collect();
        diesel::insert_into(inbox::table).values(rows).on_conflict_do_nothing().cached().execute(self).await.map(|_| ())
    }
}

impl InboxWrite for SqliteConn {
    async fn record_deliveries(&mut self, deliveries: &[(String, Id)], at: Instant) -> QueryResult<()> {
        for delivery in deliveries {
            diesel::insert_into(inbox::table)
                .values(inbox_row(delivery, at))
                .on_conflict_do_nothing()
                .cached()
                .execute(self)
                .await?;
        }
        Ok(())
    }
}

/// The lock that makes one relay at a time read and publish the outbox.
trait RelayLock {
    fn take_relay_lock(&mut self) -> impl Future<Output = QueryResult<()>> + Send;
}

/// The advisory lock's key: "htrelay" in ASCII.
const RELAY_LOCK_KEY: i64 = 0x0068_7472_656c_6179;

impl RelayLock for PgConn {
    async fn take_relay_lock(&mut self) -> QueryResult<()> {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({RELAY_LOCK_KEY})")).execute(self).await.map(|_| ())
    }
}

impl RelayLock for SqliteConn {
    /// `BEGIN IMMEDIATE` took the database's write lock already.
    async fn take_relay_lock(&mut self) -> QueryResult<()> {
        Ok(())
    }
}

/// A consumer of events. Handlers must be idempotent: delivery is at least once
/// (the inbox makes a redelivery after success rare, not impossible).
#[async_trait::async_trait]
pub trait EventHandler: Send + Sync {
    async fn handle(&self, event: &Envelope) -> Result<(), String>;

    /// Whether the relay should offer runs of events to [`Self::handle_batch`].
    fn batches(&self) -> bool {
        false
    }

    /// Handles several events, in order, as the relay found them together
    /// (only called when [`Self::batches`] says so): a handler that can apply
    /// a run of events in one transaction overrides both. On `Err` the relay
    /// hands the events over one by one, with retries and parking, so a
    /// failure may leave some applied: handlers are idempotent anyway.
    async fn handle_batch(&self, events: &[&Envelope]) -> Result<(), String> {
        for event in events {
            self.handle(event).await?;
        }
        Ok(())
    }
}

struct Subscription {
    name: String,
    event_types: Vec<String>,
    handler: Arc<dyn EventHandler>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub id: Id,
    pub subscriber: String,
    pub event_id: Id,
    pub event_type: String,
    pub error: String,
    pub attempts: i32,
    pub failed_at: Instant,
    pub replayed_at: Option<Instant>,
}

/// The newest parked deliveries, gathered from every process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeadLetterList {
    pub items: Vec<DeadLetter>,
    /// Modules whose dead letters could not be read just now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<String>,
}

/// Parked deliveries as operators read and replay them, whichever process
/// parked them (admins only; the console's view of the gateway's routes).
#[async_trait::async_trait]
pub trait DeadLetterDesk: Send + Sync {
    async fn dead_letters(&self, admin: &crate::auth_context::AuthUser) -> Result<DeadLetterList, crate::Problem>;
    /// Hands the event to its subscriber again; whether it went through
    /// (404 when no process holds it).
    async fn replay(&self, admin: &crate::auth_context::AuthUser, id: Id) -> Result<bool, crate::Problem>;
}

const PRUNE_EVERY: Duration = Duration::from_secs(600);

#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 5, first_backoff: Duration::from_millis(50) }
    }
}

/// The in-process event bus: outbox relay plus subscriber dispatch.
pub struct EventBus {
    db: Db,
    subscriptions: RwLock<Vec<Subscription>>,
    wake: Notify,
    retry: RetryPolicy,
    /// With a broker the relay publishes to it and its consumers deliver.
    broker: std::sync::OnceLock<Arc<crate::broker::Broker>>,
}

impl EventBus {
    pub fn new(db: Db, retry: RetryPolicy) -> Arc<Self> {
        Arc::new(EventBus {
            db,
            subscriptions: RwLock::new(Vec::new()),
            wake: Notify::new(),
            retry,
            broker: std::sync::OnceLock::new(),
        })
    }

    /// Events go through `broker` from now on: the relay publishes to it, and
    /// its consumers (`Broker::spawn_consumers`) hand them to the subscribers.
    pub fn set_broker(&self, broker: Arc<crate::broker::Broker>) {
        let _ = self.broker.set(broker);
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn broker(&self) -> Option<&Arc<crate::broker::Broker>> {
        self.broker.get()
    }

    /// Each subscriber's name and event types.
    pub async fn subscription_names(&self) -> Vec<(String, Vec<String>)> {
        self.subscriptions.read().await.iter().map(|s| (s.name.clone(), s.event_types.clone())).collect()
    }

    /// Hands a run of events from the broker to one subscriber: those the
    /// inbox already holds are skipped (a redelivery), the others delivered
    /// in order (retries, then parking) and recorded in the inbox.
    pub async fn consume_run(&self, subscriber: &str, events: &[Envelope]) -> Result<(), DbError> {
        let subs = self.subscriptions.read().await;
        let Some(sub) = subs.iter().find(|s| s.name == subscriber) else { return Ok(()) };
        let ids: Vec<Id> = events.iter().map(|e| e.id).collect();
        let seen: HashSet<Id> = crate::run!(self.db, |conn| {
            let rows = inbox::table
                .filter(inbox::event_id.eq_any(&ids))
                .filter(inbox::subscriber.eq(subscriber))
                .select(inbox::event_id)
                .load::<Id>(conn)
                .await?;
            Ok::<_, DbError>(rows)
        })?
        .into_iter()
        .collect();
        let fresh: Vec<&Envelope> = events
            .iter()
            .filter(|e| !seen.contains(&e.id) && sub.event_types.iter().any(|t| t == &e.event_type))
            .collect();
        let delivered = self.deliver_run(sub, fresh).await?;
        if !delivered.is_empty() {
            let now = Instant::now();
            crate::run!(self.db, |conn| {
                conn.record_deliveries(&delivered, now).await?;
                Ok::<_, DbError>(())
            })?;
        }
        Ok(())
    }

    /// Publishes up to `batch` outbox rows to the broker, in order, and
    /// deletes them once confirmed, all in one transaction that begins by
    /// taking the relay lock (on PostgreSQL an advisory lock; SQLite's write
    /// lock is one already): several replicas relaying one outbox publish
    /// each row once, and in order.
    async fn relay_to_broker(&self, broker: &crate::broker::Broker, batch: i64) -> Result<usize, DbError> {
        crate::transaction!(self.db, |conn| {
            conn.take_relay_lock().await?;
            let rows = outbox_events::table
                .order(outbox_events::seq.asc())
                .limit(batch)
                .select((outbox_events::seq, OutboxRow::as_select()))
                .load::<(i64, OutboxRow)>(conn)
                .await?;
            if rows.is_empty() {
                return Ok::<_, DbError>(0);
            }
            let count = rows.len();
            let mut seqs = Vec::with_capacity(count);
            let mut envelopes = Vec::with_capacity(count);
            for (seq, row) in rows {
                seqs.push(seq);
                envelopes.push(row.into_envelope());
            }
            broker.publish(&envelopes).await.map_err(|e| DbError::Unavailable(format!("event broker: {e}")))?;
            diesel::delete(outbox_events::table.filter(outbox_events::seq.eq_any(&seqs)))
                .cached()
                .execute(conn)
                .await?;
            count_published(&envelopes);
            Ok::<_, DbError>(count)
        })
    }

    /// Registers `handler` under a stable `name` (the inbox key) for the given
    /// event types.
    pub async fn subscribe(&self, name: &str, event_types: &[&str], handler: Arc<dyn EventHandler>) {
        // The subscriber's series exist from the start, at 0 (see `count_delivered`).
        metrics::counter!("events_handler_failures_total", "subscriber" => name.to_owned()).increment(0);
        for t in event_types {
            let labels = [("subscriber", name.to_owned()), ("type", (*t).to_owned())];
            metrics::counter!("events_delivered_total", &labels).increment(0);
            metrics::counter!("events_parked_total", &labels).increment(0);
        }
        self.subscriptions.write().await.push(Subscription {
            name: name.to_owned(),
            event_types: event_types.iter().map(|s| (*s).to_owned()).collect(),
            handler,
        });
    }

    /// Tells the relay that new rows were committed (it also polls).
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    /// Runs the relay until the process stops.
    pub fn spawn_relay(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let bus = Arc::clone(self);
        tokio::spawn(async move {
            let mut last_prune = std::time::Instant::now();
            loop {
                if last_prune.elapsed() >= PRUNE_EVERY {
                    last_prune = std::time::Instant::now();
                    if let Err(e) = bus.prune(Instant::now()).await {
                        tracing::warn!(error = %e, "outbox pruning failed");
                    }
                }
                match bus.relay_once(100).await {
                    Ok(0) => {
                        let _ = tokio::time::timeout(Duration::from_millis(250), bus.wake.notified()).await;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "event relay failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        })
    }

    /// Delivers up to `batch` events of the outbox in order; returns how many.
    /// One read finds which deliveries of the batch the inbox already holds;
    /// one transaction at the end records the batch's deliveries and deletes
    /// its events from the outbox. A crash in between hands the batch to its
    /// handlers again, which their idempotence absorbs.
    pub async fn relay_once(&self, batch: i64) -> Result<usize, DbError> {
        if let Some(broker) = self.broker.get() {
            return self.relay_to_broker(broker, batch).await;
        }
        let rows: Vec<(i64, OutboxRow)> = crate::run!(self.db, |conn| {
            let rows = outbox_events::table
                .order(outbox_events::seq.asc())
                .limit(batch)
                .select((outbox_events::seq, OutboxRow::as_select()))
                .load::<(i64, OutboxRow)>(conn)
                .await?;
            Ok::<_, DbError>(rows)
        })?;
        let count = rows.len();
        if count == 0 {
            return Ok(0);
        }
        let ids: Vec<Id> = rows.iter().map(|(_, row)| row.id).collect();
        let subs = self.subscriptions.read().await;
        // The inbox's key leads with the event id: this stays an index lookup
        // however many deliveries the inbox holds.
        let names: Vec<&str> = subs.iter().map(|s| s.name.as_str()).collect();
        let done: Vec<(String, Id)> = crate::run!(self.db, |conn| {
            let rows = inbox::table
                .filter(inbox::event_id.eq_any(&ids))
                .filter(inbox::subscriber.eq_any(&names))
                .select((inbox::subscriber, inbox::event_id))
                .load::<(String, Id)>(conn)
                .await?;
            Ok::<_, DbError>(rows)
        })?;
        let mut seqs = Vec::with_capacity(count);
        let mut envelopes = Vec::with_capacity(count);
        for (seq, row) in rows {
            seqs.push(seq);
            envelopes.push(row.into_envelope());
        }
        // Subscribers are independent of one another: their runs go on
        // concurrently (each still in order), so a batch takes as long as its
        // slowest subscriber rather than all of them in turn.
        let runs = subs.iter().map(|sub| {
            let seen: HashSet<Id> = done.iter().filter(|(name, _)| *name == sub.name).map(|(_, id)| *id).collect();
            let events: Vec<&Envelope> = envelopes
                .iter()
                .filter(|e| sub.event_types.iter().any(|t| t == &e.event_type))
                .filter(|e| !seen.contains(&e.id))
                .collect();
            self.deliver_run(sub, events)
        });
        let mut delivered = Vec::new();
        for run in futures_util::future::join_all(runs).await {
            delivered.extend(run?);
        }
        drop(subs);
        let now = Instant::now();
        crate::transaction!(self.db, |conn| {
            conn.record_deliveries(&delivered, now).await?;
            // Delivered: out of the outbox (a delete leaves the row as it is;
            // marking it rewrote the whole row, payload and all).
            diesel::delete(outbox_events::table.filter(outbox_events::seq.eq_any(&seqs)))
                .cached()
                .execute(conn)
                .await?;
            Ok::<_, DbError>(())
        })?;
        count_published(&envelopes);
        Ok(count)
    }

    /// Hands one subscriber its events of a batch, in order: the whole run at
    /// once to a batching handler, one by one otherwise (or when the run
    /// failed). Returns the deliveries made.
    async fn deliver_run(&self, sub: &Subscription, events: Vec<&Envelope>) -> Result<Vec<(String, Id)>, DbError> {
        let mut delivered = Vec::with_capacity(events.len());
        if events.is_empty() {
            return Ok(delivered);
        }
        if sub.handler.batches() {
            // A span per event, each in its own trace, for the run's time;
            // the handler's own spans go under the first.
            let spans: Vec<tracing::Span> = events.iter().map(|e| delivery_span(&sub.name, e)).collect();
            let outcome = sub.handler.handle_batch(&events).instrument(spans[0].clone()).await;
            if outcome.is_err() {
                spans.iter().for_each(failed);
            }
            drop(spans);
            match outcome {
                Ok(()) => {
                    events.iter().for_each(|e| count_delivered(&sub.name, e));
                    delivered.extend(events.iter().map(|e| (sub.name.clone(), e.id)));
                    return Ok(delivered);
                }
                Err(e) => {
                    tracing::warn!(subscriber = %sub.name, events = events.len(), error = %e, "batch delivery failed; delivering one by one");
                }
            }
        }
        for event in events {
            self.deliver(sub, event, &mut delivered).await?;
        }
        Ok(delivered)
    }

    /// Hands `event` to one subscriber, with retries; a success is added to
    /// `delivered`, an exhausted event parked at once.
    async fn deliver(
        &self,
        sub: &Subscription,
        event: &Envelope,
        delivered: &mut Vec<(String, Id)>,
    ) -> Result<(), DbError> {
        let mut backoff = self.retry.first_backoff;
        let mut last_error = String::new();
        for attempt in 1..=self.retry.attempts {
            let span = delivery_span(&sub.name, event);
            span.record("attempt", attempt);
            let outcome = sub.handler.handle(event).instrument(span.clone()).await;
            if outcome.is_err() {
                failed(&span);
            }
            match outcome {
                Ok(()) => {
                    count_delivered(&sub.name, event);
                    delivered.push((sub.name.clone(), event.id));
                    return Ok(());
                }
                Err(e) => {
                    span.in_scope(|| {
                        tracing::warn!(subscriber = %sub.name, event = %event.event_type, attempt, error = %e, "event handler failed");
                    });
                    metrics::counter!("events_handler_failures_total", "subscriber" => sub.name.clone()).increment(1);
                    last_error = e;
                    if attempt < self.retry.attempts {
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                }
            }
        }
        self.park(&sub.name, event, &last_error).await
    }

    async fn mark_processed(&self, subscriber: &str, event_id: Id) -> Result<(), DbError> {
        let delivery = [(subscriber.to_owned(), event_id)];
        crate::run!(self.db, |conn| {
            conn.record_deliveries(&delivery, Instant::now()).await?;
            Ok::<_, DbError>(())
        })
    }

    /// Appends an event on its own (no state change goes with it: the
    /// edge's record of an admin call) and wakes the relay.
    pub async fn publish(&self, event: &Envelope) -> Result<(), DbError> {
        crate::transaction!(self.db, |conn| {
            conn.append_event(event).await?;
            Ok::<_, DbError>(())
        })?;
        self.poke();
        Ok(())
    }

    /// Parks work that failed for good outside the relay (a job's last
    /// attempt) as a dead letter of `subscriber`, whose handler a replay
    /// calls with `envelope`: admins see and replay it like any other.
    pub async fn park_for_replay(&self, subscriber: &str, envelope: &Envelope, error: &str) -> Result<(), DbError> {
        self.park(subscriber, envelope, error).await
    }

    async fn park(&self, subscriber: &str, envelope: &Envelope, error: &str) -> Result<(), DbError> {
        tracing::error!(subscriber, event = %envelope.event_type, event_id = %envelope.id, error, "event parked in dead letters");
        metrics::counter!("events_parked_total", "subscriber" => subscriber.to_owned(), "type" => envelope.event_type.clone())
            .increment(1);
        let body = serde_json::to_string(envelope).unwrap_or_default();
        let attempts = i32::try_from(self.retry.attempts).unwrap_or(i32::MAX);
        crate::run!(self.db, |conn| {
            diesel::insert_into(dead_letters::table)
                .values((
                    dead_letters::id.eq(Id::new()),
                    dead_letters::subscriber.eq(subscriber),
                    dead_letters::event_id.eq(envelope.id),
                    dead_letters::event_type.eq(&envelope.event_type),
                    dead_letters::envelope.eq(&body),
                    dead_letters::error.eq(error),
                    dead_letters::attempts.eq(attempts),
                    dead_letters::failed_at.eq(Instant::now()),
                ))
                .execute(conn)
                .await?;
            Ok::<_, DbError>(())
        })
    }

    /// Sets the bus's gauges from the database, when `/metrics` is scraped:
    /// rows the relay still owes, the age of the oldest (the relay's lag),
    /// and parked deliveries not replayed.
    pub async fn observe(&self) -> Result<(), DbError> {
        let (owed, oldest, parked) = crate::run!(self.db, |conn| {
            let owed: i64 = outbox_events::table.count().get_result(conn).await?;
            let oldest: Option<Instant> = outbox_events::table
                .order(outbox_events::seq.asc())
                .select(outbox_events::occurred_at)
                .first::<Instant>(conn)
                .await
                .optional()?;
            let parked: i64 =
                dead_letters::table.filter(dead_letters::replayed_at.is_null()).count().get_result(conn).await?;
            Ok::<_, DbError>((owed, oldest, parked))
        })?;
        let lag = oldest.map_or(0.0, |at| (Instant::now().0 - at.0).num_milliseconds().max(0) as f64 / 1000.0);
        metrics::gauge!("events_outbox_pending").set(owed as f64);
        metrics::gauge!("events_outbox_oldest_age_seconds").set(lag);
        metrics::gauge!("events_dead_letters_pending").set(parked as f64);
        Ok(())
    }

    /// Parked deliveries, newest first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>, DbError> {
        crate::run!(self.db, |conn| {
            let rows = dead_letters::table
                .order(dead_letters::failed_at.desc())
                .limit(limit)
                .select((
                    dead_letters::id,
                    dead_letters::subscriber,
                    dead_letters::event_id,
                    dead_letters::event_type,
                    dead_letters::error,
                    dead_letters::attempts,
                    dead_letters::failed_at,
                    dead_letters::replayed_at,
                ))
                .load::<(Id, String, Id, String, String, i32, Instant, Option<Instant>)>(conn)
                .await?;
            Ok::<_, DbError>(
                rows.into_iter()
                    .map(|(id, subscriber, event_id, event_type, error, attempts, failed_at, replayed_at)| DeadLetter {
                        id,
                        subscriber,
                        event_id,
                        event_type,
                        error,
                        attempts,
                        failed_at,
                        replayed_at,
                    })
                    .collect(),
            )
        })
    }

    /// Hands a parked event to its subscriber again. `Ok(false)` if the
    /// handler still fails (the dead letter stays, with the new error).
    pub async fn replay(&self, dead_letter_id: Id) -> Result<bool, DbError> {
        let (subscriber, body): (String, String) = crate::run!(self.db, |conn| {
            let row = dead_letters::table
                .find(dead_letter_id)
                .select((dead_letters::subscriber, dead_letters::envelope))
                .first::<(String, String)>(conn)
                .await?;
            Ok::<_, DbError>(row)
        })?;
        let envelope: Envelope =
            serde_json::from_str(&body).map_err(|e| DbError::Encoding(format!("dead letter decoding: {e}")))?;
        let handler = {
            let subs = self.subscriptions.read().await;
            subs.iter().find(|s| s.name == subscriber).map(|s| Arc::clone(&s.handler))
        };
        let Some(handler) = handler else {
            return Err(DbError::NotFound);
        };
        let outcome = handler.handle(&envelope).await;
        let ok = outcome.is_ok();
        if ok {
            self.mark_processed(&subscriber, envelope.id).await?;
        }
        crate::run!(self.db, |conn| {
            let target = dead_letters::table.find(dead_letter_id);
            match &outcome {
                Ok(()) => {
                    diesel::update(target).set(dead_letters::replayed_at.eq(Some(Instant::now()))).execute(conn).await?
                }
                Err(e) => diesel::update(target).set(dead_letters::error.eq(e)).execute(conn).await?,
            };
            Ok::<_, DbError>(())
        })?;
        Ok(ok)
    }

    /// Deletes the inbox entries of events made more than a week ago (a
    /// redelivery that late would be a relay bug, not a retry) and dead
    /// letters older than a month; returns how many inbox entries went.
    /// (Delivered events leave the outbox as they are delivered.)
    pub async fn prune(&self, now: Instant) -> Result<usize, DbError> {
        let inbox_before = now.minus(chrono::Duration::days(7));
        crate::transaction!(self.db, |conn| {
            // Event ids are UUIDv7, ordered by when the event was made: the
            // key's first column finds old deliveries (an index range; by
            // `processed_at` it was a scan of a week of deliveries).
            let deliveries = diesel::delete(inbox::table.filter(inbox::event_id.lt(Id::first_at(inbox_before))))
                .execute(conn)
                .await?;
            // Parked events may carry single-use tokens: kept a month for inspection.
            let parked_before = now.minus(chrono::Duration::days(30));
            diesel::delete(dead_letters::table.filter(dead_letters::failed_at.lt(parked_before))).execute(conn).await?;
            Ok::<_, DbError>(deliveries)
        })
    }

    /// Events not yet delivered (for readiness and tests).
    pub async fn backlog(&self) -> Result<i64, DbError> {
        crate::run!(self.db, |conn| {
            let n = outbox_events::table.count().get_result::<i64>(conn).await?;
            Ok::<_, DbError>(n)
        })
    }
}

/// The kernel's own tables (outbox, inbox, dead letters).
pub const MIGRATIONS: crate::db::MigrationSet =
    crate::db::MigrationSet { module: "kernel", postgres: || PG_MIGRATIONS, sqlite: || SQLITE_MIGRATIONS };
const PG_MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/kernel/postgres");
const SQLITE_MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/kernel/sqlite");

/// Events that left the outbox (`events_published_total{type}`): the rate of
/// each business event (bookings made and confirmed, payments, refunds,
/// sign-ups) as well as the bus's throughput.
fn count_published(envelopes: &[Envelope]) {
    for e in envelopes {
        metrics::counter!("events_published_total", "type" => e.event_type.clone()).increment(1);
    }
}

fn count_delivered(subscriber: &str, event: &Envelope) {
    metrics::counter!("events_delivered_total", "subscriber" => subscriber.to_owned(), "type" => event.event_type.clone())
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A SQLite database in a fresh folder, or a fresh PostgreSQL database
    /// when `TEST_DATABASE_URL` is set.
    async fn test_db() -> Db {
        let url = match std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            Some(base) => {
                use diesel_async::{AsyncConnection, AsyncPgConnection};
                let name = format!("ht_test_{}", uuid::Uuid::now_v7().simple());
                let mut conn = AsyncPgConnection::establish(&base).await.unwrap();
                diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
                let mut url = url::Url::parse(&base).unwrap();
                url.set_path(&format!("/{name}"));
                url.to_string()
            }
            None => {
                let dir = std::env::temp_dir().join(format!("hometrip-kernel-{}", uuid::Uuid::now_v7()));
                format!("sqlite://{}", dir.join("db.sqlite").display())
            }
        };
        let db = Db::connect(&url, 4, 1).await.unwrap();
        db.migrate(&url, vec![MIGRATIONS]).await.unwrap();
        db
    }

    /// A transaction begun by hand and abandoned before its end (an error on
    /// the way, a cancelled request) never reaches the next user of the pool
    /// and is rolled back; one that ended leaves its connection to be reused.
    #[tokio::test]
    async fn a_transaction_begun_by_hand_and_abandoned_is_rolled_back() {
        use diesel_async::SimpleAsyncConnection;
        let db = test_db().await;
        let bus = EventBus::new(db.clone(), fast());
        let e = Envelope::new("test", "test.happened", &serde_json::json!({ "n": 1 })).unwrap();
        // The same steps as a pipelined reservation, stopped before COMMIT.
        async fn abandon(db: &Db, e: &Envelope) {
            let Ok(crate::db::Pooled::Pg(mut pooled)) = db.get().await else { return };
            crate::db::begin_by_hand(&mut pooled).unwrap();
            pooled.batch_execute("BEGIN").await.unwrap();
            pooled.append_event(e).await.unwrap();
        }
        if db.backend() != crate::db::Backend::Postgres {
            return;
        }
        for _ in 0..6 {
            abandon(&db, &e).await;
            // Handed the abandoned connection, this would count its own
            // uncommitted row.
            assert_eq!(bus.backlog().await.unwrap(), 0);
        }
        // Ended by hand, the transaction commits and the connection serves on.
        let Ok(crate::db::Pooled::Pg(mut pooled)) = db.get().await else { panic!("postgres") };
        crate::db::begin_by_hand(&mut pooled).unwrap();
        pooled.batch_execute("BEGIN").await.unwrap();
        pooled.append_event(&e).await.unwrap();
        pooled.batch_execute("COMMIT").await.unwrap();
        crate::db::end_by_hand(&mut pooled).unwrap();
        drop(pooled);
        assert_eq!(bus.backlog().await.unwrap(), 1);
    }

    /// Fails `failures` times, then records what it saw.
    struct Flaky {
        failures: AtomicU32,
        seen: tokio::sync::Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl EventHandler for Flaky {
        async fn handle(&self, event: &Envelope) -> Result<(), String> {
            if AtomicU32::load(&self.failures, Ordering::SeqCst) > 0 {
                self.failures.fetch_sub(1, Ordering::SeqCst);
                return Err("not now".to_owned());
            }
            self.seen.lock().await.push(event.decode::<serde_json::Value>().unwrap_or_default()["n"].to_string());
            Ok(())
        }
    }

    async fn publish(db: &Db, n: u32) {
        let e = Envelope::new("test", "test.happened", &serde_json::json!({ "n": n })).unwrap();
        crate::transaction!(db, |conn| {
            conn.append_event(&e).await?;
            Ok::<_, DbError>(())
        })
        .unwrap();
    }

    fn fast() -> RetryPolicy {
        RetryPolicy { attempts: 3, first_backoff: Duration::from_millis(1) }
    }

    #[tokio::test]
    async fn delivers_in_order_once_with_retries() {
        let db = test_db().await;
        let bus = EventBus::new(db.clone(), fast());
        let handler = Arc::new(Flaky { failures: AtomicU32::new(2), seen: Default::default() });
        bus.subscribe("flaky", &["test.happened"], handler.clone()).await;
        for n in 1..=3 {
            publish(&db, n).await;
        }
        assert_eq!(bus.backlog().await.unwrap(), 3);
        assert_eq!(bus.relay_once(10).await.unwrap(), 3);
        assert_eq!(*handler.seen.lock().await, vec!["1", "2", "3"]);
        assert_eq!(bus.backlog().await.unwrap(), 0);
        assert!(bus.dead_letters(10).await.unwrap().is_empty());
        // Nothing is delivered twice.
        assert_eq!(bus.relay_once(10).await.unwrap(), 0);
        assert_eq!(handler.seen.lock().await.len(), 3);
    }

    #[tokio::test]
    async fn a_poison_event_is_parked_then_replayed() {
        let db = test_db().await;
        let bus = EventBus::new(db.clone(), fast());
        let handler = Arc::new(Flaky { failures: AtomicU32::new(3), seen: Default::default() });
        bus.subscribe("flaky", &["test.happened"], handler.clone()).await;
        publish(&db, 7).await;
        publish(&db, 8).await;
        bus.relay_once(10).await.unwrap();
        // The first exhausted its attempts; the second went through.
        assert_eq!(*handler.seen.lock().await, vec!["8"]);
        let parked = bus.dead_letters(10).await.unwrap();
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].attempts, 3);
        assert_eq!(parked[0].error, "not now");
        assert!(bus.replay(parked[0].id).await.unwrap());
        assert_eq!(*handler.seen.lock().await, vec!["8", "7"]);
        assert!(bus.dead_letters(10).await.unwrap()[0].replayed_at.is_some());
        assert!(matches!(bus.replay(Id::new()).await, Err(DbError::NotFound)));
    }

    #[tokio::test]
    async fn an_event_already_in_the_inbox_is_skipped() {
        let db = test_db().await;
        let bus = EventBus::new(db.clone(), fast());
        let handler = Arc::new(Flaky { failures: AtomicU32::new(0), seen: Default::default() });
        bus.subscribe("once", &["test.happened"], handler.clone()).await;
        publish(&db, 1).await;
        // Simulate a crash after the handler ran but before the event left the outbox.
        let first_id = async {
            crate::run!(db, |conn| {
                Ok::<Id, DbError>(outbox_events::table.select(outbox_events::id).first(conn).await?)
            })
        };
        let id = first_id.await.unwrap();
        bus.mark_processed("once", id).await.unwrap();
        bus.relay_once(10).await.unwrap();
        assert!(handler.seen.lock().await.is_empty());
        assert_eq!(bus.backlog().await.unwrap(), 0);
    }

    /// Takes runs of events at once; refuses whole runs when told to.
    struct Batching {
        batches: tokio::sync::Mutex<Vec<usize>>,
        seen: tokio::sync::Mutex<Vec<String>>,
        refuse_batches: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl EventHandler for Batching {
        async fn handle(&self, event: &Envelope) -> Result<(), String> {
            self.seen.lock().await.push(event.decode::<serde_json::Value>().unwrap_or_default()["n"].to_string());
            Ok(())
        }

        fn batches(&self) -> bool {
            true
        }

        async fn handle_batch(&self, events: &[&Envelope]) -> Result<(), String> {
            if std::sync::atomic::AtomicBool::load(&self.refuse_batches, Ordering::SeqCst) {
                return Err("not as a batch".to_owned());
            }
            self.batches.lock().await.push(events.len());
            for event in events {
                self.handle(event).await?;
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_batching_handler_gets_runs_and_falls_back_to_one_by_one() {
        let db = test_db().await;
        let bus = EventBus::new(db.clone(), fast());
        let handler = Arc::new(Batching {
            batches: Default::default(),
            seen: Default::default(),
            refuse_batches: std::sync::atomic::AtomicBool::new(false),
        });
        bus.subscribe("batching", &["test.happened"], handler.clone()).await;
        for n in 1..=3 {
            publish(&db, n).await;
        }
        assert_eq!(bus.relay_once(10).await.unwrap(), 3);
        assert_eq!(*handler.batches.lock().await, vec![3]);
        assert_eq!(*handler.seen.lock().await, vec!["1", "2", "3"]);
        // A refused run is delivered event by event, in order, nothing parked.
        handler.refuse_batches.store(true, Ordering::SeqCst);
        publish(&db, 4).await;
        publish(&db, 5).await;
        assert_eq!(bus.relay_once(10).await.unwrap(), 2);
        assert_eq!(*handler.batches.lock().await, vec![3]);
        assert_eq!(*handler.seen.lock().await, vec!["1", "2", "3", "4", "5"]);
        assert!(bus.dead_letters(10).await.unwrap().is_empty());
        assert_eq!(bus.backlog().await.unwrap(), 0);
        // Every delivery is in the inbox: nothing comes twice.
        assert_eq!(bus.relay_once(10).await.unwrap(), 0);
        assert_eq!(handler.seen.lock().await.len(), 5);
    }

    #[tokio::test]
    async fn delivered_events_leave_the_outbox_and_old_deliveries_the_inbox() {
        let db = test_db().await;
        let bus = EventBus::new(db.clone(), fast());
        let handler = Arc::new(Flaky { failures: AtomicU32::new(0), seen: Default::default() });
        bus.subscribe("once", &["test.happened"], handler.clone()).await;
        publish(&db, 1).await;
        publish(&db, 2).await;
        assert_eq!(bus.relay_once(1).await.unwrap(), 1);
        // The delivered one is gone; the pending one stays, and comes next.
        let left: Vec<String> = crate::run!(db, |conn| {
            outbox_events::table.select(outbox_events::data).load::<String>(conn).await.map_err(DbError::from)
        })
        .unwrap();
        assert_eq!(left.len(), 1);
        assert!(left[0].contains('2'), "{left:?}");
        assert_eq!(bus.relay_once(10).await.unwrap(), 1);
        assert_eq!(bus.backlog().await.unwrap(), 0);
        // Deliveries are remembered a week.
        assert_eq!(bus.prune(Instant::now().plus(chrono::Duration::days(6))).await.unwrap(), 0);
        assert_eq!(bus.prune(Instant::now().plus(chrono::Duration::days(8))).await.unwrap(), 2);
    }
}
