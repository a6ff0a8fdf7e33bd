//! What a process's modules are built from: the shared resources of the
//! process (database, cache, bus, jobs, files), and the registry of module
//! traits, each the local service or — for a module this process does not
//! run — the HTTP client of its replicas. Decided once, at start.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use actix_web::web;
use hometrip_kernel::cache::Cache;
use hometrip_kernel::db::Db;
use hometrip_kernel::events::EventBus;
use hometrip_kernel::files::FileStore;
use hometrip_kernel::jobs::Scheduler;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::sealed::Sealer;
use hometrip_kernel::upstream::{BreakerSettings, Upstream};

use crate::modules::{self, Module};
use crate::settings::Settings;

/// Root-level configuration a module adds to every HTTP worker's app: its
/// `app_data` and internal routes.
pub type Configure = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// What a started module contributes to the process.
pub struct Mount {
    /// App data and internal routes, at the root.
    pub root: Configure,
    /// Public routes, under `/api/v1`.
    pub api: Option<fn(&mut web::ServiceConfig)>,
    /// File prefixes under `/files/` it serves publicly (`photos/`).
    pub public_files: &'static [&'static str],
    /// Background work it runs in `serve` only (never in a CLI command),
    /// stopped with the server.
    pub serve: Vec<Box<dyn FnOnce() -> tokio::task::JoinHandle<()> + Send>>,
}

// Which builders, fields and accessors a binary uses depends on the modules
// compiled into it (cargo features): a build of some modules leaves some unused.
#[allow(dead_code)]
impl Mount {
    pub fn new(root: impl Fn(&mut web::ServiceConfig) + Send + Sync + 'static) -> Mount {
        Mount { root: Arc::new(root), api: None, public_files: &[], serve: Vec::new() }
    }

    pub fn api(mut self, api: fn(&mut web::ServiceConfig)) -> Mount {
        self.api = Some(api);
        self
    }

    pub fn on_serve(mut self, start: impl FnOnce() -> tokio::task::JoinHandle<()> + Send + 'static) -> Mount {
        self.serve.push(Box::new(start));
        self
    }

    pub fn files(mut self, prefixes: &'static [&'static str]) -> Mount {
        self.public_files = prefixes;
        self
    }
}

/// The shared resources and the trait registry of one process.
#[allow(dead_code)]
pub struct Wiring {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub cache: Arc<dyn Cache>,
    pub bus: Arc<EventBus>,
    pub files: FileStore,
    pub jobs: Arc<Scheduler>,
    pub service_token: String,
    /// Seals single-use tokens into events under the service credential.
    pub event_sealer: Sealer,
    pub http: reqwest::Client,
    /// Mutual TLS between services (`services.tls`).
    pub tls: Option<Arc<hometrip_kernel::tls::ServiceTls>>,
    /// Modules this process runs.
    pub local: BTreeSet<&'static str>,
    traits: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    upstreams: BTreeMap<&'static str, Arc<Upstream>>,
    /// Typed values a module leaves for the binary (the CLI reads some).
    extras: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
}

#[allow(dead_code)]
impl Wiring {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: Arc<Settings>,
        db: Db,
        cache: Arc<dyn Cache>,
        bus: Arc<EventBus>,
        files: FileStore,
        jobs: Arc<Scheduler>,
        service_token: String,
        local: BTreeSet<&'static str>,
        tls: Option<Arc<hometrip_kernel::tls::ServiceTls>>,
    ) -> Result<Wiring, String> {
        let event_sealer = Sealer::from_credential(&service_token);
        Ok(Wiring {
            settings,
            db,
            cache,
            bus,
            files,
            jobs,
            service_token,
            event_sealer,
            http: hometrip_kernel::upstream::http_client(tls.as_deref())?,
            tls,
            local,
            traits: HashMap::new(),
            upstreams: BTreeMap::new(),
            extras: HashMap::new(),
        })
    }

    /// Registers a module trait (`Arc<dyn Listings>`).
    pub fn provide<T: ?Sized + Send + Sync + 'static>(&mut self, value: Arc<T>) {
        self.traits.insert(TypeId::of::<Arc<T>>(), Box::new(value));
    }

    fn provided<T: ?Sized + Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.traits.get(&TypeId::of::<Arc<T>>()).and_then(|b| b.downcast_ref::<Arc<T>>()).cloned()
    }

    /// The trait of `module`: its service when this process runs it (started
    /// earlier in the table's order), else the client of its replicas.
    pub fn require<T: ?Sized + Send + Sync + 'static>(&mut self, module: &'static str) -> Result<Arc<T>, String> {
        if let Some(found) = self.provided::<T>() {
            return Ok(found);
        }
        if self.local.contains(module) {
            return Err(format!("wiring: {module} is local but not started yet (order of the modules table)"));
        }
        let entry = modules::find(module).ok_or_else(|| format!("wiring: no module {module}"))?;
        let remote = entry.remote.ok_or_else(|| format!("wiring: {module} has no client"))?;
        let client = self.client(entry)?;
        remote(self, client);
        self.provided::<T>().ok_or_else(|| format!("wiring: the client of {module} provides another trait"))
    }

    /// The upstream (replicas, balancing, breakers) of a module this process
    /// does not run, from `services.<module>`.
    pub fn upstream(&mut self, entry: &Module) -> Result<Arc<Upstream>, String> {
        if let Some(u) = self.upstreams.get(entry.name) {
            return Ok(Arc::clone(u));
        }
        let key = format!("HOMETRIP_SERVICES__{}__URLS", entry.name.to_ascii_uppercase());
        let config =
            self.settings.services.modules.get(entry.name).filter(|c| !c.urls.is_empty()).ok_or_else(|| {
                format!("{key}: this process needs the {} module, which it does not run; give its URLs", entry.name)
            })?;
        let upstream =
            Upstream::new(entry.name, &config.urls, config.balance, &config.weights, BreakerSettings::default())
                .map_err(|e| format!("{key}: {e}"))?;
        self.upstreams.insert(entry.name, Arc::clone(&upstream));
        Ok(upstream)
    }

    fn client(&mut self, entry: &Module) -> Result<RemoteClient, String> {
        let upstream = self.upstream(entry)?;
        Ok(RemoteClient::over(upstream, self.http.clone(), &self.service_token))
    }

    pub fn upstreams(&self) -> Vec<Arc<Upstream>> {
        self.upstreams.values().cloned().collect()
    }

    /// Leaves a typed value for the binary.
    pub fn keep<T: Send + Sync + 'static>(&mut self, value: T) {
        self.extras.insert(TypeId::of::<T>(), Box::new(value));
    }

    pub fn kept<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.extras.get(&TypeId::of::<T>()).and_then(|b| b.downcast_ref::<T>()).cloned()
    }
}
