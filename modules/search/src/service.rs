//! The in-process search service: feeds the index from listing events, runs
//! searches, suggestions and similar-listing queries.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Duration, Utc};
use hometrip_kernel::events::{Envelope, EventBus, EventHandler};
use hometrip_kernel::money::Money;
use hometrip_kernel::{ErrorCode, Id, Problem};
use hometrip_listing::api::{
    CalendarChanged, Listing, ListingChanged, ListingStatus, Listings, CALENDAR_CHANGED, LISTING_CHANGED,
};
use tantivy::collector::{Count, TopDocs};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::{
    AllQuery, BooleanQuery, FuzzyTermQuery, Occur, Query, QueryParser, RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};

use crate::api::*;
use crate::domain::{self, Criteria, Cursor, Sort};
use crate::store::{IndexedListing, SearchIndex};

/// Most grid cells a box is looked up by (else coordinate ranges).
const MAX_CELLS: usize = 4096;

/// The boxes a search is limited to: its bbox and its radius's bounding box.
fn boxes(c: &Criteria) -> Vec<domain::BBox> {
    let mut boxes: Vec<domain::BBox> = c.bbox.into_iter().collect();
    if let (Some(center), Some(r)) = (c.center, c.radius_km) {
        boxes.push(domain::bbox_around(center, r));
    }
    boxes
}

/// How far ahead booked nights are indexed.
const INDEXED_DAYS: i64 = 730;

pub struct SearchService {
    index: Arc<SearchIndex>,
    listings: Arc<dyn Listings>,
    settings: SearchSettings,
}

fn index_err(e: impl std::fmt::Display) -> Problem {
    Problem::internal(format!("search index: {e}"))
}

fn f64_range(field: Field, lo: f64, hi: f64) -> Box<dyn Query> {
    Box::new(RangeQuery::new(
        Bound::Included(Term::from_field_f64(field, lo)),
        Bound::Included(Term::from_field_f64(field, hi)),
    ))
}

fn u64_range(field: Field, lo: u64, hi: u64) -> Box<dyn Query> {
    Box::new(RangeQuery::new(
        Bound::Included(Term::from_field_u64(field, lo)),
        Bound::Included(Term::from_field_u64(field, hi)),
    ))
}

fn term(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(Term::from_field_text(field, text), IndexRecordOption::Basic))
}

/// Fast-field readers of one segment.
struct Columns {
    lat: Column<f64>,
    lon: Column<f64>,
    price: Column<u64>,
    rating: Column<f64>,
    id_hi: Column<u64>,
    id_lo: Column<u64>,
}

struct Candidate {
    addr: DocAddress,
    score: f32,
    lat: f64,
    lon: f64,
    price: u64,
    rating: f64,
    id: u128,
    distance: Option<f64>,
}

impl SearchService {
    pub fn new(index: Arc<SearchIndex>, listings: Arc<dyn Listings>, settings: SearchSettings) -> Arc<Self> {
        Arc::new(SearchService { index, listings, settings })
    }

    pub async fn subscribe(self: &Arc<Self>, bus: &EventBus) {
        let handler: Arc<dyn EventHandler> = Arc::clone(self) as Arc<dyn EventHandler>;
        bus.subscribe("search.index", &[LISTING_CHANGED, CALENDAR_CHANGED], handler).await;
    }

    /// Commits pending index changes every 250 ms, so a change is searchable
    /// well within a second.
    pub fn spawn_committer(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let index = Arc::clone(&self.index);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
            loop {
                tick.tick().await;
                let index = Arc::clone(&index);
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

    /// What the index keeps of a published, located, priced listing.
    fn doc_for(listing: &Listing, booked: impl Iterator<Item = chrono::NaiveDate>) -> Option<IndexedListing> {
        let (Some(location), Some(price), ListingStatus::Published) =
            (listing.location, &listing.nightly_price, listing.status)
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
            rating: listing.rating,
            min_nights: u64::from(listing.min_nights),
            max_nights: u64::from(listing.max_nights),
            booked: booked.map(domain::day_number).collect(),
        })
    }

    /// Puts a listing in the index as it is now, or takes it out when it is not
    /// published.
    async fn index_listing(&self, listing: &Listing) -> Result<(), Problem> {
        if Self::doc_for(listing, std::iter::empty()).is_none() {
            return self.index.remove(&listing.id.to_string()).map_err(index_err);
        }
        let today = Utc::now().date_naive();
        let booked = self.listings.taken_nights(listing.id, today, today + Duration::days(INDEXED_DAYS)).await?;
        match Self::doc_for(listing, booked.into_iter()) {
            Some(doc) => self.index.upsert(&doc).map_err(index_err),
            None => Ok(()),
        }
    }

    /// Rebuilds the whole index from the listing module, a page at a time (one
    /// call for the listings, one for their nights); returns how many it holds.
    pub async fn reindex(&self) -> Result<u64, Problem> {
        self.index.clear().map_err(index_err)?;
        let today = Utc::now().date_naive();
        let until = today + Duration::days(INDEXED_DAYS);
        let mut after = None;
        let mut count = 0;
        loop {
            let page = self.listings.published(after, 500).await?;
            let Some(last) = page.last().map(|l| l.id) else { break };
            let ids: Vec<Id> = page.iter().map(|l| l.id).collect();
            let mut nights: HashMap<Id, Vec<chrono::NaiveDate>> = HashMap::new();
            for (id, night) in self.listings.taken_nights_of(&ids, today, until).await? {
                nights.entry(id).or_default().push(night);
            }
            for listing in &page {
                let booked = nights.remove(&listing.id).unwrap_or_default();
                if let Some(doc) = Self::doc_for(listing, booked.into_iter()) {
                    self.index.upsert(&doc).map_err(index_err)?;
                    count += 1;
                }
            }
            after = Some(last);
        }
        let index = Arc::clone(&self.index);
        tokio::task::spawn_blocking(move || index.commit()).await.map_err(index_err)?.map_err(index_err)?;
        Ok(count)
    }

    fn columns(searcher: &Searcher, segment: u32) -> Result<Columns, Problem> {
        let ff = searcher.segment_reader(segment).fast_fields();
        Ok(Columns {
            lat: ff.f64("lat").map_err(index_err)?,
            lon: ff.f64("lon").map_err(index_err)?,
            price: ff.u64("price").map_err(index_err)?,
            rating: ff.f64("rating").map_err(index_err)?,
            id_hi: ff.u64("id_hi").map_err(index_err)?,
            id_lo: ff.u64("id_lo").map_err(index_err)?,
        })
    }

    fn candidates(&self, searcher: &Searcher, top: Vec<(f32, DocAddress)>) -> Result<Vec<Candidate>, Problem> {
        let mut columns: HashMap<u32, Columns> = HashMap::new();
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let c = match columns.entry(addr.segment_ord) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(Self::columns(searcher, addr.segment_ord)?),
            };
            let doc = addr.doc_id;
            out.push(Candidate {
                addr,
                score,
                lat: c.lat.first(doc).unwrap_or(0.0),
                lon: c.lon.first(doc).unwrap_or(0.0),
                price: c.price.first(doc).unwrap_or(0),
                rating: c.rating.first(doc).unwrap_or(0.0),
                id: (u128::from(c.id_hi.first(doc).unwrap_or(0)) << 64) | u128::from(c.id_lo.first(doc).unwrap_or(0)),
                distance: None,
            });
        }
        Ok(out)
    }

    fn hit(&self, searcher: &Searcher, c: &Candidate) -> Result<SearchHit, Problem> {
        let f = self.index.fields;
        let doc: TantivyDocument = searcher.doc(c.addr).map_err(index_err)?;
        let text = |field| doc.get_first(field).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let amount = i64::try_from(c.price).unwrap_or(i64::MAX);
        Ok(SearchHit {
            id: Id(uuid::Uuid::from_u128(c.id)),
            title: text(f.title),
            city: text(f.city_name),
            location: GeoPoint { lat: c.lat, lon: c.lon },
            nightly_price: Money::new(amount, &text(f.currency)),
            rating: (c.rating > 0.0).then_some(c.rating),
            property_type: text(f.property_type),
            max_guests: doc.get_first(f.guests).and_then(|v| v.as_u64()).unwrap_or(0) as u32,
            distance_km: c.distance.map(|d| (d * 100.0).round() / 100.0),
        })
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
            // Lenient: query syntax in user text never fails the search.
            let (q, _) = parser.parse_query_lenient(text);
            clauses.push((Occur::Must, q));
        }
        for b in boxes(c) {
            // Small boxes: the covering grid cells, looked up in the term index (the
            // exact edges are checked on the matches). Wide ones: coordinate ranges.
            match domain::cells_covering(b, MAX_CELLS) {
                Some(cells) => clauses.push((
                    Occur::Must,
                    Box::new(TermSetQuery::new(cells.into_iter().map(|cell| Term::from_field_u64(f.cell, cell)))),
                )),
                None => {
                    clauses.push((Occur::Must, f64_range(f.lat, b.min_lat, b.max_lat)));
                    clauses.push((Occur::Must, f64_range(f.lon, b.min_lon, b.max_lon)));
                }
            }
        }
        if let Some(g) = c.guests {
            clauses.push((Occur::Must, u64_range(f.guests, u64::from(g), u64::MAX)));
        }
        if let Some(b) = c.bedrooms {
            clauses.push((Occur::Must, u64_range(f.bedrooms, u64::from(b), u64::MAX)));
        }
        if c.min_price.is_some() || c.max_price.is_some() {
            clauses.push((Occur::Must, u64_range(f.price, c.min_price.unwrap_or(0), c.max_price.unwrap_or(u64::MAX))));
        }
        if let Some(t) = &c.property_type {
            clauses.push((Occur::Must, term(f.property_type, t)));
        }
        for a in &c.amenities {
            clauses.push((Occur::Must, term(f.amenities, a)));
        }
        if let Some(ib) = c.instant_book {
            clauses.push((Occur::Must, u64_range(f.instant_book, u64::from(ib), u64::from(ib))));
        }
        if let Some((check_in, check_out)) = c.stay {
            let nights = domain::day_number(check_out) - domain::day_number(check_in);
            clauses.push((Occur::Must, u64_range(f.min_nights, 0, nights)));
            clauses.push((Occur::Must, u64_range(f.max_nights, nights, u64::MAX)));
            let last_night = domain::day_number(check_out) - 1;
            clauses.push((Occur::MustNot, u64_range(f.booked, domain::day_number(check_in), last_night)));
        }
        if !clauses.iter().any(|(o, _)| *o == Occur::Must) {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        Box::new(BooleanQuery::new(clauses))
    }

    pub async fn search(&self, c: &Criteria) -> Result<SearchResults, Problem> {
        let searcher = self.index.searcher();
        let query = self.query(c);
        let cap = self.settings.max_candidates.max(1);
        let (count, top) =
            searcher.search(&query, &(Count, TopDocs::with_limit(cap).order_by_score())).map_err(index_err)?;
        let considered = top.len();
        let mut candidates = self.candidates(&searcher, top)?;
        let boxes = boxes(c);
        candidates.retain(|cand| boxes.iter().all(|b| b.contains(cand.lat, cand.lon)));
        // Exact when every match was considered; past the cap, scaled from the considered share.
        let mut total = if considered == 0 || candidates.len() == considered {
            count as u64
        } else {
            (count as u64).saturating_mul(candidates.len() as u64) / considered as u64
        };
        if let Some(center) = c.center {
            for cand in &mut candidates {
                cand.distance = Some(domain::haversine_km(center, (cand.lat, cand.lon)));
            }
            if let Some(r) = c.radius_km {
                let before = candidates.len().max(1) as u64;
                candidates.retain(|cand| cand.distance.is_some_and(|d| d <= r));
                total = total.saturating_mul(candidates.len() as u64) / before;
            }
        }
        let facets = facets(&searcher, &candidates)?;
        let key = |cand: &Candidate| -> f64 {
            match c.sort {
                Sort::Relevance => -f64::from(cand.score),
                Sort::PriceAsc => cand.price as f64,
                Sort::PriceDesc => -(cand.price as f64),
                Sort::Rating => -cand.rating,
                Sort::Distance => cand.distance.unwrap_or(f64::MAX),
            }
        };
        candidates.sort_by(|a, b| key(a).total_cmp(&key(b)).then(a.id.cmp(&b.id)));
        if let Some(cursor) = &c.cursor {
            let after = uuid::Uuid::parse_str(&cursor.id).map(|u| u.as_u128()).unwrap_or(0);
            candidates.retain(|cand| key(cand).total_cmp(&cursor.key).then(cand.id.cmp(&after)).is_gt());
        }
        let more = candidates.len() > c.limit;
        candidates.truncate(c.limit);
        let next_cursor = if more {
            candidates.last().map(|last| {
                domain::encode_cursor(&Cursor { key: key(last), id: uuid::Uuid::from_u128(last.id).to_string() })
            })
        } else {
            None
        };
        let items = candidates.iter().map(|cand| self.hit(&searcher, cand)).collect::<Result<Vec<_>, _>>()?;
        Ok(SearchResults { items, total, next_cursor, facets })
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
        let me = self.candidates(&searcher, vec![(0.0, addr)])?.pop().ok_or_else(|| Problem::not_found("listing"))?;
        let doc: TantivyDocument = searcher.doc(addr).map_err(index_err)?;
        let guests = doc.get_first(f.guests).and_then(|v| v.as_u64()).unwrap_or(1);
        let b = domain::bbox_around((me.lat, me.lon), 25.0);
        let clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, f64_range(f.lat, b.min_lat, b.max_lat)),
            (Occur::Must, f64_range(f.lon, b.min_lon, b.max_lon)),
            (
                Occur::Must,
                term(f.property_type, doc.get_first(f.property_type).and_then(|v| v.as_str()).unwrap_or_default()),
            ),
            (Occur::Must, u64_range(f.guests, guests.saturating_sub(2), guests + 2)),
            (Occur::Must, u64_range(f.price, me.price * 7 / 10, me.price * 13 / 10)),
            (Occur::MustNot, term(f.id, &key)),
        ];
        let top = searcher
            .search(&BooleanQuery::new(clauses), &TopDocs::with_limit(200).order_by_score())
            .map_err(index_err)?;
        let mut near = self.candidates(&searcher, top)?;
        for c in &mut near {
            c.distance = Some(domain::haversine_km((me.lat, me.lon), (c.lat, c.lon)));
        }
        near.sort_by(|a, b| {
            a.distance.unwrap_or(f64::MAX).total_cmp(&b.distance.unwrap_or(f64::MAX)).then(a.id.cmp(&b.id))
        });
        near.truncate(10);
        near.iter().map(|c| self.hit(&searcher, c)).collect()
    }
}

/// A segment's string columns for facets: property type, amenities.
type FacetColumns = (Option<StrColumn>, Option<StrColumn>);

/// Facet counts over the matches: term ordinals are counted per segment (no
/// string work per match), then resolved to names once each.
fn facets(searcher: &Searcher, candidates: &[Candidate]) -> Result<Facets, Problem> {
    let mut buckets: BTreeMap<u64, u64> = BTreeMap::new();
    let mut type_ords: HashMap<(u32, u64), u64> = HashMap::new();
    let mut amenity_ords: HashMap<(u32, u64), u64> = HashMap::new();
    let mut columns: HashMap<u32, FacetColumns> = HashMap::new();
    for c in candidates {
        // Buckets of 50 units of the currency (5000 minor units), capped at 1000.
        *buckets.entry((c.price / 5_000).min(20) * 5_000).or_insert(0) += 1;
        let segment = c.addr.segment_ord;
        let (types, amenities) = match columns.entry(segment) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let ff = searcher.segment_reader(segment).fast_fields();
                e.insert((ff.str("property_type").map_err(index_err)?, ff.str("amenities").map_err(index_err)?))
            }
        };
        if let Some(col) = types {
            for ord in col.term_ords(c.addr.doc_id) {
                *type_ords.entry((segment, ord)).or_insert(0) += 1;
            }
        }
        if let Some(col) = amenities {
            for ord in col.term_ords(c.addr.doc_id) {
                *amenity_ords.entry((segment, ord)).or_insert(0) += 1;
            }
        }
    }
    let resolve = |counts: HashMap<(u32, u64), u64>, pick: fn(&FacetColumns) -> &Option<StrColumn>| {
        let mut named: BTreeMap<String, u64> = BTreeMap::new();
        for ((segment, ord), count) in counts {
            let mut name = String::new();
            if let Some(col) = columns.get(&segment).and_then(|c| pick(c).as_ref()) {
                if col.ord_to_str(ord, &mut name).map_err(index_err)? {
                    *named.entry(name).or_insert(0) += count;
                }
            }
        }
        Ok::<_, Problem>(named)
    };
    Ok(Facets {
        property_types: resolve(type_ords, |c| &c.0)?,
        amenities: resolve(amenity_ords, |c| &c.1)?,
        price_histogram: buckets.into_iter().map(|(from, count)| PriceBucket { from, count }).collect(),
    })
}

#[async_trait]
impl EventHandler for SearchService {
    async fn handle(&self, event: &Envelope) -> Result<(), String> {
        match event.event_type.as_str() {
            LISTING_CHANGED => {
                let e: ListingChanged = event.decode()?;
                if e.deleted {
                    self.index.remove(&e.listing.id.to_string()).map_err(|e| e.to_string())
                } else {
                    self.index_listing(&e.listing).await.map_err(|p| p.to_string())
                }
            }
            CALENDAR_CHANGED => {
                let e: CalendarChanged = event.decode()?;
                match self.listings.listing(e.listing_id).await.map_err(|p| p.to_string())? {
                    Some(listing) => self.index_listing(&listing).await.map_err(|p| p.to_string()),
                    None => self.index.remove(&e.listing_id.to_string()).map_err(|e| e.to_string()),
                }
            }
            _ => Ok(()),
        }
    }
}
