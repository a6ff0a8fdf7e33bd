//! [`Listings`] over HTTP, for a process that does not run the listing module.

use async_trait::async_trait;
use chrono::NaiveDate;
use hometrip_kernel::remote::RemoteClient;
use hometrip_kernel::{Id, Problem};

use hometrip_kernel::auth_context::AuthUser;
use serde::Deserialize;
use serde_json::json;

use crate::api::*;

/// A list answer of the public routes (`{items: [..]}`).
#[derive(Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

#[derive(Deserialize)]
struct Days {
    days: Vec<CalendarDay>,
}

#[derive(Deserialize)]
struct Photos {
    photos: Vec<Photo>,
}

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
        // A read in a POST's clothes: retried on another replica like one.
        self.remote.post_idempotent("/internal/listing/of", &serde_json::json!({ "ids": ids }), None).await
    }
}

/// The host's side over the public routes, as the signed-in user.
#[async_trait]
impl HostListings for ListingsClient {
    async fn mine(&self, user: &AuthUser) -> Result<Vec<Listing>, Problem> {
        Ok(self.remote.get_as::<Items<Listing>>("/api/v1/listings", user).await?.items)
    }

    async fn own(&self, user: &AuthUser, id: Id) -> Result<Listing, Problem> {
        self.remote.get_as(&format!("/api/v1/listings/{id}"), user).await
    }

    async fn create(&self, user: &AuthUser, terms: &TermsPatch) -> Result<Listing, Problem> {
        self.remote.post_as("/api/v1/listings", terms, user, None).await
    }

    async fn update(&self, user: &AuthUser, id: Id, terms: &TermsPatch) -> Result<Listing, Problem> {
        self.remote.patch_as(&format!("/api/v1/listings/{id}"), terms, user).await
    }

    async fn publish(&self, user: &AuthUser, id: Id) -> Result<Listing, Problem> {
        self.remote.post_as(&format!("/api/v1/listings/{id}/publish"), &json!({}), user, None).await
    }

    async fn unlist(&self, user: &AuthUser, id: Id) -> Result<Listing, Problem> {
        self.remote.post_as(&format!("/api/v1/listings/{id}/unlist"), &json!({}), user, None).await
    }

    async fn add_photos(&self, user: &AuthUser, id: Id, files: Vec<Vec<u8>>) -> Result<Vec<Photo>, Problem> {
        let path = format!("/api/v1/listings/{id}/photos");
        Ok(self.remote.post_files_as::<Photos>(&path, "file", files, user).await?.photos)
    }

    async fn order_photos(&self, user: &AuthUser, id: Id, photo_ids: &[Id]) -> Result<Listing, Problem> {
        self.remote
            .put_as(&format!("/api/v1/listings/{id}/photos/order"), &json!({ "photo_ids": photo_ids }), user)
            .await
    }

    async fn caption_photo(&self, user: &AuthUser, id: Id, photo_id: Id, caption: &str) -> Result<Photo, Problem> {
        let path = format!("/api/v1/listings/{id}/photos/{photo_id}");
        self.remote.patch_as(&path, &json!({ "caption": caption }), user).await
    }

    async fn delete_photo(&self, user: &AuthUser, id: Id, photo_id: Id) -> Result<(), Problem> {
        self.remote.delete_as(&format!("/api/v1/listings/{id}/photos/{photo_id}"), user).await
    }

    async fn calendar(
        &self,
        user: &AuthUser,
        id: Id,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CalendarDay>, Problem> {
        let path = format!("/api/v1/listings/{id}/calendar?from={from}&to={to}");
        Ok(self.remote.get_as::<Days>(&path, user).await?.days)
    }

    async fn edit_calendar(
        &self,
        user: &AuthUser,
        id: Id,
        ranges: &[CalendarRangeInput],
    ) -> Result<Vec<CalendarDay>, Problem> {
        let path = format!("/api/v1/listings/{id}/calendar");
        Ok(self.remote.put_as::<_, Days>(&path, &json!({ "ranges": ranges }), user).await?.days)
    }

    async fn export_link(&self, user: &AuthUser, id: Id) -> Result<ExportLink, Problem> {
        self.remote.get_as(&format!("/api/v1/listings/{id}/calendar/export"), user).await
    }

    async fn rotate_export_link(&self, user: &AuthUser, id: Id) -> Result<ExportLink, Problem> {
        self.remote.post_as(&format!("/api/v1/listings/{id}/calendar/export/rotate"), &json!({}), user, None).await
    }

    async fn imports(&self, user: &AuthUser, id: Id) -> Result<Vec<CalendarImport>, Problem> {
        let path = format!("/api/v1/listings/{id}/calendar/imports");
        Ok(self.remote.get_as::<Items<CalendarImport>>(&path, user).await?.items)
    }

    async fn add_import(&self, user: &AuthUser, id: Id, url: &str, name: &str) -> Result<CalendarImport, Problem> {
        let path = format!("/api/v1/listings/{id}/calendar/imports");
        self.remote.post_as(&path, &json!({ "url": url, "name": name }), user, None).await
    }

    async fn sync_import(&self, user: &AuthUser, id: Id, import_id: Id) -> Result<SyncResult, Problem> {
        let path = format!("/api/v1/listings/{id}/calendar/imports/{import_id}/sync");
        self.remote.post_as(&path, &json!({}), user, None).await
    }

    async fn delete_import(&self, user: &AuthUser, id: Id, import_id: Id) -> Result<(), Problem> {
        self.remote.delete_as(&format!("/api/v1/listings/{id}/calendar/imports/{import_id}"), user).await
    }
}

/// Moderation over the admin routes, as the admin.
#[async_trait]
impl ListingModeration for ListingsClient {
    async fn find(&self, admin: &AuthUser, q: &str, suspended_only: bool) -> Result<Vec<Listing>, Problem> {
        let q: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
        let status = if suspended_only { "&status=suspended" } else { "" };
        Ok(self.remote.get_as::<Items<Listing>>(&format!("/api/v1/admin/listings?q={q}{status}"), admin).await?.items)
    }

    async fn listing(&self, admin: &AuthUser, id: Id) -> Result<Listing, Problem> {
        if !admin.is_admin() {
            return Err(Problem::forbidden("admin role required"));
        }
        self.remote.get_as(&format!("/api/v1/listings/{id}"), admin).await
    }

    async fn suspend(&self, admin: &AuthUser, id: Id) -> Result<Listing, Problem> {
        self.remote.post_as(&format!("/api/v1/admin/listings/{id}/suspend"), &json!({}), admin, None).await
    }

    async fn reinstate(&self, admin: &AuthUser, id: Id) -> Result<Listing, Problem> {
        self.remote.post_as(&format!("/api/v1/admin/listings/{id}/reinstate"), &json!({}), admin, None).await
    }
}
