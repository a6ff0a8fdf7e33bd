//! The search module's storage: a tantivy index of published listings, on disk
//! under the data dir (or in memory for tests).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use hometrip_listing::api::{AMENITIES, PROPERTY_TYPES};
use tantivy::directory::MmapDirectory;
use tantivy::index::SegmentId;
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, FAST, STORED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer,
};

use crate::domain::{cells_of, night_words, NIGHT_WORDS};
use tantivy::{
    Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, SearcherGeneration, SegmentReader, TantivyDocument, Term,
    Warmer,
};

/// Bump when the schema changes: an index of another version is rebuilt.
/// (6: `lat`/`lon` hold the listing's approximate location; 7: `rating` is
/// the ranking score, `shown_rating` what results show.)
pub const SCHEMA_VERSION: &str = "7";

/// Property types and amenities are indexed by their place in the listing
/// module's catalogues (a type slot, a bit per amenity), so facets count small
/// integers. The index records a fingerprint of both catalogues with its schema
/// version and is rebuilt when either changes.
pub const TYPE_SLOTS: usize = 32;
pub const AMENITY_SLOTS: usize = 64;

const _: () = assert!(PROPERTY_TYPES.len() <= TYPE_SLOTS && AMENITIES.len() <= AMENITY_SLOTS);

/// The slot of a property type, if it is in the catalogue.
pub fn type_slot(key: &str) -> Option<usize> {
    PROPERTY_TYPES.iter().position(|t| *t == key)
}

/// The property type of a slot.
pub fn type_of_slot(slot: usize) -> Option<&'static str> {
    PROPERTY_TYPES.get(slot).copied()
}

/// The bit of an amenity, if it is in the catalogue.
pub fn amenity_bit(key: &str) -> Option<usize> {
    AMENITIES.iter().position(|(k, _, _)| *k == key)
}

/// The amenity of a bit.
pub fn amenity_of_bit(bit: usize) -> Option<&'static str> {
    AMENITIES.get(bit).map(|(k, _, _)| *k)
}

/// The schema version with the catalogues' fingerprint (FNV-1a of their keys).
fn index_version() -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for key in PROPERTY_TYPES.iter().copied().chain(["|"]).chain(AMENITIES.iter().map(|(k, _, _)| *k)) {
        for byte in key.bytes().chain([0]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{SCHEMA_VERSION}-{hash:016x}")
}

pub const FRENCH: &str = "hometrip_fr";
pub const ENGLISH: &str = "hometrip_en";
pub const FOLDED: &str = "hometrip_folded";

#[derive(Clone, Copy)]
pub struct Fields {
    pub id: Field,
    /// The id's 128 bits as two fast fields: a stable tie-break for sorting and cursors.
    pub id_hi: Field,
    pub id_lo: Field,
    pub title: Field,
    pub title_fr: Field,
    pub title_en: Field,
    pub description_fr: Field,
    pub description_en: Field,
    pub city: Field,
    pub city_name: Field,
    pub suggest: Field,
    pub lat: Field,
    pub lon: Field,
    /// The grid cells of the location, one per level (`domain::cells_of`): geo
    /// filters look up the cells covering their box.
    pub cell: Field,
    pub price: Field,
    pub currency: Field,
    pub guests: Field,
    pub bedrooms: Field,
    pub property_type: Field,
    /// `type_slot` of the property type (fast, for facets).
    pub type_slot: Field,
    pub amenities: Field,
    /// One bit per amenity (`amenity_bit`), for facets.
    pub amenity_bits: Field,
    pub instant_book: Field,
    /// The ranking score (the review module's Bayesian average), fast.
    pub rating: Field,
    /// The rating results show (from 3 reviews), stored.
    pub shown_rating: Field,
    pub min_nights: Field,
    pub max_nights: Field,
    /// Booked nights as a bitmap (`domain::night_words`): the first word's
    /// number, then the words.
    pub nights_base: Field,
    pub nights: [Field; NIGHT_WORDS],
}

/// Names of the booked-nights bitmap fields (read by the collector).
pub const NIGHTS_BASE: &str = "nights_base";
pub const NIGHT_FIELDS: [&str; NIGHT_WORDS] = [
    "nights_0",
    "nights_1",
    "nights_2",
    "nights_3",
    "nights_4",
    "nights_5",
    "nights_6",
    "nights_7",
    "nights_8",
    "nights_9",
    "nights_10",
    "nights_11",
    "nights_12",
];

fn text(analyzer: &str, stored: bool) -> TextOptions {
    let indexing =
        TextFieldIndexing::default().set_tokenizer(analyzer).set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let options = TextOptions::default().set_indexing_options(indexing);
    if stored {
        options.set_stored()
    } else {
        options
    }
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let number = NumericOptions::default().set_indexed().set_fast().set_stored();
    // Filtered on fast-field columns while collecting, never looked up.
    let column = NumericOptions::default().set_fast().set_stored();
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        id_hi: b.add_u64_field("id_hi", NumericOptions::default().set_fast()),
        id_lo: b.add_u64_field("id_lo", NumericOptions::default().set_fast()),
        title: b.add_text_field("title", STORED),
        title_fr: b.add_text_field("title_fr", text(FRENCH, false)),
        title_en: b.add_text_field("title_en", text(ENGLISH, false)),
        description_fr: b.add_text_field("description_fr", text(FRENCH, false)),
        description_en: b.add_text_field("description_en", text(ENGLISH, false)),
        city: b.add_text_field("city", text(FOLDED, false)),
        city_name: b.add_text_field("city_name", STRING | STORED),
        suggest: b.add_text_field("suggest", text(FOLDED, false)),
        lat: b.add_f64_field("lat", number.clone()),
        lon: b.add_f64_field("lon", number.clone()),
        cell: b.add_u64_field("cell", NumericOptions::default().set_indexed()),
        price: b.add_u64_field("price", number.clone()),
        currency: b.add_text_field("currency", STRING | STORED),
        guests: b.add_u64_field("guests", column.clone()),
        bedrooms: b.add_u64_field("bedrooms", column.clone()),
        property_type: b.add_text_field("property_type", STRING | STORED),
        type_slot: b.add_u64_field("type_slot", FAST),
        amenities: b.add_text_field("amenities", STRING),
        amenity_bits: b.add_u64_field("amenity_bits", FAST),
        instant_book: b.add_u64_field("instant_book", column.clone()),
        rating: b.add_f64_field("rating", number),
        shown_rating: b.add_f64_field("shown_rating", STORED),
        min_nights: b.add_u64_field("min_nights", column.clone()),
        max_nights: b.add_u64_field("max_nights", column),
        nights_base: b.add_u64_field(NIGHTS_BASE, FAST),
        nights: NIGHT_FIELDS.map(|name| b.add_u64_field(name, FAST)),
    };
    (b.build(), fields)
}

fn register(index: &Index) {
    let stemmed = |lang| {
        TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .filter(AsciiFoldingFilter)
            .filter(Stemmer::new(lang))
            .build()
    };
    index.tokenizers().register(FRENCH, stemmed(Language::French));
    index.tokenizers().register(ENGLISH, stemmed(Language::English));
    index.tokenizers().register(
        FOLDED,
        TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .filter(AsciiFoldingFilter)
            .build(),
    );
}

/// What the index holds of one listing.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedListing {
    pub id: String,
    pub title: String,
    pub description: String,
    pub city: String,
    /// The approximate location (the only one the index knows).
    pub lat: f64,
    pub lon: f64,
    pub price: u64,
    pub currency: String,
    pub guests: u64,
    pub bedrooms: u64,
    pub property_type: String,
    pub amenities: Vec<String>,
    pub instant_book: bool,
    /// The ranking score.
    pub rating: Option<f64>,
    /// What results show.
    pub shown_rating: Option<f64>,
    pub min_nights: u64,
    pub max_nights: u64,
    /// Taken nights as day numbers, from day `nights_from` on (earlier ones
    /// are left out).
    pub booked: Vec<u64>,
    pub nights_from: u64,
}

pub struct SearchIndex {
    pub index: Index,
    pub fields: Fields,
    pub rows: Arc<RowTables>,
    reader: IndexReader,
    /// Shared for adding and deleting (tantivy takes `&self` for those),
    /// exclusive only to commit.
    writer: RwLock<IndexWriter>,
    dirty: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
#[error("search index: {0}")]
pub struct IndexError(pub String);

impl From<tantivy::TantivyError> for IndexError {
    fn from(e: tantivy::TantivyError) -> Self {
        IndexError(e.to_string())
    }
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it — or recreating it when it was
    /// built with another schema version.
    pub fn open(dir: &Path, heap_bytes: usize) -> Result<SearchIndex, IndexError> {
        let version_file = dir.join("schema-version");
        let version = index_version();
        let current = std::fs::read_to_string(&version_file).ok();
        if current.as_deref() != Some(version.as_str()) && dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| IndexError(format!("{}: {e}", dir.display())))?;
        }
        std::fs::create_dir_all(dir).map_err(|e| IndexError(format!("{}: {e}", dir.display())))?;
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(dir).map_err(|e| IndexError(e.to_string()))?;
        let index = Index::open_or_create(directory, schema)?;
        std::fs::write(&version_file, &version).map_err(|e| IndexError(e.to_string()))?;
        Self::with_index(index, fields, heap_bytes)
    }

    pub fn in_ram(heap_bytes: usize) -> Result<SearchIndex, IndexError> {
        let (schema, fields) = schema();
        Self::with_index(Index::create_in_ram(schema), fields, heap_bytes)
    }

    fn with_index(mut index: Index, fields: Fields, heap_bytes: usize) -> Result<SearchIndex, IndexError> {
        register(&index);
        // A query's segments are searched in parallel, one thread per core.
        index.set_default_multithread_executor()?;
        let writer = index.writer(heap_bytes.max(15_000_000))?;
        let rows = Arc::new(RowTables::default());
        let warmer: Arc<dyn Warmer> = Arc::clone(&rows) as Arc<dyn Warmer>;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .warmers(vec![Arc::downgrade(&warmer)])
            .try_into()?;
        Ok(SearchIndex { index, fields, rows, reader, writer: RwLock::new(writer), dirty: AtomicBool::new(false) })
    }

    fn writer(&self) -> Result<std::sync::RwLockReadGuard<'_, IndexWriter>, IndexError> {
        self.writer.read().map_err(|_| IndexError("writer lock poisoned".to_owned()))
    }

    pub fn upsert(&self, l: &IndexedListing) -> Result<(), IndexError> {
        let f = self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, &l.id);
        let bits = uuid::Uuid::parse_str(&l.id).map(|u| u.as_u128()).unwrap_or(0);
        doc.add_u64(f.id_hi, (bits >> 64) as u64);
        doc.add_u64(f.id_lo, bits as u64);
        doc.add_text(f.title, &l.title);
        doc.add_text(f.title_fr, &l.title);
        doc.add_text(f.title_en, &l.title);
        doc.add_text(f.description_fr, &l.description);
        doc.add_text(f.description_en, &l.description);
        doc.add_text(f.city, &l.city);
        doc.add_text(f.city_name, &l.city);
        doc.add_text(f.suggest, format!("{} {}", l.city, l.title));
        doc.add_f64(f.lat, l.lat);
        doc.add_f64(f.lon, l.lon);
        for cell in cells_of(l.lat, l.lon) {
            doc.add_u64(f.cell, cell);
        }
        doc.add_u64(f.price, l.price);
        doc.add_text(f.currency, &l.currency);
        doc.add_u64(f.guests, l.guests);
        doc.add_u64(f.bedrooms, l.bedrooms);
        doc.add_text(f.property_type, &l.property_type);
        // Unknown types get a slot past the catalogue (counted nowhere).
        doc.add_u64(f.type_slot, type_slot(&l.property_type).unwrap_or(TYPE_SLOTS) as u64);
        let mut bits = 0u64;
        for a in &l.amenities {
            doc.add_text(f.amenities, a);
            if let Some(bit) = amenity_bit(a) {
                bits |= 1 << bit;
            }
        }
        doc.add_u64(f.amenity_bits, bits);
        doc.add_u64(f.instant_book, u64::from(l.instant_book));
        doc.add_f64(f.rating, l.rating.unwrap_or(0.0));
        doc.add_f64(f.shown_rating, l.shown_rating.unwrap_or(0.0));
        doc.add_u64(f.min_nights, l.min_nights);
        doc.add_u64(f.max_nights, l.max_nights);
        let (base, words) = night_words(l.nights_from, l.booked.iter().copied());
        doc.add_u64(f.nights_base, base);
        for (field, word) in f.nights.iter().zip(words) {
            doc.add_u64(*field, word);
        }
        let writer = self.writer()?;
        writer.delete_term(Term::from_field_text(f.id, &l.id));
        writer.add_document(doc)?;
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Adds or replaces many listings, in geographic order: neighbours get
    /// neighbouring document ids, so a city's matches are read from nearby
    /// places in the columns instead of all over them.
    pub fn upsert_many(&self, listings: &mut [IndexedListing]) -> Result<(), IndexError> {
        listings.sort_by_key(|l| {
            let cells = cells_of(l.lat, l.lon);
            (cells[2], cells[0])
        });
        listings.iter().try_for_each(|l| self.upsert(l))
    }

    pub fn remove(&self, id: &str) -> Result<(), IndexError> {
        self.writer()?.delete_term(Term::from_field_text(self.fields.id, id));
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Deletes every document (searchers see it at the next commit), those
    /// still pending too: they wait in tantivy's indexing workers until a
    /// commit, out of `delete_all_documents`' reach, so they are committed
    /// first and deleted with the rest.
    pub fn clear(&self) -> Result<(), IndexError> {
        let mut writer = self.writer.write().map_err(|_| IndexError("writer lock poisoned".to_owned()))?;
        writer.commit()?;
        writer.delete_all_documents()?;
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Commits pending changes and makes them searchable; `false` if none.
    pub fn commit(&self) -> Result<bool, IndexError> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(false);
        }
        self.writer.write().map_err(|_| IndexError("writer lock poisoned".to_owned()))?.commit()?;
        self.reader.reload()?;
        Ok(true)
    }

    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    pub fn num_docs(&self) -> u64 {
        self.searcher().num_docs()
    }
}

/// What a search reads of every match, in one place per document: the
/// columns the collector filters, counts and sorts on, copied out of the
/// segment's fast fields once. Neighbouring documents (in geographic order,
/// see `upsert_many`) are neighbouring rows, so a city's matches are read
/// from a few contiguous stretches of memory.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DocRow {
    pub lat: f64,
    pub lon: f64,
    pub price: u64,
    pub amenities: u64,
    pub rating: f64,
    pub guests: u16,
    pub bedrooms: u16,
    pub min_nights: u16,
    pub max_nights: u16,
    pub type_slot: u8,
    pub instant_book: bool,
}

/// The rows of each live segment, built when a searcher first sees the
/// segment (a tantivy warmer, so searches do not pay for it) and dropped when
/// no searcher uses it any more.
#[derive(Default)]
pub struct RowTables {
    tables: RwLock<HashMap<SegmentId, Arc<[DocRow]>>>,
}

impl RowTables {
    /// The segment's rows, built now if no warmer has done it yet.
    pub fn get(&self, segment: &SegmentReader) -> tantivy::Result<Arc<[DocRow]>> {
        let id = segment.segment_id();
        if let Some(rows) = self.tables.read().ok().and_then(|t| t.get(&id).cloned()) {
            return Ok(rows);
        }
        let rows: Arc<[DocRow]> = Self::build(segment)?.into();
        if let Ok(mut tables) = self.tables.write() {
            tables.insert(id, Arc::clone(&rows));
        }
        Ok(rows)
    }

    fn build(segment: &SegmentReader) -> tantivy::Result<Vec<DocRow>> {
        let ff = segment.fast_fields();
        let (lat, lon, rating) = (ff.f64("lat")?, ff.f64("lon")?, ff.f64("rating")?);
        let [price, amenities, guests, bedrooms, min_nights, max_nights, type_slot, instant_book] =
            ["price", "amenity_bits", "guests", "bedrooms", "min_nights", "max_nights", "type_slot", "instant_book"]
                .map(|name| ff.u64(name));
        let (price, amenities, guests, bedrooms) = (price?, amenities?, guests?, bedrooms?);
        let (min_nights, max_nights, type_slot, instant_book) = (min_nights?, max_nights?, type_slot?, instant_book?);
        let small = |v: Option<u64>| u16::try_from(v.unwrap_or(0)).unwrap_or(u16::MAX);
        Ok((0..segment.max_doc())
            .map(|doc| DocRow {
                lat: lat.first(doc).unwrap_or(0.0),
                lon: lon.first(doc).unwrap_or(0.0),
                price: price.first(doc).unwrap_or(0),
                amenities: amenities.first(doc).unwrap_or(0),
                rating: rating.first(doc).unwrap_or(0.0),
                guests: small(guests.first(doc)),
                bedrooms: small(bedrooms.first(doc)),
                min_nights: small(min_nights.first(doc)),
                max_nights: small(max_nights.first(doc)),
                type_slot: u8::try_from(type_slot.first(doc).unwrap_or(u64::MAX)).unwrap_or(u8::MAX),
                instant_book: instant_book.first(doc).unwrap_or(0) == 1,
            })
            .collect())
    }
}

impl Warmer for RowTables {
    fn warm(&self, searcher: &Searcher) -> tantivy::Result<()> {
        searcher.segment_readers().iter().try_for_each(|segment| self.get(segment).map(drop))
    }

    fn garbage_collect(&self, live: &[&SearcherGeneration]) {
        let keep: HashSet<SegmentId> = live.iter().flat_map(|g| g.segments().keys().copied()).collect();
        if let Ok(mut tables) = self.tables.write() {
            tables.retain(|id, _| keep.contains(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::Count;
    use tantivy::query::TermQuery;

    fn listing(n: u128) -> IndexedListing {
        IndexedListing {
            id: uuid::Uuid::from_u128(n).to_string(),
            title: format!("Maison {n}"),
            description: String::new(),
            city: "Lyon".to_owned(),
            lat: 45.76,
            lon: 4.83,
            price: 10_000,
            currency: "EUR".to_owned(),
            guests: 4,
            bedrooms: 2,
            property_type: "house".to_owned(),
            amenities: Vec::new(),
            instant_book: true,
            rating: None,
            shown_rating: None,
            min_nights: 1,
            max_nights: 14,
            booked: Vec::new(),
            nights_from: 0,
        }
    }

    fn copies(index: &SearchIndex, l: &IndexedListing) -> Result<usize, IndexError> {
        let query = TermQuery::new(Term::from_field_text(index.fields.id, &l.id), IndexRecordOption::Basic);
        Ok(index.searcher().search(&query, &Count)?)
    }

    /// A rebuild clears the index while changes of listings are pending: the
    /// listings it adds back stay, once each, through the commits after it.
    #[test]
    fn a_rebuild_beside_pending_changes_keeps_every_listing_once() -> Result<(), IndexError> {
        let index = SearchIndex::in_ram(15_000_000)?;
        let (kept, changed, later) = (listing(1), listing(2), listing(3));
        index.upsert(&kept)?;
        assert!(index.commit()?);
        // An event's change, not committed yet, then the rebuild.
        for _ in 0..3 {
            index.upsert(&changed)?;
        }
        index.clear()?;
        index.upsert_many(&mut [kept.clone(), changed.clone()])?;
        assert!(index.commit()?);
        // Later changes of another listing move the stamps past the pending ones.
        for _ in 0..8 {
            index.upsert(&later)?;
            assert!(index.commit()?);
        }
        assert_eq!((copies(&index, &kept)?, copies(&index, &changed)?, copies(&index, &later)?), (1, 1, 1));
        assert_eq!(index.num_docs(), 3);
        Ok(())
    }

    /// A clear removes what is pending too (a listing unpublished before a
    /// rebuild, whose removal was not committed yet, does not come back).
    #[test]
    fn a_clear_takes_pending_documents_too() -> Result<(), IndexError> {
        let index = SearchIndex::in_ram(15_000_000)?;
        let (pending, kept) = (listing(1), listing(2));
        index.upsert(&pending)?;
        index.clear()?;
        index.upsert(&kept)?;
        assert!(index.commit()?);
        assert_eq!((copies(&index, &pending)?, copies(&index, &kept)?), (0, 1));
        Ok(())
    }
}
