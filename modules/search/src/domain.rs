//! Pure rules of search: what a valid query is, geo arithmetic, day numbers,
//! cursors and text folding. No I/O.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::NaiveDate;
use hometrip_kernel::FieldError;
use serde::{Deserialize, Serialize};

pub const MAX_QUERY_CHARS: usize = 200;
pub const MAX_AMENITIES: usize = 40;
pub const MAX_LIMIT: u32 = 50;
const EARTH_RADIUS_KM: f64 = 6371.0088;

pub use crate::api::SearchParams;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sort {
    Relevance,
    PriceAsc,
    PriceDesc,
    Rating,
    Distance,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

/// A validated search.
#[derive(Debug, Clone, PartialEq)]
pub struct Criteria {
    pub text: Option<String>,
    pub center: Option<(f64, f64)>,
    pub radius_km: Option<f64>,
    pub bbox: Option<BBox>,
    pub stay: Option<(NaiveDate, NaiveDate)>,
    pub guests: Option<u32>,
    pub bedrooms: Option<u32>,
    pub min_price: Option<u64>,
    pub max_price: Option<u64>,
    pub amenities: Vec<String>,
    pub property_type: Option<String>,
    pub instant_book: Option<bool>,
    pub sort: Sort,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

/// Where the previous page ended: its last item's sort key and id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub key: f64,
    pub id: String,
}

pub fn encode_cursor(c: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).unwrap_or_default())
}

pub fn decode_cursor(s: &str) -> Option<Cursor> {
    let bytes = URL_SAFE_NO_PAD.decode(s.as_bytes()).ok()?;
    serde_json::from_slice(&bytes).ok().filter(|c: &Cursor| c.key.is_finite())
}

fn lat_ok(v: f64) -> bool {
    v.is_finite() && (-90.0..=90.0).contains(&v)
}

fn lon_ok(v: f64) -> bool {
    v.is_finite() && (-180.0..=180.0).contains(&v)
}

/// Validates every parameter, naming each bad one.
pub fn criteria(
    p: &SearchParams,
    is_amenity: impl Fn(&str) -> bool,
    is_type: impl Fn(&str) -> bool,
) -> Result<Criteria, Vec<FieldError>> {
    let mut e = Vec::new();
    let text = p.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(str::to_owned);
    if text.as_ref().is_some_and(|t| t.chars().count() > MAX_QUERY_CHARS) {
        e.push(FieldError::new("q", format!("at most {MAX_QUERY_CHARS} characters")));
    }
    let center = match (p.lat, p.lon) {
        (Some(lat), Some(lon)) => {
            if !lat_ok(lat) {
                e.push(FieldError::new("lat", "must be between -90 and 90"));
            }
            if !lon_ok(lon) {
                e.push(FieldError::new("lon", "must be between -180 and 180"));
            }
            Some((lat, lon))
        }
        (None, None) => None,
        _ => {
            e.push(FieldError::new("lat", "lat and lon go together"));
            None
        }
    };
    let radius_km = p.radius_km;
    if let Some(r) = radius_km {
        if !r.is_finite() || r <= 0.0 || r > 500.0 {
            e.push(FieldError::new("radius_km", "must be greater than 0 and at most 500"));
        } else if center.is_none() {
            e.push(FieldError::new("radius_km", "needs lat and lon"));
        }
    }
    let bbox = p.bbox.as_deref().and_then(|b| {
        let parts: Vec<f64> = b.split(',').filter_map(|v| v.trim().parse().ok()).collect();
        match parts.as_slice() {
            [min_lon, min_lat, max_lon, max_lat]
                if lon_ok(*min_lon)
                    && lon_ok(*max_lon)
                    && lat_ok(*min_lat)
                    && lat_ok(*max_lat)
                    && min_lat <= max_lat
                    && min_lon <= max_lon =>
            {
                Some(BBox { min_lon: *min_lon, min_lat: *min_lat, max_lon: *max_lon, max_lat: *max_lat })
            }
            _ => {
                e.push(FieldError::new("bbox", "must be minLon,minLat,maxLon,maxLat within range"));
                None
            }
        }
    });
    let stay = match (p.check_in, p.check_out) {
        (Some(ci), Some(co)) if co > ci && (co - ci).num_days() <= 365 => Some((ci, co)),
        (Some(_), Some(_)) => {
            e.push(FieldError::new("check_out", "must be after check_in, at most 365 nights later"));
            None
        }
        (None, None) => None,
        _ => {
            e.push(FieldError::new("check_out", "check_in and check_out go together"));
            None
        }
    };
    if p.guests.is_some_and(|g| g == 0 || g > 50) {
        e.push(FieldError::new("guests", "must be between 1 and 50"));
    }
    if p.bedrooms.is_some_and(|b| b > 50) {
        e.push(FieldError::new("bedrooms", "must be at most 50"));
    }
    let price = |field: &str, v: Option<i64>, e: &mut Vec<FieldError>| match v {
        Some(v) if v < 0 => {
            e.push(FieldError::new(field, "must not be negative"));
            None
        }
        v => v.map(|v| v as u64),
    };
    let min_price = price("min_price", p.min_price, &mut e);
    let max_price = price("max_price", p.max_price, &mut e);
    if let (Some(a), Some(b)) = (min_price, max_price) {
        if a > b {
            e.push(FieldError::new("max_price", "must not be below min_price"));
        }
    }
    let amenities: Vec<String> = p
        .amenities
        .as_deref()
        .map(|a| a.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    if amenities.len() > MAX_AMENITIES {
        e.push(FieldError::new("amenities", format!("at most {MAX_AMENITIES}")));
    } else if let Some(bad) = amenities.iter().find(|a| !is_amenity(a)) {
        e.push(FieldError::new("amenities", format!("unknown amenity {bad:?}")));
    }
    if let Some(t) = &p.property_type {
        if !is_type(t) {
            e.push(FieldError::new("property_type", "unknown property type"));
        }
    }
    let sort = match p.sort.as_deref().unwrap_or("relevance") {
        "relevance" => Sort::Relevance,
        "price_asc" => Sort::PriceAsc,
        "price_desc" => Sort::PriceDesc,
        "rating" => Sort::Rating,
        "distance" => Sort::Distance,
        _ => {
            e.push(FieldError::new("sort", "relevance, price_asc, price_desc, rating or distance"));
            Sort::Relevance
        }
    };
    if sort == Sort::Distance && center.is_none() {
        e.push(FieldError::new("sort", "distance needs lat and lon"));
    }
    let limit = match p.limit {
        None => 20,
        Some(n @ 1..=MAX_LIMIT) => n as usize,
        Some(_) => {
            e.push(FieldError::new("limit", format!("between 1 and {MAX_LIMIT}")));
            20
        }
    };
    let cursor = match p.cursor.as_deref() {
        None => None,
        Some(c) => {
            let decoded = decode_cursor(c);
            if decoded.is_none() {
                e.push(FieldError::new("cursor", "not a cursor this search returned"));
            }
            decoded
        }
    };
    if !e.is_empty() {
        return Err(e);
    }
    Ok(Criteria {
        text,
        center,
        radius_km,
        bbox,
        stay,
        guests: p.guests,
        bedrooms: p.bedrooms,
        min_price,
        max_price,
        amenities,
        property_type: p.property_type.clone(),
        instant_book: p.instant_book,
        sort,
        limit,
        cursor,
    })
}

/// Great-circle distance.
pub fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().asin()
}

/// A box that contains the circle (then checked exactly).
pub fn bbox_around(center: (f64, f64), radius_km: f64) -> BBox {
    let dlat = (radius_km / EARTH_RADIUS_KM).to_degrees();
    let cos = center.0.to_radians().cos().abs().max(0.01);
    let dlon = (dlat / cos).min(180.0);
    BBox {
        min_lat: (center.0 - dlat).max(-90.0),
        max_lat: (center.0 + dlat).min(90.0),
        min_lon: (center.1 - dlon).max(-180.0),
        max_lon: (center.1 + dlon).min(180.0),
    }
}

/// Grid cell sizes, in degrees, finest first (about 2 km, 18 km and 140 km
/// north–south). Every listing is indexed under its cell at each level; a box
/// is looked up by the finest level that covers it in few enough cells.
pub const CELL_LEVELS: [f64; 3] = [0.02, 0.16, 1.28];

fn grid(level: usize) -> (f64, u64, u64) {
    let deg = CELL_LEVELS[level];
    (deg, (180.0 / deg).ceil() as u64, (360.0 / deg).ceil() as u64)
}

fn cell_row(level: usize, lat: f64) -> u64 {
    let (deg, rows, _) = grid(level);
    (((lat + 90.0) / deg).floor().max(0.0) as u64).min(rows - 1)
}

fn cell_col(level: usize, lon: f64) -> u64 {
    let (deg, _, cols) = grid(level);
    (((lon + 180.0) / deg).floor().max(0.0) as u64).min(cols - 1)
}

fn cell_id(level: usize, row: u64, col: u64) -> u64 {
    ((level as u64) << 40) | (row * grid(level).2 + col)
}

/// The grid cells holding a location, one per level.
pub fn cells_of(lat: f64, lon: f64) -> [u64; CELL_LEVELS.len()] {
    std::array::from_fn(|level| cell_id(level, cell_row(level, lat), cell_col(level, lon)))
}

/// The cells of the finest level that covers a box in at most `max` cells, or
/// `None` when even the coarsest needs more (the box is then checked on every
/// match only).
pub fn cells_covering(b: BBox, max: usize) -> Option<Vec<u64>> {
    (0..CELL_LEVELS.len()).find_map(|level| {
        let (r0, r1) = (cell_row(level, b.min_lat), cell_row(level, b.max_lat));
        let (c0, c1) = (cell_col(level, b.min_lon), cell_col(level, b.max_lon));
        let count = usize::try_from((r1 - r0 + 1) * (c1 - c0 + 1)).ok()?;
        (count <= max).then(|| (r0..=r1).flat_map(|r| (c0..=c1).map(move |c| cell_id(level, r, c))).collect())
    })
}

/// Booked nights are indexed as a bitmap: `NIGHT_WORDS` words of 64 nights,
/// the first one being word `base` (day number / 64) — at least the 730 days
/// the search module indexes, wherever in its first word the window starts.
pub const NIGHT_WORDS: usize = 13;

/// The bitmap of `nights` (day numbers) from the word holding `from_day`;
/// nights outside its window are left out.
pub fn night_words(from_day: u64, nights: impl IntoIterator<Item = u64>) -> (u64, [u64; NIGHT_WORDS]) {
    let base = from_day / 64;
    let mut words = [0u64; NIGHT_WORDS];
    for night in nights {
        if let Some(word) = (night / 64).checked_sub(base).and_then(|w| words.get_mut(w as usize)) {
            *word |= 1 << (night % 64);
        }
    }
    (base, words)
}

/// The words (as offsets from `base`) and bits a stay's nights occupy in a
/// bitmap starting at `base`. Nights outside the bitmap's window are not
/// indexed, so they are not checked.
pub fn stay_bits(base: u64, first_night: u64, nights: u64) -> Vec<(usize, u64)> {
    let mut out: Vec<(usize, u64)> = Vec::new();
    for night in first_night..first_night + nights {
        let Some(word) = (night / 64).checked_sub(base).filter(|w| *w < NIGHT_WORDS as u64) else { continue };
        let bit = 1u64 << (night % 64);
        match out.last_mut() {
            Some((w, mask)) if *w == word as usize => *mask |= bit,
            _ => out.push((word as usize, bit)),
        }
    }
    out
}

impl BBox {
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        (self.min_lat..=self.max_lat).contains(&lat) && (self.min_lon..=self.max_lon).contains(&lon)
    }
}

/// Days since 1970-01-01: how nights are indexed.
pub fn day_number(d: NaiveDate) -> u64 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (d - epoch).num_days().max(0) as u64
}

/// Lower-case and strip accents, as the index's suggestion field does.
pub fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: SearchParams) -> Result<Criteria, Vec<FieldError>> {
        criteria(&p, |a| a == "wifi" || a == "pool", |t| t == "loft")
    }

    fn fields(p: SearchParams) -> Vec<String> {
        ok(p).unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn bad_parameters_are_named() {
        assert_eq!(fields(SearchParams { lat: Some(200.0), lon: Some(2.0), ..Default::default() }), vec!["lat"]);
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        assert_eq!(
            fields(SearchParams { check_in: d("2027-01-10"), check_out: d("2027-01-09"), ..Default::default() }),
            vec!["check_out"]
        );
        assert_eq!(fields(SearchParams { min_price: Some(-1), ..Default::default() }), vec!["min_price"]);
        let many = (0..1000).map(|i| format!("a{i}")).collect::<Vec<_>>().join(",");
        assert_eq!(fields(SearchParams { amenities: Some(many), ..Default::default() }), vec!["amenities"]);
        assert_eq!(fields(SearchParams { q: Some("x".repeat(10_000)), ..Default::default() }), vec!["q"]);
        assert_eq!(fields(SearchParams { bbox: Some("1,2,3".into()), ..Default::default() }), vec!["bbox"]);
        assert_eq!(fields(SearchParams { sort: Some("distance".into()), ..Default::default() }), vec!["sort"]);
        assert_eq!(fields(SearchParams { radius_km: Some(5.0), ..Default::default() }), vec!["radius_km"]);
        assert_eq!(fields(SearchParams { cursor: Some("garbage".into()), ..Default::default() }), vec!["cursor"]);
        assert_eq!(
            fields(SearchParams { amenities: Some("wifi,moat".into()), ..Default::default() }),
            vec!["amenities"]
        );
    }

    #[test]
    fn a_full_query_validates() {
        let c = ok(SearchParams {
            q: Some(" loft ".into()),
            lat: Some(48.85),
            lon: Some(2.35),
            radius_km: Some(3.0),
            amenities: Some("wifi, pool".into()),
            property_type: Some("loft".into()),
            sort: Some("distance".into()),
            limit: Some(5),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.text.as_deref(), Some("loft"));
        assert_eq!(c.amenities, vec!["wifi", "pool"]);
        assert_eq!(c.limit, 5);
    }

    #[test]
    fn geo_math() {
        let paris = (48.8566, 2.3522);
        let lyon = (45.764, 4.8357);
        let d = haversine_km(paris, lyon);
        assert!((d - 392.0).abs() < 3.0, "{d}");
        let b = bbox_around(paris, 10.0);
        for p in [(48.9, 2.35), (48.8566, 2.45)] {
            assert!(haversine_km(paris, p) > 10.0 || (b.min_lat..=b.max_lat).contains(&p.0));
        }
        assert!(b.min_lat < 48.8566 && b.max_lon > 2.3522);
    }

    #[test]
    fn cells_cover_their_box() {
        let b = BBox { min_lon: 2.30, min_lat: 48.84, max_lon: 2.37, max_lat: 48.88 };
        let cells = cells_covering(b, 1000).unwrap();
        for (lat, lon) in [(48.84, 2.30), (48.8799, 2.3699), (48.86, 2.33)] {
            assert!(cells.contains(&cells_of(lat, lon)[0]), "{lat},{lon}");
            assert!(b.contains(lat, lon));
        }
        assert!(!cells.contains(&cells_of(48.95, 2.33)[0]));
        assert!(!b.contains(48.95, 2.33));
        // Wider boxes fall back to coarser levels, still covering them.
        let region = BBox { min_lon: 1.0, min_lat: 48.0, max_lon: 3.5, max_lat: 49.5 };
        let coarse = cells_covering(region, 1000).unwrap();
        assert!(coarse.contains(&cells_of(48.86, 2.33)[1]));
        assert!(!coarse.contains(&cells_of(48.86, 2.33)[0]));
        let france = BBox { min_lon: -5.0, min_lat: 42.0, max_lon: 8.0, max_lat: 51.0 };
        assert!(cells_covering(france, 1000).unwrap().contains(&cells_of(48.86, 2.33)[2]));
        let world = BBox { min_lon: -180.0, min_lat: -90.0, max_lon: 180.0, max_lat: 90.0 };
        assert!(cells_covering(world, 1000).is_none());
        assert_eq!(cells_of(90.0, 180.0), cells_of(89.999, 179.999));
        // Levels never share ids.
        let ids = cells_of(48.86, 2.33);
        assert!(ids[0] != ids[1] && ids[1] != ids[2]);
    }

    #[test]
    fn stays_are_checked_against_the_nights_bitmap() {
        let from = 64 * 300 + 10;
        let (base, words) = night_words(from, [from, from + 60, from + 100, from + 5000, from - 20]);
        assert_eq!(base, 300);
        let taken = |first: u64, n: u64| stay_bits(base, first, n).iter().any(|(w, m)| words[*w] & m != 0);
        assert!(taken(from, 1));
        assert!(!taken(from + 1, 59));
        assert!(taken(from + 55, 10), "a stay across a word boundary");
        assert!(!taken(from + 61, 39));
        assert!(taken(from + 90, 20));
        // Nights past the window are not indexed: free as far as search knows.
        assert!(!taken(from + 5000, 2));
        assert_eq!(stay_bits(base, from + 50, 20), vec![(0, !0u64 << 60), (1, (1 << 16) - 1)]);
    }

    #[test]
    fn cursors_round_trip_and_days_count_from_epoch() {
        let c = Cursor { key: 12.5, id: "abc".into() };
        assert_eq!(decode_cursor(&encode_cursor(&c)), Some(c));
        assert_eq!(day_number(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()), 1);
        assert_eq!(fold("Évian-les-Bains Ça"), "evian-les-bains ca");
    }
}

/// Whether `word` starts with `prefix`, allowing `distance` edits (0 or 1).
pub fn prefix_matches(word: &str, prefix: &str, distance: u8) -> bool {
    if word.starts_with(prefix) {
        return true;
    }
    if distance == 0 {
        return false;
    }
    let p: Vec<char> = prefix.chars().collect();
    let w: Vec<char> = word.chars().collect();
    // One substitution, insertion or deletion against a prefix of the word.
    [p.len().saturating_sub(1), p.len(), p.len() + 1]
        .into_iter()
        .filter(|n| *n <= w.len() && *n > 0)
        .any(|n| levenshtein(&w[..n], &p) <= 1)
}

fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod prefix_tests {
    use super::*;

    #[test]
    fn prefixes_forgive_one_typo() {
        assert!(prefix_matches("barcelona", "barc", 0));
        assert!(prefix_matches("barcelona", "barcelonna", 1));
        assert!(prefix_matches("barcelona", "bracel", 1) || !prefix_matches("barcelona", "bracel", 0));
        assert!(prefix_matches("lisbon", "lisbn", 1));
        assert!(!prefix_matches("lisbon", "paris", 1));
        assert!(!prefix_matches("lisbon", "lisbn", 0));
    }
}
