//! `/account/api-keys`: a signed-in user's API keys over auth's `ApiKeys`:
//! made with the scopes ticked (the key shown once, on the answer to the
//! form, never stored by the page), rotated, revoked.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hometrip_auth::api::{ApiKey, IssuedApiKey, NewApiKey, Scope};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{ErrorCode, FieldError, Id, Problem};

use crate::pages::{failed, respond, Chrome, Context};
use crate::trip_pages::{posted, user_or_sign_in, NoFields};
use crate::{format, Web};

const PAGE: &str = "/account/api-keys";

/// A key as the owner's page and the console show it.
pub(crate) struct KeyLine {
    pub id: Id,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<&'static str>,
    pub created: String,
    pub last_used: Option<String>,
    pub ends: Option<String>,
    pub revoked: Option<String>,
    pub replaced: bool,
}

impl KeyLine {
    pub(crate) fn of(key: ApiKey, ctx: &Context) -> KeyLine {
        let when = |at: Instant| format::instant(at, "UTC", ctx.locale);
        KeyLine {
            id: key.id,
            scopes: key.scopes.iter().map(|s| s.as_str()).collect(),
            created: when(key.created_at),
            last_used: key.last_used_at.map(when),
            ends: key.expires_at.map(when),
            revoked: key.revoked_at.map(when),
            replaced: key.replaced_by.is_some(),
            name: key.name,
            prefix: key.prefix,
        }
    }
}

struct ScopeChoice {
    name: &'static str,
    label: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "api_keys.html")]
struct KeysPage {
    page: Chrome,
    keys: Vec<KeyLine>,
    choices: Vec<ScopeChoice>,
    /// The key just made, shown this once.
    issued: Option<IssuedApiKey>,
    name: String,
    expires_on: String,
    notice: Option<&'static str>,
    error: Option<String>,
}

/// What the page says besides the list.
#[derive(Default)]
struct Said {
    issued: Option<IssuedApiKey>,
    notice: Option<&'static str>,
    error: Option<String>,
    /// The form as sent back, after a refusal.
    name: String,
    expires_on: String,
    ticked: Vec<Scope>,
}

async fn keys_page(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    user: &AuthUser,
    status: StatusCode,
    said: Said,
) -> HttpResponse {
    let keys = match app.api_keys.list(user).await {
        Ok(keys) => keys,
        Err(p) => return failed(req, app, ctx, &p),
    };
    let k = ctx.locale.messages().k;
    let page = KeysPage {
        page: ctx.chrome(req, app, "page_view"),
        keys: keys.into_iter().map(|k| KeyLine::of(k, ctx)).collect(),
        choices: Scope::ALL
            .iter()
            .map(|s| ScopeChoice { name: s.as_str(), label: k.scope(*s), checked: said.ticked.contains(s) })
            .collect(),
        issued: said.issued,
        name: said.name,
        expires_on: said.expires_on,
        notice: said.notice,
        error: said.error,
    };
    respond(status, page.render(), ctx)
}

/// `GET /account/api-keys`.
pub async fn keys(req: HttpRequest, app: web::Data<Web>) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let user = match user_or_sign_in(&ctx, PAGE) {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    keys_page(&req, &app, &ctx, user, StatusCode::OK, Said::default()).await
}

/// What a refusal tells the user: the fields' messages, or the problem's.
fn refusal(p: &Problem) -> Option<(StatusCode, String)> {
    let status = StatusCode::from_u16(p.status).ok()?;
    match p.code {
        ErrorCode::ValidationFailed if !p.errors.is_empty() => {
            Some((status, p.errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join(" ")))
        }
        ErrorCode::ValidationFailed | ErrorCode::Conflict | ErrorCode::NotFound | ErrorCode::Forbidden => {
            Some((status, p.detail.clone()))
        }
        _ => None,
    }
}

/// The end of the day given (`YYYY-MM-DD`): the key works through it.
fn end_of(day: &str) -> Result<Option<Instant>, ()> {
    if day.trim().is_empty() {
        return Ok(None);
    }
    let date = chrono::NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d").map_err(|_| ())?;
    let next = date.succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0)).ok_or(())?;
    Ok(Some(Instant::from(next.and_utc())))
}

/// `POST /account/api-keys`: `name`, `scope` (repeated), `expires_on`.
pub async fn create(req: HttpRequest, app: web::Data<Web>, body: web::Bytes) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let pairs: Vec<(String, String)> = match posted(&req, &app, &ctx, &body) {
        Ok(pairs) => pairs,
        Err(refused) => return *refused,
    };
    let user = match user_or_sign_in(&ctx, PAGE) {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let scopes: Vec<String> = pairs.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect();
    let mut said = Said {
        name: field("name"),
        expires_on: field("expires_on"),
        ticked: scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
        ..Said::default()
    };
    let k = ctx.locale.messages().k;
    let Ok(expires_at) = end_of(&said.expires_on) else {
        said.error = Some(k.bad_date.to_owned());
        return keys_page(&req, &app, &ctx, user, StatusCode::UNPROCESSABLE_ENTITY, said).await;
    };
    let new = NewApiKey { name: said.name.clone(), scopes, expires_at };
    match app.api_keys.create(user, &new).await {
        Ok(issued) => {
            let said = Said { issued: Some(issued), ..Said::default() };
            keys_page(&req, &app, &ctx, user, StatusCode::CREATED, said).await
        }
        Err(p) => match refusal(&p) {
            Some((status, error)) => {
                let expiry = p.errors.iter().any(|e: &FieldError| e.field == "expires_at");
                said.error = Some(if expiry { k.bad_date.to_owned() } else { error });
                keys_page(&req, &app, &ctx, user, status, said).await
            }
            None => failed(&req, &app, &ctx, &p),
        },
    }
}

/// `POST /account/api-keys/{id}/{action}`: `rotate` or `revoke`.
pub async fn act(
    req: HttpRequest,
    app: web::Data<Web>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    if let Err(refused) = posted::<NoFields>(&req, &app, &ctx, &body) {
        return *refused;
    }
    let user = match user_or_sign_in(&ctx, PAGE) {
        Ok(u) => u,
        Err(to_sign_in) => return *to_sign_in,
    };
    let (raw_id, action) = path.into_inner();
    let Ok(id) = raw_id.parse::<Id>() else {
        return failed(&req, &app, &ctx, &Problem::not_found("API key"));
    };
    let k = ctx.locale.messages().k;
    let outcome = match action.as_str() {
        "rotate" => app.api_keys.rotate(user, id, None).await.map(|issued| Said {
            issued: Some(issued),
            notice: Some(k.rotated),
            ..Said::default()
        }),
        "revoke" => app.api_keys.revoke(user, id).await.map(|()| Said { notice: Some(k.revoked), ..Said::default() }),
        _ => Err(Problem::not_found("action")),
    };
    match outcome {
        Ok(said) => keys_page(&req, &app, &ctx, user, StatusCode::OK, said).await,
        Err(p) => match refusal(&p) {
            Some((status, error)) => {
                keys_page(&req, &app, &ctx, user, status, Said { error: Some(error), ..Said::default() }).await
            }
            None => failed(&req, &app, &ctx, &p),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_works_through_the_day_it_ends_on() {
        let end = end_of("2030-05-01").unwrap().unwrap();
        assert_eq!(end.0.to_rfc3339(), "2030-05-02T00:00:00+00:00");
        assert_eq!(end_of(" ").unwrap(), None);
        assert!(end_of("01/05/2030").is_err());
    }
}
