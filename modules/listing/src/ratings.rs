//! The review module's figures on the listing: `review.listing_rating_changed`
//! sets the rating shown, the ranking score and the review count, and the
//! `listing.changed` it publishes carries them to search.

use std::sync::Arc;

use async_trait::async_trait;
use hometrip_kernel::events::{Envelope, EventBus, EventHandler};

use crate::api::{ListingChanged, ListingRatingChanged, LISTING_CHANGED, LISTING_RATING_CHANGED, MODULE};
use crate::service::ListingService;
use crate::store;

pub struct RatingProjection {
    listings: Arc<ListingService>,
}

impl RatingProjection {
    pub fn new(listings: Arc<ListingService>) -> Arc<Self> {
        Arc::new(RatingProjection { listings })
    }

    pub async fn subscribe(self: &Arc<Self>, bus: &EventBus) {
        bus.subscribe("listing.ratings", &[LISTING_RATING_CHANGED], Arc::clone(self) as Arc<dyn EventHandler>).await;
    }
}

#[async_trait]
impl EventHandler for RatingProjection {
    async fn handle(&self, event: &Envelope) -> Result<(), String> {
        let e: ListingRatingChanged = event.decode()?;
        let svc = &self.listings;
        let Some(mut row) = store::get(&svc.db, e.listing_id).await.map_err(|e| e.to_string())? else {
            return Ok(()); // deleted since
        };
        row.rating = e.rating;
        row.rating_score = e.score;
        row.review_count = e.count;
        let photos = store::photos(&svc.db, row.id).await.map_err(|e| e.to_string())?;
        let listing = svc.view(&row, &photos);
        let changed = Envelope::new(MODULE, LISTING_CHANGED, &ListingChanged { listing, deleted: false })
            .map_err(|e| e.to_string())?;
        store::set_rating(&svc.db, e.listing_id, e.rating, e.score, e.count, &changed)
            .await
            .map_err(|e| e.to_string())?;
        svc.bus.poke();
        Ok(())
    }
}
