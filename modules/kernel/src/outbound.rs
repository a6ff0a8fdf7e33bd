//! The one HTTP client for calls to addresses that users choose (iCal feeds,
//! push endpoints, webhooks): it must not become a way into the deployment's
//! own network (SSRF).
//!
//! Every address is checked where the connection is made, not before: the
//! resolver hands the connector only permitted addresses (so a name cannot
//! resolve to a public address for a check and to a private one for the
//! connection — DNS rebinding), every redirect hop is checked again (IP
//! literals skip the resolver, so they are checked on the URL), IPv4-mapped and
//! 6to4 IPv6 addresses are judged by the IPv4 address they carry, and no proxy
//! from the environment is used (it would resolve the name itself).
//!
//! Errors never carry the URL: feed URLs hold secret tokens (Airbnb's export
//! links do). [`redact_url`] gives what may be logged.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// Deployment-wide rules of outbound calls (`outbound.*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSettings {
    /// Private networks that outbound calls may reach all the same (a calendar
    /// server on the intranet), as addresses or CIDR ranges.
    pub allow_networks: Vec<String>,
    /// How long a name may take to resolve.
    pub dns_timeout_ms: u64,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        OutboundSettings { allow_networks: Vec::new(), dns_timeout_ms: 2000 }
    }
}

/// What one kind of call needs of its client.
#[derive(Debug, Clone)]
pub struct Purpose {
    pub user_agent: &'static str,
    /// The whole request, body included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_redirects: usize,
    /// Private, loopback and link-local addresses too (tests, closed networks).
    pub allow_private: bool,
}

/// Why an outbound call failed, in words that can be shown to the user who
/// gave the URL and logged: never the URL itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("the URL must be http or https with a host")]
    BadUrl,
    #[error("{host} is not a public address")]
    Refused { host: String },
    #[error("{host} could not be resolved")]
    Unresolved { host: String },
    #[error("resolving {host} timed out")]
    DnsTimeout { host: String },
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    #[error("the request timed out")]
    Timeout,
    #[error("could not connect to the server")]
    Connect,
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("the answer is larger than {} KiB", .0 / 1024)]
    TooLarge(usize),
    #[error("the request failed")]
    Transport,
}

/// Which addresses a call may reach.
#[derive(Debug)]
struct AddressRules {
    allow_private: bool,
    allowed: Vec<IpNet>,
    dns_timeout: Duration,
    /// Fixed answers consulted before the system resolver (tests).
    hosts: HashMap<String, Vec<IpAddr>>,
}

impl AddressRules {
    fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allow_private || is_public(ip) || self.allowed.iter().any(|net| net.contains(&ip))
    }

    /// Scheme, and the host when it is an address (those never reach the resolver).
    fn check_url(&self, url: &Url) -> Result<(), OutboundError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::BadUrl);
        }
        let ip = match url.host() {
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(Host::Domain(_)) => return Ok(()),
            None => return Err(OutboundError::BadUrl),
        };
        if self.permits(ip) {
            Ok(())
        } else {
            Err(OutboundError::Refused { host: ip.to_string() })
        }
    }

    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, OutboundError> {
        let found: Vec<IpAddr> = match self.hosts.get(host) {
            Some(fixed) => fixed.clone(),
            None => tokio::time::timeout(self.dns_timeout, tokio::net::lookup_host((host, 0)))
                .await
                .map_err(|_| OutboundError::DnsTimeout { host: host.to_owned() })?
                .map_err(|_| OutboundError::Unresolved { host: host.to_owned() })?
                .map(|a| a.ip())
                .collect(),
        };
        // Judged by what they carry, connected to as they are (a 6to4 answer stays IPv6).
        let permitted: Vec<IpAddr> = found.into_iter().filter(|ip| self.permits(*ip)).collect();
        if permitted.is_empty() {
            return Err(OutboundError::Refused { host: host.to_owned() });
        }
        Ok(permitted)
    }
}

/// The resolver reqwest connects through: only permitted addresses come out.
struct CheckedResolver(Arc<AddressRules>);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let rules = Arc::clone(&self.0);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = rules.resolve(&host).await?;
            // Port 0: the connector puts the URL's port in.
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// An HTTP client for user-chosen URLs. Cheap to clone.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    rules: Arc<AddressRules>,
}

impl Outbound {
    pub fn new(settings: &OutboundSettings, purpose: Purpose) -> Result<Outbound, String> {
        Self::with_hosts(settings, purpose, HashMap::new())
    }

    fn with_hosts(
        settings: &OutboundSettings,
        purpose: Purpose,
        hosts: HashMap<String, Vec<IpAddr>>,
    ) -> Result<Outbound, String> {
        let allowed = parse_networks(&settings.allow_networks).map_err(|e| format!("outbound.allow_networks: {e}"))?;
        let rules = Arc::new(AddressRules {
            allow_private: purpose.allow_private,
            allowed,
            dns_timeout: Duration::from_millis(settings.dns_timeout_ms.max(1)),
            hosts,
        });
        let hop_rules = Arc::clone(&rules);
        let max_redirects = purpose.max_redirects;
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                return attempt.error(OutboundError::TooManyRedirects(max_redirects));
            }
            match hop_rules.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            }
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver(Arc::clone(&rules))))
            .redirect(redirects)
            .timeout(purpose.timeout)
            .connect_timeout(purpose.connect_timeout)
            .user_agent(purpose.user_agent)
            .build()
            .map_err(|e| format!("outbound client: {e}"))?;
        Ok(Outbound { client, rules })
    }

    /// Whether calls to `url` would be allowed (scheme, and a host that is
    /// not a non-public address), without calling it: for URLs users give
    /// to be called later.
    pub fn check(&self, url: &Url) -> Result<(), OutboundError> {
        self.rules.check_url(url)
    }

    /// A GET of `url`, refused before anything is sent when the URL cannot be
    /// allowed (scheme, or a host that is a non-public address).
    pub fn get(&self, url: &Url) -> Result<reqwest::RequestBuilder, OutboundError> {
        self.rules.check_url(url)?;
        Ok(self.client.get(url.clone()))
    }

    /// A request of any method, with the same check as [`Outbound::get`].
    pub fn request(&self, method: reqwest::Method, url: &Url) -> Result<reqwest::RequestBuilder, OutboundError> {
        self.rules.check_url(url)?;
        Ok(self.client.request(method, url.clone()))
    }

    /// Sends a request built by this client; the error says what went wrong
    /// without the URL.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, OutboundError> {
        request.send().await.map_err(explain)
    }
}

/// Reads a body of at most `max` bytes.
pub async fn body_capped(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, OutboundError> {
    if response.content_length().is_some_and(|len| len > max as u64) {
        return Err(OutboundError::TooLarge(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(explain)? {
        if body.len() + chunk.len() > max {
            return Err(OutboundError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Our own refusals travel inside reqwest's error (from the resolver or the
/// redirect policy); anything else is named by its kind.
fn explain(e: reqwest::Error) -> OutboundError {
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        if let Some(ours) = inner.downcast_ref::<OutboundError>() {
            return ours.clone();
        }
        source = inner.source();
    }
    if e.is_timeout() {
        OutboundError::Timeout
    } else if e.is_connect() {
        OutboundError::Connect
    } else {
        OutboundError::Transport
    }
}

/// The URL as it may be logged: scheme, host and port, nothing of the path or
/// query (where secret tokens live).
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}/…", u.scheme()),
            (Some(host), None) => format!("{}://{host}/…", u.scheme()),
            _ => "(a URL without host)".to_owned(),
        },
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// Addresses and CIDR ranges as networks (an address is its own /32 or /128).
pub fn parse_networks(list: &[String]) -> Result<Vec<IpNet>, String> {
    list.iter()
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{entry:?} is not an IP address or CIDR range"))
        })
        .collect()
}

/// The address a mapped or 6to4 IPv6 address stands for.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[0] == 0x2002 {
                // 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
                let [a, b] = s[1].to_be_bytes();
                let [c, d] = s[2].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

/// Whether an address (already [`canonical`]) is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    const NOT_PUBLIC: &[(u32, u8)] = &[
        (0x0000_0000, 8),  // 0.0.0.0/8 "this network" (0.0.0.0 reaches localhost)
        (0x0A00_0000, 8),  // 10/8
        (0x6440_0000, 10), // 100.64/10 carrier-grade NAT
        (0x7F00_0000, 8),  // loopback
        (0xA9FE_0000, 16), // link-local (cloud metadata 169.254.169.254)
        (0xAC10_0000, 12), // 172.16/12
        (0xC000_0000, 24), // 192.0.0/24 protocol assignments
        (0xC000_0200, 24), // TEST-NET-1
        (0xC058_6300, 24), // 6to4 relay anycast
        (0xC0A8_0000, 16), // 192.168/16
        (0xC612_0000, 15), // benchmarking
        (0xC633_6400, 24), // TEST-NET-2
        (0xCB00_7100, 24), // TEST-NET-3
        (0xE000_0000, 4),  // multicast
        (0xF000_0000, 4),  // reserved, broadcast
    ];
    let bits = u32::from(ip);
    !NOT_PUBLIC.iter().any(|(net, len)| bits >> (32 - len) == net >> (32 - len))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    const NOT_PUBLIC: &[(u128, u8)] = &[
        (0, 96),                                         // ::/96: unspecified, loopback, IPv4-compatible
        (0x0000_0000_0000_0000_ffff_0000_0000_0000, 96), // IPv4-translated (SIIT)
        (0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96), // NAT64 (reaches any IPv4 address)
        (0x0064_ff9b_0001_0000_0000_0000_0000_0000, 48), // local-use NAT64
        (0x0100_0000_0000_0000_0000_0000_0000_0000, 64), // discard
        (0x2001_0000_0000_0000_0000_0000_0000_0000, 32), // Teredo
        (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // documentation
        (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7),  // unique local
        (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10), // link-local
        (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10), // site-local (deprecated)
        (0xff00_0000_0000_0000_0000_0000_0000_0000, 8),  // multicast
    ];
    let bits = u128::from(ip);
    !NOT_PUBLIC.iter().any(|(net, len)| bits >> (128 - len) == net >> (128 - len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "::ffff:0:7f00:1",
            "64:ff9b::808:808",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip(s)), "{s} should not be public");
        }
        for s in
            ["8.8.8.8", "1.1.1.1", "93.184.216.34", "::ffff:8.8.8.8", "2a00:1450:4007:80e::200e", "2002:808:808::1"]
        {
            assert!(is_public(ip(s)), "{s} should be public");
        }
    }

    #[test]
    fn mapped_addresses_are_judged_as_ipv4() {
        assert_eq!(canonical(ip("::ffff:192.168.0.1")), ip("192.168.0.1"));
        assert_eq!(canonical(ip("2002:c0a8:1::")), ip("192.168.0.1"));
        assert_eq!(canonical(ip("2a00::1")), ip("2a00::1"));
    }

    #[test]
    fn redacted_urls_keep_only_the_origin() {
        assert_eq!(
            redact_url("https://www.airbnb.com/calendar/ical/123.ics?s=secret-token"),
            "https://www.airbnb.com/…"
        );
        assert_eq!(redact_url("http://127.0.0.1:8080/a?t=x"), "http://127.0.0.1:8080/…");
        assert_eq!(redact_url("nonsense"), "(not a URL)");
    }

    fn purpose(allow_private: bool) -> Purpose {
        Purpose {
            user_agent: "test",
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            max_redirects: 3,
            allow_private,
        }
    }

    /// A server on a loopback address answering every request with `status` and `location`.
    async fn serve(ip: &str, status: u16, location: Option<String>) -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let location = location.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let _ = socket.read(&mut buf).await;
                    let extra = location.map(|l| format!("Location: {l}\r\n")).unwrap_or_default();
                    let reply =
                        format!("HTTP/1.1 {status} X\r\n{extra}Content-Length: 2\r\nConnection: close\r\n\r\nok");
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        });
        addr
    }

    fn hosts(pairs: &[(&str, &str)]) -> HashMap<String, Vec<IpAddr>> {
        pairs.iter().map(|(h, a)| ((*h).to_owned(), vec![ip(a)])).collect()
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_a_private_address_is_never_connected_to() {
        let addr = serve("127.0.0.1", 200, None).await;
        let settings = OutboundSettings::default();
        // The "rebinding" name answers loopback, as a hostile DNS server would
        // after a first public answer: the connection uses this answer, and it is refused.
        for answer in ["127.0.0.1", "::ffff:127.0.0.1", "0.0.0.0"] {
            let client = Outbound::with_hosts(&settings, purpose(false), hosts(&[("rebind.test", answer)])).unwrap();
            let url = Url::parse(&format!("http://rebind.test:{}/feed.ics?token=secret", addr.port())).unwrap();
            let err = client.send(client.get(&url).unwrap()).await.unwrap_err();
            assert_eq!(err, OutboundError::Refused { host: "rebind.test".into() }, "{answer}");
            assert!(!err.to_string().contains("secret"));
        }
        // Allowed explicitly, the same name connects.
        let open = OutboundSettings { allow_networks: vec!["127.0.0.0/8".into()], ..settings };
        let client = Outbound::with_hosts(&open, purpose(false), hosts(&[("rebind.test", "127.0.0.1")])).unwrap();
        let url = Url::parse(&format!("http://rebind.test:{}/", addr.port())).unwrap();
        assert_eq!(client.send(client.get(&url).unwrap()).await.unwrap().status(), 200);
    }

    #[tokio::test]
    async fn address_literals_are_refused_before_sending() {
        let client = Outbound::new(&OutboundSettings::default(), purpose(false)).unwrap();
        for url in ["http://127.0.0.1/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "http://[64:ff9b::a00:1]/"] {
            let err = client.get(&Url::parse(url).unwrap()).unwrap_err();
            assert!(matches!(err, OutboundError::Refused { .. }), "{url}: {err:?}");
        }
        assert_eq!(client.get(&Url::parse("ftp://example.com/").unwrap()).unwrap_err(), OutboundError::BadUrl);
    }

    #[tokio::test]
    async fn every_redirect_hop_is_checked() {
        let target = serve("127.0.0.1", 200, None).await;
        // Only 127.0.0.2 is allowed: the first hop; it redirects to localhost (127.0.0.1, ::1).
        let settings = OutboundSettings { allow_networks: vec!["127.0.0.2/32".into()], ..OutboundSettings::default() };
        let client = Outbound::new(&settings, purpose(false)).unwrap();
        let direct = serve("127.0.0.2", 200, None).await;
        let url = Url::parse(&format!("http://127.0.0.2:{}/", direct.port())).unwrap();
        assert_eq!(client.send(client.get(&url).unwrap()).await.unwrap().status(), 200);

        let to_name = serve("127.0.0.2", 302, Some(format!("http://localhost:{}/", target.port()))).await;
        let url = Url::parse(&format!("http://127.0.0.2:{}/", to_name.port())).unwrap();
        let err = client.send(client.get(&url).unwrap()).await.unwrap_err();
        assert_eq!(err, OutboundError::Refused { host: "localhost".into() });

        let to_literal = serve("127.0.0.2", 302, Some(format!("http://[::ffff:127.0.0.1]:{}/", target.port()))).await;
        let url = Url::parse(&format!("http://127.0.0.2:{}/", to_literal.port())).unwrap();
        let err = client.send(client.get(&url).unwrap()).await.unwrap_err();
        assert_eq!(err, OutboundError::Refused { host: "::ffff:127.0.0.1".into() });

        let looping = serve("127.0.0.1", 302, Some("/again".to_owned())).await;
        let open = Outbound::new(&OutboundSettings::default(), purpose(true)).unwrap();
        let url = Url::parse(&format!("http://127.0.0.1:{}/", looping.port())).unwrap();
        assert_eq!(open.send(open.get(&url).unwrap()).await.unwrap_err(), OutboundError::TooManyRedirects(3));
    }
}
