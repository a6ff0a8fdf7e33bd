//! The middleware of the edge, as `from_fn` functions so the binary stacks them.

use std::time::Instant as StdInstant;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, Next};
use actix_web::{web, Error, HttpMessage, ResponseError};
use hometrip_kernel::api_keys::{is_api_key, ApiKeyVerifier};
use hometrip_kernel::auth_context::{bearer, verify_request};
use hometrip_kernel::cache::{Limit, RateLimiter};
use hometrip_kernel::http::client_ip;
use hometrip_kernel::{ErrorCode, Problem};
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Limits and trust settings of the edge.
#[derive(Clone)]
pub struct EdgeSettings {
    pub limiter: RateLimiter,
    pub per_ip: Limit,
    pub per_account: Limit,
    /// Requests per API key per window (each key counts on its own).
    pub per_api_key: Limit,
    pub trusted_proxies: hometrip_kernel::http::TrustedProxies,
    /// `Strict-Transport-Security` on every response (the public URL is https).
    pub hsts: bool,
}

/// Headers every response carries unless its handler set its own.
static SECURITY_HEADERS: [(HeaderName, HeaderValue); 4] = [
    (HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff")),
    (HeaderName::from_static("referrer-policy"), HeaderValue::from_static("strict-origin-when-cross-origin")),
    (HeaderName::from_static("x-frame-options"), HeaderValue::from_static("DENY")),
    (HeaderName::from_static("content-security-policy"), HeaderValue::from_static("frame-ancestors 'none'")),
];
static HSTS: (HeaderName, HeaderValue) = (
    HeaderName::from_static("strict-transport-security"),
    HeaderValue::from_static("max-age=31536000; includeSubDomains"),
);

fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(new_request_id)
}

/// A UUIDv7 from the thread's userspace RNG: unlike `Uuid::now_v7` it makes no
/// `getrandom` system call, which showed in profiles of the hot path.
fn new_request_id() -> String {
    use rand::RngCore;
    let millis =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let mut random = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut random);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid().to_string()
}

/// Method label: the standard methods, anything else folded into `OTHER` so
/// clients cannot mint new metric series.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method as M;
    match *method {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::PATCH => "PATCH",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Status label without allocating for the codes the API answers.
fn status_label(status: u16) -> metrics::SharedString {
    const KNOWN: &[(u16, &str)] = &[
        (200, "200"),
        (201, "201"),
        (202, "202"),
        (204, "204"),
        (302, "302"),
        (304, "304"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (409, "409"),
        (413, "413"),
        (415, "415"),
        (422, "422"),
        (429, "429"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
    ];
    match KNOWN.iter().find(|(code, _)| *code == status) {
        Some((_, label)) => metrics::SharedString::const_str(label),
        None => metrics::SharedString::from(status.to_string()),
    }
}

/// Never rate-limited: probes must answer under any load. (`/metrics` is
/// limited like the API: it takes a token, which must not be guessable at speed.)
fn is_operational(path: &str) -> bool {
    path.starts_with("/health/")
}

/// Request id, span, access log, duration histogram, and the rate limits.
pub async fn edge(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let started = StdInstant::now();
    let id = request_id(&req);
    let method = method_label(req.method());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        path = %req.path(),
        trace_id = tracing::field::Empty,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    trace(&span, &req);
    let settings = req.app_data::<web::Data<EdgeSettings>>().cloned();

    let outcome = hometrip_kernel::telemetry::with_request_id(id.clone(), async {
        if let (Some(settings), false) = (&settings, is_operational(req.path())) {
            if let Some(problem) = limit(&req, settings).await {
                return Ok(req.into_response(problem.error_response()).map_into_right_body());
            }
        }
        next.call(req).await.map(ServiceResponse::map_into_left_body)
    })
    .instrument(span.clone())
    .await;

    let mut res = outcome?;
    // A proxied answer is labelled with the pattern the module matched.
    let proxied = res.response().extensions().get::<crate::proxy::ProxiedRoute>().map(|r| r.0.clone());
    let route = proxied.or_else(|| res.request().match_pattern()).unwrap_or_else(|| "unmatched".to_owned());
    if hometrip_kernel::http::from_service(res.request()) {
        if let Ok(v) = HeaderValue::from_str(&route) {
            res.headers_mut().insert(HeaderName::from_static(crate::proxy::ROUTE_HEADER), v);
        }
    }
    let status = res.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    hometrip_kernel::telemetry::rename(&span, || format!("{method} {route}"));
    span.record("http.route", route.as_str());
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route.clone(), "status_code" => status_label(status))
        .record(elapsed);
    // Probes come every second from every balancer: not worth a line each.
    if is_operational(res.request().path()) && status < 400 {
        span.in_scope(|| tracing::debug!(route = %route, status, elapsed_ms = elapsed * 1000.0, "served"));
    } else {
        span.in_scope(|| tracing::info!(route = %route, status, elapsed_ms = elapsed * 1000.0, "served"));
    }
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID, v);
    }
    let hsts = settings.as_ref().is_some_and(|s| s.hsts).then_some(&HSTS);
    for (name, value) in SECURITY_HEADERS.iter().chain(hsts) {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    Ok(res)
}

/// Continues the caller's trace when another process of the deployment
/// sends one (a public client's `traceparent` could force every request to
/// be recorded: it starts a trace of its own), and puts the trace id in the
/// request's log lines.
fn trace(span: &tracing::Span, req: &ServiceRequest) {
    use hometrip_kernel::telemetry;
    let given = req.headers().get("traceparent").and_then(|v| v.to_str().ok());
    let trusted = given.filter(|_| hometrip_kernel::http::from_service(req.request()));
    telemetry::set_parent(span, trusted);
    let trace_id = telemetry::trace_id_of(span).or_else(|| trusted.and_then(telemetry::trace_id).map(str::to_owned));
    if let Some(id) = trace_id {
        span.record("trace_id", id);
    }
}

/// Per-IP limit on every API request; per-account limit when the request
/// carries a valid token (the verified caller is kept for the handler).
async fn limit(req: &ServiceRequest, s: &EdgeSettings) -> Option<Problem> {
    // Forwarded by the gateway (or called by another module): limited there.
    if hometrip_kernel::http::from_service(req.request()) {
        return None;
    }
    let ip = hometrip_kernel::http::limit_subject(&client_ip(req.request(), &s.trusted_proxies));
    let over = |retry: u64| Problem::new(ErrorCode::RateLimited, "too many requests").retry_after(retry);
    match s.limiter.hit(&format!("ip:{ip}"), s.per_ip).await {
        Ok(Err(retry)) => return Some(over(retry)),
        Err(e) => return Some(e.into()),
        Ok(Ok(_)) => {}
    }
    if let Some(key) = bearer(req.request()).ok().filter(|t| is_api_key(t)) {
        return api_key(req, s, &key).await.err();
    }
    if let Some(user) = verify_request(req.request()).await {
        // An admin viewing as a user reads only: nothing they do changes the account.
        let reads = matches!(*req.method(), actix_web::http::Method::GET | actix_web::http::Method::HEAD);
        if user.acting_admin.is_some() && !reads {
            return Some(Problem::forbidden("read-only: an admin is viewing this account"));
        }
        let key = format!("account:{}", user.id);
        req.extensions_mut().insert(user);
        match s.limiter.hit(&key, s.per_account).await {
            Ok(Err(retry)) => return Some(over(retry)),
            Err(e) => return Some(e.into()),
            Ok(Ok(_)) => {}
        }
    }
    None
}

/// A request carrying an API key proceeds as the key's owner when the key is
/// valid, has the scope the call needs (the one table, [`crate::scopes`]),
/// and is within its own rate limit.
async fn api_key(req: &ServiceRequest, s: &EdgeSettings, key: &str) -> Result<(), Problem> {
    let keys = req
        .app_data::<web::Data<ApiKeyVerifier>>()
        .ok_or_else(|| Problem::new(ErrorCode::InvalidToken, "this process does not take API keys"))?;
    let grant = keys.verify(key).await?;
    let Some(scope) = crate::scopes::required(req.method(), req.match_info().as_str()) else {
        return Err(Problem::new(
            ErrorCode::InsufficientScope,
            "no API key scope grants this call: it takes a signed-in session",
        ));
    };
    if !grant.scopes.contains(&scope) {
        return Err(Problem::new(ErrorCode::InsufficientScope, format!("this call needs the {scope} scope"))
            .with("required_scope", scope.as_str()));
    }
    match s.limiter.hit(&format!("api-key:{}", grant.key_id), s.per_api_key).await {
        Ok(Err(retry)) => return Err(Problem::new(ErrorCode::RateLimited, "too many requests").retry_after(retry)),
        Err(e) => return Err(e.into()),
        Ok(Ok(_)) => {}
    }
    keys.used(grant.key_id);
    req.extensions_mut().insert(grant.caller());
    Ok(())
}

/// Turns every error response that is not already problem+json (actix's
/// plain-text defaults, unmatched routes) into one; the web app's own
/// error pages (HTML) stay pages.
pub fn errors_as_problems<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        let is_problem = res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/problem+json"));
        let is_page = res.response().extensions().get::<hometrip_kernel::http::HtmlPage>().is_some();
        if is_problem || is_page {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let status = res.status();
        let code = ErrorCode::from_status(status.as_u16());
        let detail = match (code, res.response().error()) {
            (ErrorCode::Internal, _) => "an unexpected error occurred".to_owned(),
            (_, Some(e)) => e.to_string(),
            (ErrorCode::NotFound, None) => format!("no route for {} {}", res.request().method(), res.request().path()),
            (_, None) => status.canonical_reason().unwrap_or("error").to_owned(),
        };
        let mut problem = Problem::new(code, detail);
        problem.status = status.as_u16();
        let (req, _) = res.into_parts();
        let response = problem.error_response().map_into_boxed_body();
        Ok(ErrorHandlerResponse::Response(ServiceResponse::new(req, response).map_into_right_body::<B>()))
    })
}

/// Boxed-body form for the app's default service.
pub async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse<BoxBody> {
    Problem::new(ErrorCode::NotFound, format!("no route for {} {}", req.method(), req.path())).error_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::Method;

    #[test]
    fn metric_labels_are_bounded() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"R4ND0M").unwrap()), "OTHER");
        assert_eq!(status_label(404).as_ref(), "404");
        assert_eq!(status_label(418).as_ref(), "418");
    }

    #[test]
    fn request_ids_are_kept_only_when_sane() {
        let with = |v: &str| {
            request_id(&actix_web::test::TestRequest::default().insert_header(("x-request-id", v)).to_srv_request())
        };
        assert_eq!(with("abc-123"), "abc-123");
        let long = "x".repeat(200);
        assert_ne!(with(&long), long);
        assert_ne!(with("has space"), "has space");
        let fresh = request_id(&actix_web::test::TestRequest::default().to_srv_request());
        let parsed = uuid::Uuid::parse_str(&fresh).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        assert_ne!(fresh, request_id(&actix_web::test::TestRequest::default().to_srv_request()));
    }

    #[test]
    fn only_health_probes_skip_limits() {
        assert!(is_operational("/health/live"));
        // A token guards metrics: guesses at it are limited like any request.
        assert!(!is_operational("/metrics"));
        assert!(!is_operational("/api/v1/users/me"));
    }
}
