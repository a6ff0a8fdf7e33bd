//! A rebuild beside live events: the later write of a listing is its later read.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::NaiveDate;
use hometrip_kernel::events::{Envelope, EventHandler};
use hometrip_kernel::{Id, Problem};
use hometrip_listing::api::{Listing, ListingChanged, ListingStatus, Listings, Quote, Rate, LISTING_CHANGED};
use tantivy::collector::Count;
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;
use tantivy::Term;
use tokio::sync::Notify;

use crate::service::SearchService;
use crate::store::SearchIndex;

/// The listing module as the search service sees it, whose rebuild page read
/// waits, after taking its snapshot, until the test lets it answer.
struct SlowListings {
    listings: Mutex<Vec<Listing>>,
    page_read: Notify,
    answer: Notify,
}

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

impl SlowListings {
    fn all(&self) -> MutexGuard<'_, Vec<Listing>> {
        self.listings.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn unused() -> Problem {
    Problem::internal("not used by the search service")
}

#[async_trait]
impl Listings for SlowListings {
    async fn listing(&self, _: Id) -> Result<Option<Listing>, Problem> {
        Err(unused())
    }

    async fn quote(&self, _: Id, _: NaiveDate, _: NaiveDate, _: u32, _: Rate) -> Result<Quote, Problem> {
        Err(unused())
    }

    async fn taken_nights(&self, _: Id, _: NaiveDate, _: NaiveDate) -> Result<Vec<NaiveDate>, Problem> {
        Err(unused())
    }

    async fn blocked_nights(&self, _: Id, _: NaiveDate, _: NaiveDate) -> Result<Vec<NaiveDate>, Problem> {
        Err(unused())
    }

    async fn taken_nights_of(&self, _: &[Id], _: NaiveDate, _: NaiveDate) -> Result<Vec<(Id, NaiveDate)>, Problem> {
        Ok(Vec::new())
    }

    async fn published(&self, after: Option<Id>, _: u32) -> Result<Vec<Listing>, Problem> {
        if after.is_some() {
            return Ok(Vec::new());
        }
        let page: Vec<Listing> = self.all().iter().filter(|l| l.status == ListingStatus::Published).cloned().collect();
        self.page_read.notify_one();
        self.answer.notified().await;
        Ok(page)
    }

    async fn listings_of(&self, ids: &[Id]) -> Result<Vec<Listing>, Problem> {
        Ok(self.all().iter().filter(|l| ids.contains(&l.id)).cloned().collect())
    }
}

fn published_house() -> serde_json::Result<Listing> {
    let at = "2026-12-01T10:00:00Z";
    serde_json::from_value(serde_json::json!({
        "id": Id::new(), "host_id": Id::new(), "status": "published",
        "title": "Maison calme", "description": "", "property_type": "house",
        "address": {"city": "Lyon", "country": "FR"},
        "location": {"lat": 45.76, "lon": 4.83}, "approximate_location": {"lat": 45.76, "lon": 4.83},
        "max_guests": 4, "bedrooms": 2, "beds": 2, "bathrooms": 1.0, "amenities": [],
        "nightly_price": {"amount": 10000, "currency": "EUR"}, "cleaning_fee": null, "weekend_price": null,
        "extra_guest_fee": null, "guests_included": 2, "weekly_discount_bps": 0, "monthly_discount_bps": 0,
        "early_bird_days": 0, "early_bird_discount_bps": 0, "last_minute_days": 0, "last_minute_discount_bps": 0,
        "instant_book": true, "cancellation_policy": "flexible", "min_nights": 1, "max_nights": 14,
        "advance_notice_days": 0, "preparation_days": 0, "booking_window_days": 365,
        "time_zone": "Europe/Paris", "check_in_time": "16:00", "check_out_time": "11:00",
        "photos": [], "rating": null, "rating_score": null, "review_count": 0,
        "created_at": at, "updated_at": at
    }))
}

fn copies(index: &SearchIndex, id: Id) -> tantivy::Result<usize> {
    let query = TermQuery::new(Term::from_field_text(index.fields.id, &id.to_string()), IndexRecordOption::Basic);
    index.searcher().search(&query, &Count)
}

/// A rebuild reads a listing as published; the host unlists it and its
/// event is handled before the rebuild writes what it read. The listing
/// leaves the index all the same.
#[tokio::test]
async fn an_event_during_a_rebuild_is_not_undone_by_what_the_rebuild_read_before() -> TestResult {
    let house = published_house()?;
    let id = house.id;
    let listings = Arc::new(SlowListings {
        listings: Mutex::new(vec![house.clone()]),
        page_read: Notify::new(),
        answer: Notify::new(),
    });
    let index = Arc::new(SearchIndex::in_ram(15_000_000)?);
    let search = SearchService::new(Arc::clone(&index), Arc::clone(&listings) as Arc<dyn Listings>);

    let rebuild = tokio::spawn({
        let search = Arc::clone(&search);
        async move { search.reindex().await }
    });
    listings.page_read.notified().await;

    let mut unlisted = house;
    unlisted.status = ListingStatus::Unlisted;
    listings.all()[0] = unlisted.clone();
    let event = Envelope::new("listing", LISTING_CHANGED, &ListingChanged { listing: unlisted, deleted: false })?;
    let mut handled = tokio::spawn({
        let search = Arc::clone(&search);
        async move { search.handle_batch(&[&event]).await }
    });
    // The event waits for the rebuild's write (it must not go first); a
    // moment is enough for it to have gone first if nothing held it.
    let early = tokio::time::timeout(std::time::Duration::from_millis(300), &mut handled).await;
    assert!(early.is_err(), "the event's re-indexing went ahead of the rebuild's pending write");
    listings.answer.notify_one();

    assert_eq!(rebuild.await??, 1, "the rebuild indexed what it read");
    handled.await??;
    index.commit()?;
    assert_eq!(copies(&index, id)?, 0, "the unlisted listing stayed in the index");
    Ok(())
}
