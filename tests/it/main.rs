//! Black-box tests: the real `hometrip` binary, over HTTP. Runs on SQLite by
//! default; on PostgreSQL and Redis when `TEST_DATABASE_URL` / `TEST_REDIS_URL`
//! are set (`.ci/run` runs both).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account_security;
mod admin;
mod analytics;
mod api_keys;
mod architecture;
mod audit;
mod auth;
mod backup;
mod bookings;
mod browser;
mod conformance;
mod edge;
mod hardening;
mod ical;
mod listings;
mod messages;
mod notifications;
mod oauth;
mod openapi_fuzz;
mod privacy;
mod realtime;
mod restart;
mod reviews;
mod search;
mod shape;
mod smtp;
mod split;
mod stripe;
mod support;
mod traces;
mod users;
mod web;
mod web_account;
mod web_admin;
mod web_console;
mod web_host;
mod web_reviews;
