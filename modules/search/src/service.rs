//! The in-process search service: feeds the index from listing events, runs
//! searches, suggestions and similar-listing queries.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Duration, Utc};
use hometrip_kernel::events::{Envelope, EventBus, EventHandler};
use hometrip_kernel::money::Money;
use hometrip_kernel::{ErrorCode, Id, Problem};
use hometrip_listing::api::{
    CalendarChanged, Listing, ListingChanged, ListingStatus, Listings, CALENDAR_CHANGED, LISTING_CHANGED,
};
use tantivy::collector::TopDocs;
use tantivy::query::{AllQuery, BooleanQuery, FuzzyTermQuery, Occur, Query, QueryParser, TermQuery, TermSetQuery};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{Searcher, TantivyDocument, Term};

use crate::api::*;
use crate::collector::{Filters, MatchCollector, Matches, Plan, Row, PRICE_BUCKET};
use crate::domain::{self, Criteria, Cursor, Sort};
use crate::store::{self, IndexedListing, SearchIndex};

/// Most grid cells a box is looked up by (at the finest level that fits).
const MAX_CELLS: usize = 1024;

/// How far similar listings are looked for.
const SIMILAR_RADIUS_KM: f64 = 25.0;

/// The boxes a search is limited to: its bbox and its radius's bounding box.
fn boxes(c: &Criteria) -> Vec<domain::BBox> {
    let mut boxes: Vec<domain::BBox> = c.bbox.into_iter().collect();
    if let (Some(center), Some(r)) = (c.center, c.radius_km) {
        boxes.push(domain::bbox_around(center, r));
    }
    boxes
}

/// Listings indexed together in geographic order by a rebuild.
pub const REINDEX_CHUNK: usize = 50_000;

/// How far ahead booked nights are indexed.
const INDEXED_DAYS: i64 = 730;

pub struct SearchService {
    index: Arc<SearchIndex>,
    listings: Arc<dyn Listings>,
    /// Held from reading listings to writing their documents (an event's
    /// re-indexing, a chunk of a rebuild): of two writes of one listing, the
    /// later is the later read, so a stale read never overwrites a fresh one.
    writes: tokio::sync::Mutex<()>,
    /// Held by a rebuild from its start to its commit; the committer waits
    /// for it, so searches keep the last whole index until the new one is in.
    rebuild: tokio::sync::Mutex<()>,
}

fn index_err(e: impl std::fmt::Display) -> Problem {
    Problem::internal(format!("search index: {e}"))
}

fn term(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(Term::from_field_text(field, text), IndexRecordOption::Basic))
}

impl SearchService {
    pub fn new(index: Arc<SearchIndex>, listings: Arc<dyn Listings>) -> Arc<Self> {
        Arc::new(SearchService {
            index,
            listings,
            writes: tokio::sync::Mutex::new(()),
            rebuild: tokio::sync::Mutex::new(()),
        })
    }

    pub async fn subscribe(self: &Arc<Self>, bus: &EventBus) {
        let handler: Arc<dyn EventHandler> = Arc::clone(self) as Arc<dyn EventHandler>;
        bus.subscribe("search.index", &[LISTING_CHANGED, CALENDAR_CHANGED], handler).await;
    }

    /// Commits pending index changes every 500 ms, so a change is searchable
    /// within a second. Each commit writes and syncs a new segment: under a
    /// booking load (every booking re-indexes its listing) four commits a
    /// second cost more than the freshness they bought.
    pub fn spawn_committer(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let search = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let _no_rebuild = search.rebuild.lock().await;
                let index = Arc::clone(&search.index);
                match tokio::task::spawn_blocking(move || index.commit()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "search commit failed"),
                    Err(e) => tracing::warn!(error = %e, "search commit task failed"),
                }
            }
        })
    }

    pub fn is_empty(&self) -> bool {
        self.index.num_docs() == 0
    }

    /// Whether the index keeps `listing`: published, located and priced.
    fn indexable(listing: &Listing) -> bool {
        listing.approximate_location.is_some()
            && listing.nightly_price.is_some()
            && listing.status == ListingStatus::Published
    }

    /// What the index keeps of a published, located, priced listing. Its
    /// point is the approximate one visitors see, never the exact one: the
    /// results show it, and distances, sorts and geo filters computed from the
    /// exact point would let anyone locate it by trilateration.
    fn doc_for(listing: &Listing, booked: impl Iterator<Item = chrono::NaiveDate>) -> Option<IndexedListing> {
        let (Some(location), Some(price), true) =
            (listing.approximate_location, &listing.nightly_price, Self::indexable(listing))
        else {
            return None;
        };
        Some(IndexedListing {
            id: listing.id.to_string(),
            title: listing.title.clone(),
            description: listing.description.clone(),
            city: listing.address.city.clone(),
            lat: location.lat,
            lon: location.lon,
            price: u64::try_from(price.amount).unwrap_or(0),
            currency: price.currency.clone(),
            guests: u64::from(listing.max_guests),
            bedrooms: u64::from(listing.bedrooms),
            property_type: listing.property_type.clone(),
            amenities: listing.amenities.clone(),
            instant_book: listing.instant_book,
            rating: listing.rating_score,
            shown_rating: listing.rating,
            min_nights: u64::from(listing.min_nights),
            max_nights: u64::from(listing.max_nights),
            booked: booked.map(domain::day_number).collect(),
            nights_from: domain::day_number(Utc::now().date_naive()),
        })
    }

    /// The nights taken in the indexed window of each of `ids`.
    async fn taken_by_listing(&self, ids: &[Id]) -> Result<HashMap<Id, Vec<chrono::NaiveDate>>, Problem> {
        let mut nights: HashMap<Id, Vec<chrono::NaiveDate>> = HashMap::new();
        if ids.is_empty() {
            return Ok(nights);
        }
        let today = Utc::now().date_naive();
        for (id, night) in self.listings.taken_nights_of(ids, today, today + Duration::days(INDEXED_DAYS)).await? {
            nights.entry(id).or_default().push(night);
        }
        Ok(nights)
    }

    /// Index writes, off the async workers: they wait while a commit holds
    /// the writer (flushing and syncing segment files), and a worker blocked
    /// there would stall every request scheduled on it.
    async fn write_index(&self, upserts: Vec<IndexedListing>, removes: Vec<String>) -> Result<(), Problem> {
        let index = Arc::clone(&self.index);
        tokio::task::spawn_blocking(move || {
            upserts.iter().try_for_each(|doc| index.upsert(doc))?;
            removes.iter().try_for_each(|id| index.remove(id))
        })
        .await
        .map_err(index_err)?
        .map_err(index_err)
    }

    /// Re-indexes `ids` as they are now (gone or unpublished ones leave the
    /// index): one read for the listings, one for their nights.
    async fn reindex_listings(&self, ids: &[Id]) -> Result<(), Problem> {
        let _writing = self.writes.lock().await;
        let listings = self.listings.listings_of(ids).await?;
        let indexed: Vec<Id> = listings.iter().filter(|l| Self::indexable(l)).map(|l| l.id).collect();
        let mut nights = self.taken_by_listing(&indexed).await?;
        let (mut upserts, mut removes) = (Vec::new(), Vec::new());
        let mut found = std::collections::HashSet::new();
        for listing in &listings {
            found.insert(listing.id);
            match Self::doc_for(listing, nights.remove(&listing.id).unwrap_or_default().into_iter()) {
                Some(doc) => upserts.push(doc),
                None => removes.push(listing.id.to_string()),
            }
        }
        removes.extend(ids.iter().filter(|id| !found.contains(id)).map(Id::to_string));
        self.write_index(upserts, removes).await
    }

    /// Rebuilds the whole index from the listing module, a page at a time (one
    /// call for the listings, one for their nights); returns how many it holds.
    pub async fn reindex(&self) -> Result<u64, Problem> {
        let _rebuilding = self.rebuild.lock().await;
        // Off the async workers: it commits what is pending first.
        let index = Arc::clone(&self.index);
        tokio::task::spawn_blocking(move || index.clear()).await.map_err(index_err)?.map_err(index_err)?;
        let mut after = None;
        let mut count = 0;
        let mut chunk: Vec<IndexedListing> = Vec::new();
        // Held from a chunk's first read to its write: an event's re-indexing
        // of the same listings comes wholly before or after it.
        let mut writing = None;
        loop {
            if writing.is_none() {
                writing = Some(self.writes.lock().await);
            }
            let page = self.listings.published(after, 500).await?;
            let Some(last) = page.last().map(|l| l.id) else { break };
            let ids: Vec<Id> = page.iter().map(|l| l.id).collect();
            let mut nights = self.taken_by_listing(&ids).await?;
            for listing in &page {
                let booked = nights.remove(&listing.id).unwrap_or_default();
                chunk.extend(Self::doc_for(listing, booked.into_iter()));
            }
            if chunk.len() >= REINDEX_CHUNK {
                count += chunk.len() as u64;
                self.index.upsert_many(&mut chunk).map_err(index_err)?;
                chunk.clear();
                writing = None;
            }
            after = Some(last);
        }
        count += chunk.len() as u64;
        self.index.upsert_many(&mut chunk).map_err(index_err)?;
        drop(writing);
        let index = Arc::clone(&self.index);
        tokio::task::spawn_blocking(move || index.commit()).await.map_err(index_err)?.map_err(index_err)?;
        Ok(count)
    }

    /// A page row as the API shows it, from the stored document.
    fn hit(&self, searcher: &Searcher, row: &Row) -> Result<SearchHit, Problem> {
        let f = self.index.fields;
        let doc: TantivyDocument = searcher.doc(row.addr).map_err(index_err)?;
        let text = |field| doc.get_first(field).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let float = |field| doc.get_first(field).and_then(|v| v.as_f64()).unwrap_or(0.0);
        let whole = |field| doc.get_first(field).and_then(|v| v.as_u64()).unwrap_or(0);
        let rating = float(f.shown_rating);
        Ok(SearchHit {
            id: Id(uuid::Uuid::from_u128(row.id)),
            title: text(f.title),
            city: text(f.city_name),
            location: GeoPoint { lat: float(f.lat), lon: float(f.lon) },
            nightly_price: Money::new(i64::try_from(whole(f.price)).unwrap_or(i64::MAX), &text(f.currency)),
            rating: (rating > 0.0).then_some(rating),
            property_type: text(f.property_type),
            max_guests: u32::try_from(whole(f.guests)).unwrap_or(u32::MAX),
            distance_km: row.distance.map(|d| (d * 100.0).round() / 100.0),
        })
    }

    /// A box as a query clause: the grid cells covering it, looked up in the
    /// term index (the exact edges are checked on the matches). Boxes too wide
    /// for any level are checked on the matches only.
    fn geo_clauses(&self, b: domain::BBox) -> Vec<(Occur, Box<dyn Query>)> {
        let f = self.index.fields;
        match domain::cells_covering(b, MAX_CELLS) {
            Some(cells) => vec![(
                Occur::Must,
                Box::new(TermSetQuery::new(cells.into_iter().map(|cell| Term::from_field_u64(f.cell, cell)))),
            )],
            None => Vec::new(),
        }
    }

    fn query(&self, c: &Criteria) -> Box<dyn Query> {
        let f = self.index.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if let Some(text) = &c.text {
            let mut parser = QueryParser::for_index(
                &self.index.index,
                vec![f.title_fr, f.title_en, f.city, f.description_fr, f.description_en],
            );
            parser.set_field_boost(f.title_fr, 2.0);
            parser.set_field_boost(f.title_en, 2.0);
            parser.set_field_boost(f.city, 3.0);
            // Every word must match (in some field), as people expect of a search box.
            parser.set_conjunction_by_default();
            // Lenient: query syntax in user text never fails the search.
            let (q, _) = parser.parse_query_lenient(text);
            clauses.push((Occur::Must, q));
        }
        for b in boxes(c) {
            clauses.extend(self.geo_clauses(b));
        }
        if let Some(t) = &c.property_type {
            clauses.push((Occur::Must, term(f.property_type, t)));
        }
        if !clauses.iter().any(|(o, _)| *o == Occur::Must) {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        Box::new(BooleanQuery::new(clauses))
    }

    pub async fn search(&self, c: &Criteria) -> Result<SearchResults, Problem> {
        let searcher = self.index.searcher();
        let query = self.query(c);
        let after = c
            .cursor
            .as_ref()
            .map(|cursor| (cursor.key, uuid::Uuid::parse_str(&cursor.id).map(|u| u.as_u128()).unwrap_or(0)));
        let plan = Plan {
            boxes: boxes(c),
            center: c.center,
            radius_km: c.radius_km,
            filters: Filters::of(c),
            sort: c.sort,
            keep: c.limit + 1,
            after,
        };
        let matches = searcher.search(&query, &MatchCollector { plan, rows: &self.index.rows }).map_err(index_err)?;
        let more = matches.rows.len() > c.limit;
        let rows = &matches.rows[..matches.rows.len().min(c.limit)];
        let next_cursor = match rows.last() {
            Some(last) if more => {
                Some(domain::encode_cursor(&Cursor { key: last.key, id: uuid::Uuid::from_u128(last.id).to_string() }))
            }
            _ => None,
        };
        let items = rows.iter().map(|row| self.hit(&searcher, row)).collect::<Result<Vec<_>, _>>()?;
        Ok(SearchResults { items, total: matches.total, next_cursor, facets: facets(&matches) })
    }

    /// Cities (ranked by how many listings they have) and listing titles whose
    /// words start with `q`, forgiving one typo from four letters on.
    pub async fn autocomplete(&self, q: &str) -> Result<Vec<Suggestion>, Problem> {
        let folded = domain::fold(q.trim());
        if folded.is_empty() || folded.chars().count() > 50 {
            return Err(Problem::field("q", "give 1 to 50 characters"));
        }
        let f = self.index.fields;
        let words: Vec<&str> = folded.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
        let Some((prefix, rest)) = words.split_last() else { return Ok(Vec::new()) };
        let distance = if prefix.chars().count() >= 4 { 1 } else { 0 };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
            Occur::Must,
            Box::new(FuzzyTermQuery::new_prefix(Term::from_field_text(f.suggest, prefix), distance, true)),
        )];
        for w in rest {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(Term::from_field_text(f.suggest, w), IndexRecordOption::Basic)),
            ));
        }
        let searcher = self.index.searcher();
        let top = searcher
            .search(&BooleanQuery::new(clauses), &TopDocs::with_limit(500).order_by_score())
            .map_err(index_err)?;
        let mut cities: BTreeMap<String, u64> = BTreeMap::new();
        let mut titles: Vec<String> = Vec::new();
        for (_, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr).map_err(index_err)?;
            let city = doc.get_first(f.city_name).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
            let title = doc.get_first(f.title).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
            if domain::fold(&city).split_whitespace().any(|w| domain::prefix_matches(w, prefix, distance)) {
                *cities.entry(city).or_default() += 1;
            } else if titles.len() < 10 && !titles.contains(&title) {
                titles.push(title);
            }
        }
        let mut ranked: Vec<(String, u64)> = cities.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut out: Vec<Suggestion> =
            ranked.into_iter().take(5).map(|(text, _)| Suggestion { text, kind: "city".to_owned() }).collect();
        let room = 10 - out.len();
        out.extend(titles.into_iter().take(room).map(|text| Suggestion { text, kind: "listing".to_owned() }));
        Ok(out)
    }

    /// Published listings near `id` of the same type, for about as many guests,
    /// in the same price band; nearest first.
    pub async fn similar(&self, id: Id) -> Result<Vec<SearchHit>, Problem> {
        let f = self.index.fields;
        let searcher = self.index.searcher();
        let key = id.to_string();
        let found = searcher
            .search(
                &TermQuery::new(Term::from_field_text(f.id, &key), IndexRecordOption::Basic),
                &TopDocs::with_limit(1).order_by_score(),
            )
            .map_err(index_err)?;
        let Some((_, addr)) = found.first().copied() else {
            return Err(Problem::new(ErrorCode::NotFound, "listing not found or not published"));
        };
        let doc: TantivyDocument = searcher.doc(addr).map_err(index_err)?;
        let float = |field| doc.get_first(field).and_then(|v| v.as_f64()).unwrap_or(0.0);
        let whole = |field| doc.get_first(field).and_then(|v| v.as_u64()).unwrap_or(0);
        let center = (float(f.lat), float(f.lon));
        let (guests, price) = (whole(f.guests).max(1), whole(f.price));
        let area = domain::bbox_around(center, SIMILAR_RADIUS_KM);
        let mut clauses = self.geo_clauses(area);
        clauses.extend([
            (
                Occur::Must,
                term(f.property_type, doc.get_first(f.property_type).and_then(|v| v.as_str()).unwrap_or_default()),
            ),
            (Occur::MustNot, term(f.id, &key)),
        ]);
        let plan = Plan {
            boxes: vec![area],
            center: Some(center),
            radius_km: Some(SIMILAR_RADIUS_KM),
            filters: Filters {
                guests: (guests.saturating_sub(2), guests + 2),
                price: (price * 7 / 10, price * 13 / 10),
                ..Filters::default()
            },
            sort: Sort::Distance,
            keep: 10,
            after: None,
        };
        let matches = searcher
            .search(&BooleanQuery::new(clauses), &MatchCollector { plan, rows: &self.index.rows })
            .map_err(index_err)?;
        matches.rows.iter().map(|row| self.hit(&searcher, row)).collect()
    }
}

/// Facet counts as the API names them (only what occurs).
fn facets(m: &Matches) -> Facets {
    let named = |counts: &[u64], name: fn(usize) -> Option<&'static str>| -> BTreeMap<String, u64> {
        counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .filter_map(|(slot, n)| name(slot).map(|k| (k.to_owned(), *n)))
            .collect()
    };
    Facets {
        property_types: named(&m.types, store::type_of_slot),
        amenities: named(&m.amenities, store::amenity_of_bit),
        price_histogram: m
            .price_buckets
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| PriceBucket { from: i as u64 * PRICE_BUCKET, count: *n })
            .collect(),
    }
}

#[async_trait]
impl EventHandler for SearchService {
    async fn handle(&self, event: &Envelope) -> Result<(), String> {
        self.handle_batch(&[event]).await
    }

    fn batches(&self) -> bool {
        true
    }

    /// Every listing a batch's events name (a listing change, or a calendar
    /// change once per booking) is re-read and re-indexed once, as it is
    /// now, with the batch's other listings in two reads; a deleted or
    /// unpublished one leaves the index.
    async fn handle_batch(&self, events: &[&Envelope]) -> Result<(), String> {
        let mut listings: Vec<Id> = Vec::new();
        for event in events {
            match event.event_type.as_str() {
                LISTING_CHANGED => listings.push(event.decode::<ListingChanged>()?.listing.id),
                CALENDAR_CHANGED => listings.push(event.decode::<CalendarChanged>()?.listing_id),
                _ => {}
            }
        }
        listings.sort_unstable();
        listings.dedup();
        for ids in listings.chunks(500) {
            self.reindex_listings(ids).await.map_err(|p| p.to_string())?;
        }
        Ok(())
    }
}

#[async_trait]
impl crate::api::Search for SearchService {
    async fn search(&self, params: &crate::api::SearchParams) -> Result<SearchResults, Problem> {
        let criteria = domain::criteria(params, hometrip_listing::api::is_amenity, |t| {
            hometrip_listing::api::PROPERTY_TYPES.contains(&t)
        })
        .map_err(Problem::validation)?;
        SearchService::search(self, &criteria).await
    }

    async fn autocomplete(&self, q: &str) -> Result<Vec<Suggestion>, Problem> {
        SearchService::autocomplete(self, q).await
    }
}
