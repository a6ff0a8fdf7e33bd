//! The host's pages through the binary: a listing created, edited,
//! photographed and published from forms; the calendar blocked, opened and
//! priced, its iCal export and imports; the month's figures and the CSV.
//! Each change is read back through the API, the source of truth.

use actix_web::{web as aweb, HttpResponse};
use serde_json::json;

use crate::support::*;
use crate::web::{api_as, csrf, html, page_eventually, signed_in_browser, Browser};

impl Browser {
    /// A multipart form as a browser sends it: its CSRF token and files.
    pub(crate) async fn upload(&mut self, path: &str, token: &str, files: Vec<Vec<u8>>) -> Reply {
        let mut form = reqwest::multipart::Form::new().text("csrf", token.to_owned());
        for (i, f) in files.into_iter().enumerate() {
            let part = reqwest::multipart::Part::bytes(f).file_name(format!("p{i}.png")).mime_str("image/png").unwrap();
            form = form.part("file", part);
        }
        let rb = self
            .api
            .http
            .post(format!("{}{path}", self.api.base))
            .header("cookie", self.cookie_header())
            .multipart(form);
        let r = self.api.send(rb).await;
        self.keep(&r);
        r
    }
}

fn location(r: &Reply) -> String {
    assert_eq!(r.status, 303, "{}", r.text);
    r.headers["location"].to_str().unwrap().to_owned()
}

/// The listing form's fields, as the host fills them.
fn listing_fields(token: &str) -> Vec<(&'static str, String)> {
    [
        ("title", "Loft <b>Canut</b>"),
        ("description", "Sous les toits de la Croix-Rousse."),
        ("property_type", "loft"),
        ("line1", "12 rue d'Austerlitz"),
        ("city", "Lyon"),
        ("postal_code", "69004"),
        ("country", "fr"),
        ("lat", "45.7745"),
        ("lon", "4.8320"),
        ("max_guests", "3"),
        ("bedrooms", "1"),
        ("beds", "2"),
        ("bathrooms", "1"),
        ("amenity", "wifi"),
        ("amenity", "kitchen"),
        ("currency", "EUR"),
        ("nightly_price", "89.50"),
        ("cleaning_fee", "20"),
        ("weekly_discount", "10"),
        ("instant_book", "on"),
        ("cancellation_policy", "flexible"),
        ("min_nights", "1"),
        ("max_nights", "30"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .chain(std::iter::once(("csrf", token.to_owned())))
    .collect()
}

fn pairs<'a>(fields: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn a_host_creates_edits_photographs_and_publishes_a_listing_in_pages() {
    let server = Server::start().await;
    let email = unique_email("host");
    let mut host = signed_in_browser(&server, &email).await;
    let api = api_as(&server, &email).await;

    let empty = host.get("/host/listings").await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert!(html(&empty).contains("You have no listings yet."), "{}", empty.text);
    let form = host.get("/host/listings/new").await;
    assert_eq!(form.status, 200, "{}", form.text);
    assert!(html(&form).contains("name=\"nightly_price\"") && form.text.contains("value=\"wifi\""));
    let token = csrf(&form);

    // Without the token nothing is made.
    let mut forged = listing_fields(&token);
    forged.retain(|(k, _)| *k != "csrf");
    assert_eq!(host.post("/host/listings", &pairs(&forged)).await.status, 403);
    assert!(api.get("/api/v1/listings").await.body["items"].as_array().unwrap().is_empty());

    // Created from the form: amounts in euros, the discount in percent.
    let created = host.post("/host/listings", &pairs(&listing_fields(&token))).await;
    let edit = location(&created);
    assert!(edit.ends_with("/edit?done=created"), "{edit}");
    let id = edit.trim_start_matches("/host/listings/").split('/').next().unwrap().to_owned();
    let stored = api.get(&format!("/api/v1/listings/{id}")).await;
    assert_eq!(stored.status, 200, "{}", stored.text);
    assert_eq!(stored.body["status"], "draft");
    assert_eq!(stored.body["title"], "Loft <b>Canut</b>");
    assert_eq!(stored.body["nightly_price"], json!({"amount": 8950, "currency": "EUR"}));
    assert_eq!(stored.body["cleaning_fee"]["amount"], 2000);
    assert_eq!(stored.body["weekly_discount_bps"], 1000);
    assert_eq!(stored.body["amenities"], json!(["kitchen", "wifi"]));
    assert_eq!(stored.body["address"]["country"], "FR");
    assert_eq!(stored.body["instant_book"], true);
    let page = host.get(&edit).await;
    assert!(html(&page).contains("Draft created."), "{}", page.text);
    assert!(page.text.contains("Loft &#60;b&#62;Canut&#60;/b&#62;") && !page.text.contains("<b>Canut"));
    assert!(page.text.contains("name=\"nightly_price\" type=\"text\" value=\"89.50\""), "{}", page.text);

    // What the form cannot read, and what the module refuses, are said by the field; nothing changes.
    let mut bad = listing_fields(&token);
    bad.iter_mut().filter(|(k, _)| *k == "nightly_price").for_each(|(_, v)| *v = "cheap".to_owned());
    let refused = host.post(&format!("/host/listings/{id}/edit"), &pairs(&bad)).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(html(&refused).contains("id=\"nightly_price-error\">Give an amount such as 120 or 89.50."));
    assert!(refused.text.contains("value=\"cheap\""), "the form keeps what was typed");
    let mut bad = listing_fields(&token);
    bad.iter_mut().filter(|(k, _)| *k == "max_guests").for_each(|(_, v)| *v = "0".to_owned());
    let refused = host.post(&format!("/host/listings/{id}/edit"), &pairs(&bad)).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused
        .text
        .contains("id=\"max_guests\" name=\"max_guests\" type=\"number\" value=\"0\" aria-invalid=\"true\""));
    assert_eq!(api.get(&format!("/api/v1/listings/{id}")).await.body["max_guests"], 3);

    // Publishing needs a photo: the list says what is missing.
    let early = host.post(&format!("/host/listings/{id}/publish"), &[("csrf", &token)]).await;
    assert_eq!(early.status, 422, "{}", early.text);
    assert!(html(&early).contains("id=\"publish-refused\"") && early.text.contains("photo"), "{}", early.text);

    // Photos: uploaded with the token only, then a cover, a caption, one removed.
    let forged = host.upload(&format!("/host/listings/{id}/photos"), "", vec![png(320, 240)]).await;
    assert_eq!(forged.status, 403, "{}", forged.text);
    let up = host.upload(&format!("/host/listings/{id}/photos"), &token, vec![png(320, 240), png(400, 300)]).await;
    assert!(location(&up).ends_with("done=uploaded#photos"));
    let photos: Vec<String> = api.get(&format!("/api/v1/listings/{id}")).await.body["photos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(photos.len(), 2, "the forged upload added nothing");
    let junk = host.upload(&format!("/host/listings/{id}/photos"), &token, vec![b"not an image".to_vec()]).await;
    assert!(junk.status == 415 || junk.status == 422, "{}: {}", junk.status, junk.text);
    assert!(html(&junk).contains("id=\"form-error\""), "{}", junk.text);
    let cover = host.post(&format!("/host/listings/{id}/photos/{}/cover", photos[1]), &[("csrf", &token)]).await;
    location(&cover);
    let captioned = host
        .post(
            &format!("/host/listings/{id}/photos/{}/caption", photos[1]),
            &[("csrf", &token), ("caption", "La verrière")],
        )
        .await;
    location(&captioned);
    let removed = host.post(&format!("/host/listings/{id}/photos/{}/remove", photos[0]), &[("csrf", &token)]).await;
    location(&removed);
    let now = api.get(&format!("/api/v1/listings/{id}")).await.body;
    let kept = now["photos"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{now}");
    assert_eq!(kept[0]["id"], photos[1].as_str());
    assert_eq!(kept[0]["caption"], "La verrière");
    let page = host.get(&format!("/host/listings/{id}/edit")).await;
    assert!(page.text.contains("alt=\"La verrière\""), "{}", page.text);

    // Published, then unlisted, from the list.
    let published = host.post(&format!("/host/listings/{id}/publish"), &[("csrf", &token)]).await;
    assert_eq!(location(&published), "/host/listings?done=published");
    assert_eq!(api.get(&format!("/api/v1/listings/{id}")).await.body["status"], "published");
    let list = host.get("/host/listings?done=published").await;
    assert!(html(&list).contains("Published: guests can find"), "{}", list.text);
    assert!(list.text.contains(&format!("action=\"/host/listings/{id}/unlist\"")));
    assert!(list.text.contains("€89.50"), "{}", list.text);

    // Someone else finds no such page and changes nothing.
    let mut other = signed_in_browser(&server, &unique_email("other")).await;
    assert_eq!(other.get(&format!("/host/listings/{id}/edit")).await.status, 404);
    let their = other.get("/host/listings").await;
    let their_token = csrf(&their);
    assert_eq!(other.post(&format!("/host/listings/{id}/unlist"), &[("csrf", &their_token)]).await.status, 404);
    let mut theirs = listing_fields(&their_token);
    theirs.iter_mut().filter(|(k, _)| *k == "title").for_each(|(_, v)| *v = "Pris".to_owned());
    assert_eq!(other.post(&format!("/host/listings/{id}/edit"), &pairs(&theirs)).await.status, 404);
    assert_eq!(other.get(&format!("/host/listings/{id}/calendar")).await.status, 404);
    assert_eq!(api.get(&format!("/api/v1/listings/{id}")).await.body["title"], "Loft <b>Canut</b>");

    let unlisted = host.post(&format!("/host/listings/{id}/unlist"), &[("csrf", &token)]).await;
    assert_eq!(location(&unlisted), "/host/listings?done=unlisted");
    assert_eq!(api.get(&format!("/api/v1/listings/{id}")).await.body["status"], "unlisted");

    // Signed out, the host's pages ask to sign in first.
    let anonymous = Browser::new(&server).get("/host/listings").await;
    assert!(location(&anonymous).starts_with("/sign-in?next=%2Fhost%2Flistings"));
}

fn feed(first: &str, last: &str) -> String {
    let compact = |d: &str| d.replace('-', "");
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other//EN\r\nBEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:{}\r\nDTEND;VALUE=DATE:{}\r\nUID:other-1\r\nSUMMARY:Reserved\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        compact(first),
        compact(last)
    )
}

#[tokio::test]
async fn a_host_edits_the_calendar_syncs_calendars_and_reads_the_months_figures_in_pages() {
    let server = Server::start_with(&[("HOMETRIP_LISTING__ICAL_ALLOW_PRIVATE_HOSTS", "true")]).await;
    let email = unique_email("host");
    let mut host = signed_in_browser(&server, &email).await;
    let api = api_as(&server, &email).await;
    let listing = publish_listing(&server, &api, house("Maison du calendrier")).await;
    let (guest, _) = server.client().signed_up(&unique_email("guest")).await;
    book_and_pay(&guest, &listing, 10).await;

    let calendar = format!("/host/listings/{listing}/calendar");
    let page = host.get(&format!("{calendar}?month={}", &date_from_today(10)[..7])).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(html(&page).contains("data-state=\"booked\""), "the guest's nights: {}", page.text);
    let token = csrf(&page);

    // Blocked, then priced, as the API reads them back.
    let (from, to) = (date_from_today(20), date_from_today(22));
    let blocked = host
        .post(&calendar, &[("csrf", &token), ("from", &from), ("to", &to), ("action", "block"), ("price", "")])
        .await;
    let back = location(&blocked);
    assert!(back.contains("done=calendar"), "{back}");
    let shown = host.get(&back).await;
    assert!(html(&shown).contains("The calendar is updated."));
    assert!(shown.text.contains("data-state=\"blocked\""), "{}", shown.text);
    let days = api.get(&format!("/api/v1/listings/{listing}/calendar?from={from}&to={to}")).await;
    assert!(days.body["days"].as_array().unwrap().iter().all(|d| d["available"] == false), "{}", days.text);
    let (p_from, p_to) = (date_from_today(23), date_from_today(25));
    let priced = host
        .post(&calendar, &[("csrf", &token), ("from", &p_from), ("to", &p_to), ("action", "price"), ("price", "150")])
        .await;
    location(&priced);
    let days = api.get(&format!("/api/v1/listings/{listing}/calendar?from={p_from}&to={p_to}")).await;
    assert!(days.body["days"].as_array().unwrap().iter().all(|d| d["price"]["amount"] == 15_000), "{}", days.text);

    // A booked night cannot be opened; unreadable dates or prices are said, nothing changes.
    let booked = host
        .post(
            &calendar,
            &[
                ("csrf", &token),
                ("from", &date_from_today(10)),
                ("to", &date_from_today(12)),
                ("action", "price"),
                ("price", "1"),
            ],
        )
        .await;
    assert_eq!(booked.status, 409, "{}", booked.text);
    assert!(html(&booked).contains("A booked night cannot be"), "{}", booked.text);
    let no_price = host
        .post(&calendar, &[("csrf", &token), ("from", &p_from), ("to", &p_to), ("action", "price"), ("price", "x")])
        .await;
    assert_eq!(no_price.status, 422, "{}", no_price.text);
    let no_dates = host
        .post(&calendar, &[("csrf", &token), ("from", "soon"), ("to", &p_to), ("action", "block"), ("price", "")])
        .await;
    assert_eq!(no_dates.status, 422, "{}", no_dates.text);
    let forged = host.post(&calendar, &[("from", &p_from), ("to", &p_to), ("action", "block")]).await;
    assert_eq!(forged.status, 403);
    let days = api.get(&format!("/api/v1/listings/{listing}/calendar?from={p_from}&to={p_to}")).await;
    assert!(days.body["days"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["available"] == true && d["price"]["amount"] == 15_000));

    // The secret export address works signed out; a new one retires it.
    let page = host.get(&calendar).await;
    let marker = "id=\"export-url\" class=\"export-url\" value=\"";
    let export = |page: &Reply| {
        let at = page.text.find(marker).expect("the export address") + marker.len();
        page.text[at..].split('"').next().unwrap().replace("&#38;", "&")
    };
    let first = export(&page);
    let path = &first[first.find("/api/").expect("an absolute address")..];
    let ics = server.client().get(path).await;
    assert_eq!(ics.status, 200, "{}", ics.text);
    assert!(ics.text.contains("BEGIN:VCALENDAR"));
    location(&host.post(&format!("{calendar}/export/rotate"), &[("csrf", &token)]).await);
    let second = export(&host.get(&calendar).await);
    assert_ne!(first, second);
    assert_eq!(server.client().get(path).await.status, 404, "the old address is retired");

    // An imported calendar: added, synced on demand with its nights blocked, removed.
    let (ext_from, ext_to) = (date_from_today(40), date_from_today(43));
    let body = feed(&ext_from, &ext_to);
    let feeds = local_server(move |cfg| {
        let body = body.clone();
        cfg.route(
            "/other.ics",
            aweb::get().to(move || {
                let body = body.clone();
                async move { HttpResponse::Ok().content_type("text/calendar").body(body) }
            }),
        );
    });
    let added = host
        .post(
            &format!("{calendar}/imports"),
            &[("csrf", &token), ("name", "Other <platform>"), ("url", &format!("{feeds}/other.ics"))],
        )
        .await;
    location(&added);
    let page = host.get(&calendar).await;
    assert!(html(&page).contains("Other &#60;platform&#62;"), "{}", page.text);
    let import = api.get(&format!("/api/v1/listings/{listing}/calendar/imports")).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let synced = host.post(&format!("{calendar}/imports/{import}/sync"), &[("csrf", &token)]).await;
    assert!(location(&synced).contains("done=synced"));
    let days = api.get(&format!("/api/v1/listings/{listing}/calendar?from={ext_from}&to={ext_to}")).await;
    assert!(days.body["days"].as_array().unwrap().iter().all(|d| d["available"] == false), "{}", days.text);
    let broken =
        host.post(&format!("{calendar}/imports"), &[("csrf", &token), ("name", "Down"), ("url", "not a url")]).await;
    assert_eq!(broken.status, 422, "{}", broken.text);
    location(&host.post(&format!("{calendar}/imports/{import}/remove"), &[("csrf", &token)]).await);
    assert!(api.get(&format!("/api/v1/listings/{listing}/calendar/imports")).await.body["items"]
        .as_array()
        .unwrap()
        .is_empty());

    // The month's figures: the booked nights, the charts, the same as the API; the CSV.
    let (f_from, f_to) = (date_from_today(0), date_from_today(39));
    let summary = eventually(&api, &format!("/api/v1/analytics/host/summary?from={f_from}&to={f_to}"), |s| {
        s["nights_booked"] == 2
    })
    .await;
    let earnings = page_eventually(
        &mut host,
        &format!("/host/earnings?from={f_from}&to={f_to}"),
        "data-figure=\"nights_booked\">2<",
    )
    .await;
    let text = html(&earnings);
    let available = format!("data-figure=\"nights_available\">{}<", summary["nights_available"]);
    assert!(text.contains(&available), "{available}: {text}");
    assert!(text.contains("<rect class=\"bar\""), "the revenue chart: {text}");
    assert!(text.contains("id=\"by-month\""), "the figures as a table too");
    assert!(text.contains(&format!("href=\"/host/earnings.csv?from={f_from}&#38;to={f_to}\"")), "{text}");
    let csv = host.get(&format!("/host/earnings.csv?from={f_from}&to={f_to}")).await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(csv.content_type().starts_with("text/csv"));
    assert!(csv.text.starts_with("listing_id") && csv.text.contains(&listing), "{}", csv.text);
    let backwards = host.get(&format!("/host/earnings?from={f_to}&to={f_from}")).await;
    assert_eq!(backwards.status, 422);
    let french = host.get(&format!("/host/earnings?from={f_from}&to={f_to}&lang=fr")).await;
    assert!(html(&french).contains("Taux d’occupation"), "{}", french.text);
}

#[tokio::test]
async fn a_host_opens_the_payout_account_and_follows_the_payouts_in_pages() {
    let server = Server::start_with(CLOCK).await;
    let email = unique_email("host");
    let mut host = signed_in_browser(&server, &email).await;
    let api = api_as(&server, &email).await;
    let listing = publish_listing(&server, &api, house("Maison des versements")).await;
    let page = host.get("/host/payouts").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(html(&page).contains("No payout account yet"), "{}", page.text);
    assert!(page.text.contains("aria-current=\"page\">Payouts<"), "{}", page.text);

    // The simulated provider has nothing to fill in: back here, payouts on.
    let opened = host.post("/host/payouts/account", &[("csrf", &csrf(&page))]).await;
    assert_eq!(location(&opened), "/host/payouts");
    let on = host.get("/host/payouts").await;
    assert!(on.text.contains("Payouts are on") && on.text.contains("acct_sim_"), "{}", on.text);

    // A stay's payout: scheduled, then paid a day after check-in, as the API says.
    let (guest, _) = server.client().signed_up(&unique_email("guest")).await;
    let booking = book_and_pay(&guest, &listing, 2).await;
    let scheduled = page_eventually(&mut host, "/host/payouts", &booking).await;
    assert!(scheduled.text.contains("Scheduled"), "{}", scheduled.text);
    advance_clock(&server, 4 * 86_400).await;
    let paid = page_eventually(&mut host, "/host/payouts", "<td>Paid</td>").await;
    let payouts = api.get("/api/v1/payouts").await;
    assert_eq!(payouts.body["items"][0]["status"], "paid", "{}", payouts.text);
    let amount = payouts.body["items"][0]["amount"]["amount"].as_i64().unwrap();
    assert!(paid.text.contains(&format!("<td>{}</td>", euros(amount))), "{}: {}", euros(amount), paid.text);
}

/// Minor units of euros as the English pages write them (`€1,234.50`, `€120`).
fn euros(minor: i64) -> String {
    let digits = (minor / 100).to_string();
    let mut whole = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            whole.push(',');
        }
        whole.push(d);
    }
    match minor % 100 {
        0 => format!("€{whole}"),
        cents => format!("€{whole}.{cents:02}"),
    }
}
