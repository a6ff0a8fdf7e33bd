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
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

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

/// A request body on its way to a replica: empty, or the client's, streamed.
pub type UpstreamBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// The proxy's client: hyper's pooled client, plain TCP or TLS. Not reqwest:
/// a forwarded request is already a method, a target and a header map, and
/// reqwest's URL parsing and request building per call showed in the hop's
/// profile.
pub type UpstreamClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, UpstreamBody>;

pub fn upstream_client(tls: Option<&hometrip_kernel::tls::ServiceTls>) -> Result<UpstreamClient, String> {
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(Duration::from_secs(2)));
    tcp.enforce_http(false);
    // With mutual TLS: only the deployment's CA, and this process's certificate.
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match tls {
        Some(tls) => {
            let mut config = tls.client_config()?;
            // hyper-rustls sets ALPN from the protocols it enables.
            config.alpn_protocols.clear();
            builder.with_tls_config(config)
        }
        None => builder.with_webpki_roots(),
    };
    let connector = builder.https_or_http().enable_http1().wrap_connector(tcp);
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .build(connector))
}

/// What the proxy needs.
pub struct Proxy {
    pub routes: RouteTable,
    /// Modules this process does not run, by name.
    pub upstreams: HashMap<String, Arc<Upstream>>,
    pub http: UpstreamClient,
    pub service_token: String,
    pub trusted_proxies: TrustedProxies,
    /// A request's exchange with the upstream: the answer's head, and its
    /// body when relayed whole.
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
    // The gateway's own request span when traces are recorded; otherwise the
    // id is still passed on for log lines.
    let trace = hometrip_kernel::telemetry::traceparent().unwrap_or_else(|| traceparent(req.headers()));
    let target = req.uri().path_and_query().map_or(path, |pq| pq.as_str());
    if is_websocket(&req) {
        return websocket(&req, payload, &proxy, module, &upstream, &ip, user.as_ref(), &trace, target).await;
    }
    let has_body = req.headers().contains_key("transfer-encoding")
        || req.headers().get("content-length").and_then(|v| v.to_str().ok()).is_some_and(|v| v != "0");
    let Ok(method) = hyper::Method::from_bytes(req.method().as_str().as_bytes()) else {
        return Problem::new(ErrorCode::MethodNotAllowed, "unsupported method").error_response();
    };
    // Without a body a read can go to another replica when the first fails.
    let retryable = !has_body && matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
    let deadline = tokio::time::Instant::now() + proxy.timeout;
    let mut payload = Some(payload);
    let mut tried = Vec::new();
    loop {
        let lease = match upstream.pick(Some(&ip), &tried) {
            Ok(lease) => lease,
            Err(u) => return unavailable(module, u.retry_after),
        };
        tried.push(lease.replica.addr);
        let Ok(uri) = format!("{}{target}", lease.replica.base).parse::<hyper::Uri>() else {
            return Problem::new(ErrorCode::BadRequest, "the request target cannot be forwarded").error_response();
        };
        let body = match payload.take() {
            Some(payload) if has_body => stream_body(payload),
            _ => Empty::new().map_err(|never| match never {}).boxed_unsync(),
        };
        let mut request = hyper::Request::new(body);
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = upstream_headers(&req, &proxy, &ip, user.as_ref(), &trace);
        match tokio::time::timeout_at(deadline, proxy.http.request(request)).await {
            Ok(Ok(res)) => {
                if matches!(res.status().as_u16(), 502..=504) {
                    lease.failure();
                } else {
                    lease.success();
                }
                return respond(res, deadline).await;
            }
            Ok(Err(e)) => {
                tracing::warn!(module, replica = %lease.replica.addr, error = ?e, "upstream request failed");
                if e.is_connect() {
                    lease.unreachable();
                } else {
                    lease.failure();
                }
                if retryable && tried.len() < 3 {
                    continue;
                }
                return unavailable(module, Duration::from_secs(1));
            }
            Err(_) => {
                tracing::warn!(module, replica = %lease.replica.addr, "upstream did not answer in time");
                lease.failure();
                return Problem::new(ErrorCode::GatewayTimeout, format!("the {module} service did not answer in time"))
                    .error_response();
            }
        }
    }
}

fn is_websocket(req: &HttpRequest) -> bool {
    req.method() == actix_web::http::Method::GET
        && req
            .headers()
            .get("upgrade")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// A WebSocket upgrade (`/ws`): the handshake goes to a replica; once it
/// answers 101 the two connections are spliced, bytes copied both ways until
/// either side closes. The replica's 101 and its handshake headers go back
/// to the client as they are.
#[allow(clippy::too_many_arguments)]
async fn websocket(
    req: &HttpRequest,
    mut payload: web::Payload,
    proxy: &Proxy,
    module: &str,
    upstream: &Arc<Upstream>,
    ip: &str,
    user: Option<&AuthUser>,
    trace: &str,
    target: &str,
) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let lease = match upstream.pick(Some(ip), &[]) {
        Ok(lease) => lease,
        Err(u) => return unavailable(module, u.retry_after),
    };
    let Ok(uri) = format!("{}{target}", lease.replica.base).parse::<hyper::Uri>() else {
        return Problem::new(ErrorCode::BadRequest, "the request target cannot be forwarded").error_response();
    };
    let mut request = hyper::Request::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *request.uri_mut() = uri;
    let mut headers = upstream_headers(req, proxy, ip, user, trace);
    headers.insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("upgrade"));
    headers.insert(hyper::header::UPGRADE, hyper::header::HeaderValue::from_static("websocket"));
    *request.headers_mut() = headers;
    let mut res = match tokio::time::timeout(proxy.timeout, proxy.http.request(request)).await {
        Ok(Ok(res)) => res,
        Ok(Err(e)) => {
            tracing::warn!(module, replica = %lease.replica.addr, error = ?e, "websocket upgrade failed");
            if e.is_connect() {
                lease.unreachable();
            } else {
                lease.failure();
            }
            return unavailable(module, Duration::from_secs(1));
        }
        Err(_) => {
            lease.failure();
            return Problem::new(ErrorCode::GatewayTimeout, format!("the {module} service did not answer in time"))
                .error_response();
        }
    };
    lease.success();
    if res.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
        return respond(res, tokio::time::Instant::now() + proxy.timeout).await;
    }
    let mut out = HttpResponse::SwitchingProtocols();
    // actix writes `Connection: upgrade` itself for an upgrade response.
    out.upgrade("websocket");
    for (name, value) in res.headers() {
        let name = name.as_str();
        if forwardable(name) {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value.as_bytes()))
            {
                out.append_header((n, v));
            }
        }
    }
    let upgraded = match hyper::upgrade::on(&mut res).await {
        Ok(io) => hyper_util::rt::TokioIo::new(io),
        Err(e) => {
            tracing::warn!(module, error = %e, "websocket upgrade not completed");
            return Problem::new(ErrorCode::BadGateway, "the upstream did not switch protocols").error_response();
        }
    };
    let (from_replica, mut to_replica) = tokio::io::split(upgraded);
    // Client → replica: the connection's bytes after the handshake arrive
    // as the request's payload.
    actix_web::rt::spawn(async move {
        while let Some(Ok(chunk)) = payload.next().await {
            if to_replica.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to_replica.shutdown().await;
    });
    // Replica → client: the response body.
    let from_replica =
        futures_util::stream::unfold((from_replica, vec![0u8; 16 * 1024]), |(mut io, mut buf)| async move {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => None,
                Ok(n) => {
                    let chunk = Bytes::copy_from_slice(&buf[..n]);
                    Some((Ok::<_, std::io::Error>(chunk), (io, buf)))
                }
            }
        });
    out.streaming(from_replica)
}

/// The headers a replica gets: the client's end-to-end ones, and what only
/// the gateway vouches for (service credential, client address, the
/// verified user, trace and request ids).
fn upstream_headers(
    req: &HttpRequest,
    proxy: &Proxy,
    ip: &str,
    user: Option<&AuthUser>,
    trace: &str,
) -> hyper::HeaderMap {
    use hyper::header::{HeaderName as Name, HeaderValue as Value};
    let mut headers = hyper::HeaderMap::with_capacity(req.headers().len() + 6);
    for (name, value) in req.headers() {
        if forwardable(name.as_str()) && name.as_str() != "traceparent" {
            if let (Ok(n), Ok(v)) = (Name::from_bytes(name.as_str().as_bytes()), Value::from_bytes(value.as_bytes())) {
                headers.append(n, v);
            }
        }
    }
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = Value::from_str(value) {
            headers.insert(Name::from_static(name), v);
        }
    };
    set(SERVICE_TOKEN_HEADER, &proxy.service_token);
    set(CLIENT_IP_HEADER, ip);
    set("traceparent", trace);
    if let Some(rid) = hometrip_kernel::telemetry::current_request_id() {
        set("x-request-id", &rid);
    }
    if let Some(user) = user {
        set(FORWARDED_USER_HEADER, &user.forwarded());
        set(CALLER_HEADER, &user.id.to_string());
    }
    headers
}

/// The request body as a stream the client can send from another thread
/// (actix's payload stays on its worker; chunks cross over a small channel).
fn stream_body(mut payload: web::Payload) -> UpstreamBody {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    actix_web::rt::spawn(async move {
        while let Some(chunk) = payload.next().await {
            let item = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    let frames =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|item| (item.map(Frame::data), rx)) },
        );
    StreamBody::new(frames).boxed_unsync()
}

/// Small answers are relayed whole (sized); larger ones stream.
const BUFFER_UP_TO: u64 = 256 * 1024;

/// The route pattern a module matched, for the gateway's own metrics.
#[derive(Clone)]
pub struct ProxiedRoute(pub String);

/// Header on a module's answer to the gateway: the route pattern it matched.
pub const ROUTE_HEADER: &str = "x-hometrip-route";

async fn respond(res: hyper::Response<Incoming>, deadline: tokio::time::Instant) -> HttpResponse {
    let (head, body) = res.into_parts();
    let route = head.headers.get(ROUTE_HEADER).and_then(|v| v.to_str().ok()).map(|r| ProxiedRoute(r.to_owned()));
    let status =
        actix_web::http::StatusCode::from_u16(head.status.as_u16()).unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY);
    let mut out = HttpResponse::build(status);
    for (name, value) in &head.headers {
        if forwardable(name.as_str()) && name.as_str() != "content-length" {
            if let (Ok(n), Ok(v)) =
                (HeaderName::from_bytes(name.as_str().as_bytes()), HeaderValue::from_bytes(value.as_bytes()))
            {
                out.append_header((n, v));
            }
        }
    }
    let length = head.headers.get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let mut response = match length {
        Some(len) if len <= BUFFER_UP_TO => match tokio::time::timeout_at(deadline, body.collect()).await {
            Ok(Ok(whole)) => out.body(whole.to_bytes()),
            _ => Problem::new(ErrorCode::BadGateway, "the upstream answer was cut off").error_response(),
        },
        _ => out.streaming(body.into_data_stream()),
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
