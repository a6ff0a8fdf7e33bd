//! The admin console through the binary: the overview, a held review
//! approved, a booking found and refunded in part (once per form), the
//! audit log recording the console's own actions and verifying its chain.
//! Nobody else finds the console.

use serde_json::json;

use crate::support::*;
use crate::web::{csrf, html, page_eventually, signed_in_browser, Browser};

const ADMIN_PASSWORD: &str = "the admin passphrase is long";

/// An admin made with the CLI, signed in through the sign-in page.
pub(crate) async fn admin_browser(server: &Server) -> Browser {
    let email = unique_email("admin");
    let out = server.cli(&["admin", "create", "--email", &email, "--password-stdin"], &format!("{ADMIN_PASSWORD}\n"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut browser = Browser::new(server);
    let form = browser.get("/sign-in").await;
    let r = browser.post("/sign-in", &[("csrf", &csrf(&form)), ("email", &email), ("password", ADMIN_PASSWORD)]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    browser
}

#[tokio::test]
async fn an_admin_approves_a_held_review_refunds_part_of_a_booking_and_reads_the_audit_log_in_the_console() {
    let server = Server::start_with(CLOCK).await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let listing = publish_listing(&server, &host, house("Maison de la console")).await;
    let (guest, _) = server.client().signed_up(&unique_email("guest")).await;
    let booking = book_and_pay(&guest, &listing, 3).await;
    let mut admin = admin_browser(&server).await;

    // Nobody else finds the console; signed out, it asks to sign in.
    let mut someone = signed_in_browser(&server, &unique_email("someone")).await;
    for path in ["/admin", "/admin/reviews", "/admin/bookings", "/admin/audit"] {
        assert_eq!(someone.get(path).await.status, 404, "{path}");
    }
    let token = csrf(&someone.get("/trips").await);
    let forged = someone
        .post(&format!("/admin/bookings/{booking}/refund"), &[("csrf", &token), ("amount", "5"), ("reason", "x")])
        .await;
    assert_eq!(forged.status, 404);
    let anonymous = Browser::new(&server).get("/admin").await;
    assert_eq!(anonymous.status, 303);

    // The overview.
    let overview = admin.get("/admin").await;
    assert_eq!(overview.status, 200, "{}", overview.text);
    assert!(html(&overview).contains("data-figure=\"bookings\""), "{}", overview.text);
    assert!(overview.text.contains("href=\"/admin\">Console</a>"), "the header links the console for admins");
    assert!(!someone.get("/trips").await.text.contains("href=\"/admin\""), "and only for them");

    // A review held for its phone number, approved from the queue.
    advance_clock(&server, 6 * 86_400).await;
    eventually(&guest, &format!("/api/v1/bookings/{booking}"), |b| b["status"] == "completed").await;
    let body = json!({
        "rating": 4,
        "ratings": {"cleanliness": 4, "accuracy": 4, "check_in": 5, "communication": 5, "location": 4, "value": 4},
        "comment": "Great flat <i>really</i>, text me on 06 12 34 56 78 next time",
    });
    let mut held = guest.post(&format!("/api/v1/bookings/{booking}/reviews"), body.clone()).await;
    for _ in 0..patience(100) {
        if held.status != 422 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        held = guest.post(&format!("/api/v1/bookings/{booking}/reviews"), body.clone()).await;
    }
    assert_eq!(held.status, 201, "{}", held.text);
    assert_eq!(held.body["status"], "held");
    let review = held.body["id"].as_str().unwrap().to_owned();
    let queue = admin.get("/admin/reviews").await;
    assert_eq!(queue.status, 200, "{}", queue.text);
    assert!(html(&queue).contains(&format!("data-review=\"{review}\"")), "{}", queue.text);
    assert!(queue.text.contains("contact_details") && queue.text.contains("&#60;i&#62;really&#60;/i&#62;"));
    let token = csrf(&queue);
    let no_reason = admin.post(&format!("/admin/reviews/{review}/reject"), &[("csrf", &token), ("reason", " ")]).await;
    assert_eq!(no_reason.status, 422, "{}", no_reason.text);
    assert_eq!(admin.post(&format!("/admin/reviews/{review}/approve"), &[]).await.status, 403, "without the token");
    let approved = admin.post(&format!("/admin/reviews/{review}/approve"), &[("csrf", &token)]).await;
    assert_eq!(approved.status, 303, "{}", approved.text);
    assert_eq!(approved.headers["location"], "/admin/reviews?done=approved");
    let mine = guest.get(&format!("/api/v1/bookings/{booking}/reviews")).await;
    // Approved, it joins the double-blind like any other (the host has not written).
    assert_eq!(mine.body["items"][0]["status"], "hidden", "{}", mine.text);
    let again = admin.post(&format!("/admin/reviews/{review}/approve"), &[("csrf", &token)]).await;
    assert_eq!(again.status, 409, "{}", again.text);

    // A booking found by its number and refunded in part, once per form.
    assert_eq!(admin.get("/admin/bookings?id=nope").await.status, 404);
    let found = admin.get(&format!("/admin/bookings?id={booking}")).await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert!(html(&found).contains("Maison de la console") && found.text.contains("id=\"refund-form\""));
    let token = csrf(&found);
    let key = crate::web::field(&found, "key");
    let path = format!("/admin/bookings/{booking}/refund");
    let unreadable = admin.post(&path, &[("csrf", &token), ("key", &key), ("amount", "lots"), ("reason", "x")]).await;
    assert_eq!(unreadable.status, 422, "{}", unreadable.text);
    let form = [("csrf", token.as_str()), ("key", key.as_str()), ("amount", "20"), ("reason", "Broken heater")];
    let refunded = admin.post(&path, &form).await;
    assert_eq!(refunded.status, 200, "{}", refunded.text);
    assert!(html(&refunded).contains("data-figure=\"amount\">€20<"), "{}", refunded.text);
    let twice = admin.post(&path, &form).await;
    assert!(twice.text.contains("data-figure=\"refunded\">€20<"), "the same form refunds once: {}", twice.text);
    let too_much = admin
        .post(&path, &[("csrf", &token), ("key", "another-key"), ("amount", "100000"), ("reason", "Everything")])
        .await;
    assert_eq!(too_much.status, 422, "{}", too_much.text);
    assert!(too_much.text.contains("The refund was refused"), "{}", too_much.text);

    // The audit log: the console's actions as the admin, with their reasons; the chain holds.
    let audit = page_eventually(&mut admin, "/admin/audit", "POST /admin/bookings/{id}/refund").await;
    assert!(audit.text.contains("Broken heater"), "{}", audit.text);
    assert!(audit.text.contains("POST /admin/reviews/{id}/approve"), "{}", audit.text);
    let verified = admin.get("/admin/audit?verify=1").await;
    assert!(html(&verified).contains("The chain holds"), "{}", verified.text);
    // Refused attempts are recorded too (as the API's are); nothing under anyone else's name.
    assert!(verified.text.contains("<td>POST /admin/reviews/{id}/approve</td><td>reviews/"), "{}", verified.text);
    let rows = verified.text.matches("<tr data-seq=").count();
    let admin_rows = verified.text.matches(&format!("<td>{}</td>", first_actor(&verified.text))).count();
    assert_eq!(rows, admin_rows, "every entry is the admin's: {}", verified.text);
}

/// The actor column of the audit page's first row.
fn first_actor(page: &str) -> String {
    let row = page.split("<tr data-seq=").nth(1).expect("an entry");
    row.split("<td>").nth(3).and_then(|c| c.split("</td>").next()).unwrap().to_owned()
}

#[tokio::test]
async fn an_admin_finds_suspends_and_reinstates_a_user_in_the_console() {
    let server = Server::start().await;
    let email = unique_email("suspect");
    let (user, _) = server.client().signed_up(&email).await;
    let id = user.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    let mut admin = admin_browser(&server).await;

    let found = admin.get(&format!("/admin/users?q={email}")).await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert!(html(&found).contains(&format!("data-user=\"{id}\"")), "{}", found.text);
    assert!(found.text.contains("<span data-account>Active</span>"), "{}", found.text);
    let token = csrf(&found);
    let path = format!("/admin/users/{id}/suspend");
    let no_reason = admin.post(&path, &[("csrf", &token), ("q", &email), ("reason", "")]).await;
    assert_eq!(no_reason.status, 422, "{}", no_reason.text);
    let suspended = admin.post(&path, &[("csrf", &token), ("q", &email), ("reason", "Fraudulent listings")]).await;
    assert_eq!(suspended.status, 303, "{}", suspended.text);
    let back = suspended.headers["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with("/admin/users?q=") && back.ends_with("done=suspended"), "{back}");
    let shown = admin.get(&back).await;
    assert!(html(&shown).contains("Suspended: their sessions ended"), "{}", shown.text);
    assert!(shown.text.contains("<span data-account>Suspended</span>"), "{}", shown.text);
    assert_eq!(server.client().login(&email, PASSWORD).await.status, 403, "a suspended user cannot sign in");

    let reinstated = admin.post(&format!("/admin/users/{id}/reinstate"), &[("csrf", &token), ("q", &email)]).await;
    assert_eq!(reinstated.status, 303, "{}", reinstated.text);
    assert_eq!(server.client().login(&email, PASSWORD).await.status, 200);
    let audit = page_eventually(&mut admin, "/admin/audit", "POST /admin/users/{id}/reinstate").await;
    assert!(audit.text.contains("Fraudulent listings"), "{}", audit.text);

    // Not for anyone else.
    let mut someone = signed_in_browser(&server, &unique_email("someone")).await;
    let theirs = csrf(&someone.get("/trips").await);
    let refused = someone.post(&path, &[("csrf", &theirs), ("reason", "x")]).await;
    assert_eq!(refused.status, 404);
    assert_eq!(server.client().login(&email, PASSWORD).await.status, 200);
}

#[tokio::test]
async fn the_console_also_answers_on_the_admin_modules_own_port_when_it_runs_apart() {
    if !crate::shape::is_split() {
        // One process: the console is the gateway's (the tests above).
        return;
    }
    // Its own platform: the shared one talks mutual TLS between processes.
    let server = Server::start_with(&[]).await;
    let split = server.split.clone().expect("the split shape");
    let base = split.bases_of("admin").remove(0);
    assert!(base.starts_with("http://"), "a platform without mutual TLS: {base}");
    let mut console = Browser::new(&server);
    console.api.base = base.clone();
    let root = console.get("/").await;
    assert_eq!(root.status, 302, "{}", root.text);
    assert_eq!(root.headers["location"], "/admin");

    // An admin signs in on this port and works the console.
    let email = unique_email("admin");
    let out = server.cli(&["admin", "create", "--email", &email, "--password-stdin"], &format!("{ADMIN_PASSWORD}\n"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let form = console.get("/sign-in").await;
    assert_eq!(form.status, 200, "{}", form.text);
    let signed =
        console.post("/sign-in", &[("csrf", &csrf(&form)), ("email", &email), ("password", ADMIN_PASSWORD)]).await;
    assert_eq!(signed.status, 303, "{}", signed.text);
    let suspect = unique_email("suspect");
    let (user, _) = server.client().signed_up(&suspect).await;
    let id = user.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    let found = console.get(&format!("/admin/users?q={suspect}")).await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert!(html(&found).contains(&format!("data-user=\"{id}\"")), "{}", found.text);
    let path = format!("/admin/users/{id}/suspend");
    let done =
        console.post(&path, &[("csrf", &csrf(&found)), ("q", &suspect), ("reason", "Seen from port 3003")]).await;
    assert_eq!(done.status, 303, "{}", done.text);
    assert_eq!(server.client().login(&suspect, PASSWORD).await.status, 403);
    let audit = page_eventually(&mut console, "/admin/audit", "Seen from port 3003").await;
    assert!(audit.text.contains("POST /admin/users/{id}/suspend"), "{}", audit.text);
    // The failed deliveries of the processes it reaches, every one answering.
    let events = console.get("/admin/events").await;
    assert_eq!(events.status, 200, "{}", events.text);
    assert!(!events.text.contains("id=\"unavailable\""), "{}", events.text);

    // Nobody else, and none of the guests' pages here.
    let mut someone = Browser::new(&server);
    someone.api.base = base;
    let email = unique_email("someone");
    server.client().signed_up(&email).await;
    let form = someone.get("/sign-in").await;
    let signed = someone.post("/sign-in", &[("csrf", &csrf(&form)), ("email", &email), ("password", PASSWORD)]).await;
    assert_eq!(signed.status, 303, "{}", signed.text);
    assert_eq!(someone.get("/admin").await.status, 404);
    assert_eq!(someone.get("/trips").await.status, 404);
}
