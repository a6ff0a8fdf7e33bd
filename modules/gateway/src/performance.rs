//! `GET /api/v1/admin/performance`: the operators' view of this process,
//! read from its own Prometheus metrics: per route, requests, error rates
//! and latency percentiles (interpolated within the histogram's buckets);
//! per store, database transactions and the slow ones (over 100 ms); the
//! outbox's backlog and lag. The gateway's process records every public
//! request with the route pattern of the module that served it, so in the
//! split its routes cover the whole platform; its database figures are its
//! own (each process's are on its `/metrics`).
//!
//! The exposition format is read by hand: the parser crates at hand stop a
//! label value at its first `}`, and route patterns (`/listings/{id}`) are
//! full of them.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::Problem;
use serde::Serialize;

use crate::ops::Ops;

/// A transaction slower than this counts as slow.
const SLOW_SECS: f64 = 0.1;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RouteFigures {
    pub method: String,
    pub route: String,
    pub requests: u64,
    /// Share of answers 500 and above.
    pub error_rate: f64,
    /// Share of answers 400 to 499.
    pub client_error_rate: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoreFigures {
    /// The code that ran the transactions (`hometrip_example::store`).
    pub store: String,
    pub transactions: u64,
    pub mean_ms: f64,
    pub p99_ms: f64,
    /// Transactions over 100 ms.
    pub slow: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Performance {
    /// Busiest first.
    pub routes: Vec<RouteFigures>,
    pub database: Vec<StoreFigures>,
    /// Events not yet delivered, and the age of the oldest (the relay's lag).
    pub outbox_pending: f64,
    pub outbox_lag_seconds: f64,
    pub dead_letters_pending: f64,
}

/// A cumulative histogram, merged from several label sets.
#[derive(Default)]
struct Merged {
    buckets: BTreeMap<u64, f64>,
    sum: f64,
}

impl Merged {
    fn add(&mut self, bound: f64, count: f64) {
        *self.buckets.entry(bound.to_bits()).or_default() += count;
    }

    fn sorted(&self) -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = self.buckets.iter().map(|(k, c)| (f64::from_bits(*k), *c)).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }

    fn count(&self) -> f64 {
        self.sorted().last().map(|(_, c)| *c).unwrap_or(0.0)
    }

    /// The `q` quantile, linear within its bucket (as PromQL's
    /// `histogram_quantile`); the largest finite bound when it falls past it.
    fn quantile(&self, q: f64) -> f64 {
        let buckets = self.sorted();
        let total = self.count();
        if total == 0.0 {
            return 0.0;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for (bound, cumulative) in &buckets {
            if *cumulative >= rank {
                if bound.is_infinite() {
                    return lower;
                }
                let inside = cumulative - below;
                return if inside == 0.0 { *bound } else { lower + (bound - lower) * (rank - below) / inside };
            }
            (lower, below) = (*bound, *cumulative);
        }
        lower
    }

    fn at_or_below(&self, bound: f64) -> f64 {
        self.sorted().iter().rev().find(|(b, _)| *b <= bound).map(|(_, c)| *c).unwrap_or(0.0)
    }
}

fn ms(secs: f64) -> f64 {
    (secs * 100_000.0).round() / 100.0
}

/// One sample line: its name, labels and value.
struct Line {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses a sample line of the text exposition format (`name{k="v",...} value`),
/// label values quoted with `\\`, `\"` and `\n` escapes. Comments and
/// malformed lines are `None`.
fn parse_line(line: &str) -> Option<Line> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        loop {
            // Key up to '=', or the end of the labels.
            let mut key = String::new();
            let mut closed = false;
            for (_, c) in chars.by_ref() {
                match c {
                    '}' => {
                        closed = true;
                        break;
                    }
                    '=' => break,
                    ',' | ' ' => {}
                    c => key.push(c),
                }
            }
            if closed {
                let consumed = chars.peek().map(|(i, _)| *i).unwrap_or(after.len());
                rest = &after[consumed..];
                break;
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return None;
            }
            let mut value = String::new();
            let mut escaped = false;
            loop {
                let (_, c) = chars.next()?;
                match (escaped, c) {
                    (true, 'n') => {
                        value.push('\n');
                        escaped = false;
                    }
                    (true, c) => {
                        value.push(c);
                        escaped = false;
                    }
                    (false, '\\') => escaped = true,
                    (false, '"') => break,
                    (false, c) => value.push(c),
                }
            }
            labels.insert(key, value);
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Line { name, labels, value })
}

/// Reads the figures out of Prometheus text.
pub fn figures(text: &str) -> Result<Performance, String> {
    let mut routes: BTreeMap<(String, String), (Merged, f64, f64)> = BTreeMap::new();
    let mut stores: BTreeMap<String, Merged> = BTreeMap::new();
    let (mut pending, mut lag, mut parked) = (0.0, 0.0, 0.0);
    for s in text.lines().filter_map(parse_line) {
        let label = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
        let le = || label("le").parse::<f64>().ok().or_else(|| (label("le") == "+Inf").then_some(f64::INFINITY));
        match s.name.as_str() {
            "http_request_duration_seconds_bucket" => {
                let Some(bound) = le() else { continue };
                let status: u16 = label("status_code").parse().unwrap_or(0);
                let entry = routes.entry((label("method"), label("route"))).or_default();
                entry.0.add(bound, s.value);
                if bound.is_infinite() && status >= 500 {
                    entry.1 += s.value;
                } else if bound.is_infinite() && status >= 400 {
                    entry.2 += s.value;
                }
            }
            "http_request_duration_seconds_sum" => {
                routes.entry((label("method"), label("route"))).or_default().0.sum += s.value;
            }
            "db_transaction_duration_seconds_bucket" => {
                let Some(bound) = le() else { continue };
                stores.entry(label("store")).or_default().add(bound, s.value);
            }
            "db_transaction_duration_seconds_sum" => stores.entry(label("store")).or_default().sum += s.value,
            "events_outbox_pending" => pending = s.value,
            "events_outbox_oldest_age_seconds" => lag = s.value,
            "events_dead_letters_pending" => parked = s.value,
            _ => {}
        }
    }
    let mut routes: Vec<RouteFigures> = routes
        .into_iter()
        .filter(|(_, (m, _, _))| m.count() > 0.0)
        .map(|((method, route), (m, errors, client_errors))| {
            let n = m.count();
            RouteFigures {
                method,
                route,
                requests: n as u64,
                error_rate: ((errors / n) * 10_000.0).round() / 10_000.0,
                client_error_rate: ((client_errors / n) * 10_000.0).round() / 10_000.0,
                mean_ms: ms(m.sum / n),
                p50_ms: ms(m.quantile(0.50)),
                p95_ms: ms(m.quantile(0.95)),
                p99_ms: ms(m.quantile(0.99)),
            }
        })
        .collect();
    routes.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.route.cmp(&b.route)));
    let database = stores
        .into_iter()
        .filter(|(_, m)| m.count() > 0.0)
        .map(|(store, m)| {
            let n = m.count();
            StoreFigures {
                store,
                transactions: n as u64,
                mean_ms: ms(m.sum / n),
                p99_ms: ms(m.quantile(0.99)),
                slow: (n - m.at_or_below(SLOW_SECS)).max(0.0) as u64,
            }
        })
        .collect();
    Ok(Performance { routes, database, outbox_pending: pending, outbox_lag_seconds: lag, dead_letters_pending: parked })
}

async fn performance(ops: web::Data<Ops>, user: AuthUser) -> Result<HttpResponse, Problem> {
    user.require_admin()?;
    // The outbox gauges are read from the database when asked for.
    if let Err(e) = ops.bus.observe().await {
        tracing::warn!(error = %e, "outbox figures");
    }
    let figures = figures(&ops.metrics.render()).map_err(Problem::internal)?;
    Ok(HttpResponse::Ok().json(figures))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/admin/performance", web::get().to(performance));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_keep_their_braces_commas_and_escapes() {
        let l = parse_line(r#"m_bucket{route="/a/{id}/b,c",q="say \"hi\"",le="+Inf"} 7"#).unwrap();
        assert_eq!(l.name, "m_bucket");
        assert_eq!(l.labels["route"], "/a/{id}/b,c");
        assert_eq!(l.labels["q"], "say \"hi\"");
        assert_eq!(l.value, 7.0);
        assert!(parse_line("# TYPE m histogram").is_none());
        assert_eq!(parse_line("up 1").unwrap().value, 1.0);
    }

    #[test]
    fn routes_and_stores_are_read_from_the_histograms() {
        let text = r#"# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{method="GET",route="/api/v1/listings/{id}",status_code="200",le="0.01"} 90
http_request_duration_seconds_bucket{method="GET",route="/api/v1/listings/{id}",status_code="200",le="0.1"} 98
http_request_duration_seconds_bucket{method="GET",route="/api/v1/listings/{id}",status_code="200",le="+Inf"} 98
http_request_duration_seconds_sum{method="GET",route="/api/v1/listings/{id}",status_code="200"} 0.5
http_request_duration_seconds_count{method="GET",route="/api/v1/listings/{id}",status_code="200"} 98
http_request_duration_seconds_bucket{method="GET",route="/api/v1/listings/{id}",status_code="500",le="0.01"} 0
http_request_duration_seconds_bucket{method="GET",route="/api/v1/listings/{id}",status_code="500",le="0.1"} 2
http_request_duration_seconds_bucket{method="GET",route="/api/v1/listings/{id}",status_code="500",le="+Inf"} 2
http_request_duration_seconds_sum{method="GET",route="/api/v1/listings/{id}",status_code="500"} 0.1
http_request_duration_seconds_count{method="GET",route="/api/v1/listings/{id}",status_code="500"} 2
# TYPE db_transaction_duration_seconds histogram
db_transaction_duration_seconds_bucket{store="hometrip_example::store",le="0.1"} 9
db_transaction_duration_seconds_bucket{store="hometrip_example::store",le="+Inf"} 10
db_transaction_duration_seconds_sum{store="hometrip_example::store"} 0.9
db_transaction_duration_seconds_count{store="hometrip_example::store"} 10
# TYPE events_outbox_pending gauge
events_outbox_pending 3
"#;
        let p = figures(text).unwrap();
        let r = &p.routes[0];
        assert_eq!((r.requests, r.error_rate), (100, 0.02));
        assert_eq!(r.mean_ms, 6.0);
        assert!(r.p50_ms > 0.0 && r.p50_ms <= 10.0, "{}", r.p50_ms);
        assert!(r.p99_ms > 10.0 && r.p99_ms <= 100.0, "{}", r.p99_ms);
        assert_eq!((p.database[0].transactions, p.database[0].slow), (10, 1));
        assert_eq!(p.outbox_pending, 3.0);
    }
}
