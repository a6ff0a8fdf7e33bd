//! The signed-in user's account: the profile (name, about, language,
//! currency, how to be told) over the user module's `Profiles`, and security
//! (password, two-step sign-in with a QR code and recovery codes, sessions)
//! over auth's `AccountSecurity`. Every form carries the CSRF token.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use base64::Engine;
use hometrip_auth::api::SessionInfo;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::money::CURRENCIES;
use hometrip_kernel::{ErrorCode, FieldError, Problem};
use hometrip_user::api::{ChannelsPatch, ProfilePatch, UserProfile};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::account_pages::redirect;
use crate::account_words::AccountWords;
use crate::pages::{failed, respond, Chrome, Context};
use crate::trip_pages::{posted, user_or_sign_in, NoFields};
use crate::{format, Web};

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    page: Chrome,
    p: UserProfile,
    email_verified: bool,
    currencies: Vec<&'static str>,
    notice: Option<&'static str>,
    error: Option<String>,
    field_errors: Vec<FieldError>,
}

impl AccountPage {
    fn field_error(&self, field: &str) -> Option<&str> {
        self.field_errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }
}

/// A session as the security page lists it.
struct SessionLine {
    device: String,
    current: bool,
    started: String,
    last_active: String,
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    page: Chrome,
    totp_enabled: bool,
    sessions: Vec<SessionLine>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "two_factor.html")]
struct TwoFactorPage {
    page: Chrome,
    /// The `otpauth://` URL as a QR code: an SVG image in a `data:` URL (the
    /// CSP allows `data:` images, no inline markup to trust).
    qr: String,
    secret: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryPage {
    page: Chrome,
    codes: Vec<String>,
}

async fn account_page(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    user: &AuthUser,
    notice: Option<&'static str>,
    problem: Option<Problem>,
) -> HttpResponse {
    let (profile, account) = futures_util::join!(app.users.profile(user.id), app.accounts.account(user.id));
    let p = match profile {
        Ok(Some(p)) => p,
        Ok(None) => return failed(req, app, ctx, &Problem::not_found("user")),
        Err(p) => return failed(req, app, ctx, &p),
    };
    let status = problem
        .as_ref()
        .map_or(StatusCode::OK, |p| StatusCode::from_u16(p.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY));
    let page = AccountPage {
        page: ctx.chrome(req, app, "page_view"),
        email_verified: account.ok().flatten().is_some_and(|a| a.email_verified),
        currencies: CURRENCIES.iter().map(|(c, _)| *c).collect(),
        notice,
        error: problem.as_ref().map(|_| ctx.locale.messages().fix_fields.to_owned()),
        field_errors: problem.map(|p| p.errors).unwrap_or_default(),
        p,
    };
    respond(status, page.render(), ctx)
}

/// `GET /account`: the profile form.
pub async fn account(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let user = match user_or_sign_in(&ctx, "/account") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let a = ctx.locale.messages().a;
    let notice = match req.query_string() {
        "saved=1" => Some(a.saved),
        "saved=avatar" => Some(a.avatar_saved),
        _ => None,
    };
    account_page(&req, &app, &ctx, user, notice, None).await
}

/// `POST /account/avatar`: a multipart form of one image and its CSRF token.
pub async fn upload_avatar(req: HttpRequest, app: web::Data<Web>, payload: actix_multipart::Multipart) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let a = ctx.locale.messages().a;
    let refused = |status: u16, message: &str| {
        let mut shown = Problem::field("file", message);
        shown.status = status;
        shown
    };
    let upload = match crate::uploads::read_upload(payload, "file").await {
        Ok(u) => u,
        Err(p) => {
            // Unreadable or too large: said on the account page, for the signed-in.
            return match user_or_sign_in(&ctx, "/account") {
                Ok(user) => {
                    let message = if p.status == 413 { a.avatar_too_large } else { a.avatar_unreadable };
                    account_page(&req, &app, &ctx, user, None, Some(refused(p.status, message))).await
                }
                Err(to_sign_in) => *to_sign_in,
            };
        }
    };
    if !app.csrf_ok(&req, &upload.csrf) {
        let m = ctx.locale.messages();
        return crate::pages::say(&req, &app, &ctx, StatusCode::FORBIDDEN, m.form_expired_title, m.form_expired_text);
    }
    let user = match user_or_sign_in(&ctx, "/account") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let mut files = upload.files;
    if files.len() != 1 {
        return account_page(&req, &app, &ctx, user, None, Some(refused(422, a.choose_photo))).await;
    }
    match app.profiles.set_avatar(user, files.remove(0)).await {
        Ok(_) => redirect(&ctx, "/account?saved=avatar", Vec::new()),
        Err(p) if p.status == 413 => {
            account_page(&req, &app, &ctx, user, None, Some(refused(413, a.avatar_too_large))).await
        }
        Err(p) if (400..500).contains(&p.status) => {
            account_page(&req, &app, &ctx, user, None, Some(refused(p.status, a.avatar_unreadable))).await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

#[derive(Deserialize)]
struct ProfileForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    bio: String,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    currency: String,
    /// Ticked boxes only arrive: an absent one is off.
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    sms: Option<String>,
    #[serde(default)]
    push: Option<String>,
}

/// `POST /account`: saves the profile; the pages then speak its language.
pub async fn save_profile(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let form: ProfileForm = match posted(&req, &app, &ctx, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let user = match user_or_sign_in(&ctx, "/account") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let patch = ProfilePatch {
        display_name: Some(form.display_name.trim().to_owned()),
        bio: Some(form.bio.trim().to_owned()),
        locale: Some(form.locale.clone()),
        currency: Some(form.currency.clone()),
        notification_channels: Some(ChannelsPatch {
            email: Some(form.email.is_some()),
            sms: Some(form.sms.is_some()),
            push: Some(form.push.is_some()),
        }),
    };
    match app.profiles.update_profile(user, &patch).await {
        Ok(saved) => {
            let lang = cookie::Cookie::build(("lang", saved.locale.clone()))
                .path("/")
                .max_age(cookie::time::Duration::days(365))
                .same_site(cookie::SameSite::Lax)
                .build();
            redirect(&ctx, "/account?saved=1", vec![lang])
        }
        Err(p) if p.code == ErrorCode::ValidationFailed => account_page(&req, &app, &ctx, user, None, Some(p)).await,
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

async fn security_page(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    user: &AuthUser,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> HttpResponse {
    let (account, sessions) = futures_util::join!(app.accounts.account(user.id), app.security.sessions(user));
    let account = match account {
        Ok(Some(a)) => a,
        Ok(None) => return failed(req, app, ctx, &Problem::not_found("user")),
        Err(p) => return failed(req, app, ctx, &p),
    };
    let sessions = match sessions {
        Ok(s) => s,
        Err(p) => return failed(req, app, ctx, &p),
    };
    let a = ctx.locale.messages().a;
    let line = |s: &SessionInfo| SessionLine {
        device: s.user_agent.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| a.unknown_device.to_owned()),
        current: s.current,
        started: format::instant(s.started_at, "UTC", ctx.locale),
        last_active: format::instant(s.last_refreshed_at, "UTC", ctx.locale),
    };
    let page = SecurityPage {
        page: ctx.chrome(req, app, "page_view"),
        totp_enabled: account.totp_enabled,
        sessions: sessions.iter().map(line).collect(),
        notice,
        error,
    };
    respond(status, page.render(), ctx)
}

/// `GET /account/security`: password, two-step sign-in, sessions.
pub async fn security(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let user = match user_or_sign_in(&ctx, "/account/security") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    security_page(&req, &app, &ctx, user, StatusCode::OK, None, None).await
}

// No `Debug`: it holds passwords.
#[derive(Deserialize)]
struct SecretsForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
    /// A ticked box only arrives: an absent one is off.
    #[serde(default)]
    revoke_api_keys: Option<String>,
}

/// What a security call's problem tells the user, and its status.
fn refusal(p: &Problem, ctx: &Context, wrong: &'static str) -> Option<(StatusCode, String)> {
    let m = ctx.locale.messages();
    let status = StatusCode::from_u16(p.status).ok()?;
    match p.code {
        ErrorCode::Unauthenticated | ErrorCode::InvalidCredentials => Some((status, wrong.to_owned())),
        ErrorCode::RateLimited => Some((status, m.too_many_attempts.to_owned())),
        // The code or the password given was not the right one.
        ErrorCode::ValidationFailed if p.errors.iter().any(|e| e.field == "code" || e.field == "current_password") => {
            Some((status, wrong.to_owned()))
        }
        ErrorCode::ValidationFailed => {
            let fields: Vec<String> = p.errors.iter().map(|e| e.message.clone()).collect();
            Some((status, if fields.is_empty() { p.detail.clone() } else { fields.join(" ") }))
        }
        // Already on, or set up again first: the page tells where it stands.
        ErrorCode::Conflict => Some((status, p.detail.clone())),
        _ if p.status == 401 || p.status == 422 => Some((status, wrong.to_owned())),
        _ => None,
    }
}

/// A form of the security page: the CSRF token checked and the user signed
/// in, then `act`; the security page tells what it did, or why not
/// (`wrong` when the password or code given was not the right one).
async fn security_form<T: DeserializeOwned>(
    req: &HttpRequest,
    app: &Web,
    body: &[u8],
    wrong: fn(&'static AccountWords) -> &'static str,
    act: impl AsyncFnOnce(&Context, &AuthUser, T) -> Result<String, Problem>,
) -> HttpResponse {
    let ctx = Context::of(req, app).await;
    let form: T = match posted(req, app, &ctx, body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let user = match user_or_sign_in(&ctx, "/account/security") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    match act(&ctx, user, form).await {
        Ok(notice) => security_page(req, app, &ctx, user, StatusCode::OK, Some(notice), None).await,
        Err(p) => match refusal(&p, &ctx, wrong(ctx.locale.messages().a)) {
            Some((status, error)) => security_page(req, app, &ctx, user, status, None, Some(error)).await,
            None => failed(req, app, &ctx, &p),
        },
    }
}

/// `POST /account/password`.
pub async fn change_password(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let wrong = |a: &'static AccountWords| a.wrong_password;
    security_form(&req, &app, &body, wrong, async |ctx: &Context, user: &AuthUser, form: SecretsForm| {
        let revoke_api_keys = form.revoke_api_keys.is_some();
        app.security.change_password(user, &form.current_password, &form.new_password, revoke_api_keys).await?;
        Ok(ctx.locale.messages().a.password_changed.to_owned())
    })
    .await
}

/// The QR code of an `otpauth://` URL, as a `data:` URL of an SVG image.
fn qr_data_url(otpauth_url: &str) -> Result<String, Problem> {
    let code = qrcode::QrCode::new(otpauth_url.as_bytes()).map_err(Problem::internal)?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build();
    Ok(format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(svg)))
}

/// `POST /account/2fa/setup`: a new secret, as a QR code and as text.
pub async fn two_factor_setup(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(refused) = posted::<NoFields>(&req, &app, &ctx, &body) {
        return *refused;
    }
    let user = match user_or_sign_in(&ctx, "/account/security") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let setup = match app.security.totp_setup(user).await {
        Ok(setup) => setup,
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    let qr = match qr_data_url(&setup.otpauth_url) {
        Ok(qr) => qr,
        Err(p) => return failed(&req, &app, &ctx, &p),
    };
    let page = TwoFactorPage { page: ctx.chrome(&req, &app, "page_view"), qr, secret: setup.secret, error: None };
    respond(StatusCode::OK, page.render(), &ctx)
}

/// `POST /account/2fa/enable`: a current code turns it on; the recovery codes, once.
pub async fn two_factor_enable(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let form: SecretsForm = match posted(&req, &app, &ctx, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let user = match user_or_sign_in(&ctx, "/account/security") {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let a = ctx.locale.messages().a;
    match app.security.totp_enable(user, form.code.trim()).await {
        Ok(codes) => {
            respond(StatusCode::OK, RecoveryPage { page: ctx.chrome(&req, &app, "page_view"), codes }.render(), &ctx)
        }
        // A wrong code: the same secret stays pending, set up again to see it.
        Err(p) => match refusal(&p, &ctx, a.wrong_code) {
            Some((status, error)) => security_page(&req, &app, &ctx, user, status, None, Some(error)).await,
            None => failed(&req, &app, &ctx, &p),
        },
    }
}

/// `POST /account/2fa/disable`: the password and a code turn it off.
pub async fn two_factor_disable(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let wrong = |a: &'static AccountWords| a.wrong_code;
    security_form(&req, &app, &body, wrong, async |ctx: &Context, user: &AuthUser, form: SecretsForm| {
        app.security.totp_disable(user, &form.password, form.code.trim()).await?;
        Ok(ctx.locale.messages().a.two_factor_disabled.to_owned())
    })
    .await
}

/// `POST /account/sessions/revoke-others`.
pub async fn revoke_others(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let wrong = |a: &'static AccountWords| a.wrong_code;
    security_form(&req, &app, &body, wrong, async |ctx: &Context, user: &AuthUser, _: NoFields| {
        let ended = app.security.revoke_other_sessions(user).await?;
        Ok(format!("{} {ended}", ctx.locale.messages().a.others_signed_out))
    })
    .await
}
