//! Gateway: the HTTP edge every request crosses — request ids, tracing,
//! metrics, per-IP, per-account and per-API-key rate limits, the API keys'
//! scopes (one table), problem+json for every error,
//! CORS — plus the operational routes (health, metrics, OpenAPI, files,
//! dead letters). Module routes are mounted by the binary under `/api/v1`.

pub mod audit;
pub mod dead_letters;
pub mod middleware;
pub mod ops;
pub mod performance;
pub mod problems;
pub mod proxy;
pub mod scopes;

pub use middleware::{edge, errors_as_problems, EdgeSettings};
pub use ops::{file_routes, install_metrics, ops_routes, Ops};
pub use proxy::{Proxy, RouteTable};
