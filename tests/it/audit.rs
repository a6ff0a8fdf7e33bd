//! The audit log: every admin call (refused ones too) is chained, searched
//! by actor and action, and verification finds an edited or a removed entry
//! (the test edits the table directly), on demand and in the nightly job.

use serde_json::{json, Value};

use crate::support::*;

fn items(page: &Value) -> Vec<Value> {
    page["items"].as_array().cloned().unwrap_or_default()
}

async fn verify(admin: &Api) -> Value {
    let v = admin.get("/api/v1/admin/audit/verify").await;
    assert_eq!(v.status, 200, "{}", v.text);
    v.body
}

#[tokio::test]
async fn every_admin_call_is_chained_and_tampering_is_detected() {
    let server = Server::start_with(CLOCK).await;
    let admin = admin(&server).await;
    let admin_id = admin.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let host_id = host.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    let listing = publish_listing(&server, &host, house("Maison auditée")).await;

    let suspended =
        admin.post(&format!("/api/v1/admin/listings/{listing}/suspend"), json!({"reason": "Fake photos"})).await;
    assert_eq!(suspended.status, 200, "{}", suspended.text);
    assert_eq!(admin.get("/api/v1/admin/users?q=nobody&reason=ticket%2042").await.status, 200);
    assert_eq!(host.get("/api/v1/admin/users").await.problem(403), "forbidden");
    assert_eq!(host.get("/api/v1/admin/audit").await.problem(403), "forbidden");

    let by_action = "/api/v1/admin/audit?action=POST%20%2Fapi%2Fv1%2Fadmin%2Flistings%2F%7Bid%7D%2Fsuspend";
    let page = eventually(&admin, by_action, |p| !items(p).is_empty()).await;
    let entry = items(&page)[0].clone();
    assert_eq!(entry["actor_id"], admin_id.as_str());
    assert_eq!(entry["target"], format!("listings/{listing}"));
    assert_eq!(entry["reason"], "Fake photos");
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["hash"].as_str().unwrap().len(), 64);
    let search = eventually(&admin, &format!("/api/v1/admin/audit?actor={admin_id}"), |p| {
        items(p).iter().any(|e| e["reason"] == "ticket 42" && e["action"] == "GET /api/v1/admin/users")
    })
    .await;
    assert!(items(&search).iter().all(|e| e["actor_id"] == admin_id.as_str()));
    // Refused calls are on record too.
    let refused = eventually(&admin, &format!("/api/v1/admin/audit?actor={host_id}"), |p| items(p).len() == 2).await;
    assert!(items(&refused).iter().all(|e| e["status"] == 403), "{refused}");
    // Pages by cursor, newest first.
    let first = admin.get("/api/v1/admin/audit?limit=2").await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let next = admin.get(&format!("/api/v1/admin/audit?limit=2&cursor={cursor}")).await;
    assert!(items(&next.body)[0]["seq"].as_i64() < items(&first.body)[1]["seq"].as_i64());
    assert_eq!(admin.get("/api/v1/admin/audit?from=yesterday").await.problem(422), "validation_failed");

    let intact = verify(&admin).await;
    assert_eq!(intact["ok"], true, "{intact}");
    assert!(intact["entries"].as_i64().unwrap() >= 5, "{intact}");

    // An edited entry breaks its own hash.
    let seq = entry["seq"].as_i64().unwrap();
    sql(&server, "admin", &format!("UPDATE audit_log SET reason = 'routine check' WHERE seq = {seq}")).await;
    let edited = verify(&admin).await;
    assert_eq!((edited["ok"].clone(), edited["first_bad_seq"].as_i64()), (json!(false), Some(seq)), "{edited}");
    sql(&server, "admin", &format!("UPDATE audit_log SET reason = 'Fake photos' WHERE seq = {seq}")).await;
    assert_eq!(verify(&admin).await["ok"], true);

    // A removed entry breaks the chain where it was; the nightly job sees it.
    sql(&server, "admin", &format!("DELETE FROM audit_log WHERE seq = {seq}")).await;
    let removed = verify(&admin).await;
    assert_eq!((removed["ok"].clone(), removed["first_bad_seq"].as_i64()), (json!(false), Some(seq)), "{removed}");
    let r = server
        .internal(reqwest::Method::POST, "/internal/testing/clock", Some(json!({"advance_seconds": 86_400 + 60})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The scheduler's own loop may hold the job when the test asks for a
    // run: its verdict is waited for.
    let mut failed = Vec::new();
    for _ in 0..patience(100) {
        assert_eq!(server.internal(reqwest::Method::POST, "/internal/testing/jobs/run", None).await.status, 200);
        failed =
            sql(&server, "admin", "SELECT CAST(COUNT(*) AS TEXT) AS v FROM audit_verifications WHERE NOT ok").await;
        if failed != vec!["0".to_owned()] {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(failed, vec!["1".to_owned()]);
}
