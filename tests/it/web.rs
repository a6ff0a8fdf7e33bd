//! The web app's pages through the binary: served on the gateway's port in
//! every shape, rendered from the modules' answers, user text escaped, a
//! strict Content-Security-Policy on every page, French or English from the
//! query, the cookie or the browser, assets under content-hashed names.

use serde_json::json;

use crate::support::*;

fn html(r: &Reply) -> &str {
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
    assert_eq!(results.status, 200, "{}", results.text);
    let page = html(&results);
    assert!(page.contains(&format!("href=\"/listings/{listing}\"")), "{page}");
    assert!(page.contains("Villa Quokka &#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;"), "{page}");
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains(&draft), "a draft is not found: {page}");
    assert!(page.contains("€100"), "the nightly price in English: {page}");
    assert!(page.contains("data-event=\"search\""));
    assert!(page.contains("<circle"), "the results' positional plot: {page}");

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
    assert!(text.contains("Lyon") && text.contains("wifi") && text.contains("€30"), "{text}");
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
struct Browser {
    api: Api,
    jar: std::collections::BTreeMap<String, String>,
}

impl Browser {
    fn new(server: &Server) -> Browser {
        Browser { api: server.client(), jar: Default::default() }
    }

    fn keep(&mut self, r: &Reply) {
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

    fn cookie_header(&self) -> String {
        self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn get(&mut self, path: &str) -> Reply {
        let r = self
            .api
            .send(self.api.http.get(format!("{}{path}", self.api.base)).header("cookie", self.cookie_header()))
            .await;
        self.keep(&r);
        r
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
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
}

/// The CSRF token of the page's forms.
fn csrf(page: &Reply) -> String {
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
