//! The web app's pages through the binary: served on the gateway's port in
//! every shape, rendered from the modules' answers, user text escaped, a
//! strict Content-Security-Policy on every page, French or English from the
//! query, the cookie or the browser, assets under content-hashed names.

use serde_json::json;

use crate::support::*;

pub(crate) fn html(r: &Reply) -> &str {
    assert!(r.content_type().starts_with("text/html"), "{} {}", r.content_type(), r.text);
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    &r.text
}

#[tokio::test]
async fn guests_find_and_read_a_listing_in_pages_that_escape_what_hosts_write() {
    let server = Server::start().await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let mut body = house("Villa Quokka <script>alert('x')</script>");
    body["description"] = json!("Un jardin <img src=x onerror=alert(1)>.\n\nDeux chambres calmes.");
    let listing = publish_listing(&server, &host, body).await;
    let draft = host.post("/api/v1/listings", house("Villa Quokka brouillon")).await;
    assert_eq!(draft.status, 201, "{}", draft.text);
    let draft = draft.body["id"].as_str().unwrap().to_owned();
    let visitor = server.client();
    eventually(&visitor, "/api/v1/search/listings?q=quokka", |b| {
        b["items"].as_array().unwrap().iter().any(|i| i["id"] == listing.as_str())
    })
    .await;

    // Home: the search form, the stylesheet and script under hashed names.
    let home = visitor.get("/").await;
    assert_eq!(home.status, 200, "{}", home.text);
    let page = html(&home);
    assert!(page.contains("<html lang=\"en\">"), "{page}");
    assert!(page.contains("action=\"/search\"") && page.contains("name=\"q\"") && page.contains("name=\"check_in\""));
    assert!(!page.contains("<script>") && !page.contains("style="), "no inline script or style: {page}");
    let css = page.split("href=\"/assets/").nth(1).and_then(|s| s.split('"').next()).expect("stylesheet");
    assert!(css.starts_with("app.") && css.ends_with(".css") && css.len() > "app..css".len() + 8, "{css}");
    let asset = visitor.get(&format!("/assets/{css}")).await;
    assert_eq!(asset.status, 200);
    assert!(asset.content_type().starts_with("text/css"));
    assert!(asset.headers["cache-control"].to_str().unwrap().contains("immutable"));
    assert!(asset.text.contains(".cards"));
    assert_eq!(visitor.get("/assets/app.0000000000000000.css").await.status, 404);

    // Results: empty form fields left out, the listing linked, its title escaped.
    let results = visitor.get("/search?q=quokka&check_in=&check_out=&guests=2").await;
    let dated = visitor
        .get(&format!("/search?q=quokka&check_in={}&check_out={}", date_from_today(300), date_from_today(302)))
        .await;
    assert_eq!(dated.status, 200, "{}", dated.text);
    let priced_link = format!(
        "href=\"/listings/{listing}?check_in={}&#38;check_out={}\"",
        date_from_today(300),
        date_from_today(302)
    );
    assert!(dated.text.contains(&priced_link), "a dated search's results link to the priced stay: {}", dated.text);
    assert_eq!(results.status, 200, "{}", results.text);
    let page = html(&results);
    assert!(page.contains(&format!("href=\"/listings/{listing}\"")), "{page}");
    assert!(page.contains("Villa Quokka &#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;"), "{page}");
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains(&draft), "a draft is not found: {page}");
    assert!(page.contains("€100"), "the nightly price in English: {page}");
    assert!(page.contains("data-event=\"search\""));
    assert!(page.contains("<circle"), "the results' positional plot: {page}");

    // The filters' own fields: a price per night in whole euros, ticked amenities.
    for (filters, found) in [
        ("price_min=90&price_max=120", true),
        ("price_min=150", false),
        ("amenity=wifi", true),
        ("amenity=wifi&amenity=pool", false),
    ] {
        let r = visitor.get(&format!("/search?q=quokka&{filters}")).await;
        assert_eq!(r.status, 200, "{filters}: {}", r.text);
        assert_eq!(html(&r).contains(&format!("href=\"/listings/{listing}\"")), found, "{filters}: {}", r.text);
    }
    let kept = visitor.get("/search?q=quokka&price_max=120&amenity=pool").await;
    assert!(kept.text.contains(
        "id=\"price_max\" name=\"price_max\" type=\"number\" min=\"0\" step=\"1\" inputmode=\"numeric\" value=\"120\""
    ));
    assert!(kept.text.contains("value=\"pool\" checked"), "{}", kept.text);
    let cheap = visitor.get("/search?q=quokka&price_min=cheap").await;
    assert_eq!(cheap.status, 400);
    assert!(html(&cheap).contains("price_min: enter a whole amount"), "{}", cheap.text);

    // French from the browser, then from `?lang=`, remembered in a cookie.
    let fr = visitor
        .send(visitor.http.get(server.url("/search?q=quokka")).header("accept-language", "fr-FR,fr;q=0.9,en;q=0.5"))
        .await;
    let page = html(&fr);
    assert!(page.contains("<html lang=\"fr\">") && page.contains("Rechercher"), "{page}");
    assert!(page.contains("100\u{a0}€"), "the price as French writes it: {page}");
    let chosen = visitor.get("/?lang=fr").await;
    assert!(html(&chosen).contains("<html lang=\"fr\">"));
    let cookie = chosen.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("lang=fr") && cookie.contains("SameSite=Lax"), "{cookie}");
    let kept = visitor.send(visitor.http.get(server.url("/")).header("cookie", "lang=fr")).await;
    assert!(html(&kept).contains("<html lang=\"fr\">"));

    // Bad searches are pages saying why, with the right status.
    let unreadable = visitor.get("/search?guests=many").await;
    assert_eq!(unreadable.status, 400);
    assert!(html(&unreadable).contains("role=\"alert\""));
    let refused = visitor.get("/search?check_in=2030-01-10&check_out=2030-01-05").await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(html(&refused).contains("check_out"), "{}", refused.text);

    // The listing page: details and user text escaped; drafts and unknown ids are not found.
    let page = visitor.get(&format!("/listings/{listing}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let text = html(&page);
    assert!(text.contains("<h1>Villa Quokka &#60;script&#62;"), "{text}");
    assert!(text.contains("Un jardin &#60;img src=x onerror=alert(1)&#62;.</p><p>Deux chambres calmes.</p>"), "{text}");
    assert!(text.contains("Lyon") && text.contains("<li>Wi-Fi</li>") && text.contains("€30"), "{text}");
    assert!(text.contains(&format!("data-listing=\"{listing}\"")));
    assert!(text.contains("/files/photos/"), "the photos: {text}");
    for missing in [
        format!("/listings/{draft}"),
        "/listings/0190a5e0-0000-7000-8000-000000000000".to_owned(),
        "/listings/nope".to_owned(),
    ] {
        let r = visitor.get(&missing).await;
        assert_eq!(r.status, 404, "{missing}");
        assert!(html(&r).contains("Page not found"));
    }
}

/// A browser's cookie jar over the test client (which follows no redirect).
pub(crate) struct Browser {
    pub(crate) api: Api,
    jar: std::collections::BTreeMap<String, String>,
}

impl Browser {
    pub(crate) fn new(server: &Server) -> Browser {
        Browser { api: server.client(), jar: Default::default() }
    }

    pub(crate) fn keep(&mut self, r: &Reply) {
        for set in r.headers.get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attributes.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub(crate) fn cookie_header(&self) -> String {
        self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    pub(crate) async fn get(&mut self, path: &str) -> Reply {
        let r = self
            .api
            .send(self.api.http.get(format!("{}{path}", self.api.base)).header("cookie", self.cookie_header()))
            .await;
        self.keep(&r);
        r
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let rb = self
            .api
            .http
            .post(format!("{}{path}", self.api.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        let r = self.api.send(rb).await;
        self.keep(&r);
        r
    }

    /// A multipart form as a browser sends it: text fields, then files under `file`.
    pub(crate) async fn multipart(&mut self, path: &str, texts: &[(&str, String)], files: Vec<Vec<u8>>) -> Reply {
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in texts {
            form = form.text((*name).to_owned(), value.clone());
        }
        for (i, f) in files.into_iter().enumerate() {
            form = form.part("file", reqwest::multipart::Part::bytes(f).file_name(format!("f{i}")));
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

/// The CSRF token of the page's forms.
pub(crate) fn csrf(page: &Reply) -> String {
    let at =
        page.text.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + "name=\"csrf\" value=\"".len();
    page.text[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_guest_signs_up_confirms_the_emailed_link_signs_out_in_and_resets_the_password_in_pages() {
    let server = Server::start().await;
    let email = unique_email("page-guest");
    let mut browser = Browser::new(&server);

    // Signing up: a form without this browser's token changes nothing.
    let form = browser.get("/sign-up?next=/search%3Fq%3Dlyon").await;
    assert_eq!(form.status, 200, "{}", form.text);
    assert!(html(&form).contains("name=\"display_name\""));
    let token = csrf(&form);
    let forged =
        browser.post("/sign-up", &[("email", &email), ("password", PASSWORD), ("display_name", "Camille Page")]).await;
    assert_eq!(forged.status, 403, "{}", forged.text);
    let mut other = Browser::new(&server);
    other.get("/sign-up").await;
    let stolen = other
        .post("/sign-up", &[("csrf", &token), ("email", &email), ("password", PASSWORD), ("display_name", "X")])
        .await;
    assert_eq!(stolen.status, 403, "another browser's token is refused");
    let weak = browser
        .post("/sign-up", &[("csrf", &token), ("email", &email), ("password", "short"), ("display_name", "Camille")])
        .await;
    assert_eq!(weak.status, 422, "{}", weak.text);
    assert!(html(&weak).contains("id=\"password-error\"") && weak.text.contains("aria-invalid=\"true\""));
    let signed_up = browser
        .post(
            "/sign-up",
            &[
                ("csrf", &token),
                ("email", &email),
                ("password", PASSWORD),
                ("display_name", "Camille <Page>"),
                ("next", "/search?q=lyon"),
            ],
        )
        .await;
    assert_eq!(signed_up.status, 303, "{}", signed_up.text);
    assert_eq!(signed_up.headers["location"], "/search?q=lyon");
    let cookies: Vec<&str> = signed_up.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    for name in ["ht_access=", "ht_refresh="] {
        let c = cookies.iter().find(|c| c.starts_with(name)).unwrap_or_else(|| panic!("{name} in {cookies:?}"));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Path=/"), "{c}");
    }
    let home = browser.get("/").await;
    assert!(html(&home).contains("<span class=\"who\">Camille &#60;Page&#62;</span>"), "{}", home.text);

    // The emailed link's landing page confirms with a button, once.
    let link = server.wait_email(&email, "Confirm").await.token();
    let landing = browser.get(&format!("/verify-email?token={link}")).await;
    assert_eq!(landing.status, 200);
    assert!(html(&landing).contains(&format!("name=\"token\" value=\"{link}\"")));
    let confirmed = browser.post("/verify-email", &[("csrf", &csrf(&landing)), ("token", &link)]).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    assert!(html(&confirmed).contains("Your email is confirmed"));
    let again = browser.post("/verify-email", &[("csrf", &csrf(&landing)), ("token", &link)]).await;
    assert_eq!(again.status, 400);
    let access = browser.jar["ht_access"].clone();
    let me = server.client().with_token(&access).get("/api/v1/users/me").await;
    assert_eq!(me.status, 200, "{}", me.text);

    // An expired access cookie: the refresh cookie rotates once, even for
    // two pages asking at the same moment, and the session lives on.
    browser.jar.remove("ht_access");
    let old_refresh = browser.jar["ht_refresh"].clone();
    let cookies = browser.cookie_header();
    let at_once = |path: &'static str| {
        let api = browser.api.clone();
        let cookies = cookies.clone();
        async move { api.send(api.http.get(format!("{}{path}", api.base)).header("cookie", cookies)).await }
    };
    let (a, b) = tokio::join!(at_once("/"), at_once("/search?q=lyon"));
    for page in [&a, &b] {
        assert!(page.text.contains("Camille &#60;Page&#62;"), "{}", page.text);
    }
    browser.keep(&a);
    assert_ne!(browser.jar["ht_refresh"], old_refresh, "rotated");
    browser.keep(&b);
    browser.jar.remove("ht_access");
    let page = browser.get("/").await;
    assert!(page.text.contains("Camille &#60;Page&#62;"), "the session survived: {}", page.text);
    assert!(browser.jar.contains_key("ht_access"));

    // Signing out ends the session for the API too.
    let refresh = browser.jar["ht_refresh"].clone();
    let out = browser.post("/sign-out", &[("csrf", &csrf(&page))]).await;
    assert_eq!((out.status, out.headers["location"].to_str().unwrap()), (303, "/"));
    assert!(!browser.jar.contains_key("ht_refresh") && !browser.jar.contains_key("ht_access"));
    let reused = server.client().post("/api/v1/auth/refresh", json!({"refresh_token": refresh})).await;
    assert_eq!(reused.status, 401);
    assert!(!browser.get("/").await.text.contains("Camille"));

    // Signing in: a wrong password says so; the right one returns to the page.
    let form = browser.get("/sign-in?next=https://evil.example/").await;
    let wrong =
        browser.post("/sign-in", &[("csrf", &csrf(&form)), ("email", &email), ("password", "not the password")]).await;
    assert_eq!(wrong.status, 401);
    assert!(html(&wrong).contains("role=\"alert\"") && wrong.text.contains(&email), "{}", wrong.text);
    let signed_in = browser
        .post(
            "/sign-in",
            &[("csrf", &csrf(&form)), ("email", &email), ("password", PASSWORD), ("next", "https://evil.example/")],
        )
        .await;
    assert_eq!((signed_in.status, signed_in.headers["location"].to_str().unwrap()), (303, "/"), "never another site");
    assert!(browser.get("/").await.text.contains("Camille"));
    // Signing in renewed the browser's CSRF secret: a form from before is refused.
    assert_eq!(browser.post("/sign-out", &[("csrf", &csrf(&form))]).await.status, 403);
    let tricky = browser.get("/sign-in?next=/%09/evil.example").await;
    assert!(tricky.text.contains("name=\"next\" value=\"/\""), "{}", tricky.text);

    // A forgotten password: the emailed link's page sets a new one.
    let form = browser.get("/forgot-password").await;
    let sent = browser.post("/forgot-password", &[("csrf", &csrf(&form)), ("email", &email)]).await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    let link = server.wait_email(&email, "Reset").await.token();
    let landing = browser.get(&format!("/reset-password?token={link}")).await;
    assert!(html(&landing).contains("type=\"password\""));
    let weak =
        browser.post("/reset-password", &[("csrf", &csrf(&landing)), ("token", &link), ("password", "abc")]).await;
    assert_eq!(weak.status, 422, "{}", weak.text);
    let new_password = "a new and quite long passphrase 42";
    let reset = browser
        .post("/reset-password", &[("csrf", &csrf(&landing)), ("token", &link), ("password", new_password)])
        .await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    assert_eq!(server.client().login(&email, new_password).await.status, 200);
}

/// The value of the first `name="{field}"` input of a page.
pub(crate) fn field(page: &Reply, field: &str) -> String {
    let marker = format!("name=\"{field}\" value=\"");
    let at = page.text.find(&marker).unwrap_or_else(|| panic!("no {field} in {}", page.text)) + marker.len();
    page.text[at..].split('"').next().unwrap().to_owned()
}

/// A browser signed in through the sign-in page as an account made by the API.
pub(crate) async fn signed_in_browser(server: &Server, email: &str) -> Browser {
    server.client().signed_up(email).await;
    let mut browser = Browser::new(server);
    let form = browser.get("/sign-in").await;
    let r = browser.post("/sign-in", &[("csrf", &csrf(&form)), ("email", email), ("password", PASSWORD)]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    browser
}

/// The API as the user a browser signed in as.
pub(crate) async fn api_as(server: &Server, email: &str) -> Api {
    let l = server.client().login(email, PASSWORD).await;
    assert_eq!(l.status, 200, "{}", l.text);
    server.client().with_token(l.body["access_token"].as_str().unwrap())
}

/// Books `listing` for the stay in `query` from its page; the checkout's path.
pub(crate) async fn book_in_pages(browser: &mut Browser, listing: &str, query: &str) -> String {
    let page = browser.get(&format!("/listings/{listing}?{query}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let mut form = vec![("csrf".to_owned(), csrf(&page)), ("key".to_owned(), field(&page, "key"))];
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        form.push((k.into_owned(), v.into_owned()));
    }
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let booked = browser.post(&format!("/listings/{listing}/book"), &pairs).await;
    assert_eq!(booked.status, 303, "{}", booked.text);
    booked.headers["location"].to_str().unwrap().to_owned()
}

/// Loads `path` until its page contains `text` (payments settle in the background).
pub(crate) async fn page_eventually(browser: &mut Browser, path: &str, text: &str) -> Reply {
    for _ in 0..patience(100) {
        let r = browser.get(path).await;
        if r.text.contains(text) {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path} never showed {text:?}");
}

#[tokio::test]
async fn a_guest_books_pays_through_3ds_and_cancels_in_pages_and_a_host_answers_a_request() {
    let server = Server::start().await;
    let host_email = unique_email("page-host");
    let (host, _) = server.client().signed_up(&host_email).await;
    let listing = publish_listing(&server, &host, house("Maison des Pages")).await;
    let mut on_request = house("Maison sur demande");
    on_request["instant_book"] = json!(false);
    let request_listing = publish_listing(&server, &host, on_request).await;
    let (check_in, check_out) = (date_from_today(200), date_from_today(202));
    let stay = format!("check_in={check_in}&check_out={check_out}&guests=2");

    // Anyone sees the price of a stay, line by line, with the refund timeline and the calendar.
    let mut visitor = Browser::new(&server);
    let priced = visitor.get(&format!("/listings/{listing}?{stay}")).await;
    let page = html(&priced);
    assert!(page.contains("<dt>2 nights</dt><dd>€200</dd>"), "{page}");
    assert!(page.contains("<dt>Cleaning fee</dt><dd>€30</dd>"), "{page}");
    assert!(page.contains("data-total>€"), "{page}");
    assert!(page.contains("Full refund until"), "the refund timeline before paying: {page}");
    assert!(page.contains("<caption>") && page.contains("<th scope=\"col\">Mon</th>"), "the calendar: {page}");
    assert!(page.contains("Sign in to book") && !page.contains("/book\""), "{page}");
    let backwards = visitor.get(&format!("/listings/{listing}?check_in={check_out}&check_out={check_in}")).await;
    assert!(html(&backwards).contains("id=\"stay-error\""), "{}", backwards.text);
    let fr = visitor.get(&format!("/listings/{listing}?{stay}&lang=fr")).await;
    assert!(html(&fr).contains("<dt>2 nuits</dt><dd>200\u{a0}€</dd>"), "{}", fr.text);
    let signed_out = visitor.get("/trips").await;
    assert_eq!((signed_out.status, signed_out.headers["location"].to_str().unwrap()), (303, "/sign-in?next=%2Ftrips"));

    // Booking from the page: without the form's token nothing is held; a
    // double submit holds the nights once.
    let mut guest = signed_in_browser(&server, &unique_email("page-booker")).await;
    let page = guest.get(&format!("/listings/{listing}?{stay}")).await;
    assert!(html(&page).contains(&format!("action=\"/listings/{listing}/book\"")), "{}", page.text);
    let forged =
        guest.post(&format!("/listings/{listing}/book"), &[("check_in", &check_in), ("check_out", &check_out)]).await;
    assert_eq!(forged.status, 403);
    let checkout = book_in_pages(&mut guest, &listing, &stay).await;
    assert!(checkout.starts_with("/checkout/"), "{checkout}");
    let booking = checkout.trim_start_matches("/checkout/").to_owned();
    // The held nights in the calendar (the listing learns of them from the booking's event).
    let taken = page_eventually(&mut guest, &format!("/listings/{listing}?{stay}"), "class=\"taken\"").await;
    assert_eq!(html(&taken).matches("class=\"taken\"").count(), 2, "{}", taken.text);

    // Checkout: a declined card says so; a card asking for 3-D Secure goes
    // through the bank's step and back to the trip, which confirms.
    let pay_page = guest.get(&checkout).await;
    assert_eq!(pay_page.status, 200, "{}", pay_page.text);
    assert!(html(&pay_page).contains("Confirm and pay") && pay_page.text.contains("value=\"pm_card_visa\""));
    let token = csrf(&pay_page);
    let declined =
        guest.post(&checkout, &[("csrf", &token), ("key", "k1"), ("payment_method", "pm_card_chargeDeclined")]).await;
    assert_eq!(declined.status, 402, "{}", declined.text);
    assert!(html(&declined).contains("Your card was declined"));
    let bank = guest
        .post(&checkout, &[("csrf", &token), ("key", "k2"), ("payment_method", "pm_card_authenticationRequired")])
        .await;
    assert_eq!(bank.status, 200, "{}", bank.text);
    let action = html(&bank).split("action=\"").find(|s| s.starts_with("/api/")).and_then(|s| s.split('"').next());
    let action = action.expect("the bank's form").replace("&#38;", "&");
    assert!(action.starts_with("/api/v1/payments/simulated/"), "{action}");
    assert!(action.ends_with(&format!("?return_url=%2Ftrips%2F{booking}")), "{action}");
    let back = guest.post(&action, &[]).await;
    assert_eq!(back.status, 303, "{}", back.text);
    let trip_path = format!("/trips/{booking}");
    assert_eq!(back.headers["location"], trip_path.as_str());
    let trip = page_eventually(&mut guest, &trip_path, "id=\"trip-status\">Confirmed<").await;
    assert!(html(&trip).contains("Maison des Pages"), "{}", trip.text);
    assert!(trip.text.contains("id=\"cancel-refund\""), "the refund shown before cancelling: {}", trip.text);
    let elsewhere =
        guest.post(&action.replace("return_url=%2F", "return_url=https%3A%2F%2Fevil.example%2F"), &[]).await;
    assert_eq!(elsewhere.status, 422, "a bank step never returns to another site: {}", elsewhere.text);

    // Trips list it; someone else cannot see it.
    let trips = guest.get("/trips").await;
    assert!(html(&trips).contains(&format!("href=\"/trips/{booking}\"")), "{}", trips.text);
    let mut stranger = signed_in_browser(&server, &unique_email("page-stranger")).await;
    assert_eq!(stranger.get(&trip_path).await.status, 404);
    assert_eq!(stranger.get(&checkout).await.status, 404);

    // Cancelling shows what comes back (flexible, months ahead: everything).
    let refund = field(&trip, "csrf");
    let cancelled = guest.post(&format!("{trip_path}/cancel"), &[("csrf", &refund)]).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    let page = html(&cancelled);
    assert!(page.contains("id=\"cancelled\"") && page.contains("Cancelled by you"), "{page}");
    let api = server.client().with_token(&guest.jar["ht_access"]).get(&format!("/api/v1/bookings/{booking}")).await;
    assert_eq!(api.body["status"], "cancelled_by_guest", "{}", api.text);
    let total = api.body["price"]["total"]["amount"].as_i64().unwrap();
    assert_eq!(api.body["refund"]["amount"].as_i64(), Some(total));
    assert!(page.contains(&format!("<strong>€{}", total / 100)), "{page}");
    assert_eq!(guest.post(&format!("{trip_path}/cancel"), &[("csrf", &refund)]).await.status, 409);

    // A request to book: the card is authorised, the host accepts in pages.
    let checkout = book_in_pages(&mut guest, &request_listing, &stay).await;
    let requested = checkout.trim_start_matches("/checkout/").to_owned();
    let pay_page = guest.get(&checkout).await;
    assert!(html(&pay_page).contains(">Request to book</button>"), "{}", pay_page.text);
    let sent =
        guest.post(&checkout, &[("csrf", &csrf(&pay_page)), ("key", "k3"), ("payment_method", "pm_card_visa")]).await;
    assert_eq!(
        (sent.status, sent.headers["location"].to_str().unwrap()),
        (303, format!("/trips/{requested}").as_str())
    );
    page_eventually(&mut guest, &format!("/trips/{requested}"), "Waiting for the host&#39;s answer").await;
    let mut host_browser = Browser::new(&server);
    let form = host_browser.get("/sign-in").await;
    let r =
        host_browser.post("/sign-in", &[("csrf", &csrf(&form)), ("email", &host_email), ("password", PASSWORD)]).await;
    assert_eq!(r.status, 303);
    let list = host_browser.get("/host/reservations").await;
    let accept = format!("/host/reservations/{requested}/accept");
    assert!(html(&list).contains(&format!("action=\"{accept}\"")), "{}", list.text);
    assert_eq!(guest.post(&accept, &[("csrf", &csrf(&list))]).await.status, 403, "another browser's token");
    let accepted = host_browser.post(&accept, &[("csrf", &csrf(&list))]).await;
    assert_eq!((accepted.status, accepted.headers["location"].to_str().unwrap()), (303, "/host/reservations"));
    page_eventually(&mut guest, &format!("/trips/{requested}"), "id=\"trip-status\">Confirmed<").await;
    let trip = guest.get(&format!("/trips/{requested}")).await;
    let not_hers = guest.post(&format!("/host/reservations/{requested}/cancel"), &[("csrf", &csrf(&trip))]).await;
    assert_eq!(not_hers.status, 404, "the host's page acts for the host only: {}", not_hers.text);
    assert!(guest.get(&format!("/trips/{requested}")).await.text.contains("id=\"trip-status\">Confirmed<"));
}

fn totp_now(secret: &str) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    let totp = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes, None, "t".into()).unwrap();
    totp.generate(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs())
}

#[tokio::test]
async fn a_user_edits_the_profile_sets_up_two_step_sign_in_with_a_qr_code_and_manages_sessions_in_pages() {
    let server = Server::start().await;
    let email = unique_email("page-account");
    let mut browser = signed_in_browser(&server, &email).await;
    let elsewhere = server.client().login(&email, PASSWORD).await;
    let elsewhere_refresh = elsewhere.body["refresh_token"].as_str().unwrap().to_owned();

    // The profile: a form without the token changes nothing; saved values show, escaped.
    let page = browser.get("/account").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(html(&page).contains(&email) && page.text.contains("value=\"Test User\""), "{}", page.text);
    let forged = browser.post("/account", &[("display_name", "Forged")]).await;
    assert_eq!(forged.status, 403);
    let token = csrf(&page);
    let saved = browser
        .post(
            "/account",
            &[
                ("csrf", &token),
                ("display_name", "Camille <Compte>"),
                ("bio", "J'aime les \"gîtes\"."),
                ("locale", "fr"),
                ("currency", "USD"),
                ("sms", "on"),
            ],
        )
        .await;
    assert_eq!(
        (saved.status, saved.headers["location"].to_str().unwrap()),
        (303, "/account?saved=1"),
        "{}",
        saved.text
    );
    assert_eq!(browser.jar.get("lang").map(String::as_str), Some("fr"), "the pages now speak the profile's language");
    let page = browser.get("/account?saved=1").await;
    let text = html(&page);
    assert!(text.contains("<html lang=\"fr\">") && text.contains("id=\"notice\">Enregistré."), "{text}");
    assert!(text.contains("value=\"Camille &#60;Compte&#62;\""), "{text}");
    assert!(text.contains("<option value=\"USD\" selected>") && text.contains("value=\"fr\" selected"), "{text}");
    assert!(
        text.contains("name=\"sms\" value=\"on\" checked") && !text.contains("name=\"email\" value=\"on\" checked")
    );
    let me = server.client().with_token(&browser.jar["ht_access"]).get("/api/v1/users/me").await;
    assert_eq!(
        (me.body["display_name"].as_str(), me.body["currency"].as_str()),
        (Some("Camille <Compte>"), Some("USD"))
    );
    let empty = browser
        .post("/account", &[("csrf", &token), ("display_name", " "), ("locale", "fr"), ("currency", "USD")])
        .await;
    assert_eq!(empty.status, 422, "{}", empty.text);
    assert!(html(&empty).contains("id=\"display_name-error\""), "{}", empty.text);

    // Two-step sign-in: a QR code (an SVG image, no script) and the key; a
    // current code turns it on and shows the recovery codes once.
    let security = browser.get("/account/security").await;
    assert_eq!(security.status, 200, "{}", security.text);
    assert!(html(&security).contains("id=\"two-factor-state\">Désactivée"), "{}", security.text);
    assert!(security.text.matches("<li>").count() >= 2, "both sessions listed: {}", security.text);
    let setup = browser.post("/account/2fa/setup", &[("csrf", &csrf(&security))]).await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    assert!(html(&setup).contains("src=\"data:image/svg+xml;base64,"), "{}", setup.text);
    let secret = setup.text.split("id=\"totp-secret\">").nth(1).and_then(|s| s.split('<').next()).unwrap().to_owned();
    let wrong = browser.post("/account/2fa/enable", &[("csrf", &csrf(&setup)), ("code", "000000")]).await;
    assert!(wrong.status == 401 || wrong.status == 422, "{} {}", wrong.status, wrong.text);
    assert!(html(&wrong).contains("id=\"form-error\""));
    let on = browser.post("/account/2fa/enable", &[("csrf", &csrf(&setup)), ("code", &totp_now(&secret))]).await;
    assert_eq!(on.status, 200, "{}", on.text);
    let codes: Vec<String> =
        html(&on).split("<li><code>").skip(1).map(|s| s.split('<').next().unwrap().to_owned()).collect();
    assert!(codes.len() >= 8, "{}", on.text);
    let login = server.client().login(&email, PASSWORD).await;
    assert_eq!(login.status, 401, "a password alone no longer signs in: {}", login.text);

    // Turning it off takes the password and a code; a recovery code will do.
    let security = browser.get("/account/security").await;
    assert!(security.text.contains("id=\"two-factor-state\">Activée"), "{}", security.text);
    let token = csrf(&security);
    let refused =
        browser.post("/account/2fa/disable", &[("csrf", &token), ("password", "not it"), ("code", &codes[0])]).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    let off =
        browser.post("/account/2fa/disable", &[("csrf", &token), ("password", PASSWORD), ("code", &codes[0])]).await;
    assert_eq!(off.status, 200, "{}", off.text);
    assert!(html(&off).contains("id=\"two-factor-state\">Désactivée"), "{}", off.text);

    // The password: the wrong current one is refused; the right one ends the other sessions, not this one.
    let new_password = "another long passphrase for pages";
    let wrong = browser
        .post("/account/password", &[("csrf", &token), ("current_password", "nope"), ("new_password", new_password)])
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.text);
    assert!(html(&wrong).contains("id=\"form-error\">Ce mot de passe n&#39;est pas le mot de passe actuel."));
    let changed = browser
        .post("/account/password", &[("csrf", &token), ("current_password", PASSWORD), ("new_password", new_password)])
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert!(html(&changed).contains("id=\"notice\""), "{}", changed.text);
    let reused = server.client().post("/api/v1/auth/refresh", json!({"refresh_token": elsewhere_refresh})).await;
    assert_eq!(reused.status, 401, "the other session ended");
    assert_eq!(browser.get("/account").await.status, 200, "this one goes on");
    assert_eq!(server.client().login(&email, new_password).await.status, 200);
    let revoked = browser.post("/account/sessions/revoke-others", &[("csrf", &token)]).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert!(html(&revoked).contains("Autres sessions déconnectées : 1"), "{}", revoked.text);
}

#[tokio::test]
async fn a_guest_asks_a_host_from_the_listing_page_and_both_read_and_reply_in_the_inbox() {
    let server = Server::start_with(&[("HOMETRIP_TESTING__CLOCK_CONTROL", "true")]).await;
    let host_email = unique_email("page-inbox-host");
    let (host_api, _) = server.client().signed_up(&host_email).await;
    let listing = publish_listing(&server, &host_api, house("Maison des Messages")).await;
    let mut guest = signed_in_browser(&server, &unique_email("page-inbox-guest")).await;
    let mut host = Browser::new(&server);
    let form = host.get("/sign-in").await;
    let r = host.post("/sign-in", &[("csrf", &csrf(&form)), ("email", &host_email), ("password", PASSWORD)]).await;
    assert_eq!(r.status, 303);

    // The first question, from the listing page; a form without the token sends nothing.
    let page = guest.get(&format!("/listings/{listing}")).await;
    assert!(html(&page).contains(&format!("action=\"/listings/{listing}/contact\"")), "{}", page.text);
    assert_eq!(guest.post(&format!("/listings/{listing}/contact"), &[("body", "Forged")]).await.status, 403);
    let asked = guest
        .post(
            &format!("/listings/{listing}/contact"),
            &[("csrf", &csrf(&page)), ("body", "Bonjour <b>!</b>\nIs the garden shaded? Call me on +33 6 12 34 56 78")],
        )
        .await;
    assert_eq!(asked.status, 303, "{}", asked.text);
    let thread = asked.headers["location"].to_str().unwrap().to_owned();
    assert!(thread.starts_with("/inbox/"), "{thread}");
    let mine = guest.get(&thread).await;
    let text = html(&mine);
    assert!(
        text.contains("<p>Bonjour &#60;b&#62;!&#60;/b&#62;</p><p>Is the garden shaded?"),
        "escaped, line by line: {text}"
    );
    assert!(!text.contains("12 34 56 78"), "contact details masked before a booking: {text}");
    assert!(text.contains("Maison des Messages") && !text.contains("class=\"hint seen\""), "{text}");

    // Unread past the digest's delay, the question is a notification leading to the conversation.
    let r = server
        .internal(reqwest::Method::POST, "/internal/testing/clock", Some(json!({"advance_seconds": 6 * 60})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = server.internal(reqwest::Method::POST, "/internal/testing/jobs/run", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let notified = page_eventually(&mut host, "/notifications", "New message from Test User").await;
    let text = html(&notified);
    assert!(text.contains(&format!("<a href=\"{thread}\">New message from Test User</a>")), "{text}");
    assert!(text.contains("id=\"unread-count\">1 unread") && text.contains("class=\"notification unread\""), "{text}");
    let all_read = host.post("/notifications/read-all", &[("csrf", &csrf(&notified))]).await;
    assert_eq!((all_read.status, all_read.headers["location"].to_str().unwrap()), (303, "/notifications"));
    let text = host.get("/notifications").await.text;
    assert!(!text.contains("id=\"unread-count\"") && text.contains("New message from Test User"), "{text}");

    // The host's inbox shows it unread; opening it reads it; the reply reaches the guest.
    let inbox = host.get("/inbox").await;
    assert!(html(&inbox).contains(&format!("href=\"{thread}\"")), "{}", inbox.text);
    assert!(inbox.text.contains("1 unread"), "{}", inbox.text);
    let opened = host.get(&thread).await;
    assert!(html(&opened).contains("Is the garden shaded?"), "{}", opened.text);
    assert!(!host.get("/inbox").await.text.contains("1 unread"), "read once opened");
    let empty = host.post(&thread, &[("csrf", &csrf(&opened)), ("body", "  ")]).await;
    assert_eq!(empty.status, 422, "{}", empty.text);
    assert!(html(&empty).contains("id=\"send-error\""), "{}", empty.text);
    let token = csrf(&opened);
    let client_message_id = field(&opened, "client_message_id");
    let reply =
        [("csrf", token.as_str()), ("client_message_id", &client_message_id), ("body", "Yes, under two old limes.")];
    let sent = host.post(&thread, &reply).await;
    assert_eq!(sent.status, 303, "{}", sent.text);
    assert_eq!(sent.headers["location"].to_str().unwrap(), format!("{thread}#m2"));
    let again = host.post(&thread, &reply).await;
    assert_eq!(again.headers["location"].to_str().unwrap(), format!("{thread}#m2"), "a double submit sends once");
    let seen = guest.get(&thread).await;
    let text = html(&seen);
    assert!(text.contains("Yes, under two old limes.") && text.matches("<li id=\"m").count() == 2, "{text}");
    assert!(text.contains("class=\"hint seen\""), "the guest's question shows as seen: {text}");

    // A reply with a photo, as the page's form sends it (multipart); the
    // file reaches the participants through this site's own address.
    let form = host.get(&thread).await;
    assert!(form.text.contains("enctype=\"multipart/form-data\""), "{}", form.text);
    let texts = [
        ("csrf", csrf(&form)),
        ("client_message_id", field(&form, "client_message_id")),
        ("body", "Here is the garden.".to_owned()),
    ];
    let with_photo = host.multipart(&thread, &texts, vec![png(64, 48)]).await;
    assert_eq!(with_photo.status, 303, "{}", with_photo.text);
    let shown = guest.get(&thread).await;
    let link = shown.text.split("<a href=\"").find(|s| s.contains("/attachments/")).and_then(|s| s.split('"').next());
    let link = link.expect("an attachment link").to_owned();
    assert!(link.starts_with(&format!("{thread}/attachments/")), "{link}");
    let file = guest.get(&link).await;
    assert_eq!(file.status, 200, "{}", file.text);
    assert!(file.content_type().starts_with("image/"), "{}", file.content_type());
    assert_eq!(file.headers["x-content-type-options"], "nosniff");
    // Not a photo nor a PDF: said on the page, nothing sent.
    let form = host.get(&thread).await;
    let texts = [
        ("csrf", csrf(&form)),
        ("client_message_id", field(&form, "client_message_id")),
        ("body", "And a script.".to_owned()),
    ];
    let refused = host.multipart(&thread, &texts, vec![b"#!/bin/sh\necho hi\n".to_vec()]).await;
    assert!(refused.status == 415 || refused.status == 422, "{} {}", refused.status, refused.text);
    assert!(html(&refused).contains("id=\"send-error\""), "{}", refused.text);
    let forged = host.multipart(&thread, &[("body", "no token".to_owned())], vec![png(8, 8)]).await;
    assert_eq!(forged.status, 403);
    assert!(!guest.get(&thread).await.text.contains("And a script."));

    // Someone else's conversation is not found, nor its files.
    let mut stranger = signed_in_browser(&server, &unique_email("page-inbox-stranger")).await;
    assert_eq!(stranger.get(&link).await.status, 404);
    assert_eq!(stranger.get(&thread).await.status, 404);
    let inbox = stranger.get("/inbox").await;
    assert!(html(&inbox).contains("No messages yet"), "{}", inbox.text);
}

#[tokio::test]
async fn a_configured_tile_server_draws_the_results_on_a_map_and_joins_the_content_security_policy() {
    let server = Server::start_with(&[
        ("HOMETRIP_WEB__MAP_TILES_URL", "http://127.0.0.1:9/tiles/{z}/{x}/{y}.png"),
        ("HOMETRIP_WEB__MAP_ATTRIBUTION", "© Local <b>tiles</b>"),
    ])
    .await;
    let (host, _) = server.client().signed_up(&unique_email("host")).await;
    let word = format!("tuile{}", &uuid::Uuid::now_v7().simple().to_string()[24..]);
    let listing = publish_listing(&server, &host, house(&format!("Maison {word}"))).await;
    let visitor = server.client();
    eventually(&visitor, &format!("/api/v1/search/listings?q={word}"), |b| {
        b["items"].as_array().unwrap().iter().any(|i| i["id"] == listing.as_str())
    })
    .await;
    let results = visitor.get(&format!("/search?q={word}")).await;
    assert_eq!(results.status, 200, "{}", results.text);
    let page = html(&results);
    let csp = results.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("img-src 'self' data: http://127.0.0.1:9;"), "{csp}");
    assert!(page.contains("<image href=\"http://127.0.0.1:9/tiles/15/"), "the tiles at the closest zoom: {page}");
    assert!(page.contains(&format!("<a href=\"/listings/{listing}\" aria-label=\"Maison {word}\"><circle")), "{page}");
    assert!(page.contains("© Local &#60;b&#62;tiles&#60;/b&#62;"), "the attribution, escaped: {page}");
    assert!(!page.contains("class=\"plot-bg\""), "no plain plot beside the map");

    // Without a tile server: the plain plot, and nothing from elsewhere.
    let plain = Server::start().await;
    let csp = plain.client().get("/").await.headers["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("img-src 'self' data:;"), "{csp}");
}

#[tokio::test]
async fn a_tile_server_url_without_its_placeholders_is_refused_at_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hometrip"))
        .args(["config"])
        .env("HOMETRIP_WEB__MAP_TILES_URL", "https://tiles.example/{z}.png")
        .output()
        .expect("the binary runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("web.map_tiles_url"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
