//! One pass over a query's matches: exact geo checks, filters, exact totals,
//! facet counts and the page's top rows, read from the segment's row table
//! (`store::RowTables`). Nothing is capped or estimated; only the best rows of
//! the page are kept while collecting.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::domain::{self, BBox, Criteria, Sort};
use crate::store::{amenity_bit, DocRow, RowTables, AMENITY_SLOTS, NIGHTS_BASE, NIGHT_FIELDS, TYPE_SLOTS};

/// What a search asks of its matches.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every match must lie in all of these (the cell lookup is coarser).
    pub boxes: Vec<BBox>,
    pub center: Option<(f64, f64)>,
    pub radius_km: Option<f64>,
    pub filters: Filters,
    pub sort: Sort,
    /// How many rows to keep: the page size plus one (to know there is more).
    pub keep: usize,
    /// Rows at or before this `(key, id)` were on earlier pages.
    pub after: Option<(f64, u128)>,
}

/// Filters checked on each match's columns (cheaper than range queries over
/// the whole index once text, type or geo have narrowed the matches).
#[derive(Debug, Clone)]
pub struct Filters {
    /// Inclusive ranges.
    pub guests: (u64, u64),
    pub bedrooms: (u64, u64),
    pub price: (u64, u64),
    pub instant_book: Option<bool>,
    /// Amenity bits that must all be set.
    pub amenities: u64,
    /// First night (day number) and number of nights.
    pub stay: Option<(u64, u64)>,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            guests: (0, u64::MAX),
            bedrooms: (0, u64::MAX),
            price: (0, u64::MAX),
            instant_book: None,
            amenities: 0,
            stay: None,
        }
    }
}

impl Filters {
    pub fn of(c: &Criteria) -> Filters {
        Filters {
            guests: (c.guests.map_or(0, u64::from), u64::MAX),
            bedrooms: (c.bedrooms.map_or(0, u64::from), u64::MAX),
            price: (c.min_price.unwrap_or(0), c.max_price.unwrap_or(u64::MAX)),
            instant_book: c.instant_book,
            amenities: c.amenities.iter().filter_map(|a| amenity_bit(a)).fold(0, |bits, bit| bits | 1 << bit),
            stay: c.stay.map(|(check_in, check_out)| {
                let first = domain::day_number(check_in);
                (first, domain::day_number(check_out) - first)
            }),
        }
    }
}

/// A match kept for the page.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub addr: DocAddress,
    /// Ascending sort key (negated for descending sorts).
    pub key: f64,
    pub id: u128,
    pub distance: Option<f64>,
}

impl Row {
    fn cmp_key(&self, other: &Row) -> Ordering {
        self.key.total_cmp(&other.key).then(self.id.cmp(&other.id))
    }
}

impl PartialEq for Row {
    fn eq(&self, other: &Self) -> bool {
        self.cmp_key(other) == Ordering::Equal
    }
}
impl Eq for Row {}
impl PartialOrd for Row {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Row {
    fn cmp(&self, other: &Self) -> Ordering {
        self.cmp_key(other)
    }
}

/// Price histogram: buckets of 5,000 minor units, the last one open-ended.
pub const PRICE_BUCKET: u64 = 5_000;
pub const PRICE_BUCKETS: usize = 21;

/// Everything collected over the matches.
#[derive(Debug, Clone)]
pub struct Matches {
    pub total: u64,
    /// The best rows, best first.
    pub rows: Vec<Row>,
    /// Counts by property-type slot (`store::TYPE_SLOTS`).
    pub types: [u64; TYPE_SLOTS],
    /// Counts by amenity bit (`store::AMENITY_SLOTS`).
    pub amenities: [u64; AMENITY_SLOTS],
    pub price_buckets: [u64; PRICE_BUCKETS],
}

impl Default for Matches {
    fn default() -> Self {
        Matches {
            total: 0,
            rows: Vec::new(),
            types: [0; TYPE_SLOTS],
            amenities: [0; AMENITY_SLOTS],
            price_buckets: [0; PRICE_BUCKETS],
        }
    }
}

pub struct MatchCollector<'a> {
    pub plan: Plan,
    pub rows: &'a RowTables,
}

impl Collector for MatchCollector<'_> {
    type Fruit = Matches;
    type Child = SegmentMatches;

    fn for_segment(&self, segment: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<SegmentMatches> {
        let ff = reader.fast_fields();
        Ok(SegmentMatches {
            plan: self.plan.clone(),
            segment,
            rows: self.rows.get(reader)?,
            id_hi: ff.u64("id_hi")?,
            id_lo: ff.u64("id_lo")?,
            nights: Nights::open(&self.plan.filters, reader)?,
            amenity_counts: BitCounts::new(),
            heap: BinaryHeap::with_capacity(self.plan.keep + 1),
            out: Matches::default(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.plan.sort == Sort::Relevance
    }

    fn merge_fruits(&self, fruits: Vec<Matches>) -> tantivy::Result<Matches> {
        let mut all = Matches::default();
        let mut rows = Vec::new();
        for f in fruits {
            all.total += f.total;
            for (a, b) in all.types.iter_mut().zip(f.types) {
                *a += b;
            }
            for (a, b) in all.amenities.iter_mut().zip(f.amenities) {
                *a += b;
            }
            for (a, b) in all.price_buckets.iter_mut().zip(f.price_buckets) {
                *a += b;
            }
            rows.extend(f.rows);
        }
        rows.sort();
        rows.truncate(self.plan.keep);
        all.rows = rows;
        Ok(all)
    }
}

/// The booked-nights bitmap columns, opened only for dated searches (they are
/// read for the few matches that pass every other check).
struct Nights {
    stay: (u64, u64),
    base: Column<u64>,
    words: Vec<Column<u64>>,
    /// The stay's bits for the last bitmap base seen (bases differ only
    /// between listings indexed in different 64-day periods).
    bits: Option<(u64, Vec<(usize, u64)>)>,
}

impl Nights {
    fn open(filters: &Filters, reader: &SegmentReader) -> tantivy::Result<Option<Nights>> {
        let Some(stay) = filters.stay else { return Ok(None) };
        let ff = reader.fast_fields();
        Ok(Some(Nights {
            stay,
            base: ff.u64(NIGHTS_BASE)?,
            words: NIGHT_FIELDS.iter().map(|name| ff.u64(name)).collect::<tantivy::Result<_>>()?,
            bits: None,
        }))
    }

    fn free(&mut self, doc: DocId) -> bool {
        let base = self.base.first(doc).unwrap_or(0);
        let (first, nights) = self.stay;
        let bits = match &self.bits {
            Some((b, bits)) if *b == base => bits,
            _ => &self.bits.insert((base, domain::stay_bits(base, first, nights))).1,
        };
        bits.iter().all(|(word, mask)| self.words[*word].first(doc).unwrap_or(0) & mask == 0)
    }
}

/// Each byte value with its 8 bits spread into 8 bytes (bit `i` → byte `i`).
const SPREAD: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut value = 0;
    while value < 256 {
        let mut bit = 0;
        while bit < 8 {
            if value & (1 << bit) != 0 {
                table[value] |= 1 << (8 * bit);
            }
            bit += 1;
        }
        value += 1;
    }
    table
};

/// Counts of each bit over many `u64`s without a branch per set bit: the bits
/// are spread into byte counters (eight per word, added in one go), which are
/// added to the totals every 255 values, before a byte can overflow.
struct BitCounts {
    lanes: [u64; 8],
    pending: u8,
}

impl BitCounts {
    fn new() -> Self {
        BitCounts { lanes: [0; 8], pending: 0 }
    }

    fn add(&mut self, bits: u64, totals: &mut [u64; 64]) {
        for (k, lane) in self.lanes.iter_mut().enumerate() {
            *lane += SPREAD[((bits >> (8 * k)) & 0xff) as usize];
        }
        self.pending += 1;
        if self.pending == u8::MAX {
            self.flush(totals);
        }
    }

    fn flush(&mut self, totals: &mut [u64; 64]) {
        for (k, lane) in self.lanes.iter_mut().enumerate() {
            let counts = std::mem::take(lane).to_le_bytes();
            for (bit, count) in counts.iter().enumerate() {
                totals[8 * k + bit] += u64::from(*count);
            }
        }
        self.pending = 0;
    }
}

pub struct SegmentMatches {
    plan: Plan,
    segment: SegmentOrdinal,
    rows: Arc<[DocRow]>,
    id_hi: Column<u64>,
    id_lo: Column<u64>,
    nights: Option<Nights>,
    amenity_counts: BitCounts,
    /// The best rows so far; its top is the worst kept.
    heap: BinaryHeap<Row>,
    out: Matches,
}

impl SegmentMatches {
    fn id(&self, doc: DocId) -> u128 {
        (u128::from(self.id_hi.first(doc).unwrap_or(0)) << 64) | u128::from(self.id_lo.first(doc).unwrap_or(0))
    }

    /// Every check but the nights: geo, then the row's filters. Returns the
    /// distance to the centre when there is one.
    fn passes(plan: &Plan, row: &DocRow) -> Option<Option<f64>> {
        let f = &plan.filters;
        let within = |v: u16, (lo, hi): (u64, u64)| (lo..=hi).contains(&u64::from(v));
        let fits = (f.price.0..=f.price.1).contains(&row.price)
            && row.amenities & f.amenities == f.amenities
            && within(row.guests, f.guests)
            && within(row.bedrooms, f.bedrooms)
            && f.instant_book.is_none_or(|wanted| wanted == row.instant_book)
            && f.stay.is_none_or(|(_, n)| within(row.min_nights, (0, n)) && within(row.max_nights, (n, u64::MAX)))
            && plan.boxes.iter().all(|b| b.contains(row.lat, row.lon));
        if !fits {
            return None;
        }
        let Some(center) = plan.center else { return Some(None) };
        let d = domain::haversine_km(center, (row.lat, row.lon));
        match plan.radius_km {
            Some(r) if d > r => None,
            _ => Some(Some(d)),
        }
    }
}

impl SegmentCollector for SegmentMatches {
    type Fruit = Matches;

    fn collect(&mut self, doc: DocId, score: Score) {
        let Some(row) = self.rows.get(doc as usize).copied() else { return };
        let Some(distance) = Self::passes(&self.plan, &row) else { return };
        if let Some(nights) = &mut self.nights {
            if !nights.free(doc) {
                return;
            }
        }
        self.out.total += 1;
        self.out.price_buckets[((row.price / PRICE_BUCKET) as usize).min(PRICE_BUCKETS - 1)] += 1;
        if let Some(count) = self.out.types.get_mut(usize::from(row.type_slot)) {
            *count += 1;
        }
        self.amenity_counts.add(row.amenities, &mut self.out.amenities);
        let key = match self.plan.sort {
            Sort::Relevance => -f64::from(score),
            Sort::PriceAsc => row.price as f64,
            Sort::PriceDesc => -(row.price as f64),
            Sort::Rating => -row.rating,
            Sort::Distance => distance.unwrap_or(f64::MAX),
        };
        // Most matches lose on the key alone: the id is read only for contenders.
        if self.plan.after.is_some_and(|(after, _)| key < after) {
            return;
        }
        if self.heap.len() >= self.plan.keep && self.heap.peek().is_none_or(|worst| key > worst.key) {
            return;
        }
        let candidate = Row { addr: DocAddress::new(self.segment, doc), key, id: self.id(doc), distance };
        if let Some((after_key, after_id)) = self.plan.after {
            if key.total_cmp(&after_key).then(candidate.id.cmp(&after_id)) != Ordering::Greater {
                return;
            }
        }
        if self.heap.len() < self.plan.keep {
            self.heap.push(candidate);
        } else if self.heap.peek().is_some_and(|worst| candidate < *worst) {
            self.heap.pop();
            self.heap.push(candidate);
        }
    }

    fn harvest(mut self) -> Matches {
        self.amenity_counts.flush(&mut self.out.amenities);
        let mut out = self.out;
        out.rows = self.heap.into_sorted_vec();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_counts_match_counting_one_bit_at_a_time() {
        let mut totals = [0u64; 64];
        let mut expected = [0u64; 64];
        let mut counts = BitCounts::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        // Past several spills of the byte counters, with every bit set often.
        for i in 0..2_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bits = if i % 3 == 0 { u64::MAX } else { x };
            counts.add(bits, &mut totals);
            for (bit, e) in expected.iter_mut().enumerate() {
                *e += (bits >> bit) & 1;
            }
        }
        counts.flush(&mut totals);
        assert_eq!(totals, expected);
    }
}
