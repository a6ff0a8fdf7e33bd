//! Logs and request ids: JSON logs (pretty on a terminal), and the id of the
//! request being served, carried as a task-local so events and remote calls
//! can forward it as their trace context.

use std::io::IsTerminal;

use tracing_subscriber::{fmt, EnvFilter};

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Installs the global subscriber once; later calls are no-ops.
pub fn init(default_filter: &str, json: Option<bool>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = json.unwrap_or_else(|| !std::io::stderr().is_terminal());
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().flatten_event(true).try_init() } else { builder.pretty().try_init() };
}

/// Runs `fut` with `id` as the current request id.
pub async fn with_request_id<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}
