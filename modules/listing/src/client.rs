//! [`Listings`] over HTTP, for a process that does not run the listing module.

use async_trait::async_trait;
use chrono::NaiveDate;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{Id, Problem};

use crate::api::{Listing, Listings, Quote, Rate};

pub struct ListingsClient {
    remote: RemoteClient,
}

impl ListingsClient {
    pub fn new(remote: RemoteClient) -> Self {
        ListingsClient { remote }
    }
}

#[async_trait]
impl Listings for ListingsClient {
    async fn listing(&self, id: Id) -> Result<Option<Listing>, Problem> {
        self.remote.get(&format!("/internal/listing/listings/{id}"), None).await
    }

    async fn quote(
        &self,
        id: Id,
        check_in: NaiveDate,
        check_out: NaiveDate,
        guests: u32,
        rate: Rate,
    ) -> Result<Quote, Problem> {
        let rate = rate.as_str();
        self.remote
            .get(
                &format!(
                    "/internal/listing/listings/{id}/quote?check_in={check_in}&check_out={check_out}&guests={guests}&rate={rate}"
                ),
                None,
            )
            .await
    }

    async fn taken_nights(&self, id: Id, from: NaiveDate, to: NaiveDate) -> Result<Vec<NaiveDate>, Problem> {
        self.remote.get(&format!("/internal/listing/listings/{id}/taken?from={from}&to={to}"), None).await
    }

    async fn blocked_nights(&self, id: Id, from: NaiveDate, to: NaiveDate) -> Result<Vec<NaiveDate>, Problem> {
        self.remote.get(&format!("/internal/listing/listings/{id}/blocked?from={from}&to={to}"), None).await
    }

    async fn taken_nights_of(
        &self,
        ids: &[Id],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(Id, NaiveDate)>, Problem> {
        self.remote
            .post("/internal/listing/taken", &serde_json::json!({"ids": ids, "from": from, "to": to}), None)
            .await
    }

    async fn published(&self, after: Option<Id>, limit: u32) -> Result<Vec<Listing>, Problem> {
        let after = after.map(|a| format!("&after={a}")).unwrap_or_default();
        self.remote.get(&format!("/internal/listing/published?limit={limit}{after}"), None).await
    }

    async fn listings_of(&self, ids: &[Id]) -> Result<Vec<Listing>, Problem> {
        self.remote.post("/internal/listing/of", &serde_json::json!({ "ids": ids }), None).await
    }
}
