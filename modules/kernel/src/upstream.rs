//! The replicas of a module this process calls but does not run: balancing,
//! a circuit breaker per replica, passive and active health, and periodic
//! re-resolution of host names (a name that resolves to several addresses is
//! several replicas, so `docker compose --scale booking=3` works). The gateway's
//! proxy and the remote clients of module traits share this stack.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How a request picks among a module's available replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    #[default]
    RoundRobin,
    LeastConnections,
    /// By client address: one client keeps its replica while it is available.
    IpHash,
    /// Smooth weighted round robin over `weights` (one per URL).
    Weighted,
}

/// Breaker and probe tuning; the defaults suit a LAN.
#[derive(Debug, Clone)]
pub struct BreakerSettings {
    /// Consecutive failures that open the circuit.
    pub consecutive_failures: u32,
    /// Failure rate (percent) over `window` that opens it, with at least `min_requests`.
    pub failure_rate_percent: u32,
    pub min_requests: u32,
    pub window: Duration,
    /// How long an open circuit refuses before one probe request may pass.
    pub open_for: Duration,
    /// Active `/health/ready` probes.
    pub probe_every: Duration,
    pub probe_timeout: Duration,
    /// Host names are resolved again this often.
    pub resolve_every: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            consecutive_failures: 5,
            failure_rate_percent: 50,
            min_requests: 20,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(5),
            probe_every: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(800),
            resolve_every: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }

    fn gauge(self) -> f64 {
        match self {
            CircuitState::Closed => 0.0,
            CircuitState::HalfOpen => 1.0,
            CircuitState::Open => 2.0,
        }
    }
}

struct Breaker {
    state: CircuitState,
    consecutive: u32,
    window_start: Instant,
    window_requests: u32,
    window_failures: u32,
    opened_at: Instant,
    /// Half-open: the one request let through is out.
    probing: bool,
}

impl Breaker {
    fn new(now: Instant) -> Self {
        Breaker {
            state: CircuitState::Closed,
            consecutive: 0,
            window_start: now,
            window_requests: 0,
            window_failures: 0,
            opened_at: now,
            probing: false,
        }
    }

    /// Whether a request may go now (and, half-open, takes the probe slot).
    /// Whether [`Self::admit`] would let a request through, without taking
    /// the half-open probe slot.
    fn would_admit(&self, now: Instant, s: &BreakerSettings) -> bool {
        match self.state {
            CircuitState::Closed => true,
            CircuitState::Open => now.duration_since(self.opened_at) >= s.open_for,
            CircuitState::HalfOpen => !self.probing,
        }
    }

    fn admit(&mut self, now: Instant, s: &BreakerSettings) -> bool {
        match self.state {
            CircuitState::Closed => true,
            CircuitState::Open if now.duration_since(self.opened_at) >= s.open_for => {
                self.state = CircuitState::HalfOpen;
                self.probing = true;
                true
            }
            CircuitState::Open => false,
            CircuitState::HalfOpen if !self.probing => {
                self.probing = true;
                true
            }
            CircuitState::HalfOpen => false,
        }
    }

    fn record(&mut self, ok: bool, now: Instant, s: &BreakerSettings) {
        if now.duration_since(self.window_start) >= s.window {
            self.window_start = now;
            self.window_requests = 0;
            self.window_failures = 0;
        }
        self.window_requests += 1;
        if ok {
            self.consecutive = 0;
            if self.state != CircuitState::Closed {
                self.close(now);
            }
            return;
        }
        self.window_failures += 1;
        self.consecutive += 1;
        let rate_tripped = self.window_requests >= s.min_requests
            && self.window_failures * 100 >= self.window_requests * s.failure_rate_percent;
        if self.state == CircuitState::HalfOpen || self.consecutive >= s.consecutive_failures || rate_tripped {
            self.open(now);
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = CircuitState::Open;
        self.opened_at = now;
        self.probing = false;
    }

    fn close(&mut self, now: Instant) {
        self.state = CircuitState::Closed;
        self.consecutive = 0;
        self.probing = false;
        self.window_start = now;
        self.window_requests = 0;
        self.window_failures = 0;
    }

    fn retry_after(&self, now: Instant, s: &BreakerSettings) -> Duration {
        match self.state {
            CircuitState::Open => s.open_for.saturating_sub(now.duration_since(self.opened_at)),
            _ => Duration::ZERO,
        }
    }
}

/// One address of a module.
pub struct Replica {
    /// `http://10.0.0.7:4004`: the resolved address, so a request goes where it was counted.
    pub base: String,
    pub addr: SocketAddr,
    weight: i64,
    in_flight: AtomicUsize,
    /// The last active probe answered (replicas start healthy).
    healthy: AtomicBool,
    /// Probes failed in a row: one slow answer under load is not a verdict.
    probe_failures: AtomicU32,
    breaker: Mutex<Breaker>,
    served: AtomicU64,
}

impl Replica {
    fn new(scheme: &str, addr: SocketAddr, weight: u32) -> Arc<Replica> {
        Arc::new(Replica {
            base: format!("{scheme}://{addr}"),
            addr,
            weight: i64::from(weight.max(1)),
            in_flight: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
            probe_failures: AtomicU32::new(0),
            breaker: Mutex::new(Breaker::new(Instant::now())),
            served: AtomicU64::new(0),
        })
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn state(&self) -> CircuitState {
        self.breaker().state
    }

    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

/// A configured URL: its host is resolved again and again.
#[derive(Debug, Clone)]
struct Target {
    scheme: String,
    host: String,
    port: u16,
    weight: u32,
}

/// No replica of the module can take a request now.
#[derive(Debug, Clone, Copy)]
pub struct Unavailable {
    /// When a replica's circuit may let a request through again.
    pub retry_after: Duration,
}

/// The replicas of one module.
pub struct Upstream {
    pub module: String,
    targets: Vec<Target>,
    balance: Balance,
    settings: BreakerSettings,
    replicas: RwLock<Vec<Arc<Replica>>>,
    next: AtomicUsize,
    /// Smooth weighted round robin: the current weight of each replica.
    wrr: Mutex<Vec<i64>>,
}

/// Probes failed in a row before a replica takes no requests.
const PROBE_FAILURES_TO_DOWN: u32 = 2;

/// What an active health probe saw.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Probe {
    Ready,
    /// Refused: the process is not there.
    Refused,
    /// Not ready, or no answer in time.
    Failed,
}

/// A replica chosen for one request; report how it went.
pub struct Lease {
    pub replica: Arc<Replica>,
    upstream: Arc<Upstream>,
    reported: bool,
}

impl Lease {
    pub fn success(mut self) {
        self.report(true);
    }

    pub fn failure(mut self) {
        self.report(false);
    }

    /// The replica refused the connection: it is down, not slow. The circuit
    /// opens at once, so no other request waits on it.
    pub fn unreachable(mut self) {
        self.reported = true;
        self.upstream.count_call(&self.replica, "refused");
        let mut b = self.replica.breaker();
        b.record(false, Instant::now(), &self.upstream.settings);
        b.open(Instant::now());
        drop(b);
        self.upstream.publish_state(&self.replica);
    }

    fn report(&mut self, ok: bool) {
        self.reported = true;
        self.upstream.count_call(&self.replica, if ok { "ok" } else { "failed" });
        self.replica.breaker().record(ok, Instant::now(), &self.upstream.settings);
        if ok {
            self.replica.served.fetch_add(1, Ordering::Relaxed);
        }
        self.upstream.publish_state(&self.replica);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.replica.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !self.reported {
            // Dropped mid-request (the client went away): no verdict, but a
            // half-open probe slot must not stay taken.
            let mut b = self.replica.breaker();
            if b.state == CircuitState::HalfOpen {
                b.probing = false;
            }
        }
    }
}

/// Parses `http://host:port` URLs (a comma-separated list or one per entry).
pub fn parse_urls(urls: &[String]) -> Result<Vec<(String, String, u16)>, String> {
    let mut out = Vec::new();
    for raw in urls.iter().flat_map(|u| u.split(',')).map(str::trim).filter(|u| !u.is_empty()) {
        let url = url::Url::parse(raw).map_err(|e| format!("{raw}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{raw}: use http:// or https://"));
        }
        if url.path() != "/" || url.query().is_some() {
            return Err(format!("{raw}: a base URL has no path"));
        }
        let host = url.host_str().ok_or_else(|| format!("{raw}: no host"))?.trim_matches(['[', ']']).to_owned();
        let port = url.port_or_known_default().ok_or_else(|| format!("{raw}: no port"))?;
        out.push((url.scheme().to_owned(), host, port));
    }
    Ok(out)
}

impl Upstream {
    /// An upstream over `urls` (`http://booking:4004`), each with its weight
    /// (`weights` empty: 1 each). Names are resolved by [`Upstream::resolve`].
    pub fn new(
        module: &str,
        urls: &[String],
        balance: Balance,
        weights: &[u32],
        settings: BreakerSettings,
    ) -> Result<Arc<Upstream>, String> {
        let parsed = parse_urls(urls)?;
        if parsed.is_empty() {
            return Err("no URL".to_owned());
        }
        if !weights.is_empty() && weights.len() != parsed.len() {
            return Err(format!("{} weights for {} URLs", weights.len(), parsed.len()));
        }
        let targets = parsed
            .into_iter()
            .enumerate()
            .map(|(i, (scheme, host, port))| Target {
                scheme,
                host,
                port,
                weight: weights.get(i).copied().unwrap_or(1),
            })
            .collect();
        Ok(Arc::new(Upstream {
            module: module.to_owned(),
            targets,
            balance,
            settings,
            replicas: RwLock::new(Vec::new()),
            next: AtomicUsize::new(0),
            wrr: Mutex::new(Vec::new()),
        }))
    }

    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    pub fn replicas(&self) -> Vec<Arc<Replica>> {
        self.replicas.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Resolves every URL's host and keeps the replicas (and their breakers)
    /// of addresses that are still there. A name that does not resolve keeps
    /// its last addresses: a DNS hiccup is no outage.
    pub async fn resolve(&self) {
        let current = self.replicas();
        let mut next: Vec<Arc<Replica>> = Vec::new();
        for t in &self.targets {
            let addrs: Vec<SocketAddr> = match t.host.parse::<std::net::IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, t.port)],
                Err(_) => match tokio::net::lookup_host((t.host.as_str(), t.port)).await {
                    Ok(found) => found.collect(),
                    Err(e) => {
                        tracing::warn!(module = %self.module, host = %t.host, error = %e, "upstream name does not resolve");
                        current.iter().filter(|r| r.base.starts_with(&t.scheme)).map(|r| r.addr).collect()
                    }
                },
            };
            for addr in addrs {
                if next.iter().any(|r| r.addr == addr) {
                    continue;
                }
                let kept = current.iter().find(|r| r.addr == addr).cloned();
                next.push(kept.unwrap_or_else(|| Replica::new(&t.scheme, addr, t.weight)));
            }
        }
        let changed = next.len() != current.len() || next.iter().zip(&current).any(|(a, b)| a.addr != b.addr);
        if changed {
            tracing::info!(module = %self.module, replicas = next.len(), "upstream replicas");
            *self.wrr.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = vec![0; next.len()];
            *self.replicas.write().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        }
        for r in self.replicas() {
            self.publish_state(&r);
        }
    }

    /// Re-resolves names and probes `/health/ready` of each replica, forever.
    pub fn spawn_watch(self: &Arc<Self>, http: reqwest::Client) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut last_resolve = Instant::now();
            loop {
                if last_resolve.elapsed() >= this.settings.resolve_every {
                    this.resolve().await;
                    last_resolve = Instant::now();
                }
                let probes = this.replicas().into_iter().map(|r| {
                    let http = http.clone();
                    let timeout = this.settings.probe_timeout;
                    async move {
                        let answer = http.get(format!("{}/health/ready", r.base)).timeout(timeout).send().await;
                        let verdict = match answer {
                            Ok(res) if res.status().is_success() => Probe::Ready,
                            Err(e) if e.is_connect() => Probe::Refused,
                            _ => Probe::Failed,
                        };
                        (r, verdict)
                    }
                });
                for (r, verdict) in futures_util::future::join_all(probes).await {
                    this.probed(&r, verdict);
                }
                tokio::time::sleep(this.settings.probe_every).await;
            }
        })
    }

    /// An active probe's verdict: a failing replica takes no requests; one
    /// answering again gets its half-open trial at once rather than after
    /// the open period.
    fn probed(&self, r: &Replica, verdict: Probe) {
        // Down after two failed probes in a row (a slow answer under load is
        // no proof of death), at once on a refused connection; back at the
        // first answer. Probes never open a circuit (failing requests do): a
        // replica starting up refuses probes, then says "not ready" for a
        // while, and must take requests as soon as it serves.
        let answered = verdict == Probe::Ready;
        let failures = if answered { 0 } else { r.probe_failures.fetch_add(1, Ordering::Relaxed) + 1 };
        if answered {
            r.probe_failures.store(0, Ordering::Relaxed);
        }
        let ok = answered || (verdict == Probe::Failed && failures < PROBE_FAILURES_TO_DOWN);
        let was = r.healthy.swap(ok, Ordering::Relaxed);
        if answered {
            // A ready answer is the trial a half-open circuit waits for: a
            // circuit opened by refused calls while the replica started (the
            // gateway's first OpenAPI fetch) closes within a probe period,
            // instead of admitting one request at a time.
            let mut b = r.breaker();
            if b.state != CircuitState::Closed {
                b.close(Instant::now());
            }
        } else if !ok && was {
            tracing::warn!(module = %self.module, replica = %r.addr, "upstream replica failed its health probe");
        }
        self.publish_state(r);
    }

    /// `upstream_requests_total{module,replica,outcome}`: ok, failed (an
    /// error, a timeout or a 502–504) or refused (the connection).
    fn count_call(&self, r: &Replica, outcome: &'static str) {
        metrics::counter!("upstream_requests_total", "module" => self.module.clone(), "replica" => r.addr.to_string(), "outcome" => outcome)
            .increment(1);
    }

    fn publish_state(&self, r: &Replica) {
        let state = if r.healthy.load(Ordering::Relaxed) { r.state() } else { CircuitState::Open };
        metrics::gauge!("upstream_circuit_state", "module" => self.module.clone(), "replica" => r.addr.to_string())
            .set(state.gauge());
    }

    /// A replica for one request, by the module's balancing rule among the
    /// healthy replicas whose circuit admits it. `key` is the client address
    /// (`ip_hash`). `avoid` skips replicas a retry already tried.
    pub fn pick(self: &Arc<Self>, key: Option<&str>, avoid: &[SocketAddr]) -> Result<Lease, Unavailable> {
        let replicas = self.replicas();
        let now = Instant::now();
        let usable: Vec<usize> = (0..replicas.len())
            .filter(|&i| replicas[i].healthy.load(Ordering::Relaxed) && !avoid.contains(&replicas[i].addr))
            .collect();
        let mut order = self.order(&replicas, &usable, key);
        // When the probes have taken every replica out, the requests still
        // go to those whose circuit admits them (Envoy's "panic mode"): a
        // machine too busy to answer probes in time usually still serves,
        // and the breakers keep out what really fails.
        let panic: Vec<usize> = (0..replicas.len()).filter(|&i| !avoid.contains(&replicas[i].addr)).collect();
        if usable.iter().all(|&i| !replicas[i].breaker().would_admit(now, &self.settings)) {
            order.extend(self.order(&replicas, &panic, key).into_iter().filter(|i| !usable.contains(i)));
        }
        for i in order {
            let r = &replicas[i];
            if r.breaker().admit(now, &self.settings) {
                r.in_flight.fetch_add(1, Ordering::Relaxed);
                return Ok(Lease { replica: Arc::clone(r), upstream: Arc::clone(self), reported: false });
            }
        }
        let retry_after = replicas
            .iter()
            .map(|r| r.breaker().retry_after(now, &self.settings))
            .min()
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_secs(1));
        Err(Unavailable { retry_after })
    }

    /// Candidates in the order to try them: the balancing rule's choice first.
    fn order(&self, replicas: &[Arc<Replica>], usable: &[usize], key: Option<&str>) -> Vec<usize> {
        if usable.is_empty() {
            return Vec::new();
        }
        let n = usable.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let rotated = |first: usize| -> Vec<usize> { (0..n).map(|k| usable[(first + k) % n]).collect() };
        match self.balance {
            Balance::RoundRobin => rotated(start % n),
            Balance::LeastConnections => {
                let mut order = rotated(start % n);
                order.sort_by_key(|&i| replicas[i].in_flight.load(Ordering::Relaxed));
                order
            }
            Balance::IpHash => {
                // Rendezvous hashing: a client's replica changes only when that replica goes.
                let key = key.unwrap_or("");
                let mut order = usable.to_vec();
                order.sort_by_key(|&i| std::cmp::Reverse(rendezvous(key, &replicas[i].addr)));
                order
            }
            Balance::Weighted => {
                let mut wrr = self.wrr.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if wrr.len() != replicas.len() {
                    *wrr = vec![0; replicas.len()];
                }
                let total: i64 = usable.iter().map(|&i| replicas[i].weight).sum();
                for &i in usable {
                    wrr[i] += replicas[i].weight;
                }
                let best = usable.iter().copied().max_by_key(|&i| (wrr[i], std::cmp::Reverse(i))).unwrap_or(usable[0]);
                wrr[best] -= total;
                let mut order = vec![best];
                order.extend(usable.iter().copied().filter(|&i| i != best));
                order
            }
        }
    }

    /// Each replica and its state, for `/health/ready`.
    pub fn status(&self) -> serde_json::Value {
        let current = self.replicas();
        let replicas: Vec<serde_json::Value> = current
            .iter()
            .map(|r| {
                let healthy = r.healthy.load(Ordering::Relaxed);
                serde_json::json!({
                    "replica": r.addr.to_string(),
                    "circuit": r.state().as_str(),
                    "healthy": healthy,
                    "in_flight": r.in_flight.load(Ordering::Relaxed),
                })
            })
            .collect();
        let available =
            self.replicas().iter().any(|r| r.healthy.load(Ordering::Relaxed) && r.state() != CircuitState::Open);
        serde_json::json!({ "module": self.module, "available": available, "replicas": replicas })
    }
}

fn rendezvous(key: &str, addr: &SocketAddr) -> u64 {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same client maps to the same replica in
    // every gateway replica and across restarts.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new_with_keys(0x6874_7269_7000_0001, 0x6874_7269_7000_0002);
    key.hash(&mut h);
    addr.hash(&mut h);
    h.finish()
}

/// The HTTP client every call to another service uses: one pool per process.
/// The client of calls between services; with mutual TLS it trusts only the
/// deployment's CA and presents this process's certificate.
pub fn http_client(tls: Option<&crate::tls::ServiceTls>) -> Result<reqwest::Client, String> {
    let builder = match tls {
        Some(tls) => reqwest::Client::builder().use_preconfigured_tls(tls.client_config()?),
        None => reqwest::Client::builder(),
    };
    builder
        .connect_timeout(Duration::from_secs(2))
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(urls: &[&str], balance: Balance, weights: &[u32]) -> Arc<Upstream> {
        let urls: Vec<String> = urls.iter().map(|u| (*u).to_owned()).collect();
        Upstream::new("booking", &urls, balance, weights, BreakerSettings::default()).unwrap()
    }

    async fn picks(u: &Arc<Upstream>, n: usize, key: Option<&str>) -> Vec<u16> {
        let mut out = Vec::new();
        for _ in 0..n {
            let lease = u.pick(key, &[]).unwrap();
            out.push(lease.replica.addr.port());
            lease.success();
        }
        out
    }

    #[tokio::test]
    async fn round_robin_takes_turns_and_weighted_follows_weights() {
        let u = upstream(&["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"], Balance::RoundRobin, &[]);
        u.resolve().await;
        let mut got = picks(&u, 6, None).await;
        got.sort();
        assert_eq!(got, vec![1, 1, 2, 2, 3, 3]);

        let w = upstream(&["http://127.0.0.1:1", "http://127.0.0.1:2"], Balance::Weighted, &[3, 1]);
        w.resolve().await;
        let got = picks(&w, 8, None).await;
        assert_eq!(got.iter().filter(|&&p| p == 1).count(), 6, "{got:?}");
        // Smooth: the heavy replica never takes all four of a cycle in a row.
        assert!(got.windows(4).all(|win| win.contains(&2)), "{got:?}");
    }

    #[tokio::test]
    async fn ip_hash_keeps_a_client_on_its_replica_and_least_connections_avoids_busy_ones() {
        let u = upstream(&["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"], Balance::IpHash, &[]);
        u.resolve().await;
        let first = picks(&u, 5, Some("203.0.113.9")).await;
        assert!(first.iter().all(|&p| p == first[0]), "{first:?}");
        let spread: std::collections::HashSet<u16> = futures_util::future::join_all((0..40).map(|i| {
            let u = Arc::clone(&u);
            async move { picks(&u, 1, Some(&format!("198.51.100.{i}"))).await[0] }
        }))
        .await
        .into_iter()
        .collect();
        assert!(spread.len() > 1);

        let l = upstream(&["http://127.0.0.1:1", "http://127.0.0.1:2"], Balance::LeastConnections, &[]);
        l.resolve().await;
        let busy = l.pick(None, &[]).unwrap();
        for _ in 0..4 {
            let next = l.pick(None, &[]).unwrap();
            assert_ne!(next.replica.addr, busy.replica.addr);
            next.success();
        }
        busy.success();
    }

    #[tokio::test]
    async fn the_circuit_opens_refuses_then_lets_one_probe_through() {
        let settings = BreakerSettings { open_for: Duration::from_millis(200), ..BreakerSettings::default() };
        let u =
            Upstream::new("listing", &["http://127.0.0.1:9".to_owned()], Balance::RoundRobin, &[], settings).unwrap();
        u.resolve().await;
        for _ in 0..5 {
            u.pick(None, &[]).unwrap().failure();
        }
        assert_eq!(u.replicas()[0].state(), CircuitState::Open);
        let refused = u.pick(None, &[]).err().expect("open circuit refuses");
        assert!(refused.retry_after >= Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(250)).await;
        let probe = u.pick(None, &[]).expect("half-open lets one through");
        assert!(u.pick(None, &[]).is_err(), "only one probe at a time");
        probe.failure();
        assert_eq!(u.replicas()[0].state(), CircuitState::Open);
        tokio::time::sleep(Duration::from_millis(250)).await;
        u.pick(None, &[]).unwrap().success();
        assert_eq!(u.replicas()[0].state(), CircuitState::Closed);
        // A refused connection opens it at once.
        u.pick(None, &[]).unwrap().unreachable();
        assert_eq!(u.replicas()[0].state(), CircuitState::Open);
    }

    #[tokio::test]
    async fn probes_take_slow_replicas_out_but_never_the_last_one_that_serves() {
        let u = upstream(&["http://127.0.0.1:1", "http://127.0.0.1:2"], Balance::RoundRobin, &[]);
        u.resolve().await;
        let (first, second) = (u.replicas()[0].clone(), u.replicas()[1].clone());
        // One slow probe is no verdict; two in a row take a replica out.
        u.probed(&first, Probe::Failed);
        assert!(first.healthy.load(Ordering::Relaxed));
        u.probed(&first, Probe::Failed);
        assert!(!first.healthy.load(Ordering::Relaxed));
        assert_eq!(picks(&u, 4, None).await, [2, 2, 2, 2]);
        // A refused probe is one: out at once. Its circuit is the requests'
        // business: a refused request opens it.
        u.probed(&second, Probe::Refused);
        assert!(!second.healthy.load(Ordering::Relaxed));
        assert_eq!(second.state(), CircuitState::Closed);
        // Every replica out: the requests still go, to those whose circuit admits them.
        assert_eq!(picks(&u, 4, None).await.into_iter().collect::<std::collections::BTreeSet<_>>().len(), 2);
        u.pick(None, &[first.addr]).unwrap().unreachable();
        assert_eq!(second.state(), CircuitState::Open);
        assert_eq!(picks(&u, 3, None).await, [1, 1, 1]);
        // Back at its first answer, its circuit closed.
        u.probed(&first, Probe::Ready);
        assert!(first.healthy.load(Ordering::Relaxed));
        u.probed(&second, Probe::Ready);
        assert_eq!(second.state(), CircuitState::Closed);
    }

    #[tokio::test]
    async fn a_failure_rate_over_the_window_opens_the_circuit() {
        let u = upstream(&["http://127.0.0.1:1"], Balance::RoundRobin, &[]);
        u.resolve().await;
        for i in 0..30 {
            let lease = u.pick(None, &[]);
            let Ok(lease) = lease else { break };
            if i % 2 == 0 {
                lease.failure()
            } else {
                lease.success()
            }
        }
        assert_eq!(u.replicas()[0].state(), CircuitState::Open);
    }

    #[test]
    fn urls_are_checked() {
        assert!(parse_urls(&["http://a:1,http://b:2".to_owned()]).unwrap().len() == 2);
        assert!(parse_urls(&["ftp://a:1".to_owned()]).is_err());
        assert!(parse_urls(&["http://a:1/path".to_owned()]).is_err());
        assert!(Upstream::new("x", &["http://a:1".to_owned()], Balance::Weighted, &[1, 2], BreakerSettings::default())
            .is_err());
    }
}
