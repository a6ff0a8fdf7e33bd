//! The baseline of the load scenario: a bare actix-web JSON handler with no
//! middleware, on the same machine, to compare `/health/live` against.
//! `cargo run --release --example bare_actix -- 3999`

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(3999);
    let workers: usize = std::env::args().nth(2).and_then(|w| w.parse().ok()).unwrap_or(1);
    actix_web::rt::System::new().block_on(async move {
        actix_web::HttpServer::new(|| {
            actix_web::App::new().route(
                "/health/live",
                actix_web::web::get()
                    .to(|| async { actix_web::HttpResponse::Ok().json(serde_json::json!({"status": "live"})) }),
            )
        })
        .workers(workers)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })
}
