//! Events between processes over RabbitMQ (lapin). The relay publishes each
//! outbox row to a durable topic exchange, routing key = event type,
//! persistent, with publisher confirms; rows leave the outbox only once the
//! broker confirmed them. Each subscriber has its own durable quorum queue,
//! bound to the types it handles and shared by the replicas of its module
//! (competing consumers); a delivery is acked after its handler ran and the
//! inbox recorded it, so a redelivery is recognised. Retries, then parking in
//! `dead_letters`, are the bus's, as in process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;

use crate::events::{Envelope, EventBus};

/// Deliveries a consumer holds unacknowledged (and handles as one run).
const PREFETCH: u16 = 64;
/// How often an idle consumer checks that its connection is still up.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How long a published batch may wait for its confirms.
const CONFIRM_WITHIN: Duration = Duration::from_secs(10);
/// How long declaring a consumer's queue and bindings may take.
const SETUP_WITHIN: Duration = Duration::from_secs(10);

pub struct Broker {
    url: String,
    /// `<namespace>.events` and `<namespace>.<subscriber>`: deployments (and
    /// test platforms) sharing a broker stay apart.
    namespace: String,
    /// The publishing channel (confirms on), opened on first use and after a failure.
    publisher: Mutex<Option<(Connection, Channel)>>,
    connected: AtomicBool,
    queues: QueueSettings,
}

/// How subscriber queues are declared.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// `quorum` (replicated, the default) or `classic`.
    pub kind: String,
    /// A queue unused this long is deleted by the broker (0: never). For
    /// throwaway deployments such as test platforms.
    pub expires_secs: u64,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings { kind: "quorum".to_owned(), expires_secs: 0 }
    }
}

impl Broker {
    pub fn new(url: &str, namespace: &str, queues: QueueSettings) -> Arc<Broker> {
        Arc::new(Broker {
            url: url.to_owned(),
            namespace: namespace.to_owned(),
            publisher: Mutex::new(None),
            connected: AtomicBool::new(false),
            queues,
        })
    }

    pub fn exchange(&self) -> String {
        format!("{}.events", self.namespace)
    }

    pub fn queue(&self, subscriber: &str) -> String {
        format!("{}.{subscriber}", self.namespace)
    }

    /// Whether the last attempt to reach the broker succeeded (`/health/ready`).
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    async fn connect(&self) -> Result<Connection, String> {
        let connecting = Connection::connect(&self.url, ConnectionProperties::default());
        let result = match tokio::time::timeout(Duration::from_secs(3), connecting).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("connection timed out".to_owned()),
        };
        self.connected.store(result.is_ok(), Ordering::Relaxed);
        result
    }

    async fn declare_exchange(&self, channel: &Channel) -> Result<(), String> {
        channel
            .exchange_declare(
                self.exchange().as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() },
                FieldTable::default(),
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// Keeps the publishing channel open (reconnecting with backoff), so
    /// readiness tells whether the broker is reachable before any event.
    pub fn spawn_keepalive(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let broker = Arc::clone(self);
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(200);
            loop {
                match broker.publish(&[]).await {
                    Ok(()) => wait = Duration::from_secs(2),
                    Err(e) => {
                        tracing::warn!(error = %e, "event broker unreachable");
                        wait = (wait * 2).min(Duration::from_secs(5));
                    }
                }
                tokio::time::sleep(wait).await;
            }
        })
    }

    /// Publishes `events` and waits for every confirm; an error leaves them
    /// to be published again (consumers recognise duplicates by the inbox).
    pub async fn publish(&self, events: &[Envelope]) -> Result<(), String> {
        let mut guard = self.publisher.lock().await;
        let usable = guard.as_ref().is_some_and(|(conn, ch)| conn.status().connected() && ch.status().connected());
        if !usable {
            *guard = None;
            let conn = self.connect().await?;
            let channel = conn.create_channel().await.map_err(|e| e.to_string())?;
            channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(|e| e.to_string())?;
            self.declare_exchange(&channel).await?;
            *guard = Some((conn, channel));
        }
        let Some((_, channel)) = guard.as_ref() else { return Err("no channel".to_owned()) };
        let exchange = self.exchange();
        let result = async {
            let mut confirms = Vec::with_capacity(events.len());
            for event in events {
                let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
                let mut headers = FieldTable::default();
                // W3C trace context, as its AMQP mapping names it (the
                // envelope in the body carries it too).
                if let Some(trace) = &event.trace_context {
                    headers.insert("traceparent".into(), AMQPValue::LongString(trace.as_str().into()));
                }
                let properties = BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type("application/json".into())
                    .with_message_id(event.id.to_string().as_str().into())
                    .with_type(event.event_type.as_str().into())
                    .with_headers(headers);
                let confirm = channel
                    .basic_publish(
                        exchange.as_str().into(),
                        event.event_type.as_str().into(),
                        BasicPublishOptions::default(),
                        &body,
                        properties,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                confirms.push(confirm);
            }
            for confirm in confirms {
                // A confirm lost with its connection must not hold the publisher.
                let confirmation = tokio::time::timeout(CONFIRM_WITHIN, confirm)
                    .await
                    .map_err(|_| "no confirm from the broker in time".to_owned())?
                    .map_err(|e| e.to_string())?;
                if !confirmation.is_ack() {
                    return Err("the broker refused an event".to_owned());
                }
            }
            Ok(())
        }
        .await;
        if result.is_err() {
            *guard = None;
            self.connected.store(false, Ordering::Relaxed);
        }
        result
    }

    /// One consumer per subscription of `bus`, each reconnecting with backoff
    /// for as long as the process runs.
    pub async fn spawn_consumers(self: &Arc<Self>, bus: &Arc<EventBus>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        for (name, types) in bus.subscription_names().await {
            let broker = Arc::clone(self);
            let bus = Arc::clone(bus);
            tasks.push(tokio::spawn(async move {
                let mut wait = Duration::from_millis(200);
                loop {
                    match broker.consume(&bus, &name, &types).await {
                        Ok(()) => wait = Duration::from_millis(200),
                        Err(e) => {
                            tracing::warn!(subscriber = %name, error = %e, "event consumer lost the broker; reconnecting");
                        }
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }));
        }
        tasks
    }

    /// Declares the subscriber's queue and handles its deliveries until the
    /// connection drops. Deliveries already waiting are handled as one run
    /// (a batching handler applies it in one go), then acked together.
    async fn consume(&self, bus: &EventBus, subscriber: &str, types: &[String]) -> Result<(), String> {
        let setup = tokio::time::timeout(SETUP_WITHIN, self.open_consumer(subscriber, types));
        let (conn, channel, consumer) = setup.await.map_err(|_| "declaring the queue timed out".to_owned())??;
        let result = self.handle_deliveries(bus, subscriber, (&conn, &channel), consumer).await;
        // A connection still up (an ack that failed, say) is closed, not leaked.
        if conn.status().connected() {
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.close(200, "reconnecting".into())).await;
        }
        result
    }

    /// Opens a connection and channel, declares the subscriber's queue and
    /// bindings, and starts consuming it.
    async fn open_consumer(
        &self,
        subscriber: &str,
        types: &[String],
    ) -> Result<(Connection, Channel, lapin::Consumer), String> {
        let conn = self.connect().await?;
        let channel = conn.create_channel().await.map_err(|e| e.to_string())?;
        self.declare_exchange(&channel).await?;
        let queue = self.queue(subscriber);
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString(self.queues.kind.as_str().into()));
        if self.queues.expires_secs > 0 {
            let ms = i64::try_from(self.queues.expires_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
            args.insert("x-expires".into(), AMQPValue::LongLongInt(ms));
        }
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() },
                args,
            )
            .await
            .map_err(|e| e.to_string())?;
        for t in types {
            channel
                .queue_bind(
                    queue.as_str().into(),
                    self.exchange().as_str().into(),
                    t.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| e.to_string())?;
        }
        channel.basic_qos(PREFETCH, BasicQosOptions::default()).await.map_err(|e| e.to_string())?;
        let tag = format!("{subscriber}-{}", crate::Id::new());
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok((conn, channel, consumer))
    }

    /// Handles deliveries until the connection drops.
    async fn handle_deliveries(
        &self,
        bus: &EventBus,
        subscriber: &str,
        (conn, channel): (&Connection, &Channel),
        mut consumer: lapin::Consumer,
    ) -> Result<(), String> {
        tracing::info!(subscriber, queue = %self.queue(subscriber), "consuming events");
        loop {
            // A lost connection does not always end the consumer stream (seen
            // with lapin 4: "connection aborted", then the stream waits
            // forever), so the connection's state is watched too.
            let next = tokio::select! {
                next = consumer.next() => next,
                () = tokio::time::sleep(WATCH_EVERY) => {
                    if conn.status().connected() && channel.status().connected() {
                        continue;
                    }
                    return Err("the connection to the broker was lost".to_owned());
                }
            };
            let Some(first) = next else { break };
            let mut deliveries = vec![first.map_err(|e| e.to_string())?];
            while deliveries.len() < usize::from(PREFETCH) {
                match futures_util::FutureExt::now_or_never(consumer.next()) {
                    Some(Some(Ok(d))) => deliveries.push(d),
                    Some(Some(Err(e))) => return Err(e.to_string()),
                    _ => break,
                }
            }
            let mut events = Vec::with_capacity(deliveries.len());
            for d in &deliveries {
                match serde_json::from_slice::<Envelope>(&d.data) {
                    Ok(e) => events.push(e),
                    // Not an envelope: nothing any handler could do with it.
                    Err(e) => tracing::error!(subscriber, error = %e, "undecodable event dropped"),
                }
            }
            let Some(last) = deliveries.last() else { continue };
            match bus.consume_run(subscriber, &events).await {
                Ok(()) => {
                    last.acker.ack(BasicAckOptions { multiple: true }).await.map_err(|e| e.to_string())?;
                }
                Err(e) => {
                    // The database is down, say: back to the queue, try again later.
                    tracing::warn!(subscriber, error = %e, "events not handled; requeued");
                    last.acker
                        .nack(BasicNackOptions { multiple: true, requeue: true })
                        .await
                        .map_err(|e| e.to_string())?;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        Err("the consumer stream ended".to_owned())
    }
}
