//! HTTP plumbing shared by every module: extractor configurations whose errors
//! are problem+json instead of actix's plain text, validation mapping, the
//! service-credential guard of internal routes, and health/readiness types.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, HttpRequest};

use crate::error::{ErrorCode, FieldError, Problem};

/// Largest JSON body accepted anywhere (uploads use multipart with their own limits).
pub const JSON_LIMIT: usize = 64 * 1024;

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().limit(JSON_LIMIT).error_handler(|err, _req| json_error(err).into())
}

fn json_error(err: JsonPayloadError) -> Problem {
    match err {
        JsonPayloadError::ContentType => {
            Problem::new(ErrorCode::UnsupportedMediaType, "expected Content-Type: application/json")
        }
        JsonPayloadError::Overflow { limit } | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            Problem::new(ErrorCode::PayloadTooLarge, format!("JSON body larger than {limit} bytes"))
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            // Missing fields and wrong types: a validation problem naming the field when serde says it.
            let msg = e.to_string();
            let field = msg
                .split('`')
                .nth(1)
                .filter(|_| msg.starts_with("missing field") || msg.starts_with("unknown field"))
                .unwrap_or("body")
                .to_owned();
            Problem::validation(vec![FieldError::new(field, msg)])
        }
        JsonPayloadError::Deserialize(e) => Problem::new(ErrorCode::MalformedJson, e.to_string()),
        other => Problem::new(ErrorCode::BadRequest, other.to_string()),
    }
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let detail = match &err {
            QueryPayloadError::Deserialize(e) => e.to_string(),
            other => other.to_string(),
        };
        Problem::new(ErrorCode::InvalidQuery, detail).into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| {
        let detail = match &err {
            PathError::Deserialize(e) => e.to_string(),
            other => other.to_string(),
        };
        Problem::new(ErrorCode::InvalidPath, detail).into()
    })
}

/// Maps `validator` errors to a 422 listing each field.
pub fn validation_problem(errors: &validator::ValidationErrors) -> Problem {
    let mut list = Vec::new();
    for (field, errs) in errors.field_errors() {
        for e in errs {
            let message = e.message.as_ref().map(|m| m.to_string()).unwrap_or_else(|| e.code.to_string());
            list.push(FieldError::new(field.to_string(), message));
        }
    }
    list.sort_by(|a, b| a.field.cmp(&b.field));
    Problem::validation(list)
}

/// Validates a request body with its `validator` rules.
pub fn validate(value: &impl validator::Validate) -> Result<(), Problem> {
    value.validate().map_err(|e| validation_problem(&e))
}

/// Marks a response as a web page (an extension of the response): the
/// edge turns error responses into problem+json, except pages, which are
/// HTML at every status.
#[derive(Debug, Clone, Copy)]
pub struct HtmlPage;

/// Proxies whose `X-Forwarded-For` is believed (addresses or CIDR ranges).
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    pub fn parse(list: &[String]) -> Result<Self, String> {
        crate::outbound::parse_networks(list).map(TrustedProxies)
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// The client address, for per-IP limits. `X-Forwarded-For` is read only when
/// the peer is a trusted proxy, and then from the right, one hop at a time:
/// each entry was written by the hop to its right, so an entry is believed
/// only while the hop that wrote it is a trusted proxy. The first untrusted
/// entry is the client; when every entry is trusted, the leftmost is; an entry
/// that is not an address ends the walk at the trusted hop that wrote it.
/// Nothing to the left of the last trusted writer is ever used: the client
/// can write anything there.
pub fn client_ip(req: &HttpRequest, trusted: &TrustedProxies) -> String {
    if let Some(forwarded) = req.headers().get(CLIENT_IP_HEADER).and_then(|v| v.to_str().ok()) {
        if let (Ok(ip), true) = (forwarded.parse::<std::net::IpAddr>(), from_service(req)) {
            return unmapped(ip).to_string();
        }
    }
    let Some(peer) = req.peer_addr().map(|a| unmapped(a.ip())) else {
        return "unknown".to_owned();
    };
    if !trusted.contains(peer) {
        return peer.to_string();
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // An address, or an address with a port (`1.2.3.4:5678`, `[::1]:80`).
        let parsed = hop.parse::<std::net::IpAddr>().or_else(|_| hop.parse::<std::net::SocketAddr>().map(|a| a.ip()));
        let Ok(ip) = parsed else { break };
        client = unmapped(ip);
        if !trusted.contains(client) {
            break;
        }
    }
    client.to_string()
}

/// What per-address limits count under: an IPv4 address, or the /64 network
/// of an IPv6 address (one subscriber holds a whole /64, so counting single
/// addresses would give it 2^64 budgets).
pub fn limit_subject(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
        _ => ip.to_owned(),
    }
}

/// An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer)
/// as the IPv4 address it is; every other address as it is.
fn unmapped(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}

/// Header carrying the service credential on internal (module-to-module) calls.
pub const SERVICE_TOKEN_HEADER: &str = "x-hometrip-service-token";
/// Header carrying the original caller's id on internal calls.
pub const CALLER_HEADER: &str = "x-hometrip-caller";
/// The caller the gateway verified (`<account id>;<session id>;<role>,<role>`),
/// believed only with the service credential beside it.
pub const FORWARDED_USER_HEADER: &str = "x-hometrip-user";
/// The client address the gateway saw, believed only with the service credential.
pub const CLIENT_IP_HEADER: &str = "x-hometrip-client-ip";

/// Whether the request carries this deployment's service credential: it came
/// from the gateway or another module, which vouch for its forwarded headers.
pub fn from_service(req: &HttpRequest) -> bool {
    let expected = req.app_data::<web::Data<ServiceToken>>();
    let given = req.headers().get(SERVICE_TOKEN_HEADER).and_then(|v| v.to_str().ok());
    matches!((expected, given), (Some(e), Some(g)) if !e.0.is_empty() && constant_time_eq(e.0.as_bytes(), g.as_bytes()))
}

/// The public base URL of the deployment (links in emails and feeds).
#[derive(Clone, Debug)]
pub struct PublicUrl(pub String);

/// Shared secret of the services of one deployment.
#[derive(Clone)]
pub struct ServiceToken(pub String);

/// Guard of internal routes: the request carries the deployment's service credential.
pub struct InternalCaller;

impl actix_web::FromRequest for InternalCaller {
    type Error = Problem;
    type Future = std::future::Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let expected = req.app_data::<web::Data<ServiceToken>>();
        let given = req.headers().get(SERVICE_TOKEN_HEADER).and_then(|v| v.to_str().ok());
        std::future::ready(match (expected, given) {
            (Some(e), Some(g)) if constant_time_eq(e.0.as_bytes(), g.as_bytes()) => Ok(InternalCaller),
            _ => Err(Problem::new(ErrorCode::Unauthenticated, "service credential required")),
        })
    }
}

/// Equality whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Cursor pagination: `?limit=&cursor=` → `{items, next_cursor}`.
#[derive(Debug, Clone, serde::Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<i64, Problem> {
        match self.limit {
            None => Ok(20),
            Some(n @ 1..=100) => Ok(i64::from(n)),
            Some(_) => Err(Problem::field("limit", "must be between 1 and 100")),
        }
    }

    /// The cursor is the last id of the previous page.
    pub fn cursor_id(&self) -> Result<Option<crate::Id>, Problem> {
        self.cursor
            .as_deref()
            .map(|c| c.parse().map_err(|_| Problem::field("cursor", "not a valid cursor")))
            .transpose()
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Reads the files sent under `field` of a multipart body: at most `max_files`,
/// each at most `max_bytes` (413 past that). A body that is not multipart is
/// answered 415.
pub async fn read_multipart_files(
    mut payload: actix_multipart::Multipart,
    field: &str,
    max_bytes: usize,
    max_files: usize,
) -> Result<Vec<Vec<u8>>, Problem> {
    use futures_util::TryStreamExt;
    let mut files = Vec::new();
    // Other fields are drained and ignored, within the same overall budget.
    let mut budget = max_bytes.saturating_mul(max_files + 1);
    let too_large = || Problem::new(ErrorCode::PayloadTooLarge, "the upload is too large");
    loop {
        let next = payload.try_next().await.map_err(multipart_problem)?;
        let Some(mut part) = next else { break };
        if part.name() != Some(field) {
            while let Some(chunk) = part.try_next().await.map_err(multipart_problem)? {
                budget = budget.checked_sub(chunk.len()).ok_or_else(too_large)?;
            }
            continue;
        }
        if files.len() == max_files {
            return Err(Problem::new(ErrorCode::PayloadTooLarge, format!("at most {max_files} files per request")));
        }
        let mut buf = Vec::new();
        while let Some(chunk) = part.try_next().await.map_err(multipart_problem)? {
            if buf.len() + chunk.len() > max_bytes {
                return Err(Problem::new(
                    ErrorCode::PayloadTooLarge,
                    format!("each file must be at most {} KiB", max_bytes / 1024),
                ));
            }
            budget = budget.checked_sub(chunk.len()).ok_or_else(too_large)?;
            buf.extend_from_slice(&chunk);
        }
        if !buf.is_empty() {
            files.push(buf);
        }
    }
    if files.is_empty() {
        return Err(Problem::field(field, "a file is required"));
    }
    Ok(files)
}

fn multipart_problem(e: actix_multipart::MultipartError) -> Problem {
    use actix_multipart::MultipartError as M;
    match e {
        M::ContentTypeMissing | M::ContentTypeParse | M::ContentTypeIncompatible | M::BoundaryMissing => {
            Problem::new(ErrorCode::UnsupportedMediaType, "expected a multipart/form-data body")
        }
        M::Payload(actix_web::error::PayloadError::Overflow) => {
            Problem::new(ErrorCode::PayloadTooLarge, "the upload is too large")
        }
        other => Problem::new(ErrorCode::BadRequest, format!("malformed multipart body: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() -> Result<(), String> {
        use actix_web::test::TestRequest;
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".to_owned(), "192.168.1.1".to_owned()])?;
        let via = |peer: [u8; 4], xff: &str| {
            let req = TestRequest::default()
                .peer_addr(std::net::SocketAddr::from((peer, 4000)))
                .insert_header(("x-forwarded-for", xff))
                .to_http_request();
            client_ip(&req, &trusted)
        };
        // A direct client cannot choose its address.
        assert_eq!(via([203, 0, 113, 9], "1.2.3.4"), "203.0.113.9");
        // Behind the proxy: the rightmost untrusted hop, whatever the client prepended.
        assert_eq!(via([10, 1, 2, 3], "6.6.6.6, 198.51.100.7"), "198.51.100.7");
        assert_eq!(via([192, 168, 1, 1], "198.51.100.7, 10.9.9.9"), "198.51.100.7");
        assert_eq!(via([10, 1, 2, 3], "garbage"), "10.1.2.3");
        // Every hop trusted: the leftmost one a trusted proxy wrote.
        assert_eq!(via([10, 1, 2, 3], "10.7.7.7, 10.8.8.8"), "10.7.7.7");
        // An entry that is not an address stops the walk: what is left of it
        // was not written by a trusted proxy.
        assert_eq!(via([10, 1, 2, 3], "6.6.6.6, not-an-ip, 10.8.8.8"), "10.8.8.8");
        assert_eq!(via([10, 1, 2, 3], "10.0.0.9, unknown"), "10.1.2.3");
        // Mapped IPv6 addresses count as the IPv4 address they carry; others stay IPv6.
        assert_eq!(via([10, 1, 2, 3], "198.51.100.7, ::ffff:10.9.9.9"), "198.51.100.7");
        assert_eq!(via([10, 1, 2, 3], "10.0.0.1, 2002:a00:1::1"), "2002:a00:1::1");
        // Proxies that write the client's port.
        assert_eq!(via([10, 1, 2, 3], "198.51.100.7:5123"), "198.51.100.7");
        assert_eq!(via([10, 1, 2, 3], "[2001:db8::7]:443"), "2001:db8::7");
        assert!(TrustedProxies::parse(&["not-an-ip".to_owned()]).is_err());
        Ok(())
    }

    #[test]
    fn limits_count_ipv6_clients_by_their_network() {
        assert_eq!(limit_subject("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(limit_subject("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
        assert_eq!(limit_subject("203.0.113.9"), "203.0.113.9");
        assert_eq!(limit_subject("unknown"), "unknown");
    }

    #[test]
    fn page_limits_are_bounded() {
        let q = |limit| PageQuery { limit, cursor: None };
        assert_eq!(q(None).limit().ok(), Some(20));
        assert_eq!(q(Some(100)).limit().ok(), Some(100));
        assert!(q(Some(0)).limit().is_err());
        assert!(q(Some(101)).limit().is_err());
    }
}
