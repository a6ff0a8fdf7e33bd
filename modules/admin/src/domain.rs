//! The audit chain's rules: each entry's hash covers its fields and the
//! hash of the entry before it, so editing an entry breaks its own hash, and
//! removing one breaks the link of the next (the head, kept apart, catches
//! the removal of the last).

use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields an entry's hash covers, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chained<'a> {
    pub seq: i64,
    pub id: &'a str,
    /// RFC 3339 with microseconds, UTC.
    pub at: &'a str,
    pub actor_id: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub reason: &'a str,
    pub status: i32,
    pub request_id: &'a str,
}

/// SHA-256 (hex) of the previous hash and the fields, each length-prefixed
/// so no two different entries hash the same bytes.
pub fn entry_hash(prev_hash: &str, e: &Chained<'_>) -> String {
    let mut h = Sha256::new();
    let seq = e.seq.to_string();
    let status = e.status.to_string();
    for field in [prev_hash, &seq, e.id, e.at, e.actor_id, e.action, e.target, e.reason, &status, e.request_id] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

/// An entry as stored, for verification.
pub struct Stored<'a> {
    pub fields: Chained<'a>,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

pub use crate::api::Verdict;

/// Walks a stretch of the chain: `expected` is the next seq and `prev` the
/// hash before it; both advance. The first broken entry is returned.
pub fn check_run(entries: &[Stored<'_>], expected: &mut i64, prev: &mut String) -> Result<(), (i64, String)> {
    for e in entries {
        if e.fields.seq != *expected {
            return Err((*expected, format!("entry {} is missing (found {} next)", *expected, e.fields.seq)));
        }
        if e.prev_hash != prev.as_str() {
            return Err((e.fields.seq, format!("entry {} does not follow the one before", e.fields.seq)));
        }
        if entry_hash(prev, &e.fields) != e.hash {
            return Err((e.fields.seq, format!("entry {} was altered", e.fields.seq)));
        }
        *prev = e.hash.to_owned();
        *expected += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, reason: &str) -> Chained<'_> {
        Chained {
            seq,
            id: "id",
            at: "2026-12-06T10:00:00.000000Z",
            actor_id: "admin",
            action: "POST /api/v1/admin/users/{id}/suspend",
            target: "users/x",
            reason,
            status: 200,
            request_id: "r",
        }
    }

    fn chain<'a>(reasons: &[&'a str]) -> Vec<(Chained<'a>, String, String)> {
        let mut prev = GENESIS.to_owned();
        let mut out = Vec::new();
        for (i, r) in reasons.iter().enumerate() {
            let e = entry(i as i64 + 1, r);
            let hash = entry_hash(&prev, &e);
            out.push((e, prev.clone(), hash.clone()));
            prev = hash;
        }
        out
    }

    fn check(rows: &[(Chained<'_>, String, String)]) -> Result<(), (i64, String)> {
        let stored: Vec<Stored<'_>> =
            rows.iter().map(|(f, p, h)| Stored { fields: f.clone(), prev_hash: p, hash: h }).collect();
        check_run(&stored, &mut 1, &mut GENESIS.to_owned())
    }

    #[test]
    fn an_intact_chain_holds_and_edits_and_removals_break_it() {
        let rows = chain(&["fraud", "spam", "dispute"]);
        assert_eq!(check(&rows), Ok(()));
        let mut edited = rows.clone();
        edited[1].0.reason = "nothing to see";
        assert_eq!(check(&edited).unwrap_err().0, 2);
        let mut removed = rows.clone();
        removed.remove(1);
        assert_eq!(check(&removed).unwrap_err().0, 2);
        // Renumbering after a removal does not help: the link breaks.
        let mut renumbered = removed.clone();
        renumbered[1].0.seq = 2;
        assert_eq!(check(&renumbered).unwrap_err().0, 2);
    }

    #[test]
    fn fields_cannot_be_shifted_between_each_other() {
        let a = Chained { reason: "ab", target: "c", ..entry(1, "") };
        let b = Chained { reason: "b", target: "ca", ..entry(1, "") };
        assert_ne!(entry_hash(GENESIS, &a), entry_hash(GENESIS, &b));
    }
}
