//! [`Search`] over HTTP, for a process that does not run the search module
//! (the gateway's web pages in the split shape): the module's public routes.

use async_trait::async_trait;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::Problem;
use serde::Deserialize;

use crate::api::{Search, SearchParams, SearchResults, Suggestion};

pub struct SearchClient {
    remote: RemoteClient,
}

impl SearchClient {
    pub fn new(remote: RemoteClient) -> Self {
        SearchClient { remote }
    }
}

#[derive(Deserialize)]
struct Suggestions {
    suggestions: Vec<Suggestion>,
}

#[async_trait]
impl Search for SearchClient {
    async fn search(&self, params: &SearchParams) -> Result<SearchResults, Problem> {
        let query = serde_urlencoded::to_string(params).map_err(Problem::internal)?;
        self.remote.get(&format!("/api/v1/search/listings?{query}"), None).await
    }

    async fn autocomplete(&self, q: &str) -> Result<Vec<Suggestion>, Problem> {
        let query = serde_urlencoded::to_string([("q", q)]).map_err(Problem::internal)?;
        let found: Suggestions = self.remote.get(&format!("/api/v1/search/autocomplete?{query}"), None).await?;
        Ok(found.suggestions)
    }
}
