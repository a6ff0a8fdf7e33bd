//! The search results page: the API's search parameters, plus the page's
//! own filter fields (a price per night in whole units, ticked amenities),
//! cards, a positional plot of the results, facets as filters, pages.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hometrip_kernel::Id;
use hometrip_listing::api::AMENITIES;
use hometrip_search::api::{SearchHit, SearchParams, SearchResults};

use crate::format;
use crate::locale::Locale;
use crate::pages::{failed, respond, Chrome, Context};
use crate::Web;

/// The amenities the filters offer (the catalogue holds many more).
const FILTER_AMENITIES: [&str; 8] =
    ["wifi", "kitchen", "free_parking", "pool", "air_conditioning", "washer", "pets_allowed", "wheelchair_accessible"];

/// The fields the filter form owns (the rest of the search is kept as hidden fields).
const FILTER_FIELDS: [&str; 6] = ["sort", "property_type", "instant_book", "price_min", "price_max", "amenity"];

/// An amenity's name in `locale` (its key when the catalogue lacks it).
pub fn amenity_label(key: &str, locale: Locale) -> String {
    AMENITIES
        .iter()
        .find(|(k, _, _)| *k == key)
        .map_or(key, |(_, en, fr)| if locale == Locale::Fr { fr } else { en })
        .to_owned()
}

/// The search form's values, as typed.
#[derive(Default)]
pub struct FormValues {
    pub q: String,
    pub check_in: String,
    pub check_out: String,
    pub guests: String,
    pub sort: String,
    pub property_type: String,
    pub instant_book: bool,
    pub price_min: String,
    pub price_max: String,
    /// Each offered amenity: key, label, ticked.
    pub amenities: Vec<(String, String, bool)>,
}

impl FormValues {
    fn from_pairs(pairs: &[(String, String)], locale: Locale) -> FormValues {
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default();
        let ticked = |key: &str| pairs.iter().any(|(k, v)| k == "amenity" && v == key);
        FormValues {
            q: get("q"),
            check_in: get("check_in"),
            check_out: get("check_out"),
            guests: get("guests"),
            sort: get("sort"),
            property_type: get("property_type"),
            instant_book: get("instant_book") == "true",
            price_min: get("price_min"),
            price_max: get("price_max"),
            amenities: FILTER_AMENITIES
                .iter()
                .map(|key| (key.to_string(), amenity_label(key, locale), ticked(key)))
                .collect(),
        }
    }
}

/// The page's fields as the API names them: a price in whole units becomes
/// minor units, ticked amenities one list. `Err` names a field that is not
/// a whole amount.
fn api_pairs(pairs: &[(String, String)]) -> Result<Vec<(String, String)>, &'static str> {
    let mut out = Vec::new();
    let mut amenities = Vec::new();
    for (key, value) in pairs {
        match key.as_str() {
            "amenity" => amenities.push(value.clone()),
            "price_min" | "price_max" => {
                let whole = value.trim().parse::<i64>().ok().filter(|n| (0..=10_000_000).contains(n));
                let Some(whole) = whole else {
                    return Err(if key == "price_min" { "price_min" } else { "price_max" });
                };
                let name = if key == "price_min" { "min_price" } else { "max_price" };
                out.push((name.to_owned(), (whole * 100).to_string()));
            }
            _ => out.push((key.clone(), value.clone())),
        }
    }
    if !amenities.is_empty() {
        out.push(("amenities".to_owned(), amenities.join(",")));
    }
    Ok(out)
}

/// A search result as a card shows it.
pub struct Card {
    pub id: Id,
    pub title: String,
    pub city: String,
    pub property_type: String,
    pub price: String,
    pub rating: Option<String>,
}

pub fn cards(hits: &[SearchHit], locale: Locale) -> Vec<Card> {
    hits.iter()
        .map(|h| Card {
            id: h.id,
            title: h.title.clone(),
            city: h.city.clone(),
            property_type: h.property_type.clone(),
            price: format::money(&h.nightly_price, locale),
            rating: h.rating.map(|r| format::rating(r, locale)),
        })
        .collect()
}

/// A result on the positional plot: x and y in 0..100.
pub struct Point {
    pub id: Id,
    pub x: String,
    pub y: String,
    pub label: String,
}

/// The results placed by longitude and latitude within their own bounds
/// (no map tiles: nothing is fetched from elsewhere).
fn plot(hits: &[SearchHit]) -> Vec<Point> {
    let (mut min_lon, mut max_lon, mut min_lat, mut max_lat) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for h in hits {
        min_lon = min_lon.min(h.location.lon);
        max_lon = max_lon.max(h.location.lon);
        min_lat = min_lat.min(h.location.lat);
        max_lat = max_lat.max(h.location.lat);
    }
    let scale = |v: f64, lo: f64, hi: f64| if hi - lo < 1e-9 { 50.0 } else { (v - lo) / (hi - lo) * 100.0 };
    hits.iter()
        .map(|h| Point {
            id: h.id,
            x: format!("{:.1}", scale(h.location.lon, min_lon, max_lon)),
            // North up.
            y: format!("{:.1}", 100.0 - scale(h.location.lat, min_lat, max_lat)),
            label: h.title.clone(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    page: Chrome,
    form: FormValues,
    /// The search's parameters other than the filters' own, kept by the filter form.
    kept: Vec<(String, String)>,
    error: Option<String>,
    total: u64,
    hits: Vec<Card>,
    points: Vec<Point>,
    /// The results on a tile server's map, when one is configured (instead of the plot).
    tile_map: Option<crate::map::TileMap>,
    /// Under the map, as its tile server asks.
    attribution: String,
    types: Vec<(String, u64)>,
    next_href: Option<String>,
    /// The stay's dates as the language writes them.
    dates: Option<String>,
    /// The stay the cards' links carry to the listing page, which prices it.
    stay: String,
}

/// `GET /search?...`: the API's search parameters and the filters' own;
/// empty form fields are left out.
pub async fn search(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let locale = ctx.locale;
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let cursor = pairs.iter().find(|(k, _)| k == "cursor").map(|(_, v)| v.clone());
    pairs.retain(|(k, v)| !v.trim().is_empty() && k != "lang" && k != "cursor");
    // The page's own query, for the next page's link.
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let mut page = SearchPage {
        page: ctx.chrome(&req, &app, "search"),
        kept: pairs.iter().filter(|(k, _)| !FILTER_FIELDS.contains(&k.as_str())).cloned().collect(),
        form: FormValues::from_pairs(&pairs, locale),
        error: None,
        total: 0,
        hits: Vec::new(),
        points: Vec::new(),
        tile_map: None,
        attribution: app.map.map_attribution.clone(),
        types: Vec::new(),
        next_href: None,
        dates: None,
        stay: String::new(),
    };
    let parsed =
        api_pairs(&pairs).map_err(|field| format!("{field}: {}", locale.messages().whole_amount)).and_then(|api| {
            let api = serde_urlencoded::to_string(api).unwrap_or_default();
            serde_urlencoded::from_str::<SearchParams>(&api).map_err(|e| e.to_string())
        });
    let params = match parsed {
        Ok(p) => {
            if let (Some(from), Some(to)) = (p.check_in, p.check_out) {
                page.dates = Some(format!("{} – {}", format::date(from, locale), format::date(to, locale)));
                let mut stay = vec![("check_in", from.to_string()), ("check_out", to.to_string())];
                stay.extend(p.guests.map(|g| ("guests", g.to_string())));
                page.stay = format!("?{}", serde_urlencoded::to_string(stay).unwrap_or_default());
            }
            SearchParams { cursor, ..p }
        }
        Err(e) => {
            page.error = Some(e);
            return respond(StatusCode::BAD_REQUEST, page.render(), &ctx);
        }
    };
    match app.search.search(&params).await {
        Ok(found) => {
            fill(&mut page, &found, &query, locale);
            let places: Vec<crate::map::Place> = found
                .items
                .iter()
                .map(|h| crate::map::Place {
                    id: h.id,
                    lat: h.location.lat,
                    lon: h.location.lon,
                    label: h.title.clone(),
                })
                .collect();
            page.tile_map = crate::map::tile_map(&app.map.map_tiles_url, &places);
        }
        Err(p) if p.status == 422 || p.status == 400 => {
            let detail: Vec<String> = p.errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
            page.error = Some(if detail.is_empty() { p.detail.clone() } else { detail.join("; ") });
            return respond(StatusCode::UNPROCESSABLE_ENTITY, page.render(), &ctx);
        }
        Err(p) => return failed(&req, &app, &ctx, &p),
    }
    respond(StatusCode::OK, page.render(), &ctx)
}

fn fill(page: &mut SearchPage, found: &SearchResults, query: &str, locale: Locale) {
    page.total = found.total;
    page.hits = cards(&found.items, locale);
    page.points = plot(&found.items);
    page.types = found.facets.property_types.iter().map(|(k, v)| (k.clone(), *v)).collect();
    page.next_href = found.next_cursor.as_ref().map(|c| {
        let cursor = serde_urlencoded::to_string([("cursor", c)]).unwrap_or_default();
        if query.is_empty() {
            format!("/search?{cursor}")
        } else {
            format!("/search?{query}&{cursor}")
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(query).unwrap()
    }

    #[test]
    fn the_filters_fields_become_the_apis() {
        let api = api_pairs(&pairs("q=lyon&price_min=80&price_max=150&amenity=wifi&amenity=pool")).unwrap();
        let api = serde_urlencoded::to_string(api).unwrap();
        assert_eq!(api, "q=lyon&min_price=8000&max_price=15000&amenities=wifi%2Cpool");
        assert_eq!(api_pairs(&pairs("price_min=cheap")), Err("price_min"));
        assert_eq!(api_pairs(&pairs("price_max=-5")), Err("price_max"));
    }
}
