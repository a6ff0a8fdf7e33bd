//! The search module's storage: a tantivy index of published listings, on disk
//! under the data dir (or in memory for tests).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tantivy::directory::MmapDirectory;
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, FAST, STORED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

/// Bump when the schema changes: an index of another version is rebuilt.
pub const SCHEMA_VERSION: &str = "3";

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
    /// The grid cell of the location (`domain::cell_of`): geo filters look up the
    /// cells covering their box instead of scanning two coordinate ranges.
    pub cell: Field,
    pub price: Field,
    pub currency: Field,
    pub guests: Field,
    pub bedrooms: Field,
    pub property_type: Field,
    pub amenities: Field,
    pub instant_book: Field,
    pub rating: Field,
    pub min_nights: Field,
    pub max_nights: Field,
    pub booked: Field,
}

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
        guests: b.add_u64_field("guests", number.clone()),
        bedrooms: b.add_u64_field("bedrooms", number.clone()),
        property_type: b.add_text_field("property_type", STRING | STORED | FAST),
        amenities: b.add_text_field("amenities", STRING | FAST),
        instant_book: b.add_u64_field("instant_book", number.clone()),
        rating: b.add_f64_field("rating", number.clone()),
        min_nights: b.add_u64_field("min_nights", number.clone()),
        max_nights: b.add_u64_field("max_nights", number),
        booked: b.add_u64_field("booked", NumericOptions::default().set_indexed()),
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
    pub lat: f64,
    pub lon: f64,
    pub price: u64,
    pub currency: String,
    pub guests: u64,
    pub bedrooms: u64,
    pub property_type: String,
    pub amenities: Vec<String>,
    pub instant_book: bool,
    pub rating: Option<f64>,
    pub min_nights: u64,
    pub max_nights: u64,
    /// Taken nights as day numbers.
    pub booked: Vec<u64>,
}

pub struct SearchIndex {
    pub index: Index,
    pub fields: Fields,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
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
        let current = std::fs::read_to_string(&version_file).ok();
        if current.as_deref() != Some(SCHEMA_VERSION) && dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| IndexError(format!("{}: {e}", dir.display())))?;
        }
        std::fs::create_dir_all(dir).map_err(|e| IndexError(format!("{}: {e}", dir.display())))?;
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(dir).map_err(|e| IndexError(e.to_string()))?;
        let index = Index::open_or_create(directory, schema)?;
        std::fs::write(&version_file, SCHEMA_VERSION).map_err(|e| IndexError(e.to_string()))?;
        Self::with_index(index, fields, heap_bytes)
    }

    pub fn in_ram(heap_bytes: usize) -> Result<SearchIndex, IndexError> {
        let (schema, fields) = schema();
        Self::with_index(Index::create_in_ram(schema), fields, heap_bytes)
    }

    fn with_index(index: Index, fields: Fields, heap_bytes: usize) -> Result<SearchIndex, IndexError> {
        register(&index);
        let writer = index.writer(heap_bytes.max(15_000_000))?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(SearchIndex { index, fields, reader, writer: Mutex::new(writer), dirty: AtomicBool::new(false) })
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter>, IndexError> {
        self.writer.lock().map_err(|_| IndexError("writer lock poisoned".to_owned()))
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
        doc.add_u64(f.cell, crate::domain::cell_of(l.lat, l.lon));
        doc.add_u64(f.price, l.price);
        doc.add_text(f.currency, &l.currency);
        doc.add_u64(f.guests, l.guests);
        doc.add_u64(f.bedrooms, l.bedrooms);
        doc.add_text(f.property_type, &l.property_type);
        for a in &l.amenities {
            doc.add_text(f.amenities, a);
        }
        doc.add_u64(f.instant_book, u64::from(l.instant_book));
        doc.add_f64(f.rating, l.rating.unwrap_or(0.0));
        doc.add_u64(f.min_nights, l.min_nights);
        doc.add_u64(f.max_nights, l.max_nights);
        for night in &l.booked {
            doc.add_u64(f.booked, *night);
        }
        let writer = self.writer()?;
        writer.delete_term(Term::from_field_text(f.id, &l.id));
        writer.add_document(doc)?;
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    pub fn remove(&self, id: &str) -> Result<(), IndexError> {
        self.writer()?.delete_term(Term::from_field_text(self.fields.id, id));
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    pub fn clear(&self) -> Result<(), IndexError> {
        self.writer()?.delete_all_documents()?;
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Commits pending changes and makes them searchable; `false` if none.
    pub fn commit(&self) -> Result<bool, IndexError> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(false);
        }
        self.writer()?.commit()?;
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
