//! Real email over SMTP: a minimal SMTP server in the test speaks the protocol
//! (RFC 5321) and keeps what it receives.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::support::*;

/// One received message: its recipients and its DATA.
type Received = (Vec<String>, String);

#[derive(Default, Clone)]
struct Mailbox(Arc<Mutex<Vec<Received>>>);

fn serve_smtp(listener: TcpListener, mailbox: Mailbox) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mailbox = mailbox.clone();
            std::thread::spawn(move || {
                let mut out = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let mut rcpt = Vec::new();
                let _ = out.write_all(b"220 test ESMTP\r\n");
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let cmd = line.trim_end().to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                        b"250-test\r\n250 8BITMIME\r\n"
                    } else if cmd.starts_with("MAIL FROM") {
                        b"250 OK\r\n"
                    } else if cmd.starts_with("RCPT TO") {
                        rcpt.push(line.trim_end()[8..].trim().trim_matches(['<', '>']).to_owned());
                        b"250 OK\r\n"
                    } else if cmd == "DATA" {
                        let _ = out.write_all(b"354 go ahead\r\n");
                        let mut data = String::new();
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == ".\r\n" {
                                break;
                            }
                            data.push_str(&line);
                        }
                        mailbox.0.lock().unwrap().push((std::mem::take(&mut rcpt), data));
                        b"250 queued\r\n"
                    } else if cmd == "QUIT" {
                        let _ = out.write_all(b"221 bye\r\n");
                        return;
                    } else {
                        b"250 OK\r\n"
                    };
                    let _ = out.write_all(reply);
                }
            });
        }
    });
}

#[tokio::test]
async fn verification_email_goes_out_over_smtp() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mailbox = Mailbox::default();
    serve_smtp(listener, mailbox.clone());
    let url = format!("smtp://127.0.0.1:{port}");
    let server = Server::start_with(&[("HOMETRIP_NOTIFICATION__SMTP__URL", &url)]).await;
    let api = server.client();
    let email = unique_email("smtp");
    assert_eq!(api.register(&email, "Sam").await.status, 201);
    let mut received = None;
    for _ in 0..100 {
        if let Some(m) = mailbox.0.lock().unwrap().iter().find(|(to, _)| to.contains(&email)).cloned() {
            received = Some(m);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (_, data) = received.expect("an email reached the SMTP server");
    assert!(data.contains("Subject: Confirm your email address"), "{data}");
    // No file fallback when SMTP is configured.
    assert!(server.emails().is_empty());
    // The link in it verifies the account (quoted-printable soft breaks removed).
    let body = data.replace("=\r\n", "");
    let start = body.find("token=3D").expect("token in body") + "token=3D".len();
    let token: String =
        body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    assert_eq!(api.post("/api/v1/auth/verify-email", json!({"token": token})).await.status, 200);
}
