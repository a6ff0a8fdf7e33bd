//! The web app in a real browser: `e2e/journey.mjs` drives Debian's Chromium
//! (playwright-core from npm) through a guest's and a host's journey against
//! this binary, with and without JavaScript, partly with the keyboard only,
//! and runs axe-core on every page of it. `.ci/run` installs Chromium and the
//! npm packages and requires this test to run (`REQUIRE_BROWSER_JOURNEY=1`; not a `HOMETRIP_` name, which the
//! servers would read as a setting); on a machine without them it
//! says what is missing and passes.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::support::*;

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e")
}

pub(crate) fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

/// What this machine lacks to run the journey, if anything.
pub(crate) fn missing() -> Option<String> {
    if !Path::new(&chromium()).exists() {
        return Some(format!("no Chromium at {} (apt-get install chromium)", chromium()));
    }
    if std::process::Command::new("node").arg("--version").output().map_or(true, |o| !o.status.success()) {
        return Some("no node (apt-get install nodejs)".to_owned());
    }
    if !e2e_dir().join("node_modules/playwright-core").exists() || !e2e_dir().join("node_modules/axe-core").exists() {
        return Some("no e2e/node_modules (npm ci --prefix e2e)".to_owned());
    }
    None
}

/// A title no other listing of the run has: the journey searches for its last word.
fn unique_word() -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let letters: String = id
        .chars()
        .rev()
        .take(8)
        .map(|c| if c.is_ascii_digit() { (b'g' + c as u8 - b'0') as char } else { c })
        .collect();
    format!("e2e{letters}")
}

#[tokio::test]
async fn a_guest_books_pays_and_cancels_in_chromium_with_and_without_javascript_and_a_host_answers_by_keyboard() {
    if let Some(missing) = missing() {
        assert!(
            std::env::var("REQUIRE_BROWSER_JOURNEY").as_deref() != Ok("1"),
            "the browser journey must run here: {missing}"
        );
        eprintln!("browser journey not run: {missing}; bash .ci/run installs what it needs");
        return;
    }
    // The test clock carries the second phase past the stays.
    let server = Server::start_with(&[("HOMETRIP_TESTING__CLOCK_CONTROL", "true")]).await;
    let admin_email = unique_email("e2e-admin");
    let admin_password = "the console's passphrase is long";
    let made =
        server.cli(&["admin", "create", "--email", &admin_email, "--password-stdin"], &format!("{admin_password}\n"));
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let host_email = unique_email("e2e-host");
    let (host, _) = server.client().signed_up(&host_email).await;
    let word = unique_word();
    let title = format!("Bergerie {word}");
    publish_listing(&server, &host, house(&title)).await;
    let mut on_request = house(&format!("Moulin {word}"));
    on_request["instant_book"] = json!(false);
    let request_listing = publish_listing(&server, &host, on_request).await;
    let visitor = server.client();
    eventually(&visitor, &format!("/api/v1/search/listings?q={word}"), |b| b["total"] == 2).await;
    let stays: Vec<_> = [150, 160, 170]
        .iter()
        .map(|d| json!({"check_in": date_from_today(*d), "check_out": date_from_today(d + 2)}))
        .collect();

    let env = vec![
        ("BASE_URL", server.base.clone()),
        ("KEYS_GUEST_EMAIL", unique_email("e2e-keys")),
        ("ADMIN_EMAIL", admin_email),
        ("ADMIN_PASSWORD", admin_password.to_owned()),
        ("OUTBOX", server.data_dir.join("outbox/mail").display().to_string()),
        ("PASSWORD", PASSWORD.to_owned()),
        ("HOST_EMAIL", host_email),
        ("LISTING_TITLE", title),
        ("LISTING_WORD", word),
        ("REQUEST_LISTING_ID", request_listing),
        ("STAYS", serde_json::to_string(&stays).unwrap()),
        ("CHROMIUM", chromium()),
    ];
    let stdout = journey(&env, "main").await;
    assert!(stdout.contains("ok: the whole journey"), "{stdout}");
    assert!(stdout.contains("ok: the guest was told live in the header"), "{stdout}");
    assert!(
        stdout.contains("ok: the host read the payouts (no JavaScript)"),
        "the host's pages without script: {stdout}"
    );
    let pages = ["sign-up", "home", "search", "listing", "checkout", "3-D Secure", "trip", "trips", "sign-in"];
    let host_pages = ["host reservations", "host listings", "new listing form", "host calendar", "earnings", "payouts"];
    for page in pages.iter().chain(&host_pages).chain(&["conversation", "inbox"]) {
        assert!(stdout.contains(&format!("ok: axe: {page} (")), "axe ran on {page}: {stdout}");
    }

    // Past the last stay: it completes, both review, an admin moderates and refunds.
    let moved = server
        .internal(reqwest::Method::POST, "/internal/testing/clock", Some(json!({"advance_seconds": 175 * 86_400})))
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let ran = server.internal(reqwest::Method::POST, "/internal/testing/jobs/run", None).await;
    assert_eq!(ran.status, 200, "{}", ran.text);
    let stdout = journey(&env, "after_stays").await;
    assert!(stdout.contains("ok: the journey after the stays"), "{stdout}");
    let console =
        ["admin overview", "admin reviews", "admin bookings", "admin audit", "admin listings", "admin appeals"];
    for page in ["reviews to write", "review form", "admin events"].iter().chain(&console) {
        assert!(stdout.contains(&format!("ok: axe: {page} (")), "axe ran on {page}: {stdout}");
    }
}

/// Runs one phase of `e2e/journey.mjs`; its steps.
async fn journey(env: &[(&'static str, String)], phase: &str) -> String {
    let mut env = env.to_vec();
    env.push(("PHASE", phase.to_owned()));
    run_e2e("journey.mjs", env).await
}

/// Runs `e2e/<script>` with `env` (it must succeed); its steps.
pub(crate) async fn run_e2e(script: &str, env: Vec<(&'static str, String)>) -> String {
    let name = script.to_owned();
    let script = e2e_dir().join(script);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node").arg(script).envs(env).output().expect("node runs")
    })
    .await
    .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{stdout}");
    assert!(out.status.success(), "{name} failed\n--- steps\n{stdout}\n--- errors\n{stderr}");
    stdout.into_owned()
}
