//! The app's own stylesheet and script, embedded in the binary and served
//! under names carrying a hash of their content, so browsers keep them for a
//! year and a new build is fetched at once.

use std::sync::LazyLock;

use actix_web::{web, HttpResponse};
use sha2::{Digest, Sha256};

struct Asset {
    /// `app.<hash>.css`
    name: String,
    content_type: &'static str,
    body: &'static [u8],
}

fn hashed(stem: &str, ext: &str, content_type: &'static str, body: &'static [u8]) -> Asset {
    let hash = hex::encode(&Sha256::digest(body)[..8]);
    Asset { name: format!("{stem}.{hash}.{ext}"), content_type, body }
}

static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [
        hashed("app", "css", "text/css; charset=utf-8", include_bytes!("../assets/app.css")),
        hashed("app", "js", "text/javascript; charset=utf-8", include_bytes!("../assets/app.js")),
    ]
});

/// The path of the stylesheet, for the pages' `<link>`.
pub fn stylesheet() -> String {
    format!("/assets/{}", ASSETS[0].name)
}

/// The path of the script, for the pages' `<script src>`.
pub fn script() -> String {
    format!("/assets/{}", ASSETS[1].name)
}

pub async fn serve(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|a| a.name == *name) {
        Some(a) => HttpResponse::Ok()
            .content_type(a.content_type)
            .insert_header(("Cache-Control", "public, max-age=31536000, immutable"))
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .body(a.body),
        None => HttpResponse::NotFound().content_type("text/plain; charset=utf-8").body("no such asset"),
    }
}
