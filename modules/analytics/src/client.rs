//! [`HostFigures`] over the module's public routes, as the signed-in user,
//! for a process that does not run analytics.

use async_trait::async_trait;
use chrono::NaiveDate;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{Id, Problem};

use crate::api::{HostFigures, HostSummary, OperatorFigures, Overview};

pub struct AnalyticsClient {
    remote: RemoteClient,
}

impl AnalyticsClient {
    pub fn new(remote: RemoteClient) -> Self {
        AnalyticsClient { remote }
    }
}

#[async_trait]
impl HostFigures for AnalyticsClient {
    async fn summary(
        &self,
        user: &AuthUser,
        from: NaiveDate,
        to: NaiveDate,
        listing_id: Option<Id>,
    ) -> Result<HostSummary, Problem> {
        let listing = listing_id.map(|id| format!("&listing_id={id}")).unwrap_or_default();
        self.remote.get_as(&format!("/api/v1/analytics/host/summary?from={from}&to={to}{listing}"), user).await
    }

    async fn csv(&self, user: &AuthUser, from: NaiveDate, to: NaiveDate) -> Result<String, Problem> {
        self.remote.get_text_as(&format!("/api/v1/analytics/host/summary.csv?from={from}&to={to}"), user).await
    }
}

#[async_trait]
impl OperatorFigures for AnalyticsClient {
    async fn overview(&self, admin: &AuthUser, from: NaiveDate, to: NaiveDate) -> Result<Overview, Problem> {
        self.remote.get_as(&format!("/api/v1/admin/analytics/overview?from={from}&to={to}"), admin).await
    }
}
