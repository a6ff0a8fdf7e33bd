//! Rules of API keys: their shape, what a new key may ask for, rotation's
//! grace period, and when a key may be used. No I/O.

pub use hometrip_kernel::api_keys::{public_part, PUBLIC_CHARS};
use hometrip_kernel::api_keys::{Scope, KEY_PREFIX, PUBLIC_ALPHABET};
use hometrip_kernel::time::Instant;
use hometrip_kernel::FieldError;

/// Bytes of the secret part: 256 bits.
pub const SECRET_BYTES: usize = 32;
pub const NAME_MAX_CHARS: usize = 100;
pub const DEFAULT_GRACE_MINUTES: i64 = 60;
/// A week: longer overlaps are a second key, not a rotation.
pub const MAX_GRACE_MINUTES: i64 = 7 * 24 * 60;

/// A key's text from its random parts: `htk_<public>_<secret>`.
pub fn key_text(public: &[u8; PUBLIC_CHARS], secret: &[u8; SECRET_BYTES]) -> (String, String) {
    use base64::Engine;
    let public: String = public.iter().map(|b| PUBLIC_ALPHABET[usize::from(*b) % 32] as char).collect();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let key = format!("{KEY_PREFIX}{public}_{secret}");
    (public, key)
}

/// The prefix shown with a key (its first characters, the secret left out).
pub fn shown_prefix(public: &str) -> String {
    format!("{KEY_PREFIX}{public}")
}

pub fn check_name(raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > NAME_MAX_CHARS {
        return Err(FieldError::new("name", format!("must be 1 to {NAME_MAX_CHARS} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new("name", "must not contain control characters"));
    }
    Ok(name.to_owned())
}

/// Known scopes, at least one, each once, in a stable order.
pub fn check_scopes(raw: &[String]) -> Result<Vec<Scope>, FieldError> {
    if raw.is_empty() {
        return Err(FieldError::new("scopes", "at least one scope is required"));
    }
    let mut scopes = Vec::new();
    for name in raw {
        let scope = Scope::parse(name.trim()).ok_or_else(|| {
            let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            FieldError::new("scopes", format!("unknown scope {name:?}; known: {}", known.join(", ")))
        })?;
        scopes.push(scope);
    }
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

pub fn check_expiry(expires_at: Option<Instant>, now: Instant) -> Result<Option<Instant>, FieldError> {
    match expires_at {
        Some(at) if at <= now => Err(FieldError::new("expires_at", "must be in the future")),
        other => Ok(other),
    }
}

pub fn check_grace(minutes: Option<i64>) -> Result<i64, FieldError> {
    let minutes = minutes.unwrap_or(DEFAULT_GRACE_MINUTES);
    if !(0..=MAX_GRACE_MINUTES).contains(&minutes) {
        return Err(FieldError::new("grace_minutes", format!("must be 0 to {MAX_GRACE_MINUTES}")));
    }
    Ok(minutes)
}

/// Scopes as stored: their names, space-separated.
pub fn scopes_text(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

pub fn scopes_from_text(text: &str) -> Vec<Scope> {
    text.split_whitespace().filter_map(Scope::parse).collect()
}

/// Why a stored key may not be used now, if it may not.
pub fn refusal(revoked_at: Option<Instant>, expires_at: Option<Instant>, now: Instant) -> Option<&'static str> {
    if revoked_at.is_some() {
        Some("API key revoked")
    } else if expires_at.is_some_and(|e| e <= now) {
        Some("API key expired")
    } else {
        None
    }
}

/// When a rotated key stops: after the grace period, never later than it would have.
pub fn rotated_expiry(expires_at: Option<Instant>, now: Instant, grace_minutes: i64) -> Instant {
    let end = now.plus(chrono::Duration::minutes(grace_minutes));
    expires_at.map_or(end, |e| e.min(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_advertised_shape_and_are_recognised() {
        let (public, key) = key_text(&[7; PUBLIC_CHARS], &[200; SECRET_BYTES]);
        assert!(key.starts_with("htk_"));
        assert_eq!(public_part(&key), Some(public.as_str()));
        assert_eq!(key.len(), 4 + PUBLIC_CHARS + 1 + 43);
        assert_eq!(public_part("htk_short_abc"), None);
        assert_eq!(public_part(&key.replace("htk_", "htx_")), None);
        assert_eq!(public_part(&format!("{key}!")), None);
    }

    #[test]
    fn new_keys_ask_for_known_scopes_and_a_future_expiry() {
        let scopes = check_scopes(&["calendar:write".into(), "calendar:read".into(), "calendar:read".into()]).unwrap();
        assert_eq!(scopes, vec![Scope::CalendarRead, Scope::CalendarWrite]);
        assert_eq!(scopes_from_text(&scopes_text(&scopes)), scopes);
        assert!(check_scopes(&[]).is_err());
        assert!(check_scopes(&["admin".into()]).is_err());
        assert!(check_name("  ").is_err());
        assert_eq!(check_name(" Channel manager ").unwrap(), "Channel manager");
        let now = Instant::now();
        assert!(check_expiry(Some(now), now).is_err());
        assert!(check_expiry(Some(now.plus(chrono::Duration::days(1))), now).is_ok());
    }

    #[test]
    fn a_rotation_never_extends_a_key() {
        let now = Instant::now();
        assert_eq!(check_grace(None).unwrap(), 60);
        assert!(check_grace(Some(-1)).is_err());
        assert!(check_grace(Some(MAX_GRACE_MINUTES + 1)).is_err());
        assert_eq!(rotated_expiry(None, now, 60), now.plus(chrono::Duration::minutes(60)));
        let soon = now.plus(chrono::Duration::minutes(5));
        assert_eq!(rotated_expiry(Some(soon), now, 60), soon);
        assert_eq!(refusal(None, Some(now), now), Some("API key expired"));
        assert_eq!(refusal(Some(now), None, now), Some("API key revoked"));
        assert_eq!(refusal(None, None, now), None);
    }
}
