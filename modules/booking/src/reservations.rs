//! [`Reservations`] in process: the web app's pages call the service's use
//! cases as the signed-in user, like the public routes do.

use async_trait::async_trait;
use chrono::NaiveDate;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::http::{Page, PageQuery};
use hometrip_kernel::{Id, Problem};
use hometrip_listing::api::Rate;

use crate::api::{
    Booking, BookingQuote, BookingStatus, Cancellation, CreateBooking, Party, PaymentOutcome, Reservations,
};
use crate::service::{Actor, BookingService};

fn actor(user: &AuthUser) -> Actor {
    Actor { id: user.id, admin: user.is_admin() }
}

#[async_trait]
impl Reservations for BookingService {
    async fn quote(
        &self,
        listing_id: Id,
        check_in: NaiveDate,
        check_out: NaiveDate,
        guests: u32,
        rate: Rate,
    ) -> Result<BookingQuote, Problem> {
        BookingService::quote(self, listing_id, check_in, check_out, guests, rate).await
    }

    async fn create(&self, user: &AuthUser, req: &CreateBooking, key: Option<&str>) -> Result<Booking, Problem> {
        BookingService::create(self, user.id, req, key).await.map(|(booking, _)| booking)
    }

    async fn pay(
        &self,
        user: &AuthUser,
        id: Id,
        payment_method: &str,
        key: Option<&str>,
    ) -> Result<PaymentOutcome, Problem> {
        BookingService::pay(self, user.id, id, payment_method, key).await
    }

    async fn list(
        &self,
        user: &AuthUser,
        party: Party,
        status: Option<BookingStatus>,
        cursor: Option<Id>,
        limit: u32,
    ) -> Result<Page<Booking>, Problem> {
        // The API's bounds on a page.
        let limit = PageQuery { limit: Some(limit), cursor: None }.limit()?;
        let (items, next) = BookingService::list(self, user.id, party, status, cursor, limit).await?;
        Ok(Page { items, next_cursor: next.map(|id| id.to_string()) })
    }

    async fn get(&self, user: &AuthUser, id: Id) -> Result<Booking, Problem> {
        BookingService::get(self, id, actor(user)).await
    }

    async fn cancel(&self, user: &AuthUser, id: Id) -> Result<Cancellation, Problem> {
        BookingService::cancel(self, actor(user), id).await
    }

    async fn accept(&self, user: &AuthUser, id: Id) -> Result<Booking, Problem> {
        BookingService::accept(self, actor(user), id).await
    }

    async fn decline(&self, user: &AuthUser, id: Id) -> Result<Booking, Problem> {
        BookingService::decline(self, actor(user), id).await
    }
}

#[async_trait]
impl crate::api::BookingAdmin for BookingService {
    async fn refund(
        &self,
        admin: &AuthUser,
        id: Id,
        refund: &crate::api::AdminRefund,
        key: &str,
    ) -> Result<crate::api::Refunded, Problem> {
        self.admin_refund(admin.is_admin(), id, refund.clone(), Some(key)).await
    }
}
