//! Backup and restore. The embedded profile: `hometrip backup` while serving,
//! `hometrip restore` into the stopped server's data dir, and everything of
//! the moment of the backup is back (accounts, sessions signed with the
//! restored keys, listings, photos, search) and nothing after it. On
//! PostgreSQL: the documented pg_dump / pg_restore procedure.

use std::process::Command;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn an_embedded_backup_taken_while_serving_restores_everything_of_its_moment() {
    let mut server = Server::start_with(&[]).await;
    let out = std::env::temp_dir().join(format!("hometrip-backup-{}", uuid::Uuid::now_v7()));
    if server.database_url.is_some() || server.split.is_some() {
        // Not the embedded profile: the command says what to use instead.
        let r = server.cli(&["backup", "--out", &out.to_string_lossy()], "");
        assert!(!r.status.success());
        assert!(String::from_utf8_lossy(&r.stderr).contains("pg_dump"), "{}", String::from_utf8_lossy(&r.stderr));
        return;
    }
    let email = unique_email("kept");
    let (host, tokens) = server.client().signed_up(&email).await;
    let listing = publish_listing(&server, &host, house("Maison sauvegardée")).await;
    let photo =
        host.get(&format!("/api/v1/listings/{listing}")).await.body["photos"][0]["url"].as_str().unwrap().to_owned();

    let r = server.cli(&["backup", "--out", &out.to_string_lossy()], "");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // A second backup never writes over the first.
    let again = server.cli(&["backup", "--out", &out.to_string_lossy()], "");
    assert!(!again.status.success());

    // After the backup: lost by a restore (the recovery point is the backup).
    let later = unique_email("later");
    assert_eq!(server.client().register(&later, "Later").await.status, 201);

    // Restoring over a database needs --force, and a stopped server.
    server.stop();
    let refused = server.cli(&["restore", "--from", &out.to_string_lossy()], "");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    let not_a_backup = server.cli(&["restore", "--from", "/nonexistent", "--force"], "");
    assert!(!not_a_backup.status.success());
    let restored = server.cli(&["restore", "--from", &out.to_string_lossy(), "--force"], "");
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stderr));
    server.restart().await;
    // The server came back on another port.
    let host = server.client().with_token(host.token.as_deref().unwrap());

    // The session of before still works: its token was signed with the restored key.
    let me = host.get("/api/v1/users/me").await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["email"], email);
    let refreshed =
        server.client().post("/api/v1/auth/refresh", json!({"refresh_token": tokens["refresh_token"]})).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let login = server.client().login(&later, PASSWORD).await;
    assert_eq!(login.status, 401, "an account made after the backup came back");
    assert_eq!(host.get(&format!("/api/v1/listings/{listing}")).await.status, 200);
    let file = server.client().http.get(server.url(&photo)).send().await.unwrap();
    assert_eq!(file.status(), 200, "{photo}");
    // The index was rebuilt from the restored listings.
    eventually(&server.client(), "/api/v1/search/listings?q=sauvegard%C3%A9e", |r| {
        r["items"].as_array().unwrap().iter().any(|i| i["id"] == listing.as_str())
    })
    .await;
}

#[tokio::test]
async fn a_postgresql_database_comes_back_with_pg_dump_and_pg_restore() {
    let mut server = Server::start_with(&[]).await;
    let Some(url) = server.database_url.clone().filter(|_| server.split.is_none()) else { return };
    let email = unique_email("dumped");
    let (host, _) = server.client().signed_up(&email).await;
    let listing = publish_listing(&server, &host, house("Maison archivée")).await;

    // The procedure of docs/operations.md: a custom-format dump while serving,
    // restored into a new database.
    let dump = std::env::temp_dir().join(format!("hometrip-{}.dump", uuid::Uuid::now_v7()));
    let ok = Command::new("pg_dump").args(["--format=custom", "--file"]).arg(&dump).arg(&url).status().unwrap();
    assert!(ok.success());
    let target = fresh_database().await.unwrap();
    let ok = Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname", &target])
        .arg(&dump)
        .status()
        .unwrap();
    assert!(ok.success());
    let _ = std::fs::remove_file(&dump);

    // The same data dir (keys), the restored database.
    server.set_env("HOMETRIP_DATABASE__URL", &target);
    server.restart().await;
    let me = server.client().with_token(host.token.as_deref().unwrap()).get("/api/v1/users/me").await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["email"], email);
    assert_eq!(server.client().get(&format!("/api/v1/listings/{listing}")).await.status, 200);
}
