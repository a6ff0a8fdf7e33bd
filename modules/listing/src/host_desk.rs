//! [`HostListings`] in process: the host's own listings through the same
//! service calls as the public routes, as the signed-in user.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::{Id, Problem};

use crate::api::*;
use crate::service::{db_err, ListingService, Viewer};
use crate::store;

pub struct HostDesk {
    listings: Arc<ListingService>,
    /// The site's public URL: export links are absolute.
    public_base: String,
}

impl HostDesk {
    pub fn new(listings: Arc<ListingService>, public_base: &str) -> Arc<Self> {
        Arc::new(HostDesk { listings, public_base: public_base.to_owned() })
    }
}

fn viewer(user: &AuthUser) -> Viewer {
    Viewer { id: user.id, admin: user.is_admin() }
}

impl ListingService {
    /// Every listing of `host`, newest first, as its host sees them.
    pub async fn of_host(&self, host: Id) -> Result<Vec<Listing>, Problem> {
        let mut rows = store::rows_of_host(&self.db, host).await.map_err(db_err)?;
        rows.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        let ids: Vec<Id> = rows.iter().map(|r| r.id).collect();
        let photos = store::photos_of(&self.db, &ids).await.map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|row| {
                let own: Vec<_> = photos.iter().filter(|p| p.listing_id == row.id).cloned().collect();
                self.view(row, &own)
            })
            .collect())
    }
}

#[async_trait]
impl HostListings for HostDesk {
    async fn mine(&self, user: &AuthUser) -> Result<Vec<Listing>, Problem> {
        self.listings.of_host(user.id).await
    }

    async fn own(&self, user: &AuthUser, id: Id) -> Result<Listing, Problem> {
        self.listings.get(id, Some(viewer(user))).await
    }

    async fn create(&self, user: &AuthUser, terms: &TermsPatch) -> Result<Listing, Problem> {
        self.listings.create(user.id, terms).await
    }

    async fn update(&self, user: &AuthUser, id: Id, terms: &TermsPatch) -> Result<Listing, Problem> {
        self.listings.update(id, viewer(user), terms).await
    }

    async fn publish(&self, user: &AuthUser, id: Id) -> Result<Listing, Problem> {
        self.listings.publish(id, viewer(user)).await
    }

    async fn unlist(&self, user: &AuthUser, id: Id) -> Result<Listing, Problem> {
        self.listings.unlist(id, viewer(user)).await
    }

    async fn add_photos(&self, user: &AuthUser, id: Id, files: Vec<Vec<u8>>) -> Result<Vec<Photo>, Problem> {
        let room = self.listings.photo_room(id, viewer(user)).await?;
        if files.len() > room {
            return Err(Problem::field("file", &format!("{room} more photos fit on this listing")));
        }
        self.listings.add_photos(id, viewer(user), files).await
    }

    async fn order_photos(&self, user: &AuthUser, id: Id, photo_ids: &[Id]) -> Result<Listing, Problem> {
        self.listings.order_photos(id, viewer(user), photo_ids).await
    }

    async fn caption_photo(&self, user: &AuthUser, id: Id, photo_id: Id, caption: &str) -> Result<Photo, Problem> {
        self.listings.caption_photo(id, viewer(user), photo_id, caption).await
    }

    async fn delete_photo(&self, user: &AuthUser, id: Id, photo_id: Id) -> Result<(), Problem> {
        self.listings.delete_photo(id, viewer(user), photo_id).await
    }

    async fn calendar(
        &self,
        user: &AuthUser,
        id: Id,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CalendarDay>, Problem> {
        self.listings.calendar(id, Some(viewer(user)), from, to).await
    }

    async fn edit_calendar(
        &self,
        user: &AuthUser,
        id: Id,
        ranges: &[CalendarRangeInput],
    ) -> Result<Vec<CalendarDay>, Problem> {
        self.listings.edit_calendar(id, viewer(user), ranges).await
    }

    async fn export_link(&self, user: &AuthUser, id: Id) -> Result<ExportLink, Problem> {
        self.listings.export_link(id, viewer(user), &self.public_base).await
    }

    async fn rotate_export_link(&self, user: &AuthUser, id: Id) -> Result<ExportLink, Problem> {
        self.listings.rotate_export_link(id, viewer(user), &self.public_base).await
    }

    async fn imports(&self, user: &AuthUser, id: Id) -> Result<Vec<CalendarImport>, Problem> {
        self.listings.imports(id, viewer(user)).await
    }

    async fn add_import(&self, user: &AuthUser, id: Id, url: &str, name: &str) -> Result<CalendarImport, Problem> {
        self.listings.add_import(id, viewer(user), url, name).await
    }

    async fn sync_import(&self, user: &AuthUser, id: Id, import_id: Id) -> Result<SyncResult, Problem> {
        self.listings.sync_import_now(id, viewer(user), import_id).await
    }

    async fn delete_import(&self, user: &AuthUser, id: Id, import_id: Id) -> Result<(), Problem> {
        self.listings.delete_import(id, viewer(user), import_id).await
    }
}
