//! [`Bookings`] and [`Reservations`] over HTTP, for a process that does not
//! run the booking module: `Bookings` over the internal routes, `Reservations`
//! over the public routes as the signed-in user (the gateway's web pages in
//! the split shape).

use async_trait::async_trait;
use chrono::NaiveDate;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::http::Page;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{Id, Problem};
use hometrip_listing::api::Rate;
use serde::Serialize;

use crate::api::{
    Booking, BookingQuote, BookingStatus, Bookings, Cancellation, CreateBooking, Party, PaymentOutcome, Reservations,
};

pub struct BookingsClient {
    remote: RemoteClient,
}

impl BookingsClient {
    pub fn new(remote: RemoteClient) -> Self {
        BookingsClient { remote }
    }
}

#[async_trait]
impl Bookings for BookingsClient {
    async fn booking(&self, id: Id) -> Result<Option<Booking>, Problem> {
        self.remote.get(&format!("/internal/booking/bookings/{id}"), None).await
    }
}

#[derive(Serialize)]
struct QuoteQuery {
    listing_id: Id,
    check_in: NaiveDate,
    check_out: NaiveDate,
    guests: u32,
    rate: Rate,
}

#[derive(Serialize)]
struct ListQuery<'a> {
    role: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<Id>,
    limit: u32,
}

#[derive(Serialize)]
struct PayBody<'a> {
    payment_method: &'a str,
}

/// The empty body of a state change.
#[derive(Serialize)]
struct NoBody {}

#[async_trait]
impl Reservations for BookingsClient {
    async fn quote(
        &self,
        listing_id: Id,
        check_in: NaiveDate,
        check_out: NaiveDate,
        guests: u32,
        rate: Rate,
    ) -> Result<BookingQuote, Problem> {
        let query = serde_urlencoded::to_string(QuoteQuery { listing_id, check_in, check_out, guests, rate })
            .map_err(Problem::internal)?;
        self.remote.get(&format!("/api/v1/bookings/quote?{query}"), None).await
    }

    async fn create(&self, user: &AuthUser, req: &CreateBooking, key: Option<&str>) -> Result<Booking, Problem> {
        self.remote.post_as("/api/v1/bookings", req, user, key).await
    }

    async fn pay(
        &self,
        user: &AuthUser,
        id: Id,
        payment_method: &str,
        key: Option<&str>,
    ) -> Result<PaymentOutcome, Problem> {
        self.remote.post_as(&format!("/api/v1/bookings/{id}/payment"), &PayBody { payment_method }, user, key).await
    }

    async fn list(
        &self,
        user: &AuthUser,
        party: Party,
        status: Option<BookingStatus>,
        cursor: Option<Id>,
        limit: u32,
    ) -> Result<Page<Booking>, Problem> {
        let query = ListQuery { role: party.as_str(), status: status.map(BookingStatus::as_str), cursor, limit };
        let query = serde_urlencoded::to_string(query).map_err(Problem::internal)?;
        self.remote.get_as(&format!("/api/v1/bookings?{query}"), user).await
    }

    async fn get(&self, user: &AuthUser, id: Id) -> Result<Booking, Problem> {
        self.remote.get_as(&format!("/api/v1/bookings/{id}"), user).await
    }

    async fn cancel(&self, user: &AuthUser, id: Id) -> Result<Cancellation, Problem> {
        self.remote.post_as(&format!("/api/v1/bookings/{id}/cancel"), &NoBody {}, user, None).await
    }

    async fn accept(&self, user: &AuthUser, id: Id) -> Result<Booking, Problem> {
        self.remote.post_as(&format!("/api/v1/bookings/{id}/accept"), &NoBody {}, user, None).await
    }

    async fn decline(&self, user: &AuthUser, id: Id) -> Result<Booking, Problem> {
        self.remote.post_as(&format!("/api/v1/bookings/{id}/decline"), &NoBody {}, user, None).await
    }
}

#[async_trait]
impl crate::api::BookingAdmin for BookingsClient {
    async fn refund(
        &self,
        admin: &AuthUser,
        id: Id,
        refund: &crate::api::AdminRefund,
        key: &str,
    ) -> Result<crate::api::Refunded, Problem> {
        self.remote.post_as(&format!("/api/v1/admin/bookings/{id}/refund"), refund, admin, Some(key)).await
    }
}
