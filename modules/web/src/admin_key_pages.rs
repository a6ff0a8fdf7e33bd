//! The console's view of a user's API keys (revoked ones too) over auth's
//! `ApiKeys`, and their revocation with a reason (the edge records it).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::{Id, Problem};
use serde::Deserialize;

use crate::admin_pages::{admin_form, Console, Said};
use crate::api_key_pages::KeyLine;
use crate::pages::{failed, respond, Chrome, Context};
use crate::Web;

#[derive(Template)]
#[template(path = "admin_api_keys.html")]
struct KeysPage {
    page: Chrome,
    user: Id,
    keys: Vec<KeyLine>,
    notice: Option<&'static str>,
    error: Option<&'static str>,
}

async fn keys_page(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    admin: &AuthUser,
    user: Id,
    said: Said,
) -> HttpResponse {
    let keys = match app.api_keys.keys_of(admin, user).await {
        Ok(keys) => keys,
        Err(p) => return failed(req, app, ctx, &p),
    };
    let (notice, error) = (said.notice(), said.error());
    let page = KeysPage {
        page: ctx.chrome(req, app, "page_view"),
        user,
        keys: keys.into_iter().map(|k| KeyLine::of(k, ctx)).collect(),
        notice,
        error,
    };
    respond(said.status(), page.render(), ctx)
}

/// `GET /admin/users/{id}/api-keys`.
pub async fn keys(
    req: HttpRequest,
    app: web::Data<Web>,
    raw_id: web::Path<String>,
    Console { ctx, admin }: Console,
) -> HttpResponse {
    let Ok(user) = raw_id.parse::<Id>() else {
        return failed(&req, &app, &ctx, &Problem::not_found("user"));
    };
    let said = Said::done(&req, &[("revoked", ctx.locale.messages().ad.key_revoked_notice)]);
    keys_page(&req, &app, &ctx, &admin, user, said).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RevokeForm {
    reason: String,
}

/// `POST /admin/users/{user}/api-keys/{key}/revoke`.
pub async fn revoke(
    req: HttpRequest,
    app: web::Data<Web>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let (raw_user, raw_key) = path.into_inner();
    let (admin, form, key) = match admin_form::<RevokeForm>(&req, &app, &ctx, &raw_key, &body) {
        Ok(checked) => checked,
        Err(refused) => return *refused,
    };
    let Ok(user) = raw_user.parse::<Id>() else {
        return failed(&req, &app, &ctx, &Problem::not_found("user"));
    };
    let ad = ctx.locale.messages().ad;
    if form.reason.trim().is_empty() {
        let said = Said::Refused(StatusCode::UNPROCESSABLE_ENTITY, ad.reason_needed);
        return keys_page(&req, &app, &ctx, &admin, user, said).await;
    }
    // Only a key of the user the page is about: the audit names that user.
    match app.api_keys.keys_of(&admin, user).await {
        Ok(keys) if keys.iter().any(|k| k.id == key) => {}
        Ok(_) => return failed(&req, &app, &ctx, &Problem::not_found("API key")),
        Err(p) => return failed(&req, &app, &ctx, &p),
    }
    match app.api_keys.revoke_any(&admin, key, form.reason.trim()).await {
        Ok(()) => {
            crate::account_pages::redirect(&ctx, &format!("/admin/users/{user}/api-keys?done=revoked"), Vec::new())
        }
        Err(p) if p.status == 422 => {
            let said = Said::Refused(StatusCode::UNPROCESSABLE_ENTITY, ad.reason_needed);
            keys_page(&req, &app, &ctx, &admin, user, said).await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}
