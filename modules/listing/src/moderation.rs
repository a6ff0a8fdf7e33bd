//! Moderation of listings: admins find listings in any status (by title, or
//! the suspended ones), suspend and reinstate them. The console does it
//! through [`ListingModeration`], in process or over the admin routes.

use async_trait::async_trait;
use hometrip_kernel::auth_context::AuthUser;
use hometrip_kernel::db::prelude::*;
use hometrip_kernel::db::{Db, DbError};
use hometrip_kernel::{run, Id, Problem};

use crate::api::{Listing, ListingModeration};
use crate::service::{db_err, ListingService, Viewer};
use crate::store::schema::listings;
use crate::store::{self, ListingRow};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// At most this many listings found at once.
pub const FOUND_AT_MOST: i64 = 50;

/// A LIKE pattern matching `q` anywhere, lower-cased, LIKE's wildcards escaped.
fn like_pattern(q: &str) -> String {
    let mut pattern = String::from("%");
    for c in q.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Listings whose title contains `text` in any case (every one when it is
/// empty), only those taken down when `suspended_only`, newest first.
async fn find_rows(db: &Db, text: &str, suspended_only: bool) -> Result<Vec<ListingRow>, DbError> {
    let pattern = like_pattern(text);
    run!(db, |conn| {
        let mut q = listings::table
            .filter(lower(listings::title).like(pattern.clone()).escape('\\'))
            .order(listings::created_at.desc())
            .limit(FOUND_AT_MOST)
            .select(ListingRow::as_select())
            .into_boxed();
        if suspended_only {
            // Taken down themselves, or with their host.
            q = q.filter(listings::status.eq("suspended").or(listings::host_suspended.eq(true)));
        }
        Ok::<_, DbError>(q.load(conn).await?)
    })
}

impl ListingService {
    /// `GET /admin/listings?q&status=suspended`: listings in any status, as
    /// admins see them (street address included).
    pub async fn find_for_admin(&self, viewer: Viewer, q: &str, suspended_only: bool) -> Result<Vec<Listing>, Problem> {
        if !viewer.admin {
            return Err(Problem::forbidden("admin role required"));
        }
        if q.chars().count() > 200 {
            return Err(Problem::field("q", "at most 200 characters"));
        }
        let rows = find_rows(&self.db, q, suspended_only).await.map_err(db_err)?;
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

fn admin(user: &AuthUser) -> Viewer {
    Viewer { id: user.id, admin: user.is_admin() }
}

#[async_trait]
impl ListingModeration for ListingService {
    async fn find(&self, user: &AuthUser, q: &str, suspended_only: bool) -> Result<Vec<Listing>, Problem> {
        self.find_for_admin(admin(user), q, suspended_only).await
    }

    async fn listing(&self, user: &AuthUser, id: Id) -> Result<Listing, Problem> {
        if !user.is_admin() {
            return Err(Problem::forbidden("admin role required"));
        }
        self.get(id, Some(admin(user))).await
    }

    async fn suspend(&self, user: &AuthUser, id: Id) -> Result<Listing, Problem> {
        self.moderate(id, admin(user), true).await
    }

    async fn reinstate(&self, user: &AuthUser, id: Id) -> Result<Listing, Problem> {
        self.moderate(id, admin(user), false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_anywhere_with_wildcards_escaped() {
        assert_eq!(like_pattern(" Loft "), "%loft%");
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(like_pattern(""), "%%");
    }
}
