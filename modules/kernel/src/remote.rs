//! Base of the remote (HTTP) implementations of module traits: the service
//! credential and the caller's identity travel with each call, a replica is
//! chosen by the module's [`Upstream`] (balancing, breakers), idempotent calls
//! are retried on another replica, and a problem answered by the remote side
//! comes back as the same [`Problem`].

use std::sync::Arc;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use crate::auth_context::AuthUser;
use crate::error::{ErrorCode, Problem};
use crate::http::{CALLER_HEADER, FORWARDED_USER_HEADER, SERVICE_TOKEN_HEADER};
use crate::ids::Id;
use crate::upstream::{Balance, BreakerSettings, Upstream};

/// Attempts of an idempotent call (each on another replica when there is one).
const ATTEMPTS: usize = 3;
/// The deadline of one call, whatever the retries.
const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct RemoteClient {
    upstream: Arc<Upstream>,
    token: String,
    http: reqwest::Client,
    /// For a whole call, retries included.
    deadline: Duration,
}

/// Whom a call is made for.
#[derive(Clone, Copy)]
enum OnBehalf<'a> {
    Nobody,
    /// An internal route told who asks.
    Caller(Id),
    /// A public route called as this user.
    User {
        user: &'a AuthUser,
        idempotency_key: Option<&'a str>,
    },
}

impl OnBehalf<'_> {
    fn of(caller: Option<Id>) -> Self {
        caller.map_or(OnBehalf::Nobody, OnBehalf::Caller)
    }
}

/// What a call sends.
enum Body {
    Json(Vec<u8>),
    /// `multipart/form-data`: the text fields, then each file under `field`
    /// (built again for each attempt).
    Files {
        texts: Vec<(&'static str, String)>,
        field: &'static str,
        files: Vec<Vec<u8>>,
    },
}

/// How an answer is read from its status, content type and body: JSON,
/// text (CSV, iCalendar), or a file.
type Decode<R> = fn(reqwest::StatusCode, &str, &[u8]) -> Result<R, Problem>;

/// Whether a call may be sent again after a failure that may have reached
/// the other side: reads, and writes the other side recognises when repeated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    Idempotent,
    /// Only when the request surely never left (the connection was refused).
    OnlyUnsent,
}

impl RemoteClient {
    /// A client of the replicas of `upstream`.
    pub fn over(upstream: Arc<Upstream>, http: reqwest::Client, service_token: &str) -> Self {
        RemoteClient { upstream, token: service_token.to_owned(), http, deadline: DEADLINE }
    }

    /// The same client with a shorter (or longer) deadline per call.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// A client of one base URL (tests, tools).
    pub fn new(base_url: &str, service_token: &str) -> Result<Self, Problem> {
        let upstream =
            Upstream::new("remote", &[base_url.to_owned()], Balance::RoundRobin, &[], BreakerSettings::default())
                .map_err(Problem::internal)?;
        let http = crate::upstream::http_client(None).map_err(Problem::internal)?;
        let client = RemoteClient::over(upstream, http, service_token);
        Ok(client)
    }

    /// One call, as a client span of the caller's trace.
    async fn call<R: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Body>,
        on_behalf: OnBehalf<'_>,
        retry: Retry,
    ) -> Result<R, Problem> {
        self.call_with(method, path, body, on_behalf, retry, |status, _, bytes| Self::decode(status, bytes)).await
    }

    async fn call_with<R>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Body>,
        on_behalf: OnBehalf<'_>,
        retry: Retry,
        decode: Decode<R>,
    ) -> Result<R, Problem> {
        use tracing::Instrument as _;
        let span = tracing::info_span!(
            "remote call",
            otel.name = %format_args!("{} {}", self.upstream.module, method),
            otel.kind = "client",
            url.path = path,
        );
        let trace = crate::telemetry::traceparent_of(&span);
        async {
            if self.upstream.replicas().is_empty() {
                self.upstream.resolve().await;
            }
            let started = std::time::Instant::now();
            let mut tried = Vec::new();
            let mut last = Problem::new(ErrorCode::ServiceUnavailable, format!("{} is unavailable", self.upstream.module));
            for _ in 0..ATTEMPTS {
                let Some(left) = self.deadline.checked_sub(started.elapsed()) else { break };
                let lease = match self.upstream.pick(None, &tried) {
                    Ok(lease) => lease,
                    Err(unavailable) if tried.is_empty() => {
                        return Err(Problem::new(
                            ErrorCode::ServiceUnavailable,
                            format!("{} is unavailable", self.upstream.module),
                        )
                        .retry_after(unavailable.retry_after.as_secs().max(1)));
                    }
                    Err(_) => break,
                };
                tried.push(lease.replica.addr);
                let mut rb = self
                    .http
                    .request(method.clone(), format!("{}{}", lease.replica.base, path))
                    .timeout(left)
                    .header(SERVICE_TOKEN_HEADER, &self.token);
                match on_behalf {
                    OnBehalf::Nobody => {}
                    OnBehalf::Caller(id) => rb = rb.header(CALLER_HEADER, id.to_string()),
                    OnBehalf::User { user, idempotency_key } => {
                        rb = rb.header(FORWARDED_USER_HEADER, user.forwarded()).header(CALLER_HEADER, user.id.to_string());
                        if let Some(key) = idempotency_key {
                            rb = rb.header("idempotency-key", key);
                        }
                    }
                }
                if let Some(rid) = crate::telemetry::current_request_id() {
                    rb = rb.header("x-request-id", rid);
                }
                if let Some(tp) = &trace {
                    rb = rb.header("traceparent", tp);
                }
                match &body {
                    None => {}
                    Some(Body::Json(b)) => {
                        rb = rb.header(reqwest::header::CONTENT_TYPE, "application/json").body(b.clone());
                    }
                    Some(Body::Files { texts, field, files }) => {
                        let form = texts
                            .iter()
                            .fold(reqwest::multipart::Form::new(), |form, (name, value)| form.text(*name, value.clone()));
                        let form = files.iter().enumerate().fold(form, |form, (i, f)| {
                            let part = reqwest::multipart::Part::bytes(f.clone()).file_name(format!("upload-{i}"));
                            form.part(*field, part)
                        });
                        rb = rb.multipart(form);
                    }
                }
                match rb.send().await {
                    Err(e) => {
                        let unsent = e.is_connect();
                        tracing::warn!(module = %self.upstream.module, replica = %lease.replica.addr, error = %e, "remote call failed");
                        if unsent {
                            lease.unreachable();
                        } else {
                            lease.failure();
                        }
                        last =
                            Problem::new(ErrorCode::ServiceUnavailable, format!("{} is unavailable", self.upstream.module))
                                .retry_after(1);
                        if !(unsent || retry == Retry::Idempotent) {
                            return Err(last);
                        }
                    }
                    Ok(res) => {
                        let status = res.status();
                        let overloaded = matches!(status.as_u16(), 502..=504);
                        if overloaded {
                            lease.failure();
                        } else {
                            lease.success();
                        }
                        let content_type = res
                            .headers()
                            .get(reqwest::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let bytes =
                            res.bytes().await.map_err(|_| Problem::new(ErrorCode::BadGateway, "truncated answer"))?;
                        let decoded = decode(status, &content_type, &bytes);
                        if overloaded && retry == Retry::Idempotent {
                            if let Err(p) = decoded {
                                last = p;
                                continue;
                            }
                        }
                        return decoded;
                    }
                }
            }
            Err(last)
        }
        .instrument(span)
        .await
    }

    pub async fn get<R: DeserializeOwned>(&self, path: &str, caller: Option<Id>) -> Result<R, Problem> {
        self.call(reqwest::Method::GET, path, None, OnBehalf::of(caller), Retry::Idempotent).await
    }

    /// A read of a module's public route as `user` (as the gateway forwards
    /// one: the service credential vouches for the user).
    pub async fn get_as<R: DeserializeOwned>(&self, path: &str, user: &AuthUser) -> Result<R, Problem> {
        let on_behalf = OnBehalf::User { user, idempotency_key: None };
        self.call(reqwest::Method::GET, path, None, on_behalf, Retry::Idempotent).await
    }

    /// A write to a module's public route as `user`; with an idempotency
    /// key, retried like a read (the other side answers a repeat with the
    /// first answer).
    pub async fn post_as<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        user: &AuthUser,
        idempotency_key: Option<&str>,
    ) -> Result<R, Problem> {
        self.write_as(reqwest::Method::POST, path, body, user, idempotency_key).await
    }

    /// A partial update of a module's public resource as `user` (sent again
    /// only when it surely never arrived).
    pub async fn patch_as<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        user: &AuthUser,
    ) -> Result<R, Problem> {
        self.write_as(reqwest::Method::PATCH, path, body, user, None).await
    }

    /// A replacement of a module's public resource as `user` (PUT: the same
    /// body twice leaves the same state, so it is retried like a read).
    pub async fn put_as<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        user: &AuthUser,
    ) -> Result<R, Problem> {
        let body = serde_json::to_vec(body).map_err(Problem::internal)?;
        let on_behalf = OnBehalf::User { user, idempotency_key: None };
        self.call(reqwest::Method::PUT, path, Some(Body::Json(body)), on_behalf, Retry::Idempotent).await
    }

    /// A PUT with an effect each time (a code sent): sent again only when it
    /// surely never arrived.
    pub async fn put_once_as<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        user: &AuthUser,
    ) -> Result<R, Problem> {
        self.write_as(reqwest::Method::PUT, path, body, user, None).await
    }

    /// A removal on a module's public route as `user` (an empty answer reads as `()`).
    pub async fn delete_as(&self, path: &str, user: &AuthUser) -> Result<(), Problem> {
        let on_behalf = OnBehalf::User { user, idempotency_key: None };
        self.call_with(reqwest::Method::DELETE, path, None, on_behalf, Retry::OnlyUnsent, |status, _, bytes| {
            Self::decode::<serde::de::IgnoredAny>(status, bytes).map(|_| ())
        })
        .await
    }

    /// Files uploaded to a module's public route as `user` (multipart, each
    /// under `field`), as a browser's form would send them.
    pub async fn post_files_as<R: DeserializeOwned>(
        &self,
        path: &str,
        field: &'static str,
        files: Vec<Vec<u8>>,
        user: &AuthUser,
    ) -> Result<R, Problem> {
        self.files_as(reqwest::Method::POST, path, field, files, user).await
    }

    /// The same as a PUT (a resource the files replace, like an avatar).
    pub async fn put_files_as<R: DeserializeOwned>(
        &self,
        path: &str,
        field: &'static str,
        files: Vec<Vec<u8>>,
        user: &AuthUser,
    ) -> Result<R, Problem> {
        self.files_as(reqwest::Method::PUT, path, field, files, user).await
    }

    /// A multipart form of text fields and files to a public route as
    /// `user`; with an idempotency key it may be sent again like a read.
    pub async fn post_form_as<R: DeserializeOwned>(
        &self,
        path: &str,
        texts: Vec<(&'static str, String)>,
        field: &'static str,
        files: Vec<Vec<u8>>,
        user: &AuthUser,
        idempotency_key: Option<&str>,
    ) -> Result<R, Problem> {
        let retry = if idempotency_key.is_some() { Retry::Idempotent } else { Retry::OnlyUnsent };
        let on_behalf = OnBehalf::User { user, idempotency_key };
        self.call(reqwest::Method::POST, path, Some(Body::Files { texts, field, files }), on_behalf, retry).await
    }

    async fn files_as<R: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        field: &'static str,
        files: Vec<Vec<u8>>,
        user: &AuthUser,
    ) -> Result<R, Problem> {
        let on_behalf = OnBehalf::User { user, idempotency_key: None };
        let body = Body::Files { texts: Vec::new(), field, files };
        self.call(method, path, Some(body), on_behalf, Retry::OnlyUnsent).await
    }

    /// A read of a public route as `user` that answers text (CSV, iCalendar).
    pub async fn get_text_as(&self, path: &str, user: &AuthUser) -> Result<String, Problem> {
        let on_behalf = OnBehalf::User { user, idempotency_key: None };
        self.call_with(reqwest::Method::GET, path, None, on_behalf, Retry::Idempotent, |status, _, bytes| {
            if status.is_success() {
                return String::from_utf8(bytes.to_vec())
                    .map_err(|_| Problem::new(ErrorCode::BadGateway, "the answer is not UTF-8 text"));
            }
            Self::decode::<()>(status, bytes).map(|()| String::new())
        })
        .await
    }

    /// A read of a public route as `user` that answers a file: its content
    /// type and bytes.
    pub async fn get_file_as(&self, path: &str, user: &AuthUser) -> Result<(String, Vec<u8>), Problem> {
        let on_behalf = OnBehalf::User { user, idempotency_key: None };
        self.call_with(reqwest::Method::GET, path, None, on_behalf, Retry::Idempotent, |status, content_type, bytes| {
            if status.is_success() {
                return Ok((content_type.to_owned(), bytes.to_vec()));
            }
            Self::decode::<()>(status, bytes).map(|()| (String::new(), Vec::new()))
        })
        .await
    }

    async fn write_as<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
        user: &AuthUser,
        idempotency_key: Option<&str>,
    ) -> Result<R, Problem> {
        let body = serde_json::to_vec(body).map_err(Problem::internal)?;
        let retry = if idempotency_key.is_some() { Retry::Idempotent } else { Retry::OnlyUnsent };
        let on_behalf = OnBehalf::User { user, idempotency_key };
        self.call(method, path, Some(Body::Json(body)), on_behalf, retry).await
    }

    /// A write: sent again only when it surely never arrived.
    pub async fn post<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        caller: Option<Id>,
    ) -> Result<R, Problem> {
        self.post_with(path, body, caller, Retry::OnlyUnsent).await
    }

    /// A POST the other side recognises when repeated (a read with a body, or
    /// a write keyed by an idempotency key): retried like a read.
    pub async fn post_idempotent<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        caller: Option<Id>,
    ) -> Result<R, Problem> {
        self.post_with(path, body, caller, Retry::Idempotent).await
    }

    async fn post_with<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        caller: Option<Id>,
        retry: Retry,
    ) -> Result<R, Problem> {
        let body = serde_json::to_vec(body).map_err(Problem::internal)?;
        self.call(reqwest::Method::POST, path, Some(Body::Json(body)), OnBehalf::of(caller), retry).await
    }

    fn decode<R: DeserializeOwned>(status: reqwest::StatusCode, bytes: &[u8]) -> Result<R, Problem> {
        if status.is_success() {
            let body = if bytes.is_empty() { b"null".as_slice() } else { bytes };
            return serde_json::from_slice(body)
                .map_err(|e| Problem::new(ErrorCode::BadGateway, format!("unexpected answer: {e}")));
        }
        Err(serde_json::from_slice::<Problem>(bytes)
            .unwrap_or_else(|_| Problem::new(ErrorCode::BadGateway, format!("backing service answered {status}"))))
    }
}
