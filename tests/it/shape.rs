//! The split shape of the black-box suite (`TEST_SHAPE=split`): the gateway
//! and a process per module (two booking replicas), each on its own
//! PostgreSQL database and data dir, over Redis and RabbitMQ, every test call
//! through the gateway's port. Tests that start a plain server share one
//! platform, started once per run, whose processes talk mutual TLS; a test
//! that needs its own settings gets a platform of its own (plain HTTP).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Whether this run is the split shape.
pub fn is_split() -> bool {
    std::env::var("TEST_SHAPE").is_ok_and(|s| s == "split")
}

fn required(var: &str) -> String {
    std::env::var(var).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| panic!("TEST_SHAPE=split needs {var}"))
}

/// The processes of a platform: (name, module, database shared with).
const LAYOUT: &[(&str, &str)] = &[
    ("admin", "admin"),
    ("auth", "auth"),
    ("user", "user"),
    ("listing", "listing"),
    ("payment", "payment"),
    ("booking", "booking"),
    ("booking-2", "booking"),
    ("notification", "notification"),
    ("search", "search"),
    ("message", "message"),
    ("review", "review"),
    ("analytics", "analytics"),
    ("realtime", "realtime"),
    ("realtime-2", "realtime"),
    ("gateway", "gateway"),
];

pub struct Proc {
    pub name: &'static str,
    pub module: &'static str,
    pub port: u16,
    pub data_dir: PathBuf,
    pub database_url: String,
    child: Option<Child>,
}

pub struct Split {
    pub procs: Mutex<Vec<Proc>>,
    pub gateway_port: u16,
    pub token: String,
    pub namespace: String,
    pub redis_prefix: String,
    env: Mutex<Vec<(String, String)>>,
    pub dir: PathBuf,
    /// With mutual TLS between the processes: the folder of `hometrip certs`.
    pub certs: Option<PathBuf>,
}

/// Keeps the shared platform's processes tied to this test binary: they are
/// spawned from a thread that lives as long as the process, with a parent
/// death signal, so they stop when the run ends, however it ends.
fn spawn_tied(mut cmd: Command) -> Child {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    type Request = (Command, std::sync::mpsc::Sender<Child>);
    static SPAWNER: OnceLock<Mutex<std::sync::mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Request>();
        std::thread::spawn(move || {
            for (mut cmd, back) in rx {
                let _ = back.send(cmd.spawn().expect("spawn hometrip"));
            }
            // The sender lives in a static: this thread never ends.
        });
        Mutex::new(tx)
    });
    let (back, child) = std::sync::mpsc::channel();
    spawner.lock().unwrap().send((cmd, back)).unwrap();
    child.recv().unwrap()
}

impl Drop for Split {
    /// A platform that failed to start, or whose last server went away,
    /// takes its processes with it.
    fn drop(&mut self) {
        for p in self.procs.get_mut().unwrap().iter_mut() {
            if let Some(mut child) = p.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Split {
    /// The platform shared by the tests that need no settings of their own.
    pub async fn shared() -> Arc<Split> {
        static SHARED: OnceLock<Arc<Split>> = OnceLock::new();
        static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _guard = STARTING.lock().await;
        if let Some(s) = SHARED.get() {
            return Arc::clone(s);
        }
        // Tests share one client address: limits per address are for their own tests.
        let env =
            [("HOMETRIP_SERVER__RATE_LIMIT__MAX", "1000000"), ("HOMETRIP_AUTH__LOGIN_LIMITS__IP_FAILURES", "1000000")];
        // Mutual TLS between its processes: the whole suite runs over it,
        // while the platforms of their own (faults, traces) talk plain HTTP.
        let split = Split::start_with_tls(&env, true).await;
        let _ = SHARED.set(Arc::clone(&split));
        split
    }

    pub async fn start(env: &[(&str, &str)]) -> Arc<Split> {
        Self::start_with_tls(env, false).await
    }

    /// A platform whose processes talk mutual TLS with certificates from
    /// `hometrip certs` (the gateway's port stays plain HTTP).
    pub async fn start_with_tls(env: &[(&str, &str)], tls: bool) -> Arc<Split> {
        // One platform starts at a time: nine processes migrating at once
        // already fill two cores.
        static STARTING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
        let _turn = STARTING.acquire().await.unwrap();
        let id = uuid::Uuid::now_v7().simple().to_string();
        let dir = std::env::temp_dir().join(format!("hometrip-split-{id}"));
        let mut procs = Vec::new();
        let mut databases: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
        for (name, module) in LAYOUT {
            let database_url = match databases.get(module) {
                Some(url) => url.clone(),
                None => {
                    let url = crate::support::fresh_database().await.expect("TEST_DATABASE_URL");
                    databases.insert(module, url.clone());
                    url
                }
            };
            let data_dir = dir.join(name);
            std::fs::create_dir_all(&data_dir).unwrap();
            procs.push(Proc { name, module, port: crate::support::free_port(), data_dir, database_url, child: None });
        }
        let gateway_port = procs.iter().find(|p| p.module == "gateway").map(|p| p.port).unwrap();
        let certs = tls.then(|| {
            let certs = dir.join("certs");
            let out = Command::new(env!("CARGO_BIN_EXE_hometrip"))
                .args(["certs", "--hosts", "127.0.0.1", "--out"])
                .arg(&certs)
                .output()
                .expect("hometrip certs");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            certs
        });
        let split = Arc::new(Split {
            procs: Mutex::new(procs),
            gateway_port,
            token: uuid::Uuid::new_v4().simple().to_string(),
            namespace: format!("it-{id}"),
            redis_prefix: format!("it:{id}:"),
            env: Mutex::new(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
            dir,
            certs,
        });
        split.launch_all();
        split.wait_ready().await;
        split
    }

    /// The command running the binary as process `name` would.
    pub fn command_of(&self, name: &str) -> Command {
        let procs = self.procs.lock().unwrap();
        let me = procs.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no process {name}"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hometrip"));
        for (key, _) in std::env::vars() {
            if key.starts_with("HOMETRIP_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("HOMETRIP_DATA_DIR", &me.data_dir)
            .env("HOMETRIP_MODULES", me.module)
            .env("HOMETRIP_DATABASE__URL", &me.database_url)
            .env("HOMETRIP_SERVER__HOST", "127.0.0.1")
            .env("HOMETRIP_SERVER__PORT", me.port.to_string())
            .env("HOMETRIP_SERVER__PUBLIC_URL", format!("http://127.0.0.1:{}", self.gateway_port))
            // Small pools: a platform is nine processes, and tests run several platforms.
            .env("HOMETRIP_SERVER__WORKERS", "1")
            .env("HOMETRIP_DATABASE__MAX_CONNECTIONS", "4")
            .env("HOMETRIP_AUTH__HASHING_CONCURRENCY", "2")
            .env("HOMETRIP_LOG__FILTER", "warn")
            .env("HOMETRIP_LOG__JSON", "true")
            .env("HOMETRIP_SERVICES__TOKEN", &self.token)
            .env("HOMETRIP_REDIS__URL", required("TEST_REDIS_URL"))
            .env("HOMETRIP_REDIS__KEY_PREFIX", &self.redis_prefix)
            .env("HOMETRIP_AMQP__URL", required("TEST_AMQP_URL"))
            .env("HOMETRIP_AMQP__NAMESPACE", &self.namespace)
            // Throwaway platforms: light queues the broker drops when unused.
            .env("HOMETRIP_AMQP__QUEUE_TYPE", "classic")
            .env("HOMETRIP_AMQP__QUEUE_EXPIRES_SECS", "60");
        if let Some(certs) = &self.certs {
            cmd.env("HOMETRIP_SERVICES__TLS__CA_FILE", certs.join("ca.pem"))
                .env("HOMETRIP_SERVICES__TLS__CERT_FILE", certs.join(format!("{}.pem", me.module)))
                .env("HOMETRIP_SERVICES__TLS__KEY_FILE", certs.join(format!("{}.key", me.module)));
        }
        let scheme = self.scheme();
        // Every module but the gateway, once (replicas are neighbours in LAYOUT).
        let mut modules: Vec<&str> = LAYOUT.iter().map(|(_, m)| *m).filter(|m| *m != "gateway").collect();
        modules.dedup();
        for module in modules {
            let urls: Vec<String> = procs
                .iter()
                .filter(|p| p.module == module)
                .map(|p| format!("{scheme}://127.0.0.1:{}", p.port))
                .collect();
            cmd.env(format!("HOMETRIP_SERVICES__{}__URLS", module.to_uppercase()), urls.join(","));
        }
        for (k, v) in self.env.lock().unwrap().iter() {
            cmd.env(k, v);
        }
        cmd
    }

    /// Sets (or replaces) a variable of every process, for their next start.
    pub fn set_env(&self, key: &str, value: &str) {
        let mut env = self.env.lock().unwrap();
        env.retain(|(k, _)| k != key);
        env.push((key.to_owned(), value.to_owned()));
    }

    pub fn launch_all(&self) {
        for (name, _) in LAYOUT {
            self.launch(name);
        }
    }

    /// Starts process `name` (again).
    pub fn launch(&self, name: &str) {
        let mut cmd = self.command_of(name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))
            .expect("log file");
        cmd.stdout(Stdio::null()).stderr(log);
        let child = spawn_tied(cmd);
        let mut procs = self.procs.lock().unwrap();
        let p = procs.iter_mut().find(|p| p.name == name).expect("a process of the layout");
        p.child = Some(child);
    }

    /// Kills process `name` at once (SIGKILL).
    pub fn kill(&self, name: &str) {
        let mut procs = self.procs.lock().unwrap();
        if let Some(mut child) = procs.iter_mut().find(|p| p.name == name).and_then(|p| p.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn stop_all(&self) {
        let mut procs = self.procs.lock().unwrap();
        for p in procs.iter_mut() {
            if let Some(child) = p.child.take() {
                crate::support::stop_child(child);
            }
        }
    }

    pub fn data_dir_of(&self, name: &str) -> PathBuf {
        self.procs.lock().unwrap().iter().find(|p| p.name == name).map(|p| p.data_dir.clone()).unwrap()
    }

    pub fn database_of(&self, module: &str) -> String {
        self.procs.lock().unwrap().iter().find(|p| p.module == module).map(|p| p.database_url.clone()).unwrap()
    }

    /// Base URLs of the processes running `module` (every process for `*`).
    pub fn bases_of(&self, module: &str) -> Vec<String> {
        self.procs
            .lock()
            .unwrap()
            .iter()
            .filter(|p| module == "*" || p.module == module)
            .map(|p| {
                let scheme = if p.module == "gateway" { "http" } else { self.scheme() };
                format!("{scheme}://127.0.0.1:{}", p.port)
            })
            .collect()
    }

    /// How the module processes serve: `https` with mutual TLS.
    fn scheme(&self) -> &'static str {
        if self.certs.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// A client of the processes as the gateway calls them: with mutual TLS
    /// it trusts the platform's CA and presents the gateway's certificate.
    pub fn http(&self) -> reqwest::Client {
        match &self.certs {
            Some(certs) => client_with(&certs.join("ca.pem"), certs, "gateway"),
            None => reqwest::Client::new(),
        }
    }

    /// Waits until every process answers `/health/ready` with `ready`: its
    /// own database, cache and broker, and every module it calls available.
    /// The circuits a process opened while its upstreams were starting close
    /// at its next health probe; a test that starts before would see 503s.
    /// A process whose own store keeps failing (a test's broken Redis) is
    /// left as it is after 5 s.
    pub async fn wait_ready(&self) {
        let client = self.http();
        let mut live = false;
        for _ in 0..600 {
            if self.all_answer(&client, "/health/live").await.iter().all(|(status, _)| *status == 200) {
                live = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(live, "the split platform did not start within 60 s:\n{}", self.logs());
        let mut failing_for = 0;
        let mut last = Vec::new();
        for _ in 0..600 {
            last = self.all_answer(&client, "/health/ready").await;
            if last.iter().all(|(status, body)| *status == 200 && body["status"] == "ready") {
                return;
            }
            failing_for = if last.iter().any(|(status, _)| *status == 503) { failing_for + 1 } else { 0 };
            if failing_for >= 50 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the split platform was not ready within 60 s:\n{last:?}\n{}", self.logs());
    }

    /// Each process's answer to `path`: its status (0 when it did not answer) and body.
    async fn all_answer(&self, client: &reqwest::Client, path: &str) -> Vec<(u16, serde_json::Value)> {
        let mut answers = Vec::new();
        for base in self.bases_of("*") {
            let answer = match client.get(format!("{base}{path}")).send().await {
                Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or_default()),
                Err(_) => (0, serde_json::Value::Null),
            };
            answers.push(answer);
        }
        answers
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (name, _) in LAYOUT {
            let text = std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
            for line in text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev() {
                out.push_str(&format!("[{name}] {line}\n"));
            }
        }
        out
    }
}

/// A client trusting the CA in `ca` and presenting `module`'s certificate
/// from the folder `certs` (of `hometrip certs`).
pub fn client_with(ca: &std::path::Path, certs: &std::path::Path, module: &str) -> reqwest::Client {
    let ca = std::fs::read(ca).unwrap();
    let mut identity = std::fs::read(certs.join(format!("{module}.pem"))).unwrap();
    identity.extend(std::fs::read(certs.join(format!("{module}.key"))).unwrap());
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .identity(reqwest::Identity::from_pem(&identity).unwrap())
        .build()
        .unwrap()
}
