//! An admin's refund of part or all of a booking: split over what is left
//! of each part of the charge (`domain::split_refund`), paid back through
//! the payment provider and the ledger by the payment module, never more
//! than the guest paid.

use hometrip_kernel::money::Money;
use hometrip_kernel::{ErrorCode, Id, Problem};
use hometrip_payment::api::{PaymentStatus, RefundRequest};

use crate::domain;
use crate::service::BookingService;

pub use crate::api::{AdminRefund, Refunded};

impl BookingService {
    /// `POST /admin/bookings/{id}/refund`. `key` (the caller's
    /// Idempotency-Key) makes a retried refund happen once.
    pub async fn admin_refund(
        &self,
        is_admin: bool,
        id: Id,
        input: AdminRefund,
        key: Option<&str>,
    ) -> Result<Refunded, Problem> {
        if !is_admin {
            return Err(Problem::forbidden("admin role required"));
        }
        let reason = input.reason.trim().to_owned();
        if reason.is_empty() || reason.chars().count() > 2_000 {
            return Err(Problem::field("reason", "must be 1 to 2000 characters"));
        }
        let row = self.row(id).await?;
        if input.amount.currency != row.currency {
            return Err(Problem::field("amount.currency", &format!("the booking was paid in {}", row.currency)));
        }
        let payment = match self.payments.payment_for(id).await? {
            Some(p) if p.status == PaymentStatus::Succeeded => p,
            _ => return Err(Problem::new(ErrorCode::Conflict, "the booking has no captured payment to refund")),
        };
        let left = payment.amount.amount - payment.refunded.amount;
        let Some(parts) = domain::split_refund(input.amount.amount, &payment.breakdown, &payment.refunded_breakdown)
        else {
            return Err(Problem::field(
                "amount.amount",
                &format!("must be between 1 and {left} (what is left of the {} paid)", payment.amount.amount),
            ));
        };
        let idempotency_key = match key {
            Some(k) if !k.is_empty() => format!("booking-{id}-admin-{k}"),
            _ => format!("booking-{id}-admin-{}", Id::new()),
        };
        let after = self.payments.refund(RefundRequest { booking_id: id, parts, reason, idempotency_key }).await?;
        let currency = after.amount.currency.clone();
        Ok(Refunded {
            booking_id: id,
            amount: Money::new(after.refunded.amount - payment.refunded.amount, &currency),
            refunded: after.refunded.clone(),
            refundable: Money::new(after.amount.amount - after.refunded.amount, &currency),
            payment: after,
        })
    }
}
