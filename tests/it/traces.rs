//! Traces: a local OTLP/HTTP receiver (protobuf, as Jaeger and collectors
//! take it) collects every process's spans. A booking paid by card is one
//! trace from the gateway's request through payment, the events it causes and
//! the calendar projection; in the split shape that crosses four processes
//! and RabbitMQ, in one process the in-process relay.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpResponse};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;

use crate::shape::is_split;
use crate::support::*;

#[derive(Debug, Clone)]
struct Recorded {
    service: String,
    trace_id: String,
    name: String,
    /// OTLP's `SpanKind`: 2 server, 3 client, 5 consumer.
    kind: i32,
}

const SERVER: i32 = 2;
const CONSUMER: i32 = 5;

/// An OTLP/HTTP receiver on loopback; its base URL and what it received.
fn collector() -> (String, Arc<Mutex<Vec<Recorded>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let store = spans.clone();
    let url = local_server(move |cfg| {
        let store = store.clone();
        cfg.app_data(web::PayloadConfig::new(16 << 20)).route(
            "/v1/traces",
            web::post().to(move |body: web::Bytes| {
                let store = store.clone();
                async move {
                    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                        return HttpResponse::BadRequest().finish();
                    };
                    let mut spans = store.lock().unwrap();
                    for resource in request.resource_spans {
                        let service = resource
                            .resource
                            .iter()
                            .flat_map(|r| &r.attributes)
                            .find(|kv| kv.key == "service.name")
                            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                            .map(|v| match v {
                                AnyValue::StringValue(s) => s.clone(),
                                other => format!("{other:?}"),
                            })
                            .unwrap_or_default();
                        for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                            spans.push(Recorded {
                                service: service.clone(),
                                trace_id: hex(&span.trace_id),
                                name: span.name,
                                kind: span.kind,
                            });
                        }
                    }
                    HttpResponse::Ok().content_type("application/x-protobuf").body(Vec::new())
                }
            }),
        );
    });
    (url, spans)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_booking_paid_by_card_is_one_trace_across_processes_and_the_bus() {
    let (endpoint, spans) = collector();
    let server = Server::start_with(&[
        ("HOMETRIP_TELEMETRY__OTLP_ENDPOINT", endpoint.as_str()),
        ("HOMETRIP_TELEMETRY__SAMPLE_RATIO", "1"),
        // Export every 100 ms instead of every 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        // Every span kept: under load a full queue (2,048 by default, filled
        // by health checks and outbox polls at this ratio) drops the payment's.
        ("OTEL_BSP_MAX_QUEUE_SIZE", "65536"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2048"),
    ])
    .await;
    let (host, _) = server.client().signed_up(&unique_email("trace-host")).await;
    let (guest, _) = server.client().signed_up(&unique_email("trace-guest")).await;
    let listing = publish_listing(&server, &host, house("Maison tracée")).await;
    book_and_pay(&guest, &listing, 30).await;

    // The payment request's trace, once every part of it has been exported.
    let wanted: &[&str] = if is_split() {
        &["hometrip-gateway", "hometrip-payment", "hometrip-booking", "hometrip-listing"]
    } else {
        &["hometrip"]
    };
    let mut trace = Vec::new();
    // A loaded 2-core machine can take a while to export every process's part.
    for _ in 0..patience(200) {
        let all = spans.lock().unwrap().clone();
        let paying: Vec<&Recorded> =
            all.iter().filter(|s| s.kind == SERVER && s.name == "POST /api/v1/bookings/{id}/payment").collect();
        for root in paying {
            let same: Vec<Recorded> = all.iter().filter(|s| s.trace_id == root.trace_id).cloned().collect();
            let services_all_there = wanted.iter().all(|w| same.iter().any(|s| s.service == *w));
            let delivered = |event: &str| same.iter().any(|s| s.kind == CONSUMER && s.name == event);
            if services_all_there && delivered("payment.succeeded") && delivered("booking.confirmed") {
                trace = same;
            }
        }
        if !trace.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen: Vec<(String, String)> =
        spans.lock().unwrap().iter().map(|s| (s.service.clone(), s.name.clone())).collect();
    assert!(!trace.is_empty(), "no trace of the payment across {wanted:?} with its deliveries; spans seen: {seen:?}");
    // The confirmation reached the listing's calendar as a delivery in that trace.
    let projection = trace.iter().find(|s| s.kind == CONSUMER && s.name == "booking.confirmed").unwrap();
    let payment = trace.iter().find(|s| s.kind == SERVER && s.name.ends_with("/payment")).unwrap();
    if is_split() {
        assert!(
            trace.iter().any(|s| s.service == "hometrip-listing" && s.kind == CONSUMER),
            "the calendar projection in listing's process is not in the trace: {trace:?}"
        );
        // Publisher and subscriber of payment.succeeded are different processes.
        let consumed = trace.iter().find(|s| s.name == "payment.succeeded" && s.kind == CONSUMER).unwrap();
        assert_ne!(consumed.service, "hometrip-payment", "{trace:?}");
    }
    assert_eq!(projection.trace_id, payment.trace_id);
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_exported_and_logs_carry_the_trace_id() {
    let (endpoint, spans) = collector();
    // The endpoint is known but not given: nothing may reach it.
    let server = Server::start_with(&[("OTEL_BSP_SCHEDULE_DELAY", "100"), ("HOMETRIP_LOG__FILTER", "info")]).await;
    let (user, _) = server.client().signed_up(&unique_email("untraced")).await;
    assert_eq!(user.get("/api/v1/users/me").await.status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(spans.lock().unwrap().is_empty(), "exported to {endpoint} without being asked");
    if is_split() {
        // The gateway starts a trace id and the module's log lines carry it.
        let logs = server.split.as_ref().unwrap().logs();
        assert!(
            logs.lines().any(|l| l.contains("/api/v1/users/me") && l.contains("\"trace_id\"")),
            "no trace id in the module's request log lines"
        );
    }
}
