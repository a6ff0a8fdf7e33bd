//! A host's suspension (`auth.account_suspended`, `auth.account_reinstated`)
//! on their listings: they show as suspended and leave search while it
//! lasts, and come back as they were (the listing's own status is kept).

use std::sync::Arc;

use async_trait::async_trait;
use hometrip_auth::api::{AccountSuspension, ACCOUNT_REINSTATED, ACCOUNT_SUSPENDED};
use hometrip_kernel::events::{Envelope, EventBus, EventHandler};

use crate::api::{ListingChanged, LISTING_CHANGED, MODULE};
use crate::service::ListingService;
use crate::store;

pub struct HostProjection {
    listings: Arc<ListingService>,
}

impl HostProjection {
    pub fn new(listings: Arc<ListingService>) -> Arc<Self> {
        Arc::new(HostProjection { listings })
    }

    pub async fn subscribe(self: &Arc<Self>, bus: &EventBus) {
        let types = [ACCOUNT_SUSPENDED, ACCOUNT_REINSTATED];
        bus.subscribe("listing.hosts", &types, Arc::clone(self) as Arc<dyn EventHandler>).await;
    }
}

#[async_trait]
impl EventHandler for HostProjection {
    async fn handle(&self, event: &Envelope) -> Result<(), String> {
        let suspended = match event.event_type.as_str() {
            ACCOUNT_SUSPENDED => true,
            ACCOUNT_REINSTATED => false,
            _ => return Ok(()),
        };
        let host = event.decode::<AccountSuspension>()?.user_id;
        let svc = &self.listings;
        let rows = store::rows_of_host(&svc.db, host).await.map_err(|e| e.to_string())?;
        let mut events = Vec::with_capacity(rows.len());
        for mut row in rows {
            row.host_suspended = suspended;
            let photos = store::photos(&svc.db, row.id).await.map_err(|e| e.to_string())?;
            let listing = svc.view(&row, &photos);
            events.push(
                Envelope::new(MODULE, LISTING_CHANGED, &ListingChanged { listing, deleted: false })
                    .map_err(|e| e.to_string())?,
            );
        }
        store::set_host_suspended(&svc.db, host, suspended, &events).await.map_err(|e| e.to_string())?;
        svc.bus.poke();
        Ok(())
    }
}
