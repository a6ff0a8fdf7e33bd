//! The review module's pure rules: what a review must hold, the Bayesian
//! ranking score, and the text fingerprints near-duplicates are found by.

use std::collections::BTreeMap;

use hometrip_kernel::error::FieldError;

use crate::api::{GUEST_CATEGORIES, HOST_CATEGORIES};

/// Longest comment (and response), in characters.
pub const COMMENT_MAX_CHARS: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The guest reviews the stay (and its host).
    Guest,
    /// The host reviews the guest.
    Host,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Guest => "guest",
            Role::Host => "host",
        }
    }

    pub fn categories(self) -> &'static [&'static str] {
        match self {
            Role::Guest => GUEST_CATEGORIES,
            Role::Host => HOST_CATEGORIES,
        }
    }
}

/// Checks a review's ratings (integers 1–5, exactly the role's categories)
/// and comment (1–2,000 characters, not blank).
pub fn check_review(role: Role, rating: i64, ratings: &BTreeMap<String, i64>, comment: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if !(1..=5).contains(&rating) {
        errors.push(FieldError::new("rating", "must be an integer from 1 to 5"));
    }
    for category in role.categories() {
        match ratings.get(*category) {
            None => errors.push(FieldError::new(format!("ratings.{category}"), "is required")),
            Some(r) if !(1..=5).contains(r) => {
                errors.push(FieldError::new(format!("ratings.{category}"), "must be an integer from 1 to 5"));
            }
            Some(_) => {}
        }
    }
    for key in ratings.keys().filter(|k| !role.categories().contains(&k.as_str())) {
        errors.push(FieldError::new(
            format!("ratings.{key}"),
            format!("is not a rating of a {} review ({})", role.as_str(), role.categories().join(", ")),
        ));
    }
    errors.extend(check_comment("comment", comment));
    errors
}

pub fn check_comment(field: &str, comment: &str) -> Option<FieldError> {
    let chars = comment.chars().count();
    if comment.trim().is_empty() {
        Some(FieldError::new(field, "must not be empty"))
    } else if chars > COMMENT_MAX_CHARS {
        Some(FieldError::new(field, format!("must be at most {COMMENT_MAX_CHARS} characters")))
    } else {
        None
    }
}

// ---- Ranking ----------------------------------------------------------------------

/// A listing's ranking score from `count` overall ratings summing to `sum`,
/// with the market's mean `prior` weighing as `weight` reviews.
///
/// A Bayesian average pulls a listing with few reviews toward the market's
/// mean, so two 5-star reviews do not outrank two hundred 4.9s. Pulled
/// *toward* the mean from below, though, a listing with a few bad reviews
/// would climb above one with many middling ones: the prior only ever pulls
/// down (`min(prior, mean)`). So the score never rises with fewer reviews
/// or lower ratings — a listing with fewer, lower ratings never ranks above
/// one with more, higher ratings — while a short run of luck is discounted.
pub fn bayesian_score(count: i64, sum: i64, prior: f64, weight: i64) -> Option<f64> {
    if count <= 0 {
        return None;
    }
    let n = count as f64;
    let mean = sum as f64 / n;
    let c = weight.max(0) as f64;
    let pull = prior.min(mean);
    Some((c * pull + n * mean) / (c + n))
}

/// Two decimals, as shown.
pub fn rounded(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

// ---- Near-duplicates ------------------------------------------------------------

/// Words of a text, lower-cased, letters and digits only.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Texts shorter than this many words are not compared: "Great stay, thanks!"
/// written by many guests is no spam.
pub const FINGERPRINT_MIN_WORDS: usize = 12;

/// A 64-bit SimHash over word 3-shingles (Charikar): similar texts get
/// fingerprints a few bits apart, so a reworded copy is still found.
pub fn simhash(text: &str) -> Option<u64> {
    let words = words(text);
    if words.len() < FINGERPRINT_MIN_WORDS {
        return None;
    }
    let mut weights = [0i32; 64];
    for shingle in words.windows(3) {
        let h = fnv1a(shingle.join(" ").as_bytes());
        for (bit, w) in weights.iter_mut().enumerate() {
            if h >> bit & 1 == 1 {
                *w += 1;
            } else {
                *w -= 1;
            }
        }
    }
    Some(weights.iter().enumerate().filter(|(_, w)| **w > 0).fold(0u64, |acc, (bit, _)| acc | 1 << bit))
}

/// FNV-1a, 64 bits: stable across builds and processes (fingerprints are stored).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

pub fn near(a: u64, b: u64, bits: u32) -> bool {
    (a ^ b).count_ones() <= bits
}

/// Fingerprints are stored as signed 64-bit integers (both backends have them).
pub fn to_stored(fingerprint: u64) -> i64 {
    i64::from_ne_bytes(fingerprint.to_ne_bytes())
}

pub fn from_stored(stored: i64) -> u64 {
    u64::from_ne_bytes(stored.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn guest_ratings(r: i64) -> BTreeMap<String, i64> {
        GUEST_CATEGORIES.iter().map(|c| ((*c).to_owned(), r)).collect()
    }

    #[test]
    fn a_review_needs_its_roles_ratings_from_1_to_5_and_a_comment() {
        assert!(check_review(Role::Guest, 5, &guest_ratings(4), "Lovely").is_empty());
        let errors = check_review(Role::Guest, 6, &guest_ratings(0), " ");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"rating") && fields.contains(&"ratings.value") && fields.contains(&"comment"));
        // A host rates house rules, not location.
        let errors = check_review(Role::Host, 4, &guest_ratings(4), "Fine");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"ratings.house_rules") && fields.contains(&"ratings.location"), "{fields:?}");
        assert!(check_comment("comment", &"é".repeat(2_000)).is_none());
        assert!(check_comment("comment", &"é".repeat(2_001)).is_some());
    }

    #[test]
    fn few_reviews_are_pulled_toward_the_market_and_bad_ones_are_not_lifted() {
        // Two 5s rank below two hundred 4.9s.
        let lucky = bayesian_score(2, 10, 4.6, 5).unwrap_or_default();
        let steady = bayesian_score(200, 980, 4.6, 5).unwrap_or_default();
        assert!(lucky < steady, "{lucky} {steady}");
        // One 1-star review is not lifted toward the mean.
        assert_eq!(bayesian_score(1, 1, 4.6, 5), Some(1.0));
        assert_eq!(bayesian_score(0, 0, 4.6, 5), None);
    }

    proptest! {
        /// Fewer, lower ratings never rank above more, higher ones.
        #[test]
        fn fewer_lower_ratings_never_rank_above_more_higher_ones(
            a in proptest::collection::vec(1i64..=5, 1..40),
            extra in proptest::collection::vec(1i64..=5, 0..40),
            lift in proptest::collection::vec(0i64..=4, 40),
            prior in 1.0f64..=5.0,
            weight in 0i64..20,
        ) {
            // B has A's count plus more, and a mean at least A's: each of A's
            // ratings raised (capped at 5), the extra ones no lower than A's mean.
            let a_sum: i64 = a.iter().sum();
            let a_mean_ceil = (a_sum + a.len() as i64 - 1) / a.len() as i64;
            let mut b: Vec<i64> = a.iter().zip(&lift).map(|(r, l)| (r + l).min(5)).collect();
            b.extend(extra.iter().map(|r| (*r).max(a_mean_ceil)));
            let b_sum: i64 = b.iter().sum();
            let sa = bayesian_score(a.len() as i64, a_sum, prior, weight).unwrap_or_default();
            let sb = bayesian_score(b.len() as i64, b_sum, prior, weight).unwrap_or_default();
            prop_assert!(sa <= sb + 1e-9, "A {a:?} ({sa}) above B {b:?} ({sb}), prior {prior}, weight {weight}");
        }
    }

    #[test]
    fn a_reworded_copy_is_near_and_a_different_text_is_not() {
        let original = "The flat was spotless and the host met us at the station, the view over the harbour \
                        was even better than in the photos and the beds were comfortable";
        let reworded = "The flat was spotless and the host met us at the station, the view over the harbour \
                        was even better than in the pictures and the beds were comfortable";
        let other = "Noisy street at night, the heating did not work for two days and nobody answered our \
                     messages until we left, would not book again";
        let (a, b, c) = (simhash(original).unwrap(), simhash(reworded).unwrap(), simhash(other).unwrap());
        assert!(near(a, b, 12), "{}", (a ^ b).count_ones());
        assert!(!near(a, c, 12), "{}", (a ^ c).count_ones());
        assert_eq!(simhash("Great stay, thanks!"), None);
        assert_eq!(from_stored(to_stored(a)), a);
    }
}
