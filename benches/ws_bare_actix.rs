//! The shootout's reference: a bare actix-ws broadcast server, as its
//! examples write one. Every text frame a client sends is relayed to every
//! connected socket, in turn (`session.text(..).await` each, so a slow
//! socket's full channel holds up the loop: what HomeTrip's per-socket
//! queues avoid).
//!
//!   cargo bench --bench ws_bare_actix -- 9001
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt;

#[derive(Default)]
struct Room {
    sessions: Mutex<Vec<actix_ws::Session>>,
}

async fn ws(req: HttpRequest, body: web::Payload, room: web::Data<Room>) -> actix_web::Result<HttpResponse> {
    let (response, session, mut stream) = actix_ws::handle(&req, body)?;
    room.sessions.lock().unwrap().push(session.clone());
    let room = room.into_inner();
    actix_web::rt::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            if let actix_ws::Message::Text(text) = msg {
                let sessions: Vec<actix_ws::Session> = room.sessions.lock().unwrap().clone();
                for mut s in sessions {
                    let _ = s.text(text.clone()).await;
                }
            }
        }
    });
    Ok(response)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().skip(1).find(|a| a != "--bench").and_then(|p| p.parse().ok()).unwrap_or(9001);
    let room = web::Data::new(Room::default());
    HttpServer::new(move || App::new().app_data(room.clone()).route("/", web::get().to(ws)))
        .workers(2)
        .bind(("127.0.0.1", port))?
        .run()
        .await
}
