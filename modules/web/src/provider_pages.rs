//! Signing in with Google or Facebook where they are configured: the
//! button leads to the provider through auth's `Sessions::provider_start`
//! (a cookie binds the sign-in to this browser), the provider comes back to
//! `/sign-in/oauth/{provider}/callback`, and the session lands in the same
//! cookies as a password sign-in. With two-step sign-in on, the code is
//! asked for first.

use actix_web::http::header::{HeaderValue, SET_COOKIE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hometrip_auth::api::ProviderSignIn;
use hometrip_kernel::ErrorCode;
use serde::Deserialize;

use crate::account_pages::redirect;
use crate::pages::{failed, respond, Chrome, Context};
use crate::session::local_path;
use crate::Web;

/// The providers a button is drawn for, and how their name is written.
pub(crate) fn label(provider: &str) -> Option<&'static str> {
    match provider {
        "google" => Some("Google"),
        "facebook" => Some("Facebook"),
        _ => None,
    }
}

/// The configured providers as `(name, label)`; none when auth cannot say.
pub(crate) async fn buttons(app: &Web) -> Vec<(String, &'static str)> {
    match app.sessions.providers().await {
        Ok(names) => names.into_iter().filter_map(|n| label(&n).map(|l| (n, l))).collect(),
        Err(p) => {
            tracing::warn!(detail = %p.detail, "web: the sign-in providers are unknown");
            Vec::new()
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StartQuery {
    next: String,
}

/// `GET /sign-in/oauth/{provider}?next=`: to the provider.
pub async fn start(req: HttpRequest, app: web::Data<Web>, provider: web::Path<String>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let q: StartQuery = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    match app.sessions.provider_start(&provider, &app.public_url).await {
        Ok(start) => {
            // A long return path would outgrow the cookie: home instead.
            let next = Some(local_path(&q.next)).filter(|n| n.len() <= 512).unwrap_or_else(|| "/".to_owned());
            let value = format!("{}.{}", start.binding, hex::encode(next));
            let mut r = HttpResponse::SeeOther();
            r.insert_header(("location", start.url));
            ctx.set_cookies(&mut r, &[app.provider_cookie(value)]);
            r.finish()
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CallbackQuery {
    code: String,
    state: String,
    error: String,
}

#[derive(Template)]
#[template(path = "second_factor.html")]
struct SecondFactorPage {
    page: Chrome,
    ticket: String,
    next: String,
    error: &'static str,
}

/// The sign-in page again, saying why this way in did not work (the
/// binding is spent).
async fn refused(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    status: StatusCode,
    error: String,
    next: String,
) -> HttpResponse {
    let response = crate::account_pages::sign_in_refused(req, app, ctx, status, error, next).await;
    with_cookie(response, &app.provider_cookie(String::new()))
}

/// `GET /sign-in/oauth/{provider}/callback?code&state`: the provider's answer.
pub async fn callback(req: HttpRequest, app: web::Data<Web>, provider: web::Path<String>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let m = ctx.locale.messages();
    let q: CallbackQuery = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    if !q.error.is_empty() {
        return refused(&req, &app, &ctx, StatusCode::BAD_REQUEST, m.provider_cancelled.to_owned(), String::new())
            .await;
    }
    let cookie = app.provider_binding(&req).unwrap_or_default();
    let (binding, next) = cookie.rsplit_once('.').unwrap_or((cookie.as_str(), ""));
    let next = local_path(&String::from_utf8(hex::decode(next).unwrap_or_default()).unwrap_or_default());
    if q.code.is_empty() || q.state.is_empty() || binding.is_empty() {
        return refused(&req, &app, &ctx, StatusCode::BAD_REQUEST, m.provider_expired.to_owned(), next).await;
    }
    let spent = app.provider_cookie(String::new());
    match app.sessions.provider_finish(&provider, &q.code, &q.state, binding, &app.public_url).await {
        Ok(ProviderSignIn::Signed { tokens }) => {
            let mut cookies = app.signed_in_cookies(&tokens);
            cookies.push(spent);
            redirect(&ctx, &next, cookies)
        }
        Ok(ProviderSignIn::SecondFactor { ticket }) => {
            let page =
                SecondFactorPage { page: ctx.chrome(&req, &app, "page_view"), ticket, next, error: m.totp_needed };
            with_cookie(respond(StatusCode::OK, page.render(), &ctx), &spent)
        }
        Err(p) if p.code == ErrorCode::BadRequest || p.code == ErrorCode::NotFound => {
            refused(&req, &app, &ctx, StatusCode::BAD_REQUEST, m.provider_expired.to_owned(), next).await
        }
        Err(p) if p.status == 409 || p.status == 403 => {
            let error = format!("{} {}", m.provider_refused, p.detail);
            refused(&req, &app, &ctx, StatusCode::CONFLICT, error, next).await
        }
        Err(p) if p.status >= 500 => {
            refused(&req, &app, &ctx, StatusCode::BAD_GATEWAY, m.provider_down.to_owned(), next).await
        }
        Err(p) => with_cookie(failed(&req, &app, &ctx, &p), &spent),
    }
}

/// `response` with one more cookie set.
fn with_cookie(mut response: HttpResponse, cookie: &cookie::Cookie<'static>) -> HttpResponse {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

// No `Debug`: it holds a sign-in ticket.
#[derive(Default, Deserialize)]
#[serde(default)]
struct SecondFactorForm {
    ticket: String,
    totp_code: String,
    next: String,
}

/// `POST /sign-in/second-factor`: the code that finishes a provider's sign-in.
pub async fn second_factor(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let form: SecondFactorForm = match crate::trip_pages::posted(&req, &app, &ctx, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let m = ctx.locale.messages();
    let next = local_path(&form.next);
    match app.sessions.second_factor(&form.ticket, form.totp_code.trim()).await {
        Ok(tokens) => redirect(&ctx, &next, app.signed_in_cookies(&tokens)),
        Err(p) if p.code == ErrorCode::TotpRequired => {
            let page = SecondFactorPage {
                page: ctx.chrome(&req, &app, "page_view"),
                ticket: form.ticket,
                next,
                error: m.totp_wrong,
            };
            respond(StatusCode::UNAUTHORIZED, page.render(), &ctx)
        }
        Err(p) if p.status == 401 || p.status == 400 => {
            refused(&req, &app, &ctx, StatusCode::UNAUTHORIZED, m.provider_expired.to_owned(), next).await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}
