//! Every operation of the served OpenAPI document, called by schemathesis
//! (PyPI; `.ci/run` installs the version it pins) with the requests its
//! coverage phase derives from the document: each parameter and field at
//! and past its bounds, of the wrong type, missing or unknown; bodies of
//! the wrong media type; missing and bad credentials. As a user and as an
//! admin, no answer may be a server error, and each status and content type
//! must be one the document names for the operation. SQLite and PostgreSQL
//! shapes (see the test for why not the split one).

use std::process::Command;

use crate::support::*;

fn schemathesis() -> String {
    std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".to_owned())
}

/// Why schemathesis cannot run here, if it cannot.
fn missing() -> Option<String> {
    let ran = Command::new(schemathesis()).arg("--version").output();
    match ran {
        Ok(out) if out.status.success() => None,
        _ => Some(format!("no {} (python3 -m pip install schemathesis)", schemathesis())),
    }
}

/// One schemathesis run as the holder of `token`; the failures it printed, if any.
async fn run(base: &str, token: &str) -> Result<(), String> {
    let args: Vec<String> = [
        "run",
        &format!("{base}/api/openapi.json"),
        "--header",
        &format!("Authorization: Bearer {token}"),
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance",
        // The coverage phase is derived from the document, not drawn at random,
        // and deterministic generation keeps nothing from one run for the next:
        // the same document gives the same requests.
        "--phases",
        "examples,coverage",
        "--generation-deterministic",
        "--workers",
        "2",
        "--suppress-health-check",
        "all",
        "--no-color",
        "--request-timeout",
        "30",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // Its cache and reports go to a directory of this run, not the checkout.
    let dir = std::env::temp_dir().join(format!("schemathesis-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let out = tokio::task::spawn_blocking(move || {
        let out = Command::new(schemathesis()).args(args).current_dir(&dir).output();
        let _ = std::fs::remove_dir_all(&dir);
        out
    })
    .await
    .unwrap();
    let out = out.map_err(|e| format!("schemathesis did not start: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        assert!(stdout.contains(" passed"), "schemathesis ran no test:\n{stdout}");
        return Ok(());
    }
    // The failures, then the summary: what a reader needs first.
    let failures = stdout.find("FAILURES").map_or(&stdout[..], |at| &stdout[at..]);
    Err(format!("{failures}\n--- stderr\n{}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test]
async fn every_operation_answers_only_as_the_openapi_document_says_and_never_with_a_server_error() {
    if let Some(missing) = missing() {
        assert!(std::env::var("REQUIRE_API_FUZZ").as_deref() != Ok("1"), "the API fuzz must run here: {missing}");
        eprintln!("API fuzz not run: {missing}; bash .ci/run installs what it needs");
        return;
    }
    // In the split shape a platform of its own is fifteen more processes
    // beside the suite's, and thousands of requests through them: on the CI
    // machine's two cores other tests' stores then timed out. The handlers
    // are the same code in every shape, and the merged document is checked
    // there by `edge::health_metrics_openapi_and_request_ids`.
    if crate::shape::is_split() {
        eprintln!("API fuzz not run in the split shape (the SQLite and PostgreSQL shapes run it)");
        return;
    }
    // Thousands of requests from one address and one account: past the limits,
    // every answer would be 429 and nothing behind them would be reached.
    let server = Server::start_with(&[("HOMETRIP_AUTH__RATE_LIMIT_PER_ACCOUNT__MAX", "1000000")]).await;
    let (user, _) = server.client().signed_up(&unique_email("fuzz")).await;
    let admin = admin(&server).await;
    for (who, api) in [("a user", &user), ("an admin", &admin)] {
        let token = api.token.clone().expect("signed in");
        if let Err(failures) = run(&server.base, &token).await {
            panic!("as {who}, answers the OpenAPI document does not name:\n{failures}");
        }
    }
}
