//! The search page's map where a tile server is configured
//! (`web.map_tiles_url`): the Web Mercator tiles that cover the results,
//! drawn with the results on them in one SVG, no script. Without a tile
//! server the page keeps its plain plot (nothing fetched from elsewhere).

use std::f64::consts::PI;

use hometrip_kernel::Id;
use serde::{Deserialize, Serialize};

/// `[web]` settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    /// A tile server's URL template with `{z}`, `{x}` and `{y}`, e.g.
    /// `https://tile.openstreetmap.org/{z}/{x}/{y}.png`; empty: no map.
    pub map_tiles_url: String,
    /// Shown under the map, as the tile server's terms ask.
    pub map_attribution: String,
}

impl WebSettings {
    /// What is wrong with the settings, if anything.
    pub fn problem(&self) -> Option<String> {
        let url = &self.map_tiles_url;
        if url.is_empty() {
            return None;
        }
        let fine = origin(url).is_some() && ["{z}", "{x}", "{y}"].iter().all(|p| url.contains(p));
        (!fine).then(|| {
            "web.map_tiles_url: an http(s) URL with {z}, {x} and {y}, e.g. https://tile.example.org/{z}/{x}/{y}.png"
                .to_owned()
        })
    }
}

/// `scheme://host[:port]` of an http(s) URL whose host is plain.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let host = rest.split('/').next().unwrap_or_default();
    let plain = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    plain.then(|| format!("{scheme}://{host}"))
}

const TILE: f64 = 256.0;
const MAX_COLUMNS: i64 = 4;
const MAX_ROWS: i64 = 3;
/// Streets are readable; closer says more than the approximate locations mean.
const MAX_ZOOM: i32 = 15;

pub struct Tile {
    pub x: i64,
    pub y: i64,
    pub href: String,
}

pub struct Marker {
    pub id: Id,
    pub x: String,
    pub y: String,
    pub label: String,
}

pub struct TileMap {
    pub width: i64,
    pub height: i64,
    pub tiles: Vec<Tile>,
    pub markers: Vec<Marker>,
}

/// A place as the map takes it.
pub struct Place {
    pub id: Id,
    pub lat: f64,
    pub lon: f64,
    pub label: String,
}

/// Where `(lat, lon)` falls on the world at `zoom`, in pixels.
fn world_pixel(lat: f64, lon: f64, zoom: i32) -> (f64, f64) {
    let size = 2f64.powi(zoom) * TILE;
    let lat = lat.clamp(-85.0511, 85.0511).to_radians();
    let x = (lon.clamp(-180.0, 180.0) + 180.0) / 360.0 * size;
    let y = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / PI) / 2.0 * size;
    (x.clamp(0.0, size - 1.0), y.clamp(0.0, size - 1.0))
}

/// The closest zoom at which `places` fit in a few tiles, and those tiles.
pub fn tile_map(template: &str, places: &[Place]) -> Option<TileMap> {
    if template.is_empty() || places.is_empty() {
        return None;
    }
    for zoom in (0..=MAX_ZOOM).rev() {
        let pixels: Vec<(f64, f64)> = places.iter().map(|p| world_pixel(p.lat, p.lon, zoom)).collect();
        let tile_of = |v: f64| (v / TILE).floor() as i64;
        let (x0, x1) =
            pixels.iter().fold((i64::MAX, i64::MIN), |(lo, hi), (x, _)| (lo.min(tile_of(*x)), hi.max(tile_of(*x))));
        let (y0, y1) =
            pixels.iter().fold((i64::MAX, i64::MIN), |(lo, hi), (_, y)| (lo.min(tile_of(*y)), hi.max(tile_of(*y))));
        if x1 - x0 >= MAX_COLUMNS || y1 - y0 >= MAX_ROWS {
            continue;
        }
        let tiles = (y0..=y1)
            .flat_map(|ty| (x0..=x1).map(move |tx| (tx, ty)))
            .map(|(tx, ty)| Tile {
                x: (tx - x0) * TILE as i64,
                y: (ty - y0) * TILE as i64,
                href: template
                    .replace("{z}", &zoom.to_string())
                    .replace("{x}", &tx.to_string())
                    .replace("{y}", &ty.to_string()),
            })
            .collect();
        let markers = places
            .iter()
            .zip(&pixels)
            .map(|(p, (x, y))| Marker {
                id: p.id,
                x: format!("{:.1}", x - x0 as f64 * TILE),
                y: format!("{:.1}", y - y0 as f64 * TILE),
                label: p.label.clone(),
            })
            .collect();
        return Some(TileMap {
            width: (x1 - x0 + 1) * TILE as i64,
            height: (y1 - y0 + 1) * TILE as i64,
            tiles,
            markers,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(lat: f64, lon: f64) -> Place {
        Place { id: Id::new(), lat, lon, label: String::new() }
    }

    #[test]
    fn one_place_is_one_tile_at_the_closest_zoom() {
        let map = tile_map("https://t.example/{z}/{x}/{y}.png", &[place(48.8566, 2.3522)]).unwrap();
        assert_eq!((map.width, map.height, map.tiles.len()), (256, 256, 1));
        // Paris at zoom 15: tile 16598/11273 (the slippy-map formula).
        assert_eq!(map.tiles[0].href, "https://t.example/15/16598/11273.png");
    }

    #[test]
    fn distant_places_zoom_out_until_they_fit() {
        let map = tile_map("https://t.example/{z}/{x}/{y}.png", &[place(48.85, 2.35), place(43.30, 5.37)]).unwrap();
        assert!(map.tiles.len() <= (MAX_COLUMNS * MAX_ROWS) as usize);
        for m in &map.markers {
            let (x, y): (f64, f64) = (m.x.parse().unwrap(), m.y.parse().unwrap());
            assert!((0.0..map.width as f64).contains(&x) && (0.0..map.height as f64).contains(&y));
        }
    }

    #[test]
    fn only_plain_http_urls_with_the_three_placeholders_are_taken() {
        let s = |url: &str| WebSettings { map_tiles_url: url.to_owned(), map_attribution: String::new() }.problem();
        assert!(s("").is_none());
        assert!(s("https://tile.openstreetmap.org/{z}/{x}/{y}.png").is_none());
        assert!(s("https://tile.example/{z}/{x}.png").is_some());
        assert!(s("javascript:alert(1)/{z}/{x}/{y}").is_some());
        assert!(s("https://{s}.tile.example/{z}/{x}/{y}.png").is_some());
        assert_eq!(origin("http://127.0.0.1:8080/{z}/{x}/{y}.png").as_deref(), Some("http://127.0.0.1:8080"));
    }
}
