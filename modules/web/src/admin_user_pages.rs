//! The console's users: found by name or email with their account's state,
//! suspended (with a reason) and reinstated through auth's `AccountAdmin`,
//! identity documents approved or rejected through user's `UserAdmin`.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::{Id, Problem};
use serde::Deserialize;

use crate::admin_pages::{admin_form, Console, Said};
use crate::pages::{failed, respond, Chrome, Context};
use crate::Web;

/// A user as the console lists them.
struct UserLine {
    id: Id,
    name: String,
    email: String,
    identity: &'static str,
    identity_pending: bool,
    suspended: Option<bool>,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    page: Chrome,
    q: String,
    users: Vec<UserLine>,
    notice: Option<&'static str>,
    error: Option<&'static str>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UserQuery {
    q: String,
}

async fn users_page(
    req: &HttpRequest,
    app: &Web,
    ctx: &Context,
    admin: &AuthUser,
    q: &str,
    said: Said,
) -> HttpResponse {
    let found = match app.user_admin.search(admin, q.trim()).await {
        Ok(found) => found,
        Err(p) if p.status == 422 => Vec::new(),
        Err(p) => return failed(req, app, ctx, &p),
    };
    // Whether each is suspended is the auth module's to say.
    let ids: Vec<Id> = found.iter().map(|u| u.id).collect();
    let suspended: HashMap<Id, bool> = match app.accounts.accounts(&ids).await {
        Ok(accounts) => accounts.into_iter().map(|a| (a.id, a.suspended)).collect(),
        Err(p) => {
            tracing::warn!(detail = %p.detail, "web: reading the users' accounts failed");
            HashMap::new()
        }
    };
    let users = found
        .iter()
        .map(|u| UserLine {
            id: u.id,
            name: u.display_name.clone(),
            email: u.email.clone(),
            identity: u.identity_status.as_str(),
            identity_pending: u.identity_status == hometrip_user::api::IdentityStatus::Pending,
            suspended: suspended.get(&u.id).copied(),
        })
        .collect();
    let (notice, error) = (said.notice(), said.error());
    let page = UsersPage { page: ctx.chrome(req, app, "page_view"), q: q.to_owned(), users, notice, error };
    respond(said.status(), page.render(), ctx)
}

/// `GET /admin/users?q=`: users by name or email, with their account's state.
pub async fn users(req: HttpRequest, app: web::Data<Web>, Console { ctx, admin }: Console) -> HttpResponse {
    let q: UserQuery = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let ad = ctx.locale.messages().ad;
    let notices =
        [("suspended", ad.suspended_notice), ("reinstated", ad.reinstated_notice), ("identity", ad.identity_notice)];
    let said = Said::done(&req, &notices);
    users_page(&req, &app, &ctx, &admin, &q.q, said).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UserActionForm {
    reason: String,
    decision: String,
    /// The search to come back to.
    q: String,
}

/// `POST /admin/users/{id}/{suspend|reinstate|identity}`.
pub async fn user_action(
    req: HttpRequest,
    app: web::Data<Web>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let ctx = Context::of(&req, &app).await;
    let (raw_id, action) = path.into_inner();
    let (admin, form, id) = match admin_form::<UserActionForm>(&req, &app, &ctx, &raw_id, &body) {
        Ok(checked) => checked,
        Err(refused) => return *refused,
    };
    let ad = ctx.locale.messages().ad;
    let done = match action.as_str() {
        "suspend" if form.reason.trim().is_empty() => {
            let said = Said::Refused(StatusCode::UNPROCESSABLE_ENTITY, ad.reason_needed);
            return users_page(&req, &app, &ctx, &admin, &form.q, said).await;
        }
        "suspend" => app.account_admin.suspend(&admin, id, form.reason.trim()).await.map(|_| "suspended"),
        "reinstate" => app.account_admin.reinstate(&admin, id).await.map(|_| "reinstated"),
        "identity" => {
            let decision = match form.decision.as_str() {
                "approve" => hometrip_user::api::IdentityDecision::Approve,
                _ => hometrip_user::api::IdentityDecision::Reject,
            };
            let note = Some(form.reason.trim()).filter(|n| !n.is_empty());
            app.user_admin.review_identity(&admin, id, decision, note).await.map(|_| "identity")
        }
        _ => Err(Problem::not_found("action")),
    };
    match done {
        Ok(done) => {
            let back = serde_urlencoded::to_string([("q", form.q.as_str()), ("done", done)]).unwrap_or_default();
            crate::account_pages::redirect(&ctx, &format!("/admin/users?{back}"), Vec::new())
        }
        Err(p) if p.status == 409 || p.status == 422 => {
            let error = if action == "suspend" { ad.cannot_suspend } else { ad.decided_already };
            let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::CONFLICT);
            users_page(&req, &app, &ctx, &admin, &form.q, Said::Refused(status, error)).await
        }
        Err(p) => failed(&req, &app, &ctx, &p),
    }
}
