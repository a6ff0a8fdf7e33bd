//! The account's notification settings in pages: each kind's channels and
//! the quiet hours saved as the API reads them, the security emails never
//! offered to turn off, and a phone number verified with the code the SMS
//! carried (the SMS outbox, without Twilio).

use std::time::Duration;

use crate::support::*;
use crate::web::{api_as, csrf, html, signed_in_browser};

/// The code of the newest SMS to `to` in the server's SMS outbox.
async fn sms_code(server: &Server, to: &str) -> String {
    let dir = server.data_dir.join("outbox/sms");
    for _ in 0..patience(100) {
        let mut newest: Option<(std::time::SystemTime, String)> = None;
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
            let Ok(sms) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            let at = entry.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
            if sms["to"] == to && newest.as_ref().is_none_or(|(t, _)| at > *t) {
                newest = Some((at, sms["body"].as_str().unwrap_or_default().to_owned()));
            }
        }
        if let Some((_, body)) = newest {
            return body.chars().filter(char::is_ascii_digit).take(6).collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no SMS to {to} in {}", dir.display());
}

fn as_strs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn a_user_chooses_channels_quiet_hours_and_verifies_a_phone_in_pages() {
    let server = Server::start().await;
    let email = unique_email("settings");
    let mut browser = signed_in_browser(&server, &email).await;
    let api = api_as(&server, &email).await;

    let page = browser.get("/account/notifications").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(html(&page).contains("name=\"message_received.email\""), "{}", page.text);
    assert!(!page.text.contains("name=\"password_reset."), "security emails are not offered: {}", page.text);
    let token = csrf(&page);

    // Messages in the app only, SMS for confirmations, quiet at night.
    let mut form = vec![
        ("csrf", token.clone()),
        ("message_received.in_app", "on".to_owned()),
        ("booking_confirmed.email", "on".to_owned()),
        ("booking_confirmed.sms", "on".to_owned()),
        ("quiet_from", "22:00".to_owned()),
        ("quiet_to", "07:30".to_owned()),
        ("time_zone", "Europe/Paris".to_owned()),
    ];
    let saved = browser.post("/account/notifications", &as_strs(&form)).await;
    assert_eq!(saved.status, 303, "{}", saved.text);
    let prefs = api.get("/api/v1/notifications/preferences").await;
    assert_eq!(prefs.status, 200, "{}", prefs.text);
    let c = &prefs.body["channels"];
    assert_eq!(c["message_received"], serde_json::json!({"email": false, "sms": false, "push": false, "in_app": true}));
    assert_eq!(c["booking_confirmed"]["sms"], true);
    assert_eq!(c["password_reset"]["email"], true, "{}", prefs.text);
    assert_eq!(prefs.body["quiet_hours"], serde_json::json!({"from": "22:00", "to": "07:30"}));
    assert_eq!(prefs.body["time_zone"], "Europe/Paris");
    let shown = browser.get("/account/notifications?done=saved").await;
    assert!(html(&shown).contains("Your notification settings are saved."));
    assert!(shown.text.contains("name=\"quiet_from\" type=\"time\" value=\"22:00\""), "{}", shown.text);

    // Bad hours are said, and nothing changes.
    form.retain(|(k, _)| *k != "quiet_from");
    form.push(("quiet_from", "25:99".to_owned()));
    let refused = browser.post("/account/notifications", &as_strs(&form)).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(html(&refused).contains("id=\"settings-error\""));
    assert_eq!(api.get("/api/v1/notifications/preferences").await.body["quiet_hours"]["from"], "22:00");
    let forged = browser.post("/account/notifications", &[("quiet_from", "01:00")]).await;
    assert_eq!(forged.status, 403);

    // A phone number: a code by SMS, then verified.
    let bad = browser.post("/account/phone", &[("csrf", &token), ("phone", "06 12 34 56 78")]).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let sent = browser.post("/account/phone", &[("csrf", &token), ("phone", "+33 6 98 76 54 32")]).await;
    assert_eq!(sent.status, 303, "{}", sent.text);
    let pending = browser.get("/account/notifications?done=code_sent").await;
    assert!(html(&pending).contains("+33698765432 · not verified yet"), "{}", pending.text);
    let code = sms_code(&server, "+33698765432").await;
    let wrong = browser.post("/account/phone/verify", &[("csrf", &token), ("code", "000000")]).await;
    assert_eq!(wrong.status, 422, "{}", wrong.text);
    let verified = browser.post("/account/phone/verify", &[("csrf", &token), ("code", &code)]).await;
    assert_eq!(verified.status, 303, "{}", verified.text);
    let done = browser.get("/account/notifications?done=verified").await;
    assert!(html(&done).contains("+33698765432 · verified"), "{}", done.text);
    assert_eq!(api.get("/api/v1/users/me/phone").await.body["verified"], true);
}

#[tokio::test]
async fn a_user_uploads_an_avatar_from_the_account_page_and_others_see_it() {
    let server = Server::start().await;
    let email = unique_email("avatar");
    let mut browser = signed_in_browser(&server, &email).await;
    let api = api_as(&server, &email).await;
    let page = browser.get("/account").await;
    assert!(html(&page).contains("enctype=\"multipart/form-data\""), "{}", page.text);
    assert!(page.text.contains("No photo yet."), "{}", page.text);
    let token = csrf(&page);

    // Without the token, with nothing, with something that is not an image: nothing changes.
    assert_eq!(browser.upload("/account/avatar", "", vec![png(200, 200)]).await.status, 403);
    let none = browser.upload("/account/avatar", &token, Vec::new()).await;
    assert_eq!(none.status, 422, "{}", none.text);
    assert!(html(&none).contains("Choose a photo first."), "{}", none.text);
    let text = browser.upload("/account/avatar", &token, vec![b"not an image at all".to_vec()]).await;
    assert!(text.status == 415 || text.status == 422, "{} {}", text.status, text.text);
    assert!(html(&text).contains("id=\"avatar-error\""), "{}", text.text);
    assert!(api.get("/api/v1/users/me").await.body["avatar_url"].is_null());

    // A photo: saved, shown on the account page and on the public profile.
    let saved = browser.upload("/account/avatar", &token, vec![png(300, 200)]).await;
    assert_eq!(saved.status, 303, "{}", saved.text);
    assert_eq!(saved.headers["location"], "/account?saved=avatar");
    let shown = browser.get("/account?saved=avatar").await;
    assert!(html(&shown).contains("Your photo is saved."), "{}", shown.text);
    let me = api.get("/api/v1/users/me").await;
    let url = me.body["avatar_url"].as_str().expect("an avatar").to_owned();
    assert!(shown.text.contains(&format!("class=\"avatar\" src=\"{url}\"")), "{}", shown.text);
    let image = server.client().get(&url).await;
    assert_eq!(image.status, 200);
    assert!(image.content_type().starts_with("image/"), "{}", image.content_type());
    let id = me.body["id"].as_str().unwrap();
    assert_eq!(server.client().get(&format!("/api/v1/users/{id}")).await.body["avatar_url"], url);
}
