//! Reviews in pages through the binary: the stays waiting for a review,
//! the form (every sub-rating of the role), the double-blind lifted once
//! both are in, the listing page showing them escaped, and the host's
//! public response. The test clock completes the stay.

use crate::support::*;
use crate::web::{api_as, csrf, html, page_eventually, signed_in_browser, Browser};

fn form<'a>(token: &'a str, rating: &'a str, categories: &[&'a str], comment: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![("csrf", token), ("rating", rating), ("comment", comment)];
    f.extend(categories.iter().map(|c| (*c, "4")));
    f
}

const GUEST: &[&str] = &["cleanliness", "accuracy", "check_in", "communication", "location", "value"];
const HOST: &[&str] = &["cleanliness", "house_rules", "communication"];

#[tokio::test]
async fn guest_and_host_review_a_completed_stay_in_pages_and_the_host_responds_on_the_listing_page() {
    let server = Server::start_with(CLOCK).await;
    let host_email = unique_email("host");
    let mut host = signed_in_browser(&server, &host_email).await;
    let host_api = api_as(&server, &host_email).await;
    let listing = publish_listing(&server, &host_api, house("Maison des avis en pages")).await;
    let guest_email = unique_email("guest");
    let mut guest = signed_in_browser(&server, &guest_email).await;
    let guest_api = api_as(&server, &guest_email).await;
    let booking = book_and_pay(&guest_api, &listing, 3).await;

    // Before the stay: nothing to review.
    let none = guest.get("/reviews").await;
    assert_eq!(none.status, 200, "{}", none.text);
    assert!(html(&none).contains("No stay waits for your review."), "{}", none.text);
    assert_eq!(guest.get(&format!("/reviews/{booking}")).await.status, 404);

    // The stay ends: both are asked.
    advance_clock(&server, 6 * 86_400).await;
    eventually(&guest_api, &format!("/api/v1/bookings/{booking}"), |b| b["status"] == "completed").await;
    let list = page_eventually(&mut guest, "/reviews", &format!("data-booking=\"{booking}\"")).await;
    assert!(list.text.contains("Review your stay") && list.text.contains("Maison des avis en pages"), "{}", list.text);
    let page = guest.get(&format!("/reviews/{booking}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    for c in GUEST {
        assert!(page.text.contains(&format!("name=\"{c}\"")), "{c}: {}", page.text);
    }
    let token = csrf(&page);

    // A missing sub-rating, or no token: nothing is stored.
    let partial = guest.post(&format!("/reviews/{booking}"), &form(&token, "5", &GUEST[1..], "Très bien")).await;
    assert_eq!(partial.status, 422, "{}", partial.text);
    assert!(html(&partial).contains("Choose a rating from 1 to 5"), "{}", partial.text);
    assert!(partial.text.contains("value=\"5\" checked"), "the form keeps the choices");
    let forged = guest.post(&format!("/reviews/{booking}"), &form("", "5", GUEST, "Très bien")).await;
    assert_eq!(forged.status, 403);
    let mine = guest_api.get(&format!("/api/v1/bookings/{booking}/reviews")).await;
    assert!(mine.body["items"].as_array().unwrap().is_empty(), "{}", mine.text);

    let comment = "Super séjour <script>alert(1)</script>\n\nLe jardin est calme.";
    let sent = guest.post(&format!("/reviews/{booking}"), &form(&token, "5", GUEST, comment)).await;
    assert_eq!(sent.status, 303, "{}", sent.text);
    assert_eq!(sent.headers["location"], "/reviews?done=sent");
    let after = guest.get("/reviews?done=sent").await;
    assert!(html(&after).contains("Thank you: your review is in."));
    assert!(!after.text.contains(&format!("data-booking=\"{booking}\"")), "written once: {}", after.text);
    let mine = guest_api.get(&format!("/api/v1/bookings/{booking}/reviews")).await;
    let stored = &mine.body["items"][0];
    assert_eq!(stored["rating"], 5);
    assert_eq!(stored["ratings"]["location"], 4);
    assert_eq!(stored["status"], "hidden", "double-blind until the host writes");
    let listing_page = Browser::new(&server).get(&format!("/listings/{listing}")).await;
    assert!(html(&listing_page).contains("No reviews yet."), "hidden: {}", listing_page.text);

    // The host reviews the guest: both in, the double-blind lifts.
    let hosts = page_eventually(&mut host, "/reviews", &format!("data-booking=\"{booking}\"")).await;
    assert!(hosts.text.contains("Review your guest"), "{}", hosts.text);
    let page = host.get(&format!("/reviews/{booking}")).await;
    assert!(page.text.contains("name=\"house_rules\"") && !page.text.contains("name=\"location\""));
    let sent = host.post(&format!("/reviews/{booking}"), &form(&csrf(&page), "4", HOST, "Guest parfait.")).await;
    assert_eq!(sent.status, 303, "{}", sent.text);
    advance_clock(&server, 1).await;
    let mut visitor = Browser::new(&server);
    let shown = page_eventually(&mut visitor, &format!("/listings/{listing}"), "data-review=").await;
    let text = html(&shown);
    assert!(
        text.contains("Super séjour &#60;script&#62;alert(1)&#60;/script&#62;</p><p>Le jardin est calme."),
        "{text}"
    );
    assert!(!text.contains("<script>alert"), "{text}");
    assert!(!text.contains("action=\"/reviews/"), "only the host gets a response form");

    // The host answers publicly, once.
    let own = host.get(&format!("/listings/{listing}")).await;
    let review = guest_api.get(&format!("/api/v1/bookings/{booking}/reviews")).await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["author_role"] == "guest")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(own.text.contains(&format!("action=\"/reviews/{review}/response\"")), "{}", own.text);
    let token = csrf(&own);
    let reply = [("csrf", token.as_str()), ("listing", listing.as_str()), ("comment", "Merci <b>beaucoup</b> !")];
    let answered = host.post(&format!("/reviews/{review}/response"), &reply).await;
    assert_eq!(answered.status, 303, "{}", answered.text);
    let shown = host.get(answered.headers["location"].to_str().unwrap()).await;
    assert!(html(&shown).contains("Your response is published."));
    assert!(shown.text.contains("Merci &#60;b&#62;beaucoup&#60;/b&#62; !"), "{}", shown.text);
    let again = host.post(&format!("/reviews/{review}/response"), &reply).await;
    assert_eq!(again.status, 409, "{}", again.text);
    // The guest cannot answer for the host.
    let theirs = guest.get(&format!("/listings/{listing}")).await;
    let by_guest = guest
        .post(
            &format!("/reviews/{review}/response"),
            &[("csrf", &csrf(&theirs)), ("listing", &listing), ("comment", "x")],
        )
        .await;
    assert_eq!(by_guest.status, 404, "{}", by_guest.text);
}
