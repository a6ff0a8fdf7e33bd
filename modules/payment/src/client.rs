//! [`Payments`] over HTTP, for a process that does not run the payment module.

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::money::Money;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{Id, Problem};

use crate::api::{ChargeRequest, HostPayouts, Payment, Payments, Payout, PayoutAccount, RefundRequest};

pub struct PaymentsClient {
    remote: RemoteClient,
}

impl PaymentsClient {
    pub fn new(remote: RemoteClient) -> Self {
        PaymentsClient { remote }
    }
}

#[async_trait]
impl Payments for PaymentsClient {
    async fn charge(&self, req: ChargeRequest) -> Result<Payment, Problem> {
        self.remote.post("/internal/payment/charges", &req, None).await
    }

    async fn capture(&self, booking_id: Id) -> Result<Payment, Problem> {
        self.remote
            .post(&format!("/internal/payment/bookings/{booking_id}/capture"), &serde_json::json!({}), None)
            .await
    }

    async fn cancel_authorization(&self, booking_id: Id) -> Result<Option<Payment>, Problem> {
        self.remote.post(&format!("/internal/payment/bookings/{booking_id}/cancel"), &serde_json::json!({}), None).await
    }

    async fn refund(&self, req: RefundRequest) -> Result<Payment, Problem> {
        self.remote.post("/internal/payment/refunds", &req, None).await
    }

    async fn schedule_payout(&self, booking_id: Id, host_id: Id, release_at: Instant) -> Result<(), Problem> {
        self.remote
            .post::<_, ()>(
                &format!("/internal/payment/bookings/{booking_id}/payout"),
                &serde_json::json!({"host_id": host_id, "release_at": release_at}),
                None,
            )
            .await
    }

    async fn record_host_penalty(&self, booking_id: Id, host_id: Id, amount: Money) -> Result<(), Problem> {
        self.remote
            .post::<_, ()>(
                &format!("/internal/payment/bookings/{booking_id}/penalty"),
                &serde_json::json!({"host_id": host_id, "amount": amount}),
                None,
            )
            .await
    }

    async fn payment_for(&self, booking_id: Id) -> Result<Option<Payment>, Problem> {
        self.remote.get(&format!("/internal/payment/bookings/{booking_id}/payment"), None).await
    }
}

#[derive(serde::Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

/// The host's payouts over the public routes, as the signed-in host.
#[async_trait]
impl HostPayouts for PaymentsClient {
    async fn payouts(&self, user: &AuthUser) -> Result<Vec<Payout>, Problem> {
        Ok(self.remote.get_as::<Items<Payout>>("/api/v1/payouts?limit=100", user).await?.items)
    }

    async fn payout_account(&self, user: &AuthUser) -> Result<Option<PayoutAccount>, Problem> {
        match self.remote.get_as("/api/v1/payouts/account", user).await {
            Ok(account) => Ok(Some(account)),
            Err(p) if p.status == 404 => Ok(None),
            Err(p) => Err(p),
        }
    }

    async fn open_payout_account(&self, user: &AuthUser) -> Result<PayoutAccount, Problem> {
        self.remote.post_as("/api/v1/payouts/account", &serde_json::json!({}), user, None).await
    }
}
