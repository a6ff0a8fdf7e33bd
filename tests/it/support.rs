//! Test support: starts the real `hometrip` binary on a free port with its own
//! data dir (and its own PostgreSQL database and Redis prefix when
//! `TEST_DATABASE_URL` / `TEST_REDIS_URL` are set), and talks HTTP to it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use hometrip_kernel::diesel;
use serde_json::{json, Value};

use crate::shape::{is_split, Split};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct Server {
    pub base: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub redis_prefix: String,
    child: Option<Child>,
    extra_env: Vec<(String, String)>,
    /// The split platform behind `base` (`TEST_SHAPE=split`), and whether
    /// this server started it (else it is the shared one).
    pub split: Option<Arc<Split>>,
    owns_split: bool,
}

/// A port no other server of this run has had, free now. Ports come from
/// below the kernel's ephemeral range (32768 and up), so an outgoing
/// connection or another test's `bind(0)` cannot take a port while its
/// process restarts; a window per test binary keeps parallel runs apart.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    for _ in 0..SPAN {
        let port = (LOW + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below the ephemeral range")
}

/// A fresh PostgreSQL database when `TEST_DATABASE_URL` (a server URL) is set.
pub async fn fresh_database() -> Option<String> {
    let base = std::env::var("TEST_DATABASE_URL").ok().filter(|s| !s.is_empty())?;
    use hometrip_kernel::diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let name = format!("ht_test_{}", uuid::Uuid::now_v7().simple());
    let mut conn = AsyncPgConnection::establish(&base).await.expect("connect to TEST_DATABASE_URL");
    hometrip_kernel::diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let mut url = url::Url::parse(&base).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

pub fn redis_url() -> Option<String> {
    std::env::var("TEST_REDIS_URL").ok().filter(|s| !s.is_empty())
}

impl Server {
    pub async fn start() -> Server {
        if is_split() {
            return Self::over(Split::shared().await, false);
        }
        Self::start_with(&[]).await
    }

    /// A split platform of its own whose processes talk mutual TLS.
    pub async fn start_split_with_tls(env: &[(&str, &str)]) -> Server {
        Self::over(Split::start_with_tls(env, true).await, true)
    }

    /// A server with settings of its own (in the split shape, a platform of its own).
    pub async fn start_with(env: &[(&str, &str)]) -> Server {
        // Every test calls from 127.0.0.1, and polls while events cross a
        // loaded machine: the per-address limit is for the tests of it, which
        // set their own (later settings win).
        let env: Vec<(&str, &str)> =
            [("HOMETRIP_SERVER__RATE_LIMIT__MAX", "1000000")].into_iter().chain(env.iter().copied()).collect();
        if is_split() {
            return Self::over(Split::start(&env).await, true);
        }
        Self::start_on(fresh_database().await, format!("it:{}:", uuid::Uuid::now_v7().simple()), &env).await
    }

    fn over(split: Arc<Split>, owns_split: bool) -> Server {
        Server {
            base: format!("http://127.0.0.1:{}", split.gateway_port),
            port: split.gateway_port,
            // Where the emails are written.
            data_dir: split.data_dir_of("notification"),
            database_url: None,
            redis_prefix: split.redis_prefix.clone(),
            child: None,
            extra_env: Vec::new(),
            split: Some(split),
            owns_split,
        }
    }

    /// The database holding `module`'s tables: `Some(url)` on PostgreSQL,
    /// `None` for the SQLite file under the data dir.
    pub fn database_of(&self, module: &str) -> Option<String> {
        match &self.split {
            Some(split) => Some(split.database_of(module)),
            None => self.database_url.clone(),
        }
    }

    /// The data dir of the process running `module` (its keys, its files).
    pub fn data_dir_of(&self, module: &str) -> PathBuf {
        match &self.split {
            Some(split) => split.data_dir_of(module),
            None => self.data_dir.clone(),
        }
    }

    /// Where `module`'s internal routes answer, and the service credential:
    /// this server, or in the split shape that module's process.
    pub fn service(&self, module: &str) -> (String, String) {
        match &self.split {
            Some(split) => (split.bases_of(module)[0].clone(), split.token.clone()),
            None => {
                let token = std::fs::read_to_string(self.data_dir.join("keys/service.token")).expect("service token");
                (self.base.clone(), token.trim().to_owned())
            }
        }
    }

    /// A client of `module`'s trait over HTTP, as another process calls it
    /// (over mutual TLS on a platform that has it), with `token` as the
    /// service credential.
    pub fn remote_as(&self, module: &str, token: &str) -> hometrip_kernel::remote::RemoteClient {
        use hometrip_kernel::upstream::{Balance, BreakerSettings, Upstream};
        let (base, _) = self.service(module);
        let http = self.split.as_ref().map_or_else(reqwest::Client::new, |s| s.http());
        let upstream = Upstream::new(module, &[base], Balance::RoundRobin, &[], BreakerSettings::default()).unwrap();
        hometrip_kernel::remote::RemoteClient::over(upstream, http, token)
    }

    /// The same with the deployment's service credential.
    pub fn remote(&self, module: &str) -> hometrip_kernel::remote::RemoteClient {
        let (_, token) = self.service(module);
        self.remote_as(module, &token)
    }

    fn own_split(&self) -> &Arc<Split> {
        assert!(self.owns_split, "this test changes the platform: start it with Server::start_with");
        self.split.as_ref().unwrap()
    }

    /// A second process on the same database as `other` (its own data dir,
    /// port and keys): several HomeTrip processes sharing one PostgreSQL.
    pub async fn start_sharing(other: &Server, env: &[(&str, &str)]) -> Server {
        if let Some(split) = &other.split {
            return Self::over(Arc::clone(split), false);
        }
        Self::start_on(other.database_url.clone(), other.redis_prefix.clone(), env).await
    }

    async fn start_on(database_url: Option<String>, redis_prefix: String, env: &[(&str, &str)]) -> Server {
        let data_dir = std::env::temp_dir().join(format!("hometrip-it-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        let mut server = Server {
            base: String::new(),
            port: 0,
            data_dir,
            database_url,
            redis_prefix,
            child: None,
            extra_env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            split: None,
            owns_split: false,
        };
        server.launch().await;
        server
    }

    /// Calls an internal route with this process's service credential. In
    /// the split shape a testing hook goes to every process (each has its
    /// own clock and timers), a module's route to that module's process.
    pub async fn internal(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        if let Some(split) = &self.split {
            let module = path.trim_start_matches("/internal/").split('/').next().unwrap_or("");
            let bases = if module == "testing" { split.bases_of("*") } else { split.bases_of(module) };
            let rounds = if path.ends_with("/jobs/run") { 2 } else { 1 };
            let mut last = None;
            for _ in 0..rounds {
                for base in &bases {
                    let mut rb = split
                        .http()
                        .request(method.clone(), format!("{base}{path}"))
                        .header("x-hometrip-service-token", &split.token);
                    if let Some(b) = &body {
                        rb = rb.json(b);
                    }
                    let reply = self.client().send(rb).await;
                    assert!(reply.status < 500, "{base}{path}: {}", reply.text);
                    last = Some(reply);
                }
            }
            return last.expect("a process for the internal route");
        }
        let token = std::fs::read_to_string(self.data_dir.join("keys/service.token")).expect("service token");
        let mut rb =
            self.client().http.request(method, self.url(path)).header("x-hometrip-service-token", token.trim());
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.client().send(rb).await
    }

    /// Kills the process at once (SIGKILL): no shutdown, no flush.
    pub fn kill(&mut self) {
        if self.split.is_some() {
            let split = self.own_split();
            let names: Vec<&str> = split.procs.lock().unwrap().iter().map(|p| p.name).collect();
            for name in names {
                split.kill(name);
            }
            return;
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A command running the binary with this server's environment (in the
    /// split shape, the auth process's).
    pub fn command(&self) -> Command {
        if let Some(split) = &self.split {
            return split.command_of("auth");
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hometrip"));
        for (key, _) in std::env::vars() {
            if key.starts_with("HOMETRIP_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("HOMETRIP_DATA_DIR", &self.data_dir)
            .env("HOMETRIP_SERVER__HOST", "127.0.0.1")
            .env("HOMETRIP_SERVER__PORT", self.port.to_string())
            .env("HOMETRIP_SERVER__PUBLIC_URL", format!("http://127.0.0.1:{}", self.port))
            .env("HOMETRIP_SERVER__WORKERS", "2")
            .env("HOMETRIP_AUTH__HASHING_CONCURRENCY", "2")
            .env("HOMETRIP_LOG__FILTER", "warn")
            .env("HOMETRIP_LOG__JSON", "true");
        if let Some(url) = &self.database_url {
            cmd.env("HOMETRIP_DATABASE__URL", url);
        }
        if let Some(url) = redis_url() {
            cmd.env("HOMETRIP_REDIS__URL", url).env("HOMETRIP_REDIS__KEY_PREFIX", &self.redis_prefix);
        }
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    async fn launch(&mut self) {
        self.port = free_port();
        self.base = format!("http://127.0.0.1:{}", self.port);
        let log = std::fs::File::create(self.data_dir.join(format!("server-{}.log", self.port))).expect("log file");
        let child = self.command().stdout(Stdio::null()).stderr(log).spawn().expect("spawn hometrip");
        self.child = Some(child);
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(res) = client.get(format!("{}/health/live", self.base)).send().await {
                if res.status().is_success() {
                    return;
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("hometrip exited with {status} before serving:\n{}", self.logs());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("hometrip did not start within 30 s:\n{}", self.logs());
    }

    pub fn logs(&self) -> String {
        if let Some(split) = &self.split {
            return split.logs();
        }
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(&self.data_dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("server-") {
                    out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }

    pub fn stop(&mut self) {
        if self.owns_split {
            self.own_split().stop_all();
            return;
        }
        if let Some(child) = self.child.take() {
            stop_child(child);
        }
    }

    /// Sets (or replaces) an environment variable for the next (re)start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        if self.split.is_some() {
            self.own_split().set_env(key, value);
            return;
        }
        self.extra_env.retain(|(k, _)| k != key);
        self.extra_env.push((key.to_owned(), value.to_owned()));
    }

    /// Stops the process and starts it again on the same data dir and database.
    pub async fn restart(&mut self) {
        if self.split.is_some() {
            let split = Arc::clone(self.own_split());
            split.stop_all();
            split.launch_all();
            split.wait_ready().await;
            return;
        }
        self.stop();
        self.launch().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn client(&self) -> Api {
        Api {
            base: self.base.clone(),
            // Idle connections are dropped before the server's keep-alive (actix's
            // 5 s) ends them: a request on a connection the server is closing
            // fails, and a POST is not retried.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_idle_timeout(Duration::from_secs(4))
                .build()
                .expect("client"),
            token: None,
        }
    }

    /// Emails written to the outbox, oldest first.
    pub fn emails(&self) -> Vec<Email> {
        let dir = self.data_dir.join("outbox/mail");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect())
            .unwrap_or_default();
        files.sort();
        files.iter().map(|p| Email::read(p)).collect()
    }

    /// Waits for an email to `to` whose subject contains `subject`, and returns
    /// the newest such.
    pub async fn wait_email(&self, to: &str, subject: &str) -> Email {
        for _ in 0..patience(100) {
            if let Some(e) = self.emails().into_iter().rev().find(|e| e.to == to && e.subject.contains(subject)) {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no email to {to} with subject containing {subject:?}; have: {:?}",
            self.emails().iter().map(|e| (&e.to, &e.subject)).collect::<Vec<_>>()
        );
    }

    /// Runs a CLI command of the binary against this server's data.
    pub fn cli(&self, args: &[&str], stdin: &str) -> std::process::Output {
        use std::io::Write;
        let mut cmd = match &self.split {
            // The process whose module the command works on.
            Some(split) => split.command_of(match args.first().copied() {
                Some("seed-demo") => "listing",
                Some("reindex") => "search",
                _ => "auth",
            }),
            None => self.command(),
        };
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hometrip cli");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
        child.wait_with_output().expect("cli output")
    }
}

/// SIGTERM first, for a graceful stop; SIGKILL after five seconds.
pub fn stop_child(mut child: Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.split.is_some() {
            if self.owns_split {
                self.stop();
                if !std::thread::panicking() {
                    let _ = std::fs::remove_dir_all(&self.own_split().dir);
                }
            }
            return;
        }
        self.stop();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl Email {
    fn read(path: &Path) -> Email {
        let raw = std::fs::read_to_string(path).unwrap_or_default();
        let header =
            |name: &str| raw.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).unwrap_or("").trim().to_owned();
        Email { to: header("To"), subject: decode_subject(&header("Subject")), body: decode_qp(&raw) }
    }

    /// The `token=` value of the first link in the email.
    pub fn token(&self) -> String {
        let start = self.body.find("token=").expect("a token link in the email") + "token=".len();
        self.body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
    }
}

/// Quoted-printable decoding, enough for the bodies lettre writes.
fn decode_qp(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 2047 `=?utf-8?b?...?=` subjects (non-ASCII), else as is.
fn decode_subject(s: &str) -> String {
    use base64::Engine;
    if let Some(inner) = s.strip_prefix("=?utf-8?b?").and_then(|r| r.strip_suffix("?=")) {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(inner) {
            return String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    s.to_owned()
}

/// A small JSON client with an optional bearer token.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn content_type(&self) -> String {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
    }

    /// Asserts an RFC 9457 problem with this status, and returns its `type`.
    pub fn problem(&self, status: u16) -> String {
        assert_eq!(self.status, status, "expected {status}, got {}: {}", self.status, self.text);
        assert!(
            self.content_type().starts_with("application/problem+json"),
            "not problem+json: {} {}",
            self.content_type(),
            self.text
        );
        assert_eq!(self.body["status"], json!(status), "{}", self.text);
        assert!(self.body["title"].is_string(), "{}", self.text);
        self.body["type"].as_str().unwrap_or_default().to_owned()
    }
}

impl Api {
    pub fn with_token(&self, token: &str) -> Api {
        Api { token: Some(token.to_owned()), ..self.clone() }
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Reply {
        let rb = match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        };
        let res = rb.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, body, text }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{}", self.base, path))).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.post(format!("{}{}", self.base, path)).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.patch(format!("{}{}", self.base, path)).json(&body)).await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> Reply {
        self.send(self.http.post(format!("{}{}", self.base, path)).header("content-type", content_type).body(body))
            .await
    }

    pub async fn put_file(&self, path: &str, field: &str, bytes: Vec<u8>, mime: &str) -> Reply {
        let part = reqwest::multipart::Part::bytes(bytes).file_name("upload").mime_str(mime).expect("mime");
        let form = reqwest::multipart::Form::new().part(field.to_owned(), part);
        self.send(self.http.put(format!("{}{}", self.base, path)).multipart(form)).await
    }

    pub async fn register(&self, email: &str, name: &str) -> Reply {
        self.post("/api/v1/auth/register", json!({"email": email, "password": PASSWORD, "display_name": name})).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post("/api/v1/auth/login", json!({"email": email, "password": password})).await
    }

    /// Registers and logs in; returns a client carrying the access token and
    /// the token pair.
    pub async fn signed_up(&self, email: &str) -> (Api, Value) {
        let r = self.register(email, "Test User").await;
        assert_eq!(r.status, 201, "{}", r.text);
        let l = self.login(email, PASSWORD).await;
        assert_eq!(l.status, 200, "{}", l.text);
        (self.with_token(l.body["access_token"].as_str().unwrap_or_default()), l.body)
    }
}

/// A signed-in admin, created with the CLI as an operator would.
pub async fn admin(server: &Server) -> Api {
    let email = unique_email("admin");
    let out = server.cli(&["admin", "create", "--email", &email, "--password-stdin"], "the admin passphrase is long\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let l = server.client().login(&email, "the admin passphrase is long").await;
    server.client().with_token(l.body["access_token"].as_str().unwrap())
}

pub fn unique_email(prefix: &str) -> String {
    format!("{prefix}-{}@example.com", uuid::Uuid::now_v7().simple())
}

/// A PNG of `w`×`h` pixels.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    let mut buf = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut buf, image::ImageFormat::Png).expect("png");
    buf.into_inner()
}

/// Serves `configure`'s routes on a free loopback port from a thread of its own
/// (stand-ins for external services: OAuth providers, calendar feeds).
pub fn local_server(configure: impl Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static) -> String {
    local_server_on("127.0.0.1", configure)
}

/// [`local_server`] on another loopback address (`127.0.0.2`: a "public" host
/// for tests that allow only that address).
pub fn local_server_on(
    ip: &str,
    configure: impl Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static,
) -> String {
    let listener = TcpListener::bind((ip, 0)).expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(move || actix_web::App::new().configure(configure.clone()))
                .workers(1)
                .listen(listener)
                .expect("listen")
                .run()
                .await
        })
    });
    base
}

/// The settings of a platform whose clock a test moves (and whose jobs poll often).
pub const CLOCK: &[(&str, &str)] = &[("HOMETRIP_TESTING__CLOCK_CONTROL", "true"), ("HOMETRIP_JOBS__POLL_MS", "50")];

/// Moves the platform's clock forward by `seconds`, then runs the jobs now due.
pub async fn advance_clock(server: &Server, seconds: i64) {
    let r = server
        .internal(reqwest::Method::POST, "/internal/testing/clock", Some(json!({"advance_seconds": seconds})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = server.internal(reqwest::Method::POST, "/internal/testing/jobs/run", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// A date `days` from today (UTC), as `YYYY-MM-DD`.
pub fn date_from_today(days: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(days)).to_string()
}

/// Polls of background work: events cross a broker and processes in the
/// split shape, on a machine running a dozen of them.
pub fn patience(polls: usize) -> usize {
    if is_split() {
        polls * 6
    } else {
        polls
    }
}

/// Polls `path` until `check` holds (events and jobs run in the background).
pub async fn eventually(api: &Api, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..patience(100) {
        let r = api.get(path).await;
        if r.status == 200 && check(&r.body) {
            return r.body;
        }
        last = r.body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never reached the expected state: {last}");
}

/// Creates `body` as `host`'s listing, adds a photo and publishes it; its id.
pub async fn publish_listing(server: &Server, host: &Api, body: Value) -> String {
    let created = host.post("/api/v1/listings", body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().expect("listing id").to_owned();
    let part = reqwest::multipart::Part::bytes(png(320, 240)).file_name("p.png").mime_str("image/png").expect("mime");
    let form = reqwest::multipart::Form::new().part("file", part);
    let up = host.send(host.http.post(server.url(&format!("/api/v1/listings/{id}/photos"))).multipart(form)).await;
    assert_eq!(up.status, 201, "{}", up.text);
    let p = host.post(&format!("/api/v1/listings/{id}/publish"), json!({})).await;
    assert_eq!(p.status, 200, "{}", p.text);
    id
}

/// An instant-book house in Lyon titled `title`, as a host would create it.
pub fn house(title: &str) -> Value {
    json!({
        "title": title, "description": "Une maison calme avec jardin.", "property_type": "house",
        "address": {"line1": "3 rue des Lilas", "city": "Lyon", "postal_code": "69001", "country": "FR"},
        "location": {"lat": 45.764, "lon": 4.8357},
        "max_guests": 4, "bedrooms": 2, "beds": 2, "bathrooms": 1.0, "amenities": ["wifi"],
        "nightly_price": {"amount": 10000, "currency": "EUR"},
        "cleaning_fee": {"amount": 3000, "currency": "EUR"},
        "instant_book": true, "cancellation_policy": "flexible", "min_nights": 1, "max_nights": 14
    })
}

/// `guest` books `listing` from `days` days ahead for two nights and pays by
/// card; returns the booking's id once it is confirmed.
pub async fn book_and_pay(guest: &Api, listing: &str, days: i64) -> String {
    let body = json!({
        "listing_id": listing, "check_in": date_from_today(days), "check_out": date_from_today(days + 2), "guests": 2
    });
    let booking = guest.post("/api/v1/bookings", body).await;
    assert_eq!(booking.status, 201, "{}", booking.text);
    let id = booking.body["id"].as_str().unwrap().to_owned();
    let paid = guest.post(&format!("/api/v1/bookings/{id}/payment"), json!({"payment_method": "pm_card_visa"})).await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    eventually(guest, &format!("/api/v1/bookings/{id}"), |b| b["status"] == "confirmed").await;
    id
}

#[derive(diesel::QueryableByName)]
pub struct TextRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub v: String,
}

/// Runs `sql` on the database holding `module`'s tables (the server's SQLite
/// file, its PostgreSQL database, or in the split shape that module's) and
/// returns the first column of each row, as text (`AS v`).
pub async fn sql(server: &Server, module: &str, sql: &str) -> Vec<String> {
    match &server.database_of(module) {
        Some(url) => {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            client
                .simple_query(sql)
                .await
                .unwrap()
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or_default().to_owned()),
                    _ => None,
                })
                .collect()
        }
        None => {
            use diesel::{Connection, RunQueryDsl};
            let path = server.data_dir.join("hometrip.db");
            let mut conn = diesel::sqlite::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
            // The server writes too (events, sessions): wait for its lock like it waits for ours.
            diesel::connection::SimpleConnection::batch_execute(&mut conn, "PRAGMA busy_timeout = 10000").unwrap();
            if sql.trim_start().to_uppercase().starts_with("SELECT") {
                diesel::sql_query(sql).load::<TextRow>(&mut conn).unwrap().into_iter().map(|r| r.v).collect()
            } else {
                diesel::sql_query(sql).execute(&mut conn).unwrap();
                Vec::new()
            }
        }
    }
}
