//! Logs, traces and request ids. Logs are JSON (pretty on a terminal). With
//! an OTLP endpoint, spans are exported over OTLP/HTTP by a background thread
//! and W3C trace context crosses every hop: HTTP between processes
//! (`traceparent`), and events (the envelope's `trace_context`, also an AMQP
//! header). Without one no OpenTelemetry layer is installed, so spans cost
//! what they did (and `db` spans, at debug level under their own target, are
//! disabled at their call sites).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, Layer, Registry};

/// The target of the spans around database transactions: exported as
/// traces, never logged (unless `RUST_LOG` asks for it).
pub const DB_TARGET: &str = "hometrip::db";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Where and how much to export.
#[derive(Debug, Clone)]
pub struct TraceExport {
    /// OTLP/HTTP base URL (`http://jaeger:4318`); `/v1/traces` is added when
    /// the URL has no path.
    pub endpoint: String,
    /// The share of new traces sampled (0.0–1.0); a request that comes with a
    /// sampling decision keeps it (parent-based).
    pub sample_ratio: f64,
    /// `hometrip-<modules>`.
    pub service_name: String,
}

/// Keeps the exporter alive; dropping it exports what is still queued.
#[must_use]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown_with_timeout(Duration::from_secs(5));
        }
    }
}

/// Installs the global subscriber (later calls install nothing) and the W3C
/// trace-context propagator, and with `traces` an exporter.
pub fn init(default_filter: &str, json: Option<bool>, traces: Option<&TraceExport>) -> Result<Telemetry, String> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let log_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = json.unwrap_or_else(|| !std::io::stderr().is_terminal());
    let logs: Box<dyn Layer<Registry> + Send + Sync> = if json {
        fmt::layer().json().flatten_event(true).with_writer(std::io::stderr).boxed()
    } else {
        fmt::layer().pretty().with_writer(std::io::stderr).boxed()
    };
    let provider = traces.map(exporter).transpose()?;
    let spans = provider.as_ref().map(|p| {
        let filter = Targets::new().with_default(tracing::Level::INFO).with_target(DB_TARGET, tracing::Level::DEBUG);
        tracing_opentelemetry::layer().with_tracer(p.tracer("hometrip")).with_filter(filter)
    });
    let _ = tracing_subscriber::registry().with(logs.with_filter(log_filter)).with(spans).try_init();
    Ok(Telemetry { provider })
}

fn exporter(t: &TraceExport) -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig as _};
    if !(0.0..=1.0).contains(&t.sample_ratio) {
        return Err(format!("telemetry.sample_ratio must be between 0 and 1, not {}", t.sample_ratio));
    }
    let mut url = url::Url::parse(&t.endpoint)
        .map_err(|e| format!("telemetry.otlp_endpoint {:?} is not a URL: {e}", t.endpoint))?;
    if url.path() == "/" || url.path().is_empty() {
        url.set_path("/v1/traces");
    }
    // The batch processor exports from a thread of its own, with a blocking
    // client: no exporter work on the request runtimes.
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("telemetry exporter: {e}"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(http)
        .with_endpoint(url.as_str())
        .build()
        .map_err(|e| format!("telemetry exporter: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(t.service_name.clone()).build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(t.sample_ratio))))
        .with_resource(resource)
        .build())
}

/// Runs `fut` with `id` as the current request id.
pub async fn with_request_id<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The W3C `traceparent` of the current span, to send with a call or an
/// event; `None` when no trace is being recorded (no exporter).
pub fn traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::with_capacity(2);
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the remote span `traceparent` names (a request's
/// header, an event's trace context); a malformed one is ignored.
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(tp) = traceparent.filter(|tp| trace_id(tp).is_some()) else { return };
    let carrier = HashMap::from([("traceparent".to_owned(), tp.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The trace id of a well-formed `traceparent` (`00-<trace>-<span>-<flags>`).
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = parts.next().is_none()
        && hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(span, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && span.bytes().any(|b| b != b'0');
    valid.then_some(trace)
}

/// Names `span` once what it is became known (a request's route pattern is
/// known after routing). tracing-opentelemetry takes `otel.name` only until
/// the span has started, and a span whose context was read (to propagate it)
/// has: the name goes to the OpenTelemetry span itself.
pub fn rename(span: &tracing::Span, name: impl FnOnce() -> String) {
    let cx = span.context();
    if cx.has_active_span() {
        cx.span().update_name(name());
    }
}

/// The trace id of `span` when it is recorded, for log lines.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_traceparents_have_a_trace_id() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id(good), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        for bad in [
            "",
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(trace_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn without_an_exporter_no_trace_context_is_made_up() {
        let span = tracing::info_span!("request");
        set_parent(&span, Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert_eq!(traceparent_of(&span), None);
    }
}
