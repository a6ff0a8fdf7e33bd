//! [`Bookings`] over HTTP, for a process that does not run the booking module.

use async_trait::async_trait;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{Id, Problem};

use crate::api::{Booking, Bookings};

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
