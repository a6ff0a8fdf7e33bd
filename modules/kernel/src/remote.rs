//! Base of the remote (HTTP) implementations of module traits: the service
//! credential and the caller's identity travel with each call, and a problem
//! answered by the remote side comes back as the same [`Problem`].

use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{ErrorCode, Problem};
use crate::http::{CALLER_HEADER, SERVICE_TOKEN_HEADER};
use crate::ids::Id;

#[derive(Clone)]
pub struct RemoteClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl RemoteClient {
    pub fn new(base_url: &str, service_token: &str) -> Result<Self, Problem> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(Problem::internal)?;
        Ok(RemoteClient { base: base_url.trim_end_matches('/').to_owned(), token: service_token.to_owned(), http })
    }

    fn request(&self, method: reqwest::Method, path: &str, caller: Option<Id>) -> reqwest::RequestBuilder {
        let mut rb =
            self.http.request(method, format!("{}{}", self.base, path)).header(SERVICE_TOKEN_HEADER, &self.token);
        if let Some(id) = caller {
            rb = rb.header(CALLER_HEADER, id.to_string());
        }
        if let Some(rid) = crate::telemetry::current_request_id() {
            rb = rb.header("x-request-id", rid);
        }
        rb
    }

    pub async fn get<R: DeserializeOwned>(&self, path: &str, caller: Option<Id>) -> Result<R, Problem> {
        Self::decode(self.request(reqwest::Method::GET, path, caller).send().await).await
    }

    pub async fn post<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        caller: Option<Id>,
    ) -> Result<R, Problem> {
        Self::decode(self.request(reqwest::Method::POST, path, caller).json(body).send().await).await
    }

    async fn decode<R: DeserializeOwned>(sent: reqwest::Result<reqwest::Response>) -> Result<R, Problem> {
        let res = sent.map_err(|e| {
            tracing::warn!(error = %e, "remote module unreachable");
            Problem::new(ErrorCode::BadGateway, "a backing service is unreachable")
        })?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|_| Problem::new(ErrorCode::BadGateway, "truncated answer"))?;
        if status.is_success() {
            let body = if bytes.is_empty() { b"null".as_slice() } else { &bytes };
            return serde_json::from_slice(body)
                .map_err(|e| Problem::new(ErrorCode::BadGateway, format!("unexpected answer: {e}")));
        }
        Err(serde_json::from_slice::<Problem>(&bytes)
            .unwrap_or_else(|_| Problem::new(ErrorCode::BadGateway, format!("backing service answered {status}"))))
    }
}
