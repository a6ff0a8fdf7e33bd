//! The host's pages: reservations of their listings, with the answer to a
//! request to book before its deadline and the cancellation of a stay.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hometrip_booking::api::Party;
use hometrip_kernel::{Id, Problem};

use crate::account_pages::redirect;
use crate::booking_views::{self, BookingLine};
use crate::pages::{failed, respond, say, Chrome, Context};
use crate::trip_pages::{lines, posted, user_or_sign_in, NoFields};
use crate::Web;

#[derive(Template)]
#[template(path = "reservations.html")]
struct ReservationsPage {
    page: Chrome,
    upcoming: Vec<BookingLine>,
    past: Vec<BookingLine>,
}

/// `GET /host/reservations`: the bookings of the host's listings.
pub async fn reservations(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let user = match user_or_sign_in(&ctx, "/host/reservations") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let found = match app.reservations.list(user, Party::Host, None, None, 100).await {
        Ok(found) => found.items,
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    let (upcoming, past): (Vec<_>, Vec<_>) = found.into_iter().partition(|b| booking_views::upcoming(b.status));
    let page = ReservationsPage {
        page: ctx.chrome(&req, &app, "page_view"),
        upcoming: lines(&app, &upcoming, &ctx).await,
        past: lines(&app, &past, &ctx).await,
    };
    respond(StatusCode::OK, page.render(), &ctx)
}

/// `POST /host/reservations/{booking}/{accept|decline|cancel}`: then back to the list.
pub async fn answer(
    req: HttpRequest,
    app: web::Data<Web>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(refused) = posted::<NoFields>(&req, &app, &ctx, &body) {
        return *refused;
    }
    let user = match user_or_sign_in(&ctx, "/host/reservations") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let (raw_id, action) = path.into_inner();
    let Ok(id) = raw_id.parse::<Id>() else {
        return failed(&req, &app, &ctx, &Problem::not_found("booking"));
    };
    let done = match action.as_str() {
        "accept" => app.reservations.accept(user, id).await.map(|_| ()),
        "decline" => app.reservations.decline(user, id).await.map(|_| ()),
        // Cancelling is the guest's too: this page cancels as the host only.
        "cancel" => match app.reservations.get(user, id).await {
            Ok(b) if b.host_id == user.id => app.reservations.cancel(user, id).await.map(|_| ()),
            Ok(_) => Err(Problem::not_found("booking")),
            Err(p) => Err(p),
        },
        _ => Err(Problem::not_found("action")),
    };
    match done {
        Ok(()) => redirect(&ctx, "/host/reservations", Vec::new()),
        Err(p) if p.status == 409 => {
            let t = ctx.locale.messages().t;
            say(&req, &app, &ctx, StatusCode::CONFLICT, t.reservations_title, t.cannot_cancel)
        }
        Err(p) if p.status == 403 => failed(&req, &app, &ctx, &Problem::not_found("booking")),
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}
