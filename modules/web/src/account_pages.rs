//! Signing up, in and out, and the landing pages of the emailed links
//! (`/verify-email`, `/reset-password`). Every form carries the CSRF token;
//! a form without it gets 403 and changes nothing. A signed-in form sets
//! the session cookies and returns to the page it came from (this site's
//! pages only).

use actix_web::http::header::LOCATION;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hometrip_auth::api::SignInFrom;
use hometrip_kernel::http::client_ip;
use hometrip_kernel::{ErrorCode, FieldError, Problem};
use serde::Deserialize;

use crate::pages::{failed, respond, say, Chrome, Context};
use crate::session::{local_path, user_agent};
use crate::Web;

// No `Debug`: it holds a password.
#[derive(Default, Deserialize)]
#[serde(default)]
struct AccountForm {
    csrf: String,
    email: String,
    password: String,
    display_name: String,
    totp_code: String,
    next: String,
    token: String,
    /// A ticked box only arrives: an absent one is off.
    revoke_api_keys: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LinkQuery {
    token: String,
    next: String,
}

/// A form's values and what went wrong with them.
#[derive(Default)]
struct Filled {
    email: String,
    display_name: String,
    next: String,
    token: String,
    /// The second factor is due.
    totp: bool,
    /// The reset's "revoke my API keys" box was ticked.
    revoke_api_keys: bool,
    error: Option<String>,
    field_errors: Vec<FieldError>,
}

impl Filled {
    fn field_error(&self, field: &str) -> Option<&str> {
        self.field_errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    page: Chrome,
    f: Filled,
    /// Google and Facebook, where configured: `(name, label)`.
    providers: Vec<(String, &'static str)>,
}

async fn sign_in_page(req: &HttpRequest, app: &Web, ctx: &Context, status: StatusCode, f: Filled) -> HttpResponse {
    let providers = match req.app_data::<web::Data<crate::ConsoleOnly>>() {
        Some(_) => Vec::new(),
        None => crate::provider_pages::buttons(app).await,
    };
    respond(status, SignInPage { page: ctx.chrome(req, app, "page_view"), f, providers }.render(), ctx)
}

/// The sign-in page saying why the last way in did not work.
pub(crate) async fn sign_in_refused(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    status: StatusCode,
    error: String,
    next: String,
) -> HttpResponse {
    sign_in_page(req, app, ctx, status, Filled { error: Some(error), next, ..Filled::default() }).await
}

#[derive(Template)]
#[template(path = "sign_up.html")]
struct SignUpPage {
    page: Chrome,
    f: Filled,
}

#[derive(Template)]
#[template(path = "token_form.html")]
struct TokenPage {
    page: Chrome,
    f: Filled,
    /// `verify-email` or `reset-password`.
    action: &'static str,
    title: &'static str,
    text: &'static str,
    button: &'static str,
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    page: Chrome,
    f: Filled,
}

/// The form of a POST, or `None` when the body is not one (400).
fn form(body: &[u8]) -> Option<AccountForm> {
    serde_urlencoded::from_bytes(body).ok()
}

fn query(req: &HttpRequest) -> LinkQuery {
    serde_urlencoded::from_str(req.query_string()).unwrap_or_default()
}

/// The checks every POST starts with: a readable form carrying this browser's token.
fn checked(req: &HttpRequest, app: &Web, ctx: &Context, body: &[u8]) -> Result<AccountForm, Box<HttpResponse>> {
    let m = ctx.locale.messages();
    let Some(f) = form(body) else {
        return Err(Box::new(say(
            req,
            app,
            ctx,
            StatusCode::BAD_REQUEST,
            m.form_unreadable_title,
            m.form_expired_text,
        )));
    };
    if !app.csrf_ok(req, &f.csrf) {
        return Err(Box::new(say(req, app, ctx, StatusCode::FORBIDDEN, m.form_expired_title, m.form_expired_text)));
    }
    Ok(f)
}

/// 303 to `to` (a checked local path), with `cookies` after the visitor's.
pub(crate) fn redirect(ctx: &Context, to: &str, cookies: Vec<cookie::Cookie<'static>>) -> HttpResponse {
    let mut r = HttpResponse::SeeOther();
    r.insert_header((LOCATION, to.to_owned()));
    ctx.set_cookies(&mut r, &cookies);
    r.finish()
}

fn sign_in_from(req: &HttpRequest, app: &Web) -> SignInFrom {
    SignInFrom { ip: client_ip(req, &app.trusted_proxies), user_agent: user_agent(req) }
}

pub async fn sign_in_form(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let f = Filled { next: local_path(&query(&req).next), ..Filled::default() };
    sign_in_page(&req, &app, &ctx, StatusCode::OK, f).await
}

pub async fn sign_in(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let form = match checked(&req, &app, &ctx, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let m = ctx.locale.messages();
    let code = Some(form.totp_code.trim()).filter(|c| !c.is_empty());
    let next = local_path(&form.next);
    let error = match app.sessions.sign_in(&form.email, &form.password, code, &sign_in_from(&req, &app)).await {
        Ok(tokens) => return redirect(&ctx, &next, app.signed_in_cookies(&tokens)),
        Err(p) => p,
    };
    let mut f = Filled { email: form.email, next, ..Filled::default() };
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::UNAUTHORIZED);
    f.error = Some(match error.code {
        ErrorCode::TotpRequired => {
            f.totp = true;
            if code.is_some() { m.totp_wrong } else { m.totp_needed }.to_owned()
        }
        ErrorCode::InvalidCredentials => m.wrong_credentials.to_owned(),
        ErrorCode::RateLimited => m.too_many_attempts.to_owned(),
        _ if error.status == 403 => m.account_suspended.to_owned(),
        _ => return failed(&req, &app, &ctx, &error),
    });
    sign_in_page(&req, &app, &ctx, status, f).await
}

pub async fn sign_up_form(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let f = Filled { next: local_path(&query(&req).next), ..Filled::default() };
    respond(StatusCode::OK, SignUpPage { page: ctx.chrome(&req, &app, "page_view"), f }.render(), &ctx)
}

pub async fn sign_up(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let form = match checked(&req, &app, &ctx, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let m = ctx.locale.messages();
    let next = local_path(&form.next);
    let registered = app.sessions.register(&form.email, &form.password, &form.display_name, ctx.locale.code()).await;
    let error = match registered {
        Ok(_) => {
            return match app.sessions.sign_in(&form.email, &form.password, None, &sign_in_from(&req, &app)).await {
                Ok(tokens) => redirect(&ctx, &next, app.signed_in_cookies(&tokens)),
                // Registered; signing in can wait for the sign-in page.
                Err(p) => {
                    tracing::warn!(detail = %p.detail, "web: signing in after signing up failed");
                    let back = serde_urlencoded::to_string([("next", &next)]).unwrap_or_default();
                    redirect(&ctx, &format!("/sign-in?{back}"), Vec::new())
                }
            };
        }
        Err(p) => p,
    };
    let mut f = Filled { email: form.email, display_name: form.display_name, next, ..Filled::default() };
    match error.code {
        ErrorCode::EmailTaken => f.error = Some(m.email_taken.to_owned()),
        ErrorCode::ValidationFailed => {
            f.error = Some(m.fix_fields.to_owned());
            f.field_errors = error.errors.clone();
        }
        _ => return failed(&req, &app, &ctx, &error),
    }
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    respond(status, SignUpPage { page: ctx.chrome(&req, &app, "page_view"), f }.render(), &ctx)
}

pub async fn sign_out(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(refused) = checked(&req, &app, &ctx, &body) {
        return *refused;
    }
    if let Some(refresh) = app.refresh_token(&req) {
        if let Err(p) = app.end_session(&refresh).await {
            tracing::warn!(detail = %p.detail, "web: signing out failed; the cookies go anyway");
        }
    }
    redirect(&ctx, "/", app.signed_out_cookies())
}

fn token_page(ctx: &Context, req: &HttpRequest, app: &Web, action: &'static str, f: Filled) -> TokenPage {
    let m = ctx.locale.messages();
    let (title, text, button) = match action {
        "verify-email" => (m.verify_title, m.verify_text, m.verify_button),
        _ => (m.reset_title, m.reset_text, m.reset_button),
    };
    TokenPage { page: ctx.chrome(req, app, "page_view"), f, action, title, text, button }
}

/// `GET /verify-email?token=`: a button that confirms (a mail scanner
/// following the link confirms nothing).
pub async fn verify_email_form(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let f = Filled { token: query(&req).token, ..Filled::default() };
    respond(StatusCode::OK, token_page(&ctx, &req, &app, "verify-email", f).render(), &ctx)
}

pub async fn verify_email(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let form = match checked(&req, &app, &ctx, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let m = ctx.locale.messages();
    match app.sessions.verify_email(&form.token).await {
        Ok(()) => say(&req, &app, &ctx, StatusCode::OK, m.verified_title, m.verified_text),
        Err(p) if p.status == 400 => {
            say(&req, &app, &ctx, StatusCode::BAD_REQUEST, m.link_invalid_title, m.link_invalid_text)
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

pub async fn forgot_form(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    respond(
        StatusCode::OK,
        ForgotPage { page: ctx.chrome(&req, &app, "page_view"), f: Filled::default() }.render(),
        &ctx,
    )
}

pub async fn forgot(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let form = match checked(&req, &app, &ctx, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let m = ctx.locale.messages();
    match app.sessions.forgot_password(&form.email).await {
        // The same answer whether or not the address has an account (or
        // was sent a link a moment ago).
        Ok(()) => say(&req, &app, &ctx, StatusCode::OK, m.link_sent_title, m.link_sent_text),
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

pub async fn reset_form(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let f = Filled { token: query(&req).token, ..Filled::default() };
    respond(StatusCode::OK, token_page(&ctx, &req, &app, "reset-password", f).render(), &ctx)
}

pub async fn reset(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let form = match checked(&req, &app, &ctx, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let m = ctx.locale.messages();
    let revoke_api_keys = form.revoke_api_keys.is_some();
    let error: Problem = match app.sessions.reset_password(&form.token, &form.password, revoke_api_keys).await {
        Ok(()) => return say(&req, &app, &ctx, StatusCode::OK, m.password_changed_title, m.password_changed_text),
        Err(p) if p.status == 400 => {
            return say(&req, &app, &ctx, StatusCode::BAD_REQUEST, m.link_invalid_title, m.link_invalid_text)
        }
        Err(p) if p.status == 422 => p,
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    let f = Filled {
        token: form.token,
        revoke_api_keys,
        error: Some(m.fix_fields.to_owned()),
        field_errors: error.errors,
        ..Filled::default()
    };
    respond(StatusCode::UNPROCESSABLE_ENTITY, token_page(&ctx, &req, &app, "reset-password", f).render(), &ctx)
}
