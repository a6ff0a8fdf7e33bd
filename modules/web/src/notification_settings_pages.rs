//! `/account/notifications`: each kind's channels (in the app, email, SMS,
//! push), quiet hours in the user's time zone, and the phone number SMS go
//! to with its verification. Through notification's `NotificationPreferences`,
//! as the signed-in user; the account-security emails cannot be turned off.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hometrip_notification::api::{Channels, PhoneStatus, PreferencesBody, QuietHours, KINDS, SECURITY_KINDS};
use serde::Deserialize;

use crate::account_pages::redirect;
use crate::pages::{failed, respond, Chrome, Context};
use crate::trip_pages::{posted, user_or_sign_in};
use crate::Web;

/// A kind's line of the table.
struct KindLine {
    key: &'static str,
    label: &'static str,
    channels: Channels,
}

#[derive(Template)]
#[template(path = "notification_settings.html")]
struct SettingsPage {
    page: Chrome,
    kinds: Vec<KindLine>,
    quiet_from: String,
    quiet_to: String,
    time_zone: String,
    phone: Option<PhoneStatus>,
    notice: Option<&'static str>,
    error: Option<String>,
}

const BACK: &str = "/account/notifications";

async fn settings_page(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> HttpResponse {
    let Some(user) = ctx.visitor.user.as_ref().map(|s| &s.user) else {
        return failed(req, app, ctx, &hometrip_kernel::Problem::not_found("page"));
    };
    let ns = ctx.locale.messages().ns;
    let (prefs, phone) =
        futures_util::join!(app.notification_settings.preferences(user), app.notification_settings.phone(user));
    let (prefs, phone) = match (prefs, phone) {
        (Ok(p), Ok(ph)) => (p, ph),
        (Err(p), _) | (_, Err(p)) => return failed(req, app, ctx, &p),
    };
    let kinds = KINDS
        .iter()
        .filter(|k| !SECURITY_KINDS.contains(k))
        .map(|k| KindLine {
            key: k,
            label: ns.kind(k),
            channels: prefs.channels.get(*k).copied().unwrap_or(Channels {
                email: true,
                sms: false,
                push: true,
                in_app: true,
            }),
        })
        .collect();
    let page = SettingsPage {
        page: ctx.chrome(req, app, "page_view"),
        kinds,
        quiet_from: prefs.quiet_hours.as_ref().map(|q| q.from.clone()).unwrap_or_default(),
        quiet_to: prefs.quiet_hours.as_ref().map(|q| q.to.clone()).unwrap_or_default(),
        time_zone: prefs.time_zone.unwrap_or_else(|| "UTC".to_owned()),
        phone,
        notice,
        error,
    };
    respond(status, page.render(), ctx)
}

/// `GET /account/notifications`.
pub async fn settings(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(to_sign_in) = user_or_sign_in(&ctx, BACK) {
        return *to_sign_in;
    }
    let ns = ctx.locale.messages().ns;
    let notice = match req.query_string() {
        q if q.contains("done=saved") => Some(ns.saved),
        q if q.contains("done=code_sent") => Some(ns.code_sent),
        q if q.contains("done=verified") => Some(ns.phone_verified),
        _ => None,
    };
    settings_page(&req, &app, &ctx, StatusCode::OK, notice, None).await
}

#[derive(Deserialize)]
struct AnyFields {}

/// The message of a refusal: its first field's, else its detail.
fn refusal(p: &hometrip_kernel::Problem) -> String {
    p.errors.first().map_or(p.detail.clone(), |e| format!("{}: {}", e.field, e.message))
}

/// `POST /account/notifications`: every kind's ticked channels and the quiet hours.
pub async fn save(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(refused) = posted::<AnyFields>(&req, &app, &ctx, &body) {
        return *refused;
    }
    let user = match user_or_sign_in(&ctx, BACK) {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let ticked = |name: String| pairs.iter().any(|(k, _)| *k == name);
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    let mut channels = BTreeMap::new();
    for kind in KINDS.iter().filter(|k| !SECURITY_KINDS.contains(k)) {
        let on = |channel: &str| ticked(format!("{kind}.{channel}"));
        channels.insert(
            (*kind).to_owned(),
            Channels { email: on("email"), sms: on("sms"), push: on("push"), in_app: on("in_app") },
        );
    }
    let (from, to) = (get("quiet_from"), get("quiet_to"));
    let quiet_hours = (!from.is_empty() || !to.is_empty()).then_some(QuietHours { from, to });
    let time_zone = Some(get("time_zone")).filter(|z| !z.is_empty());
    let prefs = PreferencesBody { channels, quiet_hours, time_zone };
    match app.notification_settings.set_preferences(user, &prefs).await {
        Ok(_) => redirect(&ctx, &format!("{BACK}?done=saved"), Vec::new()),
        Err(p) if p.status == 422 => {
            settings_page(&req, &app, &ctx, StatusCode::UNPROCESSABLE_ENTITY, None, Some(refusal(&p))).await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PhoneForm {
    phone: String,
    code: String,
}

/// `POST /account/phone` (a code sent) and `POST /account/phone/verify`.
pub async fn phone(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let form: PhoneForm = match posted(&req, &app, &ctx, &body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    let user = match user_or_sign_in(&ctx, BACK) {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let verifying = req.path().ends_with("/verify");
    let done = match verifying {
        true => app.notification_settings.verify_phone(user, form.code.trim()).await.map(|_| "verified"),
        false => app.notification_settings.set_phone(user, form.phone.trim()).await.map(|_| "code_sent"),
    };
    match done {
        Ok(done) => redirect(&ctx, &format!("{BACK}?done={done}#phone"), Vec::new()),
        Err(p) if matches!(p.status, 404 | 409 | 422 | 429) => {
            let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            settings_page(&req, &app, &ctx, status, None, Some(refusal(&p))).await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}
