//! Auth's public REST routes (`/api/v1/auth/...`), its admin route, and the
//! internal routes that serve [`Accounts`] to remote modules.

use std::sync::Arc;

use actix_web::{get, http::header, post, web, HttpRequest, HttpResponse};
use hometrip_kernel::auth_context::{AuthUser, JwkSet};
use hometrip_kernel::http::{client_ip, InternalCaller};
use hometrip_kernel::{Id, Problem};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::api::{AccountSummary, Accounts, SessionInfo, TotpSetup};
use crate::oauth::{OAuthOutcome, BINDING_COOKIE};
use crate::service::{AuthService, ClientInfo, Impersonation, TokenPair};

mod api_keys;

/// What the routes need besides the service.
pub struct AuthWeb {
    pub service: Arc<AuthService>,
    pub public_url: String,
    pub trusted_proxies: hometrip_kernel::http::TrustedProxies,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub display_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredUser {
    pub id: Id,
    pub email: String,
    pub display_name: String,
    pub email_verified: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterResponse {
    pub user: RegisteredUser,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    pub token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// A current TOTP code, or one unused recovery code.
    #[serde(default)]
    pub totp_code: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ForgotRequest {
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetRequest {
    pub token: String,
    pub new_password: String,
    /// Also revoke every API key of the account (default `false`).
    #[serde(default)]
    pub revoke_api_keys: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
    /// Also revoke every API key of the account (default `false`).
    #[serde(default)]
    pub revoke_api_keys: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeRequest {
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DisableTotpRequest {
    pub password: String,
    /// A current TOTP code, or one unused recovery code.
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MfaRequest {
    pub mfa_ticket: String,
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<SessionInfo>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedSessions {
    pub revoked: usize,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleChange {
    pub role: String,
    pub granted: bool,
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

fn client(req: &HttpRequest, web: &AuthWeb) -> ClientInfo {
    ClientInfo {
        ip: client_ip(req, &web.trusted_proxies),
        user_agent: req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
    }
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = RegisterResponse), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[post("/auth/register")]
async fn register(
    web: web::Data<AuthWeb>,
    req: HttpRequest,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, Problem> {
    let locale =
        crate::domain::preferred_locale(req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    let account = web.service.register(&body.email, &body.password, &body.display_name, locale).await?;
    let display_name = body.display_name.trim().to_owned();
    Ok(HttpResponse::Created().json(RegisterResponse {
        user: RegisteredUser {
            id: account.id,
            email: account.email,
            display_name,
            email_verified: account.email_verified,
        },
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = TokenRequest,
    responses((status = 200), (status = 400, body = Problem)))]
#[post("/auth/verify-email")]
async fn verify_email(web: web::Data<AuthWeb>, body: web::Json<TokenRequest>) -> Result<HttpResponse, Problem> {
    web.service.verify_email(&body.token).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"email_verified": true})))
}

#[utoipa::path(post, path = "/api/v1/auth/verify-email/resend", tag = "auth",
    responses((status = 202), (status = 401, body = Problem), (status = 429, body = Problem)), security(("bearer" = [])))]
#[post("/auth/verify-email/resend")]
async fn resend_verification(web: web::Data<AuthWeb>, user: AuthUser) -> Result<HttpResponse, Problem> {
    web.service.resend_verification(user.id).await?;
    Ok(HttpResponse::Accepted().finish())
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem), (status = 429, body = Problem)))]
#[post("/auth/login")]
async fn login(
    web: web::Data<AuthWeb>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, Problem> {
    let pair = web.service.login(&body.email, &body.password, body.totp_code.as_deref(), &client(&req, &web)).await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(pair))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem)))]
#[post("/auth/refresh")]
async fn refresh(
    web: web::Data<AuthWeb>,
    req: HttpRequest,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, Problem> {
    let pair = web.service.refresh(&body.refresh_token, client(&req, &web).user_agent).await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(pair))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest, responses((status = 204)))]
#[post("/auth/logout")]
async fn logout(web: web::Data<AuthWeb>, body: web::Json<RefreshRequest>) -> Result<HttpResponse, Problem> {
    web.service.logout(&body.refresh_token).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/auth/password/forgot", tag = "auth", request_body = ForgotRequest, responses((status = 202)))]
#[post("/auth/password/forgot")]
async fn forgot(web: web::Data<AuthWeb>, body: web::Json<ForgotRequest>) -> Result<HttpResponse, Problem> {
    web.service.forgot_password(&body.email).await?;
    Ok(HttpResponse::Accepted().finish())
}

#[utoipa::path(post, path = "/api/v1/auth/password/reset", tag = "auth", request_body = ResetRequest,
    responses((status = 204), (status = 400, body = Problem), (status = 422, body = Problem)))]
#[post("/auth/password/reset")]
async fn reset(web: web::Data<AuthWeb>, body: web::Json<ResetRequest>) -> Result<HttpResponse, Problem> {
    web.service.reset_password(&body.token, &body.new_password, body.revoke_api_keys).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/auth/password/change", tag = "auth", request_body = ChangePasswordRequest,
    responses((status = 204), (status = 409, body = Problem, description = "The account has no password yet"),
        (status = 422, body = Problem), (status = 429, body = Problem)), security(("bearer" = [])))]
#[post("/auth/password/change")]
async fn change_password(
    web: web::Data<AuthWeb>,
    user: AuthUser,
    body: web::Json<ChangePasswordRequest>,
) -> Result<HttpResponse, Problem> {
    let ChangePasswordRequest { current_password, new_password, revoke_api_keys } = body.into_inner();
    web.service.change_password(user.id, user.session_id, &current_password, &new_password, revoke_api_keys).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/auth/2fa/setup", tag = "auth",
    responses((status = 200, body = TotpSetup), (status = 401, body = Problem),
        (status = 409, body = Problem, description = "Two-factor authentication is already on")), security(("bearer" = [])))]
#[post("/auth/2fa/setup")]
async fn totp_setup(web: web::Data<AuthWeb>, user: AuthUser) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(web.service.totp_setup(user.id).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/2fa/enable", tag = "auth", request_body = CodeRequest,
    responses((status = 200, body = RecoveryCodes),
        (status = 409, body = Problem, description = "Already on, or `/auth/2fa/setup` not called"),
        (status = 422, body = Problem)), security(("bearer" = [])))]
#[post("/auth/2fa/enable")]
async fn totp_enable(
    web: web::Data<AuthWeb>,
    user: AuthUser,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, Problem> {
    let recovery_codes = web.service.totp_enable(user.id, &body.code).await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(RecoveryCodes { recovery_codes }))
}

#[utoipa::path(post, path = "/api/v1/auth/2fa/disable", tag = "auth", request_body = DisableTotpRequest,
    responses((status = 204), (status = 401, body = Problem),
        (status = 409, body = Problem, description = "Two-factor authentication is off, or the account has no password"),
        (status = 429, body = Problem)), security(("bearer" = [])))]
#[post("/auth/2fa/disable")]
async fn totp_disable(
    web: web::Data<AuthWeb>,
    user: AuthUser,
    body: web::Json<DisableTotpRequest>,
) -> Result<HttpResponse, Problem> {
    web.service.totp_disable(user.id, user.session_id, &body.password, &body.code).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/auth/2fa/verify", tag = "auth", request_body = MfaRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem)))]
#[post("/auth/2fa/verify")]
async fn mfa_verify(web: web::Data<AuthWeb>, body: web::Json<MfaRequest>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(web.service.verify_mfa_ticket(&body.mfa_ticket, &body.code).await?))
}

#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth",
    responses((status = 200, body = SessionList)), security(("bearer" = [])))]
#[get("/auth/sessions")]
async fn sessions(web: web::Data<AuthWeb>, user: AuthUser) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(SessionList { items: web.service.sessions(user.id, user.session_id).await? }))
}

#[utoipa::path(post, path = "/api/v1/auth/sessions/revoke-others", tag = "auth",
    responses((status = 200, body = RevokedSessions)), security(("bearer" = [])))]
#[post("/auth/sessions/revoke-others")]
async fn revoke_others(web: web::Data<AuthWeb>, user: AuthUser) -> Result<HttpResponse, Problem> {
    let revoked = web.service.revoke_other_sessions(user.id, user.session_id).await?;
    Ok(HttpResponse::Ok().json(RevokedSessions { revoked }))
}

#[utoipa::path(get, path = "/api/v1/auth/jwks.json", tag = "auth", responses((status = 200, body = JwkSet)))]
#[get("/auth/jwks.json")]
async fn jwks(web: web::Data<AuthWeb>) -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "public, max-age=300")).json(web.service.jwk_set())
}

#[utoipa::path(get, path = "/api/v1/auth/oauth/{provider}/start", tag = "auth",
    params(("provider" = String, Path, description = "google or facebook")),
    responses((status = 302), (status = 404, body = Problem)))]
#[get("/auth/oauth/{provider}/start")]
async fn oauth_start(web: web::Data<AuthWeb>, provider: web::Path<String>) -> Result<HttpResponse, Problem> {
    let start = web.service.oauth_start(&provider, &web.public_url, crate::oauth::OAuthReturn::Api).await?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, start.url))
        .insert_header((header::SET_COOKIE, binding_cookie(&web.public_url, &start.binding, 600)))
        .finish())
}

/// The cookie binding a sign-in to its browser: sent back on the provider's
/// top-level redirect (`SameSite=Lax`), never readable by scripts. Written by
/// hand: the value is base64url, and actix's cookie feature is not built.
fn binding_cookie(public_url: &str, value: &str, max_age_secs: u32) -> String {
    let secure = if public_url.starts_with("https://") { "; Secure" } else { "" };
    format!("{BINDING_COOKIE}={value}; Path=/api/v1/auth/oauth; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}")
}

/// The binding cookie's value in the request's `Cookie` headers.
fn binding_from(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(BINDING_COOKIE)?.strip_prefix('=').map(str::to_owned))
        .filter(|v| !v.is_empty())
}

#[utoipa::path(get, path = "/api/v1/auth/oauth/{provider}/callback", tag = "auth",
    params(("provider" = String, Path), ("code" = String, Query), ("state" = String, Query)),
    responses((status = 200, body = TokenPair), (status = 302), (status = 400, body = Problem), (status = 409, body = Problem)))]
#[get("/auth/oauth/{provider}/callback")]
async fn oauth_callback(
    web: web::Data<AuthWeb>,
    req: HttpRequest,
    provider: web::Path<String>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, Problem> {
    if let Some(error) = &query.error {
        return Err(Problem::new(hometrip_kernel::ErrorCode::BadRequest, format!("the provider answered: {error}")));
    }
    let (Some(code), Some(state)) = (&query.code, &query.state) else {
        return Err(Problem::new(hometrip_kernel::ErrorCode::InvalidQuery, "code and state are required"));
    };
    let binding = binding_from(&req);
    let spent = (header::SET_COOKIE, binding_cookie(&web.public_url, "", 0));
    let back = crate::oauth::OAuthReturn::Api;
    match web.service.oauth_callback(&provider, code, state, binding.as_deref(), &web.public_url, back).await? {
        OAuthOutcome::SecondFactor { mfa_ticket } => {
            Err(Problem::new(hometrip_kernel::ErrorCode::TotpRequired, "finish with POST /api/v1/auth/2fa/verify")
                .with("totp_required", true)
                .with("mfa_ticket", mfa_ticket))
        }
        OAuthOutcome::Tokens(pair) => {
            let redirect = &web.service.settings.oauth_success_redirect;
            if redirect.is_empty() {
                return Ok(HttpResponse::Ok()
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .insert_header(spent)
                    .json(pair));
            }
            // Tokens travel in the fragment, which browsers never send to servers.
            let target = format!(
                "{redirect}#access_token={}&refresh_token={}&token_type=Bearer&expires_in={}",
                pair.access_token, pair.refresh_token, pair.expires_in
            );
            Ok(HttpResponse::Found().insert_header((header::LOCATION, target)).insert_header(spent).finish())
        }
    }
}

#[utoipa::path(post, path = "/api/v1/admin/users/{id}/roles", tag = "admin", request_body = RoleChange,
    params(("id" = Id, Path)), responses((status = 200, body = AccountSummary), (status = 403, body = Problem)),
    security(("bearer" = [])))]
#[post("/admin/users/{id}/roles")]
async fn admin_set_role(
    web: web::Data<AuthWeb>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<RoleChange>,
) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    Ok(HttpResponse::Ok().json(web.service.set_role(*id, &body.role, body.granted).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspensionReason {
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/admin/users/{id}/suspend", tag = "admin", request_body = SuspensionReason,
    params(("id" = Id, Path)),
    responses((status = 200, body = AccountSummary), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)),
    security(("bearer" = [])))]
#[post("/admin/users/{id}/suspend")]
async fn admin_suspend(
    web: web::Data<AuthWeb>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<SuspensionReason>,
) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    Ok(HttpResponse::Ok().json(web.service.set_suspension(user.id, *id, Some(&body.reason)).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/users/{id}/reinstate", tag = "admin", params(("id" = Id, Path)),
    responses((status = 200, body = AccountSummary), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
#[post("/admin/users/{id}/reinstate")]
async fn admin_reinstate(web: web::Data<AuthWeb>, user: AuthUser, id: web::Path<Id>) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    Ok(HttpResponse::Ok().json(web.service.set_suspension(user.id, *id, None).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/users/{id}/impersonate", tag = "admin", request_body = SuspensionReason,
    params(("id" = Id, Path)),
    responses((status = 201, body = Impersonation), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
#[post("/admin/users/{id}/impersonate")]
async fn admin_impersonate(
    web: web::Data<AuthWeb>,
    user: AuthUser,
    id: web::Path<Id>,
    body: web::Json<SuspensionReason>,
) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    if user.acting_admin.is_some() {
        return Err(Problem::forbidden("an impersonation cannot start another"));
    }
    Ok(HttpResponse::Created().json(web.service.impersonate(user.id, *id, &body.reason).await?))
}

/// Mounts the public routes under the caller's `/api/v1` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(register)
        .service(verify_email)
        .service(resend_verification)
        .service(login)
        .service(refresh)
        .service(logout)
        .service(forgot)
        .service(reset)
        .service(change_password)
        .service(totp_setup)
        .service(totp_enable)
        .service(totp_disable)
        .service(mfa_verify)
        .service(sessions)
        .service(revoke_others)
        .service(jwks)
        .service(oauth_start)
        .service(oauth_callback)
        .service(admin_set_role)
        .service(admin_suspend)
        .service(admin_reinstate)
        .service(admin_impersonate)
        .configure(api_keys::routes);
}

// ---- internal routes: the Accounts trait over HTTP (see client.rs)

#[derive(Deserialize)]
struct EmailQuery {
    email: String,
}

async fn internal_account(
    _: InternalCaller,
    svc: web::Data<dyn Accounts>,
    id: web::Path<Id>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.account(*id).await?))
}

#[derive(Deserialize)]
struct IdsBody {
    ids: Vec<Id>,
}

async fn internal_accounts_of(
    _: InternalCaller,
    svc: web::Data<dyn Accounts>,
    body: web::Json<IdsBody>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.accounts(&body.ids).await?))
}

async fn internal_by_email(
    _: InternalCaller,
    svc: web::Data<dyn Accounts>,
    q: web::Query<EmailQuery>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.account_by_email(&q.email).await?))
}

async fn internal_jwks(_: InternalCaller, svc: web::Data<dyn Accounts>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.jwks().await?))
}

async fn internal_set_role(
    _: InternalCaller,
    svc: web::Data<dyn Accounts>,
    id: web::Path<Id>,
    body: web::Json<RoleChange>,
) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(svc.set_role(*id, &body.role, body.granted).await?))
}

// ---- internal routes: the Sessions trait over HTTP (the gateway's web pages)

async fn internal_session(
    _: InternalCaller,
    svc: web::Data<dyn crate::api::Sessions>,
    use_case: web::Path<String>,
    body: web::Json<crate::client::SessionCall>,
) -> Result<HttpResponse, Problem> {
    let b = body.into_inner();
    let done = || HttpResponse::Ok().json(serde_json::json!({}));
    Ok(match use_case.as_str() {
        "register" => HttpResponse::Ok().json(svc.register(&b.email, &b.password, &b.display_name, &b.locale).await?),
        "sign-in" => {
            let from = b.from.ok_or_else(|| Problem::field("from", "is required"))?;
            HttpResponse::Ok().json(svc.sign_in(&b.email, &b.password, b.totp_code.as_deref(), &from).await?)
        }
        "refresh" => HttpResponse::Ok().json(svc.refresh(&b.token, b.user_agent.as_deref()).await?),
        "sign-out" => svc.sign_out(&b.token).await.map(|()| done())?,
        "verify-email" => svc.verify_email(&b.token).await.map(|()| done())?,
        "forgot-password" => svc.forgot_password(&b.email).await.map(|()| done())?,
        "reset-password" => svc.reset_password(&b.token, &b.password, b.revoke_api_keys).await.map(|()| done())?,
        "providers" => HttpResponse::Ok().json(svc.providers().await?),
        "provider-start" => HttpResponse::Ok().json(svc.provider_start(&b.provider, &b.public_url).await?),
        "provider-finish" => HttpResponse::Ok()
            .json(svc.provider_finish(&b.provider, &b.token, &b.state, &b.binding, &b.public_url).await?),
        "second-factor" => {
            HttpResponse::Ok().json(svc.second_factor(&b.token, b.totp_code.as_deref().unwrap_or_default()).await?)
        }
        _ => return Err(Problem::not_found("use case")),
    })
}

/// Mounts the internal routes under `/internal/auth`; needs
/// `web::Data<dyn Accounts>` and `web::Data<dyn Sessions>`.
pub fn internal_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/internal/auth")
            .route("/accounts/by-email", web::get().to(internal_by_email))
            .route("/accounts/of", web::post().to(internal_accounts_of))
            .route("/accounts/{id}", web::get().to(internal_account))
            .route("/accounts/{id}/roles", web::post().to(internal_set_role))
            .route("/jwks", web::get().to(internal_jwks))
            .route("/sessions/{use_case}", web::post().to(internal_session))
            .configure(api_keys::internal_routes),
    );
}

#[derive(OpenApi)]
#[openapi(
    paths(
        register,
        verify_email,
        resend_verification,
        login,
        refresh,
        logout,
        forgot,
        reset,
        change_password,
        totp_setup,
        totp_enable,
        totp_disable,
        mfa_verify,
        sessions,
        revoke_others,
        jwks,
        oauth_start,
        oauth_callback,
        admin_set_role,
        admin_suspend,
        admin_reinstate,
        admin_impersonate,
        api_keys::create,
        api_keys::list,
        api_keys::rotate,
        api_keys::revoke,
        api_keys::admin_list,
        api_keys::admin_revoke
    ),
    components(schemas(
        Problem,
        TokenPair,
        TotpSetup,
        SessionInfo,
        AccountSummary,
        JwkSet,
        SuspensionReason,
        Impersonation,
        crate::api::ApiKey,
        crate::api::IssuedApiKey,
        crate::api::NewApiKey,
        crate::api::Scope,
        api_keys::ApiKeyList,
        api_keys::RotateRequest,
        api_keys::RevokeReason
    ))
)]
pub struct AuthApi;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binding_cookie_is_script_proof_and_secure_over_https() {
        let plain = binding_cookie("http://localhost:3001", "abc", 600);
        assert_eq!(plain, "hometrip_oauth=abc; Path=/api/v1/auth/oauth; Max-Age=600; HttpOnly; SameSite=Lax");
        assert!(binding_cookie("https://hometrip.example", "abc", 600).ends_with("; Secure"));
    }

    #[test]
    fn the_binding_is_read_among_other_cookies() {
        let req = actix_web::test::TestRequest::default()
            .insert_header((header::COOKIE, "a=1; hometrip_oauth=xyz; b=2"))
            .to_http_request();
        assert_eq!(binding_from(&req).as_deref(), Some("xyz"));
        let other = actix_web::test::TestRequest::default()
            .insert_header((header::COOKIE, "hometrip_oauthx=1; hometrip_oauth="))
            .to_http_request();
        assert_eq!(binding_from(&other), None);
        assert_eq!(binding_from(&actix_web::test::TestRequest::default().to_http_request()), None);
    }
}
