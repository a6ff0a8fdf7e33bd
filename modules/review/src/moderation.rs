//! Moderation: the queue of held and flagged reviews, decisions with a
//! stated reason, and the author's appeal of a rejection or removal (one per
//! review, decided by an admin other than the one who removed it), as the
//! EU's rules on reviews ask.

use hometrip_kernel::{ErrorCode, Id, Problem};

use crate::service::{db_err, published_event, view, ReviewService};
use crate::store::{self, AppealRow, ReviewRow};

pub use crate::api::{Appeal, AppealDecision, Decision, ModeratedReview};

fn check_reason(reason: &str) -> Result<String, Problem> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 2_000 {
        return Err(Problem::field("reason", "must be 1 to 2000 characters"));
    }
    Ok(reason.to_owned())
}

fn admin_only(admin: bool) -> Result<(), Problem> {
    if admin {
        Ok(())
    } else {
        Err(Problem::forbidden("admins only"))
    }
}

/// A recorded decision, when all of it is there.
fn decision(by: Option<Id>, reason: &Option<String>, at: Option<hometrip_kernel::time::Instant>) -> Option<Decision> {
    Some(Decision { by: by?, reason: reason.clone()?, at: at? })
}

pub(crate) fn appeal_view(a: &AppealRow, r: &ReviewRow) -> Appeal {
    Appeal {
        review: view(r),
        review_id: a.review_id,
        author_id: a.author_id,
        reason: a.reason.clone(),
        created_at: a.created_at,
        removed_by: a.removed_by,
        status: match a.decision.as_deref() {
            None => "open".to_owned(),
            Some(d) => d.to_owned(),
        },
        decision: decision(a.decided_by, &a.decision_reason, a.decided_at),
    }
}

impl ReviewService {
    async fn moderated(&self, r: &ReviewRow) -> Result<ModeratedReview, Problem> {
        let flags = if r.flagged { store::flag_reasons(&self.db, r.id).await.map_err(db_err)? } else { Vec::new() };
        Ok(ModeratedReview {
            review: view(r),
            hold_reasons: serde_json::from_str(&r.hold_reasons).unwrap_or_default(),
            flags,
            decision: decision(r.decided_by, &r.decision_reason, r.decided_at),
        })
    }

    /// `GET /admin/reviews?status=`: `pending` (held, and flagged published
    /// ones), or any status by name.
    pub async fn queue(
        &self,
        admin: bool,
        status: &str,
        after: Option<Id>,
        limit: i64,
    ) -> Result<Vec<ModeratedReview>, Problem> {
        admin_only(admin)?;
        let rows = match status {
            "pending" => store::queue(&self.db, after, limit).await,
            "held" | "hidden" | "published" | "rejected" | "removed" => {
                store::by_status(&self.db, status, after, limit).await
            }
            _ => return Err(Problem::field("status", "pending, held, hidden, published, rejected or removed")),
        }
        .map_err(db_err)?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            items.push(self.moderated(r).await?);
        }
        Ok(items)
    }

    async fn row(&self, id: Id) -> Result<ReviewRow, Problem> {
        store::review(&self.db, id).await.map_err(db_err)?.ok_or_else(|| Problem::not_found("review"))
    }

    /// Where an accepted review goes: public if its stay's double-blind has
    /// lifted, else hidden until it does.
    async fn accepted_status(&self, r: &ReviewRow) -> Result<&'static str, Problem> {
        let stay = store::stay(&self.db, r.booking_id).await.map_err(db_err)?;
        Ok(if stay.is_some_and(|s| s.revealed_at.is_some()) { "published" } else { "hidden" })
    }

    /// Moves a review to an accepted state (approval, reinstatement), with
    /// its publication's event and the listing's new sums.
    async fn accept(&self, r: &ReviewRow, from: &[&str], by: Id, reason: &str) -> Result<ModeratedReview, Problem> {
        let now = self.now();
        let to = self.accepted_status(r).await?;
        let published_at = (to == "published").then_some(now);
        let mut after = r.clone();
        after.status = to.to_owned();
        after.published_at = published_at;
        let (events, jobs) = if to == "published" {
            (vec![published_event(&after).map_err(db_err)?], vec![self.resum_job(r.listing_id, now)])
        } else {
            (Vec::new(), Vec::new())
        };
        let changed =
            store::set_status(&self.db, r.id, from, to, published_at, Some((by, reason, now)), &events, &jobs)
                .await
                .map_err(db_err)?;
        if !changed {
            return Err(Problem::new(ErrorCode::Conflict, "the review changed meanwhile; reload it"));
        }
        self.jobs.scheduled(&jobs);
        self.moderated(&self.row(r.id).await?).await
    }

    /// `POST /admin/reviews/{id}/approve`: a held review goes on (published,
    /// or hidden until the double-blind lifts); a flagged one stays up.
    pub async fn approve(
        &self,
        admin: Id,
        is_admin: bool,
        id: Id,
        reason: Option<&str>,
    ) -> Result<ModeratedReview, Problem> {
        admin_only(is_admin)?;
        let r = self.row(id).await?;
        let reason = reason.map(check_reason).transpose()?.unwrap_or_else(|| "approved".to_owned());
        match r.status.as_str() {
            "held" => self.accept(&r, &["held"], admin, &reason).await,
            "published" if r.flagged => {
                store::clear_flags(&self.db, id, admin, &reason, self.now()).await.map_err(db_err)?;
                self.moderated(&self.row(id).await?).await
            }
            _ => Err(Problem::new(ErrorCode::Conflict, "only held or flagged reviews await approval")),
        }
    }

    /// `POST /admin/reviews/{id}/reject {reason}`: a held review is
    /// rejected, a published one removed; either way with the stated reason.
    pub async fn reject(&self, admin: Id, is_admin: bool, id: Id, reason: &str) -> Result<ModeratedReview, Problem> {
        admin_only(is_admin)?;
        let reason = check_reason(reason)?;
        let r = self.row(id).await?;
        let now = self.now();
        let (to, jobs) = match r.status.as_str() {
            "held" | "hidden" => ("rejected", Vec::new()),
            "published" => ("removed", vec![self.resum_job(r.listing_id, now)]),
            _ => return Err(Problem::new(ErrorCode::Conflict, "the review is already down")),
        };
        let published_at = if to == "removed" { r.published_at } else { None };
        let changed = store::set_status(
            &self.db,
            id,
            &[r.status.as_str()],
            to,
            published_at,
            Some((admin, &reason, now)),
            &[],
            &jobs,
        )
        .await
        .map_err(db_err)?;
        if !changed {
            return Err(Problem::new(ErrorCode::Conflict, "the review changed meanwhile; reload it"));
        }
        self.jobs.scheduled(&jobs);
        self.moderated(&self.row(id).await?).await
    }

    /// `POST /reviews/{id}/appeal {reason}`: the author contests a
    /// rejection or removal, once.
    pub async fn appeal(&self, user: Id, id: Id, reason: &str) -> Result<Appeal, Problem> {
        let r = self.row(id).await?;
        if r.author_id != user {
            return Err(Problem::forbidden("only the author appeals"));
        }
        if !matches!(r.status.as_str(), "rejected" | "removed") {
            return Err(Problem::new(ErrorCode::Conflict, "only a rejected or removed review can be appealed"));
        }
        let reason = check_reason(reason)?;
        let row = AppealRow {
            review_id: id,
            author_id: user,
            reason,
            created_at: self.now(),
            removed_by: r.decided_by.unwrap_or(user),
            decision: None,
            decided_by: None,
            decision_reason: None,
            decided_at: None,
        };
        if !store::insert_appeal(&self.db, &row).await.map_err(db_err)? {
            return Err(Problem::new(ErrorCode::Conflict, "this review was already appealed"));
        }
        Ok(appeal_view(&row, &r))
    }

    pub async fn appeal_of(&self, user: Id, admin: bool, id: Id) -> Result<Appeal, Problem> {
        let a = store::appeal(&self.db, id).await.map_err(db_err)?.ok_or_else(|| Problem::not_found("appeal"))?;
        if !admin && a.author_id != user {
            return Err(Problem::not_found("appeal"));
        }
        Ok(appeal_view(&a, &self.row(id).await?))
    }

    pub async fn open_appeals(&self, admin: bool, after: Option<Id>, limit: i64) -> Result<Vec<Appeal>, Problem> {
        admin_only(admin)?;
        let open = store::open_appeals(&self.db, after, limit).await.map_err(db_err)?;
        Ok(open.iter().map(|(a, r)| appeal_view(a, r)).collect())
    }

    /// `POST /admin/reviews/{id}/appeal {decision, reason}`: another admin
    /// reinstates the review or upholds the removal.
    pub async fn decide_appeal(&self, admin: Id, is_admin: bool, id: Id, d: AppealDecision) -> Result<Appeal, Problem> {
        admin_only(is_admin)?;
        let reason = check_reason(&d.reason)?;
        let appeal = store::appeal(&self.db, id).await.map_err(db_err)?.ok_or_else(|| Problem::not_found("appeal"))?;
        if appeal.removed_by == admin {
            return Err(Problem::forbidden(
                "an appeal is decided by another admin than the one who removed the review",
            ));
        }
        if appeal.decision.is_some() {
            return Err(Problem::new(ErrorCode::Conflict, "this appeal was already decided"));
        }
        let decision = match d.decision.as_str() {
            "reinstate" => "reinstated",
            "uphold" => "upheld",
            _ => return Err(Problem::field("decision", "reinstate or uphold")),
        };
        if decision == "reinstated" {
            let r = self.row(id).await?;
            self.accept(&r, &["rejected", "removed"], admin, &reason).await?;
        }
        if !store::decide_appeal(&self.db, id, decision, admin, &reason, self.now()).await.map_err(db_err)? {
            return Err(Problem::new(ErrorCode::Conflict, "this appeal was already decided"));
        }
        self.appeal_of(admin, true, id).await
    }
}
