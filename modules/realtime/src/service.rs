//! What the realtime module pushes, and to whom: the other modules' events
//! become frames for their users; presence changes go to the counterparts of
//! a user's conversations.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use hometrip_booking::api::BookingEvent;
use hometrip_kernel::db::Db;
use hometrip_kernel::events::{Envelope, EventBus, EventHandler};
use hometrip_kernel::time::Instant;
use hometrip_kernel::{Id, Problem};
use hometrip_listing::api::{CalendarChanged, Listings, CALENDAR_CHANGED};
use hometrip_message::api::{ConversationRead, MessageCreated, Messages, CONVERSATION_READ, MESSAGE_CREATED};
use hometrip_notification::api::{NotificationCreated, Notifications, NOTIFICATION_CREATED};
use serde_json::json;

use crate::api::RealtimeSettings;
use crate::fanout::Fanout;
use crate::hub::Outgoing;
use crate::presence::Presence;
use crate::store;

/// Booking events pushed as `booking.updated`.
const BOOKING_EVENTS: &[&str] = &[
    hometrip_booking::api::BOOKING_CREATED,
    hometrip_booking::api::BOOKING_AWAITING_HOST,
    hometrip_booking::api::BOOKING_CONFIRMED,
    hometrip_booking::api::BOOKING_DECLINED,
    hometrip_booking::api::BOOKING_EXPIRED,
    hometrip_booking::api::BOOKING_CANCELLED_BY_GUEST,
    hometrip_booking::api::BOOKING_CANCELLED_BY_HOST,
    hometrip_booking::api::BOOKING_COMPLETED,
];

pub struct RealtimeService {
    pub db: Db,
    pub fanout: Arc<Fanout>,
    pub presence: Presence,
    pub messages: Arc<dyn Messages>,
    pub notifications: Arc<dyn Notifications>,
    listings: Arc<dyn Listings>,
    /// Listing → host (a listing never changes hands).
    hosts: Mutex<lru::LruCache<Id, Id>>,
    pub settings: RealtimeSettings,
}

impl RealtimeService {
    pub fn new(
        db: Db,
        fanout: Arc<Fanout>,
        presence: Presence,
        messages: Arc<dyn Messages>,
        listings: Arc<dyn Listings>,
        notifications: Arc<dyn Notifications>,
        settings: RealtimeSettings,
    ) -> Arc<Self> {
        let hosts = Mutex::new(lru::LruCache::new(NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN)));
        Arc::new(RealtimeService { db, fanout, presence, messages, notifications, listings, hosts, settings })
    }

    pub async fn subscribe(self: &Arc<Self>, bus: &EventBus) {
        let mut types = vec![MESSAGE_CREATED, CONVERSATION_READ, CALENDAR_CHANGED, NOTIFICATION_CREATED];
        types.extend_from_slice(BOOKING_EVENTS);
        bus.subscribe("realtime.frames", &types, Arc::clone(self) as Arc<dyn EventHandler>).await;
    }

    async fn host_of(&self, listing_id: Id) -> Result<Option<Id>, Problem> {
        if let Some(host) = self.hosts.lock().unwrap_or_else(PoisonError::into_inner).get(&listing_id) {
            return Ok(Some(*host));
        }
        let Some(listing) = self.listings.listing(listing_id).await? else { return Ok(None) };
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner).put(listing_id, listing.host_id);
        Ok(Some(listing.host_id))
    }

    /// A socket of `user` opened here (`first_here`: their first here).
    pub async fn connected(&self, user: Id, first_here: bool) {
        if !first_here {
            return;
        }
        match self.presence.arrived(user).await {
            Ok(true) => self.announce(user, true, Instant::now()).await,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "presence not recorded"),
        }
    }

    /// A socket of `user` closed here (`last_here`: their last here).
    pub async fn disconnected(&self, user: Id, last_here: bool) {
        if !last_here {
            return;
        }
        match self.presence.left(user).await {
            Ok(true) => self.went_offline(user).await,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "presence not recorded"),
        }
    }

    async fn went_offline(&self, user: Id) {
        let now = Instant::now();
        if let Err(e) = store::seen(&self.db, user, now).await {
            tracing::warn!(error = %e, "last seen time not stored");
        }
        self.announce(user, false, now).await;
    }

    /// Tells the counterparts of `user`'s conversations.
    async fn announce(&self, user: Id, online: bool, last_seen_at: Instant) {
        let counterparts = match self.messages.counterparts(user).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e.detail, "presence not announced");
                return;
            }
        };
        let frame =
            json!({"type": "presence", "data": {"user_id": user, "online": online, "last_seen_at": last_seen_at}});
        if let Err(e) = self.fanout.publish(&counterparts, &frame, None).await {
            tracing::warn!(error = %e, "presence not announced");
        }
    }

    /// The presence of `user`'s counterparts, for a socket that just opened.
    pub async fn presence_of_counterparts(&self, user: Id) -> Result<Vec<Outgoing>, Problem> {
        let counterparts = self.messages.counterparts(user).await?;
        let online = self.presence.online(&counterparts).await.map_err(Problem::internal)?;
        let seen = store::last_seen(&self.db, &counterparts).await.map_err(Problem::from)?;
        let now = Instant::now();
        Ok(counterparts
            .iter()
            .zip(online)
            .map(|(id, online)| {
                let last_seen_at =
                    if online { Some(now) } else { seen.iter().find(|(u, _)| u == id).map(|(_, at)| *at) };
                let frame = json!({"type": "presence", "data": {"user_id": id, "online": online, "last_seen_at": last_seen_at}});
                Outgoing::Frame { text: Arc::from(frame.to_string()), order: None }
            })
            .collect())
    }

    /// Renews this process's users and sweeps those of processes that
    /// stopped renewing theirs.
    pub fn spawn_presence(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let svc = Arc::clone(self);
        tokio::spawn(async move {
            let period = Duration::from_secs((svc.settings.presence_ttl_secs / 3).max(1));
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                if let Err(e) = svc.presence.renew(&svc.fanout.hub().users()).await {
                    tracing::warn!(error = %e, "presence not renewed");
                }
                match svc.presence.sweep().await {
                    Ok(gone) => {
                        for user in gone {
                            // Still here after all (a renewal raced the sweep).
                            if svc.fanout.hub().is_here(user) {
                                let _ = svc.presence.arrived(user).await;
                                continue;
                            }
                            svc.went_offline(user).await;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "presence sweep failed"),
                }
            }
        })
    }
}

#[async_trait]
impl EventHandler for RealtimeService {
    async fn handle(&self, event: &Envelope) -> Result<(), String> {
        let (users, frame, order) = match event.event_type.as_str() {
            MESSAGE_CREATED => {
                let e: MessageCreated = event.decode()?;
                let p = e.participants;
                let order = Some((e.message.conversation_id, e.message.seq));
                (vec![p.guest_id, p.host_id], json!({"type": "message.created", "data": e.message}), order)
            }
            CONVERSATION_READ => {
                let e: ConversationRead = event.decode()?;
                let p = e.participants;
                let data =
                    json!({"conversation_id": p.conversation_id, "reader_id": e.reader_id, "up_to_seq": e.up_to_seq});
                (vec![p.guest_id, p.host_id], json!({"type": "conversation.read", "data": data}), None)
            }
            NOTIFICATION_CREATED => {
                let e: NotificationCreated = event.decode()?;
                (vec![e.user_id], json!({"type": "notification.created", "data": e.notification}), None)
            }
            CALENDAR_CHANGED => {
                let e: CalendarChanged = event.decode()?;
                let Some(host) = self.host_of(e.listing_id).await.map_err(|p| p.detail)? else { return Ok(()) };
                (vec![host], json!({"type": "calendar.updated", "data": {"listing_id": e.listing_id}}), None)
            }
            _ => {
                let BookingEvent { booking } = event.decode()?;
                let data = json!({"booking_id": booking.id, "status": booking.status});
                (vec![booking.guest_id, booking.host_id], json!({"type": "booking.updated", "data": data}), None)
            }
        };
        self.fanout.publish(&users, &frame, order).await
    }
}
