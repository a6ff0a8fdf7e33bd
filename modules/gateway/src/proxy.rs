//! The gateway's reverse proxy: a public path owned by a module this process
//! does not run goes to one of that module's replicas, bodies streamed both
//! ways. The caller is verified once, here, and forwarded with the service
//! credential; hop-by-hop and internal headers are stripped; upstream
//! failures become problem+json.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt;
use hometrip_kernel::auth_context::{verify_request, AuthUser};
use hometrip_kernel::http::{
    client_ip, TrustedProxies, CALLER_HEADER, CLIENT_IP_HEADER, FORWARDED_USER_HEADER, SERVICE_TOKEN_HEADER,
};
use hometrip_kernel::upstream::Upstream;
use hometrip_kernel::{ErrorCode, Problem};

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*`: any one segment.
    Any,
    /// `**` (last): the rest of the path, possibly empty.
    Rest,
}

/// Public path patterns → the module that serves them. The most specific
/// pattern wins (`/api/v1/listings/*/similar` before `/api/v1/listings/**`).
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<(Vec<Segment>, String)>,
}

impl RouteTable {
    pub fn new<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> RouteTable {
        let mut routes: Vec<(Vec<Segment>, String)> = entries
            .into_iter()
            .map(|(pattern, module)| {
                let segments = pattern
                    .trim_start_matches('/')
                    .split('/')
                    .map(|s| match s {
                        "*" => Segment::Any,
                        "**" => Segment::Rest,
                        s => Segment::Literal(s.to_owned()),
                    })
                    .collect();
                (segments, module.to_owned())
            })
            .collect();
        // Specific first: more fixed segments, then more segments, then no rest.
        routes.sort_by_key(|(segs, _)| {
            let literals = segs.iter().filter(|s| matches!(s, Segment::Literal(_))).count();
            let exact = !segs.contains(&Segment::Rest);
            std::cmp::Reverse((literals, segs.len(), exact))
        });
        RouteTable { routes }
    }

    /// The module serving `path`, if any.
    pub fn module_for(&self, path: &str) -> Option<&str> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.routes.iter().find(|(segs, _)| matches(segs, &parts)).map(|(_, m)| m.as_str())
    }
}

fn matches(segs: &[Segment], parts: &[&str]) -> bool {
    match (segs.first(), parts.first()) {
        (Some(Segment::Rest), _) => true,
        (None, None) => true,
        (Some(Segment::Any), Some(p)) => !p.is_empty() && matches(&segs[1..], &parts[1..]),
        (Some(Segment::Literal(l)), Some(p)) => l == p && matches(&segs[1..], &parts[1..]),
        _ => false,
    }
}

/// What the proxy needs.
pub struct Proxy {
    pub routes: RouteTable,
    /// Modules this process does not run, by name.
    pub upstreams: HashMap<String, Arc<Upstream>>,
    pub http: reqwest::Client,
    pub service_token: String,
    pub trusted_proxies: TrustedProxies,
    /// A request's whole exchange with the upstream, bodies included.
    pub timeout: Duration,
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the ones only this process may set.
fn forwardable(name: &str) -> bool {
    !matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
    ) && !name.starts_with("x-hometrip-")
}

/// A W3C `traceparent` kept when well formed, else a new one.
fn traceparent(headers: &HeaderMap) -> String {
    let given = headers.get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or("");
    let parts: Vec<&str> = given.split('-').collect();
    let well_formed = parts.len() == 4
        && parts[0].len() == 2
        && parts[1].len() == 32
        && parts[2].len() == 16
        && parts[3].len() == 2
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
        && parts[1] != "00000000000000000000000000000000";
    if well_formed {
        return given.to_ascii_lowercase();
    }
    // Random ids (an all-zero one, invalid, has a chance of 2^-64 at most).
    format!("00-{:032x}-{:016x}-01", rand::random::<u128>(), rand::random::<u64>())
}

fn unavailable(module: &str, retry_after: Duration) -> HttpResponse {
    Problem::new(ErrorCode::ServiceUnavailable, format!("the {module} service is unavailable"))
        .retry_after(retry_after.as_secs().max(1))
        .error_response()
}

/// The default service of a gateway process: proxies what a remote module owns.
pub async fn forward(req: HttpRequest, payload: web::Payload, proxy: web::Data<Proxy>) -> HttpResponse {
    let path = req.path();
    let Some(module) = proxy.routes.module_for(path).filter(|_| !path.starts_with("/internal/")) else {
        return crate::middleware::not_found(req).await;
    };
    let Some(upstream) = proxy.upstreams.get(module).cloned() else {
        // Owned by a module of this process: its routes did not match.
        return crate::middleware::not_found(req).await;
    };
    let verified = req.extensions().get::<AuthUser>().cloned();
    let user = match verified {
        Some(u) => Some(u),
        None => verify_request(&req).await,
    };
    let ip = client_ip(&req, &proxy.trusted_proxies);
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in req.headers() {
        if forwardable(name.as_str()) && name.as_str() != "traceparent" {
            if let (Ok(n), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()),
                reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
            ) {
                headers.append(n, v);
            }
        }
    }
    let insert = |h: &mut reqwest::header::HeaderMap, name: &'static str, value: &str| {
        if let Ok(v) = reqwest::header::HeaderValue::from_str(value) {
            h.insert(reqwest::header::HeaderName::from_static(name), v);
        }
    };
    insert(&mut headers, SERVICE_TOKEN_HEADER, &proxy.service_token);
    insert(&mut headers, CLIENT_IP_HEADER, &ip);
    insert(&mut headers, "traceparent", &traceparent(req.headers()));
    if let Some(rid) = hometrip_kernel::telemetry::current_request_id() {
        insert(&mut headers, "x-request-id", &rid);
    }
    if let Some(user) = &user {
        insert(&mut headers, FORWARDED_USER_HEADER, &user.forwarded());
        insert(&mut headers, CALLER_HEADER, &user.id.to_string());
    }
    let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
    let target = format!("{path}{query}");
    let has_body = req.headers().contains_key("transfer-encoding")
        || req.headers().get("content-length").and_then(|v| v.to_str().ok()).is_some_and(|v| v != "0");
    let Ok(method) = reqwest::Method::from_bytes(req.method().as_str().as_bytes()) else {
        return Problem::new(ErrorCode::MethodNotAllowed, "unsupported method").error_response();
    };
    // Without a body a read can go to another replica when the first fails.
    let retryable = !has_body && matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
    let mut body = Some(payload);
    let mut tried = Vec::new();
    let key = ip.clone();
    loop {
        let lease = match upstream.pick(Some(&key), &tried) {
            Ok(lease) => lease,
            Err(u) => return unavailable(module, u.retry_after),
        };
        tried.push(lease.replica.addr);
        let mut rb = proxy
            .http
            .request(method.clone(), format!("{}{target}", lease.replica.base))
            .headers(headers.clone())
            .timeout(proxy.timeout);
        if has_body {
            if let Some(payload) = body.take() {
                rb = rb.body(stream_body(payload));
            }
        }
        match rb.send().await {
            Ok(res) => {
                if matches!(res.status().as_u16(), 502..=504) {
                    lease.failure();
                } else {
                    lease.success();
                }
                return respond(res).await;
            }
            Err(e) => {
                let refused = e.is_connect();
                tracing::warn!(module, replica = %lease.replica.addr, error = %e, "upstream request failed");
                if refused {
                    lease.unreachable();
                } else {
                    lease.failure();
                }
                if retryable && tried.len() < 3 {
                    continue;
                }
                if e.is_timeout() {
                    return Problem::new(
                        ErrorCode::GatewayTimeout,
                        format!("the {module} service did not answer in time"),
                    )
                    .error_response();
                }
                return unavailable(module, Duration::from_secs(1));
            }
        }
    }
}

/// The request body as a stream the client can send from another thread
/// (actix's payload stays on its worker; chunks cross over a small channel).
fn stream_body(mut payload: web::Payload) -> reqwest::Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<web::Bytes, std::io::Error>>(8);
    actix_web::rt::spawn(async move {
        while let Some(chunk) = payload.next().await {
            let item = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    reqwest::Body::wrap_stream(stream)
}

/// Small answers are relayed whole (sized); larger ones stream.
const BUFFER_UP_TO: u64 = 256 * 1024;

/// The route pattern a module matched, for the gateway's own metrics.
#[derive(Clone)]
pub struct ProxiedRoute(pub String);

/// Header on a module's answer to the gateway: the route pattern it matched.
pub const ROUTE_HEADER: &str = "x-hometrip-route";

async fn respond(res: reqwest::Response) -> HttpResponse {
    let route = res.headers().get(ROUTE_HEADER).and_then(|v| v.to_str().ok()).map(|r| ProxiedRoute(r.to_owned()));
    let status = actix_web::http::StatusCode::from_u16(res.status().as_u16())
        .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY);
    let mut out = HttpResponse::build(status);
    for (name, value) in res.headers() {
        if forwardable(name.as_str()) && name.as_str() != "content-length" {
            if let (Ok(n), Ok(v)) =
                (HeaderName::from_bytes(name.as_str().as_bytes()), HeaderValue::from_bytes(value.as_bytes()))
            {
                out.append_header((n, v));
            }
        }
    }
    let mut response = match res.content_length() {
        Some(len) if len <= BUFFER_UP_TO => match res.bytes().await {
            Ok(bytes) => out.body(bytes),
            Err(_) => Problem::new(ErrorCode::BadGateway, "the upstream answer was cut off").error_response(),
        },
        _ => out.streaming(res.bytes_stream()),
    };
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_route_wins() {
        let table = RouteTable::new([
            ("/api/v1/listings/**", "listing"),
            ("/api/v1/listings/*/similar", "search"),
            ("/api/v1/admin/users/**", "user"),
            ("/api/v1/admin/users/*/roles", "auth"),
            ("/api/v1/amenities", "listing"),
            ("/files/photos/**", "listing"),
        ]);
        assert_eq!(table.module_for("/api/v1/listings/abc/similar"), Some("search"));
        assert_eq!(table.module_for("/api/v1/listings/abc"), Some("listing"));
        assert_eq!(table.module_for("/api/v1/listings"), Some("listing"));
        assert_eq!(table.module_for("/api/v1/admin/users/u1/roles"), Some("auth"));
        assert_eq!(table.module_for("/api/v1/admin/users/u1/identity"), Some("user"));
        assert_eq!(table.module_for("/api/v1/amenities"), Some("listing"));
        assert_eq!(table.module_for("/api/v1/amenities/x"), None);
        assert_eq!(table.module_for("/files/photos/a/b.jpg"), Some("listing"));
        assert_eq!(table.module_for("/files/avatars/a.jpg"), None);
    }

    #[test]
    fn internal_and_hop_by_hop_headers_stay_behind() {
        for name in ["connection", "transfer-encoding", "x-hometrip-service-token", "x-hometrip-user", "host"] {
            assert!(!forwardable(name), "{name}");
        }
        assert!(forwardable("authorization"));
        assert!(forwardable("content-type"));
    }

    #[test]
    fn a_traceparent_is_kept_when_well_formed() {
        let mut h = HeaderMap::new();
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        h.insert(HeaderName::from_static("traceparent"), HeaderValue::from_static(good));
        assert_eq!(traceparent(&h), good);
        h.insert(HeaderName::from_static("traceparent"), HeaderValue::from_static("garbage"));
        let fresh = traceparent(&h);
        assert_eq!(fresh.len(), 55);
        assert!(fresh.starts_with("00-") && fresh.ends_with("-01"));
        // A fresh one is itself well formed: the next hop keeps it.
        h.insert(HeaderName::from_static("traceparent"), HeaderValue::from_str(&fresh).unwrap());
        assert_eq!(traceparent(&h), fresh);
    }
}
