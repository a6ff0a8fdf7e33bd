//! The rest of the admin console through the binary: listings found by
//! title or number, suspended and reinstated with a reason; a removed
//! review's appeal decided by another admin than the one who removed it;
//! failed deliveries listed and replayed, whichever process parked them.

use serde_json::json;

use crate::support::*;
use crate::web::{csrf, html, page_eventually, signed_in_browser};
use crate::web_admin::admin_browser;

fn location(r: &Reply) -> String {
    assert_eq!(r.status, 303, "{}", r.text);
    r.headers["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_admin_suspends_and_reinstates_a_listing_in_the_console() {
    let server = Server::start().await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let word = format!("modération{}", &uuid::Uuid::now_v7().simple().to_string()[24..]);
    let id = publish_listing(&server, &host, house(&format!("Loft <b>{word}</b>"))).await;
    let mut admin = admin_browser(&server).await;

    // Found by part of its title in any case, escaped, and by its number.
    let found = admin.get(&format!("/admin/listings?q={}", word.to_uppercase())).await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert!(html(&found).contains(&format!("data-listing=\"{id}\"")), "{}", found.text);
    assert!(found.text.contains("&#60;b&#62;") && !found.text.contains(&format!("<b>{word}")), "{}", found.text);
    assert!(found.text.contains("<span data-status>Published</span>"), "{}", found.text);
    let by_number = admin.get(&format!("/admin/listings?q={id}")).await;
    assert!(by_number.text.contains(&format!("data-listing=\"{id}\"")), "{}", by_number.text);
    let nothing = admin.get(&format!("/admin/listings?q={}", uuid::Uuid::now_v7())).await;
    assert!(nothing.text.contains("No listing matches."), "{}", nothing.text);

    // Suspended with a reason: out of sight for guests.
    let token = csrf(&found);
    let path = format!("/admin/listings/{id}/suspend");
    assert_eq!(admin.post(&path, &[("csrf", &token), ("q", &word), ("reason", " ")]).await.status, 422);
    assert_eq!(admin.post(&path, &[("q", &word), ("reason", "Fake photos")]).await.status, 403, "without the token");
    let done = admin.post(&path, &[("csrf", &token), ("q", &word), ("reason", "Fake photos")]).await;
    let back = location(&done);
    assert!(back.starts_with("/admin/listings?q=") && back.ends_with("done=suspended"), "{back}");
    let shown = admin.get(&back).await;
    assert!(shown.text.contains("<span data-status>Suspended</span>"), "{}", shown.text);
    assert!(shown.text.contains("Suspended: the listing left search"), "{}", shown.text);
    assert_eq!(server.client().get(&format!("/api/v1/listings/{id}")).await.status, 404);
    let suspended = admin.get("/admin/listings?status=suspended").await;
    assert!(suspended.text.contains(&format!("data-listing=\"{id}\"")), "{}", suspended.text);

    // Reinstated, unlisted for its host to publish again; a published one
    // has nothing to reinstate, said on the page.
    let path = format!("/admin/listings/{id}/reinstate");
    let done = admin.post(&path, &[("csrf", &token), ("q", &word), ("reason", "Photos checked")]).await;
    assert!(location(&done).ends_with("done=reinstated"));
    assert_eq!(host.get(&format!("/api/v1/listings/{id}")).await.body["status"], "unlisted");
    assert_eq!(host.post(&format!("/api/v1/listings/{id}/publish"), json!({})).await.status, 200);
    let again = admin.post(&path, &[("csrf", &token), ("q", &word), ("reason", "Again")]).await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert!(again.text.contains("This listing is not suspended"), "{}", again.text);
    let audit = page_eventually(&mut admin, "/admin/audit", "Photos checked").await;
    assert!(audit.text.contains("POST /admin/listings/{id}/suspend") && audit.text.contains("Fake photos"));

    // Nobody else.
    let mut someone = signed_in_browser(&server, &unique_email("someone")).await;
    assert_eq!(someone.get("/admin/listings").await.status, 404);
    let theirs = csrf(&someone.get("/trips").await);
    let refused = someone.post(&format!("/admin/listings/{id}/suspend"), &[("csrf", &theirs), ("reason", "x")]).await;
    assert_eq!(refused.status, 404);
    assert_eq!(host.get(&format!("/api/v1/listings/{id}")).await.body["status"], "published");

    // Hidden with its suspended host: the console says why and offers no
    // reinstatement of the listing itself (the host's is the one to lift).
    let api_admin = crate::support::admin(&server).await;
    let host_id = host.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/admin/users/{host_id}/suspend");
    assert_eq!(api_admin.post(&path, json!({"reason": "Chargebacks"})).await.status, 200);
    let hidden = eventually(&api_admin, &format!("/api/v1/listings/{id}"), |l| l["host_suspended"] == true).await;
    assert_eq!(hidden["status"], "suspended");
    let page = admin.get(&format!("/admin/listings?q={id}")).await;
    assert!(html(&page).contains("data-host-suspended"), "{}", page.text);
    assert!(!page.text.contains(&format!("/admin/listings/{id}/reinstate")), "{}", page.text);
    let path = format!("/api/v1/admin/users/{host_id}/reinstate");
    assert_eq!(api_admin.post(&path, json!({})).await.status, 200);
    let back = eventually(&api_admin, &format!("/api/v1/listings/{id}"), |l| l["host_suspended"] == false).await;
    assert_eq!(back["status"], "published");
}

#[tokio::test]
async fn another_admin_decides_the_appeal_of_a_removed_review_in_the_console() {
    let server = Server::start_with(CLOCK).await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let listing = publish_listing(&server, &host, house("Maison des appels")).await;
    let (guest, _) = server.client().signed_up(&unique_email("guest")).await;
    let booking = book_and_pay(&guest, &listing, 3).await;
    advance_clock(&server, 6 * 86_400).await;
    eventually(&guest, &format!("/api/v1/bookings/{booking}"), |b| b["status"] == "completed").await;
    // Held for its phone number, then rejected by the first admin in the console.
    let body = json!({
        "rating": 2,
        "ratings": {"cleanliness": 2, "accuracy": 2, "check_in": 3, "communication": 2, "location": 3, "value": 2},
        "comment": "Cold <script>x</script> flat, call me on 06 12 34 56 78",
    });
    let mut held = guest.post(&format!("/api/v1/bookings/{booking}/reviews"), body.clone()).await;
    for _ in 0..patience(100) {
        if held.status != 422 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        held = guest.post(&format!("/api/v1/bookings/{booking}/reviews"), body.clone()).await;
    }
    assert_eq!(held.body["status"], "held", "{}", held.text);
    let review = held.body["id"].as_str().unwrap().to_owned();
    let mut first = admin_browser(&server).await;
    let queue = first.get("/admin/reviews").await;
    let rejected = first
        .post(&format!("/admin/reviews/{review}/reject"), &[("csrf", &csrf(&queue)), ("reason", "Contact details")])
        .await;
    assert_eq!(rejected.status, 303, "{}", rejected.text);
    let appealed =
        guest.post(&format!("/api/v1/reviews/{review}/appeal"), json!({"reason": "The number was the host's"})).await;
    assert_eq!(appealed.status, 201, "{}", appealed.text);

    // The admin who removed it sees the appeal but does not decide it.
    let theirs = first.get("/admin/appeals").await;
    assert_eq!(theirs.status, 200, "{}", theirs.text);
    assert!(html(&theirs).contains(&format!("data-appeal=\"{review}\"")), "{}", theirs.text);
    assert!(
        theirs.text.contains("The number was the host&#39;s") || theirs.text.contains("The number was the host&#x27;s")
    );
    assert!(theirs.text.contains("&#60;script&#62;"), "the review, escaped: {}", theirs.text);
    assert!(theirs.text.contains("You removed this review"), "{}", theirs.text);
    let path = format!("/admin/appeals/{review}");
    let token = csrf(&theirs);
    let own = first.post(&path, &[("csrf", &token), ("decision", "reinstate"), ("reason", "Mine")]).await;
    assert_eq!(own.status, 403, "{}", own.text);

    // Another admin reinstates it, with a reason; once.
    let mut second = admin_browser(&server).await;
    let page = second.get("/admin/appeals").await;
    assert!(!page.text.contains("You removed this review"), "{}", page.text);
    let token = csrf(&page);
    let no_reason = second.post(&path, &[("csrf", &token), ("decision", "reinstate"), ("reason", "")]).await;
    assert_eq!(no_reason.status, 422, "{}", no_reason.text);
    let done = second.post(&path, &[("csrf", &token), ("decision", "reinstate"), ("reason", "A host's number")]).await;
    assert_eq!(location(&done), "/admin/appeals?done=reinstated");
    let shown = second.get("/admin/appeals?done=reinstated").await;
    assert!(
        shown.text.contains("Reinstated: the review is published again.") && shown.text.contains("No appeal waits")
    );
    let appeal = guest.get(&format!("/api/v1/reviews/{review}/appeal")).await;
    assert_eq!(appeal.body["status"], "reinstated", "{}", appeal.text);
    assert_ne!(guest.get(&format!("/api/v1/bookings/{booking}/reviews")).await.body["items"][0]["status"], "rejected");
    let twice = second.post(&path, &[("csrf", &token), ("decision", "uphold"), ("reason", "Changed my mind")]).await;
    assert_eq!(twice.status, 409, "{}", twice.text);
}

#[tokio::test]
async fn an_admin_lists_and_replays_a_parked_delivery_in_the_console() {
    // Mail that cannot be sent: the verification email's delivery is parked
    // (in the split shape, in the notification service's database).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let smtp = format!("smtp://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let mut server = Server::start_with(&[("HOMETRIP_NOTIFICATION__SMTP__URL", &smtp)]).await;
    let email = unique_email("parked");
    assert_eq!(server.client().register(&email, "Parked").await.status, 201);
    let mut admin = admin_browser(&server).await;
    let page = page_eventually(&mut admin, "/admin/events", "auth.email_verification_requested").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(html(&page).contains("notification.email"), "{}", page.text);
    let row = page.text.split("<tr data-dead-letter=\"").find(|r| r.contains("auth.email_verification_requested"));
    let id = row.and_then(|r| r.split('"').next()).expect("the parked delivery's row").to_owned();

    // Replayed while mail still fails: said so, still parked.
    let path = format!("/admin/events/{id}/replay");
    assert_eq!(admin.post(&path, &[]).await.status, 403, "without the token");
    let failed = admin.post(&path, &[("csrf", &csrf(&page))]).await;
    assert_eq!(location(&failed), "/admin/events?done=failed");
    let said = admin.get("/admin/events?done=failed").await;
    assert!(said.text.contains("it failed again"), "{}", said.text);
    let unknown =
        admin.post(&format!("/admin/events/{}/replay", uuid::Uuid::now_v7()), &[("csrf", &csrf(&said))]).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert!(unknown.text.contains("No process holds this delivery."), "{}", unknown.text);

    // Mail works again: the replay delivers the email, once.
    server.set_env("HOMETRIP_NOTIFICATION__SMTP__URL", "");
    server.restart().await;
    admin.api.base = server.url("");
    let page = admin.get("/admin/events").await;
    let delivered = admin.post(&path, &[("csrf", &csrf(&page))]).await;
    assert_eq!(location(&delivered), "/admin/events?done=delivered");
    assert_eq!(server.wait_email(&email, "Confirm").await.to, email);
    let after = admin.get("/admin/events").await;
    let row = after.text.split("<tr data-dead-letter=\"").find(|r| r.starts_with(&id)).expect("still listed");
    let replayed_at = row.split("<td>").nth(6).and_then(|c| c.split("</td>").next()).unwrap_or_default();
    assert!(!replayed_at.is_empty(), "replayed: {row}");

    // Nobody else.
    let mut someone = signed_in_browser(&server, &unique_email("someone")).await;
    assert_eq!(someone.get("/admin/events").await.status, 404);
}
