//! [`Payments`] over HTTP, for a process that does not run the payment module.

use async_trait::async_trait;
use hometrip_kernel::money::Money;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::time::Instant;
use hometrip_kernel::{Id, Problem};

use crate::api::{ChargeRequest, Payment, Payments, RefundRequest};

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
