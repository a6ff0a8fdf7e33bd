//! Reviews: eligibility from completed stays, the double-blind and its
//! window, the 3-review threshold, responses, the spam layers, moderation,
//! flags and appeals.

use serde_json::{json, Value};

use crate::support::*;

fn guest_review(rating: i64, comment: &str) -> Value {
    json!({
        "rating": rating,
        "ratings": {"cleanliness": rating, "accuracy": rating, "check_in": 5, "communication": 5, "location": 4, "value": rating},
        "comment": comment,
    })
}

fn host_review(comment: &str) -> Value {
    json!({"rating": 5, "ratings": {"cleanliness": 5, "house_rules": 5, "communication": 4}, "comment": comment})
}

/// A guest with a confirmed two-night stay at `listing`, `days` ahead.
async fn stay(server: &Server, listing: &str, days: i64) -> (Api, String) {
    let (guest, _) = server.client().signed_up(&unique_email("guest")).await;
    let id = book_and_pay(&guest, listing, days).await;
    (guest, id)
}

async fn completed(guest: &Api, booking: &str) {
    eventually(guest, &format!("/api/v1/bookings/{booking}"), |b| b["status"] == "completed").await;
}

/// Writes a review once the review module knows the stay is over (its
/// event may trail the booking's status by a moment).
async fn write(api: &Api, booking: &str, body: Value) -> Value {
    let path = format!("/api/v1/bookings/{booking}/reviews");
    for _ in 0..patience(100) {
        let r = api.post(&path, body.clone()).await;
        if r.status == 422 && r.text.contains("completed stay") {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        }
        assert_eq!(r.status, 201, "{}", r.text);
        return r.body;
    }
    panic!("{path} never accepted the review");
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn reviews_stay_hidden_until_both_are_in_or_the_window_ends() {
    let server = Server::start_with(CLOCK).await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let listing = publish_listing(&server, &host, house("Maison des avis")).await;
    let reviews_path = format!("/api/v1/listings/{listing}/reviews");
    let (first, a) = stay(&server, &listing, 3).await;
    let (second, b) = stay(&server, &listing, 6).await;
    let (third, c) = stay(&server, &listing, 9).await;
    let (cancelled, d) = stay(&server, &listing, 12).await;
    let (stranger, _) = server.client().signed_up(&unique_email("stranger")).await;

    // Before the stay: nobody reviews; strangers never.
    let early = first.post(&format!("/api/v1/bookings/{a}/reviews"), guest_review(5, "Lovely")).await;
    assert_eq!(early.problem(422), "validation_failed");
    let other = stranger.post(&format!("/api/v1/bookings/{a}/reviews"), guest_review(5, "Lovely")).await;
    assert_eq!(other.problem(403), "forbidden");
    assert_eq!(cancelled.post(&format!("/api/v1/bookings/{d}/cancel"), json!({})).await.status, 200);

    // Every stay is over.
    advance_clock(&server, 12 * 86_400).await;
    for (guest, id) in [(&first, &a), (&second, &b), (&third, &c)] {
        completed(guest, id).await;
    }
    // The reminder at check-out.
    let asked = eventually(&first, "/api/v1/notifications", |n| {
        n["items"].as_array().unwrap().iter().any(|i| i["kind"] == "review_requested")
    })
    .await;
    assert!(asked.to_string().contains("Maison des avis"), "{asked}");
    // A booking cancelled before check-in is never reviewed.
    let never = cancelled.post(&format!("/api/v1/bookings/{d}/reviews"), guest_review(5, "Never went")).await;
    assert_eq!(never.problem(422), "validation_failed");

    // Bad reviews are 422 with the fields named.
    let bad = write_bad(&first, &a, json!({"rating": 6, "ratings": {"cleanliness": 5}, "comment": ""})).await;
    let fields: Vec<&str> = bad["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"rating") && fields.contains(&"ratings.value") && fields.contains(&"comment"), "{bad}");

    // Stay A: the guest's review stays hidden until the host's is in.
    let guest_a = write(&first, &a, guest_review(5, "Spotless house, a quiet garden and a very kind host.")).await;
    assert_eq!(guest_a["status"], "hidden");
    assert_eq!(
        first.post(&format!("/api/v1/bookings/{a}/reviews"), guest_review(4, "Again")).await.problem(409),
        "conflict"
    );
    assert!(ids(&server.client().get(&reviews_path).await.body).is_empty());
    let mine = first.get(&format!("/api/v1/bookings/{a}/reviews")).await;
    assert_eq!(ids(&mine.body), vec![guest_a["id"].as_str().unwrap()]);
    assert!(ids(&host.get(&format!("/api/v1/bookings/{a}/reviews")).await.body).is_empty(), "the host cannot peek");
    let host_a = write(&host, &a, host_review("A perfect guest who left the house tidy.")).await;
    assert_eq!(host_a["status"], "hidden");
    advance_clock(&server, 0).await;
    let both = eventually(&host, &format!("/api/v1/bookings/{a}/reviews"), |p| {
        p["items"].as_array().unwrap().iter().filter(|r| r["status"] == "published").count() == 2
    })
    .await;
    let at: Vec<&Value> = both["items"].as_array().unwrap().iter().map(|r| &r["published_at"]).collect();
    assert_eq!(at[0], at[1], "both publish at once: {both}");
    // Each learns that the review about them is public.
    for who in [&host, &first] {
        eventually(who, "/api/v1/notifications", |n| {
            n["items"].as_array().unwrap().iter().any(|i| i["kind"] == "review_published")
        })
        .await;
    }
    let public = eventually(&server.client(), &reviews_path, |p| p["items"].as_array().unwrap().len() == 1).await;
    assert_eq!(public["items"][0]["comment"], "Spotless house, a quiet garden and a very kind host.");
    assert_eq!(public["items"][0]["author"]["id"], first.get("/api/v1/users/me").await.body["id"]);
    // The host's review of the guest is on the guest's profile.
    let guest_id = first.get("/api/v1/users/me").await.body["id"].as_str().unwrap().to_owned();
    let about = server.client().get(&format!("/api/v1/users/{guest_id}/reviews")).await;
    assert_eq!(ids(&about.body), vec![host_a["id"].as_str().unwrap()]);

    // Stays B and C: only the guests write; their reviews wait for the window.
    let guest_b = write(&second, &b, guest_review(4, "Nice stay, the kitchen could be cleaner.")).await;
    write(&third, &c, guest_review(5, "We loved every minute, thank you!")).await;
    advance_clock(&server, 86_400).await;
    assert_eq!(server.client().get(&reviews_path).await.body["items"].as_array().unwrap().len(), 1);
    // Below three reviews there is no average.
    let summary = server.client().get(&reviews_path).await.body["summary"].clone();
    assert_eq!(summary["count"], 1);
    assert!(summary["average"].is_null(), "{summary}");
    advance_clock(&server, 14 * 86_400).await;
    let public = eventually(&server.client(), &reviews_path, |p| p["summary"]["count"] == 3).await;
    assert_eq!(public["items"].as_array().unwrap().len(), 3);
    assert_eq!(public["summary"]["average"], 4.67);
    assert_eq!(public["summary"]["ratings"]["location"], 4.0);
    let score = public["summary"]["score"].as_f64().unwrap();
    // The listing shows the Bayesian rating from 3 reviews, and search learns it.
    let shown = eventually(&server.client(), &format!("/api/v1/listings/{listing}"), |l| l["review_count"] == 3).await;
    assert_eq!(shown["rating"].as_f64(), Some(score), "{shown}");
    let found = eventually(&server.client(), "/api/v1/search/listings?q=avis&sort=rating", |s| {
        s["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["id"] == listing.as_str() && h["rating"].as_f64() == Some(score))
    })
    .await;
    assert!(found["items"].as_array().is_some());
    // The window closed: the host of B can no longer review.
    let late = host.post(&format!("/api/v1/bookings/{b}/reviews"), host_review("Too late")).await;
    assert_eq!(late.problem(422), "validation_failed");

    // One public response by the host, within 30 days of publication.
    let b_id = guest_b["id"].as_str().unwrap();
    let a_id = guest_a["id"].as_str().unwrap();
    let no = stranger.post(&format!("/api/v1/reviews/{a_id}/response"), json!({"comment": "Me too"})).await;
    assert_eq!(no.problem(403), "forbidden");
    let reply = host.post(&format!("/api/v1/reviews/{b_id}/response"), json!({"comment": "Thank you, noted!"})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["response"]["comment"], "Thank you, noted!");
    let again = host.post(&format!("/api/v1/reviews/{b_id}/response"), json!({"comment": "Again"})).await;
    assert_eq!(again.problem(409), "conflict");
    advance_clock(&server, 31 * 86_400).await;
    let after = host.post(&format!("/api/v1/reviews/{a_id}/response"), json!({"comment": "Thanks!"})).await;
    assert_eq!(after.problem(422), "validation_failed");
}

async fn write_bad(api: &Api, booking: &str, body: Value) -> Value {
    let r = api.post(&format!("/api/v1/bookings/{booking}/reviews"), body).await;
    assert_eq!(r.status, 422, "{}", r.text);
    r.body
}

#[tokio::test]
async fn held_reviews_wait_for_a_moderator_and_removals_can_be_appealed() {
    let server = Server::start_with(CLOCK).await;
    let moderator = admin(&server).await;
    let second_moderator = admin(&server).await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let listing = publish_listing(&server, &host, house("Maison modérée")).await;
    let reviews_path = format!("/api/v1/listings/{listing}/reviews");
    let (phoner, a) = stay(&server, &listing, 3).await;
    let (spammer, b) = stay(&server, &listing, 6).await;
    let (honest, c) = stay(&server, &listing, 9).await;
    advance_clock(&server, 12 * 86_400).await;
    for (guest, id) in [(&phoner, &a), (&spammer, &b), (&honest, &c)] {
        completed(guest, id).await;
    }
    assert_eq!(host.get("/api/v1/admin/reviews").await.problem(403), "forbidden");

    // A phone number holds the review; the host's review still publishes.
    let held = write(&phoner, &a, guest_review(4, "Great flat, text me on 06 12 34 56 78 next time")).await;
    assert_eq!(held["status"], "held");
    write(&host, &a, host_review("Friendly and tidy guest.")).await;
    // A sales pitch is held by the classifier.
    let spam = write(
        &spammer,
        &b,
        guest_review(5, "Contact me on WhatsApp to book direct and save the fees, 20% discount with promo code"),
    )
    .await;
    assert_eq!(spam["status"], "held");
    advance_clock(&server, 0).await;
    let queue = moderator.get("/api/v1/admin/reviews?status=pending").await;
    assert_eq!(queue.status, 200, "{}", queue.text);
    let entry = |id: &Value| {
        queue.body["items"].as_array().unwrap().iter().find(|r| &r["id"] == id).cloned().unwrap_or(Value::Null)
    };
    assert!(
        entry(&held["id"])["hold_reasons"].as_array().unwrap().contains(&json!("contact_details")),
        "{}",
        queue.text
    );
    assert!(
        entry(&spam["id"])["hold_reasons"].as_array().unwrap().contains(&json!("spam_classifier")),
        "{}",
        queue.text
    );
    assert!(ids(&server.client().get(&reviews_path).await.body).is_empty());

    // Approved, the held review publishes (its stay's double-blind has lifted).
    let held_id = held["id"].as_str().unwrap();
    let approved = moderator.post(&format!("/api/v1/admin/reviews/{held_id}/approve"), json!({})).await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.body["status"], "published");
    eventually(&server.client(), &reviews_path, |p| p["items"].as_array().unwrap().len() == 1).await;

    // Rejected with a reason; the author appeals once; another admin decides.
    let spam_id = spam["id"].as_str().unwrap();
    let no_reason = moderator.post(&format!("/api/v1/admin/reviews/{spam_id}/reject"), json!({"reason": " "})).await;
    assert_eq!(no_reason.problem(422), "validation_failed");
    let rejected = moderator
        .post(
            &format!("/api/v1/admin/reviews/{spam_id}/reject"),
            json!({"reason": "Advertises booking off the platform"}),
        )
        .await;
    assert_eq!(rejected.status, 200, "{}", rejected.text);
    assert_eq!(rejected.body["status"], "rejected");
    assert_eq!(rejected.body["decision"]["reason"], "Advertises booking off the platform");
    let mine = spammer.get(&format!("/api/v1/bookings/{b}/reviews")).await;
    assert_eq!(mine.body["items"][0]["status"], "rejected");
    let not_yours = honest.post(&format!("/api/v1/reviews/{spam_id}/appeal"), json!({"reason": "Unfair"})).await;
    assert_eq!(not_yours.problem(403), "forbidden");
    let appeal = spammer.post(&format!("/api/v1/reviews/{spam_id}/appeal"), json!({"reason": "It was a joke"})).await;
    assert_eq!(appeal.status, 201, "{}", appeal.text);
    assert_eq!(appeal.body["status"], "open");
    let twice = spammer.post(&format!("/api/v1/reviews/{spam_id}/appeal"), json!({"reason": "Again"})).await;
    assert_eq!(twice.problem(409), "conflict");
    let open = second_moderator.get("/api/v1/admin/reviews/appeals").await;
    assert!(open.body["items"].as_array().unwrap().iter().any(|a| a["review_id"] == spam["id"]), "{}", open.text);
    let decision = json!({"decision": "uphold", "reason": "Soliciting direct bookings breaks the rules"});
    let own = moderator.post(&format!("/api/v1/admin/reviews/{spam_id}/appeal"), decision.clone()).await;
    assert_eq!(own.problem(403), "forbidden");
    let upheld = second_moderator.post(&format!("/api/v1/admin/reviews/{spam_id}/appeal"), decision).await;
    assert_eq!(upheld.status, 200, "{}", upheld.text);
    assert_eq!(upheld.body["status"], "upheld");
    assert_eq!(spammer.get(&format!("/api/v1/reviews/{spam_id}/appeal")).await.body["status"], "upheld");

    // A flagged review is removed with a reason, appealed, and reinstated.
    let fine = write(&honest, &c, guest_review(5, "Charming house and a garden full of birds.")).await;
    advance_clock(&server, 15 * 86_400).await;
    eventually(&server.client(), &reviews_path, |p| p["items"].as_array().unwrap().len() == 2).await;
    let fine_id = fine["id"].as_str().unwrap();
    let flagged = host.post(&format!("/api/v1/reviews/{fine_id}/flag"), json!({"reason": "Not true"})).await;
    assert_eq!(flagged.status, 202, "{}", flagged.text);
    let queue = moderator.get("/api/v1/admin/reviews").await;
    let entry = queue.body["items"].as_array().unwrap().iter().find(|r| r["id"] == fine["id"]).cloned().unwrap();
    assert_eq!(entry["flags"], json!(["Not true"]));
    let removed = moderator
        .post(&format!("/api/v1/admin/reviews/{fine_id}/reject"), json!({"reason": "Disputed by the host"}))
        .await;
    assert_eq!(removed.body["status"], "removed", "{}", removed.text);
    eventually(&server.client(), &reviews_path, |p| p["summary"]["count"] == 1).await;
    let appeal =
        honest.post(&format!("/api/v1/reviews/{fine_id}/appeal"), json!({"reason": "Every word is true"})).await;
    assert_eq!(appeal.status, 201, "{}", appeal.text);
    let reinstated = second_moderator
        .post(
            &format!("/api/v1/admin/reviews/{fine_id}/appeal"),
            json!({"decision": "reinstate", "reason": "The host gave no evidence"}),
        )
        .await;
    assert_eq!(reinstated.body["status"], "reinstated", "{}", reinstated.text);
    eventually(&server.client(), &reviews_path, |p| p["summary"]["count"] == 2).await;
}
