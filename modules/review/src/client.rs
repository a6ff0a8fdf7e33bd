//! [`Reviews`] over HTTP, for processes that do not run the review module.

use async_trait::async_trait;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{Id, Problem};

use crate::api::{ReviewSummary, Reviews};

pub struct ReviewsClient {
    remote: RemoteClient,
}

impl ReviewsClient {
    pub fn new(remote: RemoteClient) -> Self {
        ReviewsClient { remote }
    }
}

#[async_trait]
impl Reviews for ReviewsClient {
    async fn listing_summary(&self, listing_id: Id) -> Result<ReviewSummary, Problem> {
        self.remote.get(&format!("/internal/review/listings/{listing_id}/summary"), None).await
    }
}
