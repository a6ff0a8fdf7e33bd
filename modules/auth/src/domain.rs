//! Pure rules of auth: credential policy, refresh-token rotation, TOTP step
//! acceptance, token digests. No I/O.

use hometrip_kernel::time::Instant;
use hometrip_kernel::FieldError;
use sha2::{Digest, Sha256};
use validator::ValidateEmail;

pub mod api_keys;

pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;
/// zxcvbn score (0–4) a password must reach: 3 is "safely unguessable".
pub const PASSWORD_MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// Lower-cases and checks an email address.
pub fn normalize_email(raw: &str) -> Result<String, FieldError> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err(FieldError::new("email", "is required"));
    }
    if email.chars().count() > 254 || !email.validate_email() {
        return Err(FieldError::new("email", "is not a valid email address"));
    }
    Ok(email)
}

pub fn normalize_display_name(raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    let len = name.chars().count();
    if len == 0 {
        return Err(FieldError::new("display_name", "is required"));
    }
    if len > 80 {
        return Err(FieldError::new("display_name", "must be at most 80 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new("display_name", "must not contain control characters"));
    }
    Ok(name.to_owned())
}

/// Length bounds (ASVS 2.1.1/2.1.2) and a strength estimate that knows common
/// and breached passwords and the user's own details (zxcvbn).
pub fn check_password(password: &str, user_inputs: &[&str]) -> Result<(), FieldError> {
    let len = password.chars().count();
    if len < PASSWORD_MIN_CHARS {
        return Err(FieldError::new("password", format!("must be at least {PASSWORD_MIN_CHARS} characters")));
    }
    if len > PASSWORD_MAX_CHARS {
        return Err(FieldError::new("password", format!("must be at most {PASSWORD_MAX_CHARS} characters")));
    }
    let estimate = zxcvbn::zxcvbn(password, user_inputs);
    if estimate.score() < PASSWORD_MIN_SCORE {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()))
            .unwrap_or_else(|| "it is too easy to guess".to_owned());
        return Err(FieldError::new("password", format!("is too weak: {hint}")));
    }
    Ok(())
}

/// What a password must not be built from: the email, its local part and
/// its pieces, and the words of the display name.
pub fn personal_words(email: &str, display_name: &str) -> Vec<String> {
    let mut words = vec![email.to_lowercase()];
    if let Some(local) = email.split('@').next().filter(|l| !l.is_empty()) {
        words.push(local.to_lowercase());
        words.extend(local.split(['.', '_', '-', '+']).filter(|p| p.len() > 2).map(str::to_lowercase));
    }
    words.extend(display_name.split_whitespace().filter(|w| w.chars().count() > 2).map(str::to_lowercase));
    words
}

/// SHA-256 hex digest under which opaque tokens are stored (never the token).
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// State of a presented refresh token.
#[derive(Debug, Clone, Copy)]
pub struct RefreshState {
    pub used: bool,
    pub revoked: bool,
    pub expires_at: Instant,
    pub session_expires_at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Spend it and issue the next one of the family.
    Rotate,
    /// A spent token came back: someone holds a copy; revoke the whole family.
    Reuse,
    /// Expired or revoked: refuse, nothing to revoke.
    Refuse,
}

pub fn refresh_decision(state: RefreshState, now: Instant) -> RefreshDecision {
    if state.used {
        RefreshDecision::Reuse
    } else if state.revoked || now >= state.expires_at || now >= state.session_expires_at {
        RefreshDecision::Refuse
    } else {
        RefreshDecision::Rotate
    }
}

/// When a refresh token issued `now` expires: after the idle timeout, never
/// past the end of its session.
pub fn refresh_expiry(now: Instant, idle: chrono::Duration, session_end: Instant) -> Instant {
    now.plus(idle).min(session_end)
}

pub const TOTP_STEP_SECS: u64 = 30;

/// The time step whose code matches, allowing one step of clock skew either
/// way, and only a step later than the last accepted one: a code is accepted
/// once (ASVS 2.8.4), so a replay inside its window fails.
pub fn accept_totp(
    code: &str,
    unix_now: u64,
    last_accepted_step: Option<u64>,
    code_at_step: impl Fn(u64) -> String,
) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now_step = unix_now / TOTP_STEP_SECS;
    [now_step.saturating_sub(1), now_step, now_step + 1]
        .into_iter()
        .filter(|step| last_accepted_step.is_none_or(|last| *step > last))
        .find(|step| hometrip_kernel::http::constant_time_eq(code_at_step(*step).as_bytes(), code.as_bytes()))
}

pub const RECOVERY_CODE_COUNT: usize = 10;
/// Characters of a recovery code: 32 symbols (5 bits each), without the
/// look-alikes 0/o and 1/l.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// 20 symbols: 100 random bits per code.
pub const RECOVERY_CODE_CHARS: usize = 20;

/// A fresh recovery code, shown as `xxxxx-xxxxx-xxxxx-xxxxx`.
pub fn new_recovery_code() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut code = String::with_capacity(RECOVERY_CODE_CHARS + 3);
    for i in 0..RECOVERY_CODE_CHARS {
        if i > 0 && i % 5 == 0 {
            code.push('-');
        }
        code.push(char::from(RECOVERY_ALPHABET[rng.gen_range(0..RECOVERY_ALPHABET.len())]));
    }
    code
}

/// Users may type a recovery code in any case, with or without the dashes.
pub fn normalize_recovery_code(raw: &str) -> String {
    raw.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

/// Codes issued before were 10 characters, stored as SHA-256: still accepted
/// until the owner turns two-factor on again.
pub const LEGACY_RECOVERY_CODE_CHARS: usize = 10;

pub fn looks_like_recovery_code(raw: &str) -> bool {
    matches!(normalize_recovery_code(raw).len(), RECOVERY_CODE_CHARS | LEGACY_RECOVERY_CODE_CHARS)
}

/// Whether a normalized code matches a stored hash: argon2 (PHC string), or
/// the SHA-256 hex of a code issued before.
pub fn recovery_code_matches(normalized: &str, stored: &str, verify_argon2: impl Fn(&str, &str) -> bool) -> bool {
    if stored.starts_with("$argon2") {
        verify_argon2(normalized, stored)
    } else {
        normalized.len() == LEGACY_RECOVERY_CODE_CHARS
            && hometrip_kernel::http::constant_time_eq(token_digest(normalized).as_bytes(), stored.as_bytes())
    }
}

/// `fr` when the client prefers French over English, else `en`.
pub fn preferred_locale(accept_language: Option<&str>) -> &'static str {
    let Some(header) = accept_language else {
        return "en";
    };
    let mut best: Option<(&'static str, f32)> = None;
    for part in header.split(',') {
        let mut pieces = part.trim().split(';');
        let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = pieces.find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse::<f32>().ok())).unwrap_or(1.0);
        let lang = match tag.split('-').next() {
            Some("fr") => "fr",
            Some("en") => "en",
            _ => continue,
        };
        if best.is_none_or(|(_, bq)| q > bq) {
            best = Some((lang, q));
        }
    }
    best.map(|(l, _)| l).unwrap_or("en")
}

/// Roles an account can hold.
pub fn valid_role(role: &str) -> bool {
    matches!(role, "admin")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(normalize_email("  Alice@Example.COM ").ok().as_deref(), Some("alice@example.com"));
        assert!(normalize_email("").is_err());
        assert!(normalize_email("not-an-email").is_err());
        assert!(normalize_email("a@b@c").is_err());
        assert!(normalize_email("'; DROP TABLE accounts;--@x").is_err());
        assert!(normalize_email(&format!("{}@example.com", "a".repeat(300))).is_err());
    }

    #[test]
    fn display_names_are_bounded() {
        assert_eq!(normalize_display_name("  Zoé ").ok().as_deref(), Some("Zoé"));
        assert!(normalize_display_name("   ").is_err());
        assert!(normalize_display_name(&"é".repeat(81)).is_err());
        assert!(normalize_display_name("a\u{0007}b").is_err());
        assert!(normalize_display_name("日本語の名前").is_ok());
    }

    #[test]
    fn passwords_need_length_and_strength() {
        assert!(check_password("short1!", &[]).is_err());
        assert!(check_password("password123", &[]).is_err());
        assert!(check_password("qwertyuiop", &[]).is_err());
        assert!(check_password(&"Zq9!".repeat(40), &[]).is_err(), "over 128 chars");
        assert!(check_password("correct horse battery staple", &[]).is_ok());
        assert!(check_password("Vélo-Rouge-Sur-Montmartre-42", &[]).is_ok());
        // The user's own details make a password weak.
        let words = personal_words("alice.martin1987@example.com", "Alice Martin");
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        assert!(words.contains(&"alice.martin1987") && words.contains(&"martin1987") && words.contains(&"martin"));
        assert!(check_password("alice.martin1987", &words).is_err());
        // 64 characters are accepted (ASVS: at least 64).
        assert!(check_password(&"k3#Lm9@pQ2".repeat(7)[..64], &[]).is_ok());
    }

    #[test]
    fn token_digest_is_stable_hex() {
        assert_eq!(token_digest("abc").len(), 64);
        assert_eq!(token_digest("abc"), token_digest("abc"));
        assert_ne!(token_digest("abc"), token_digest("abd"));
    }

    fn state(used: bool, revoked: bool, exp_in: i64, session_in: i64, now: Instant) -> RefreshState {
        RefreshState {
            used,
            revoked,
            expires_at: now.plus(Duration::seconds(exp_in)),
            session_expires_at: now.plus(Duration::seconds(session_in)),
        }
    }

    #[test]
    fn refresh_rotation_rules() {
        let now = Instant::now();
        assert_eq!(refresh_decision(state(false, false, 60, 600, now), now), RefreshDecision::Rotate);
        assert_eq!(refresh_decision(state(true, false, 60, 600, now), now), RefreshDecision::Reuse);
        assert_eq!(refresh_decision(state(true, true, 60, 600, now), now), RefreshDecision::Reuse);
        assert_eq!(refresh_decision(state(false, true, 60, 600, now), now), RefreshDecision::Refuse);
        assert_eq!(refresh_decision(state(false, false, -1, 600, now), now), RefreshDecision::Refuse);
        assert_eq!(refresh_decision(state(false, false, 60, 0, now), now), RefreshDecision::Refuse);
    }

    #[test]
    fn refresh_tokens_expire_when_idle_but_never_after_the_session() {
        let now = Instant::now();
        let end = now.plus(Duration::days(30));
        assert_eq!(refresh_expiry(now, Duration::days(14), end), now.plus(Duration::days(14)));
        let late = now.plus(Duration::days(25));
        assert_eq!(refresh_expiry(late, Duration::days(14), end), end);
    }

    fn fake_code(step: u64) -> String {
        format!("{:06}", step % 1_000_000)
    }

    #[test]
    fn totp_accepts_current_and_adjacent_steps_once() {
        let now = 1_700_000_000u64;
        let step = now / TOTP_STEP_SECS;
        assert_eq!(accept_totp(&fake_code(step), now, None, fake_code), Some(step));
        assert_eq!(accept_totp(&fake_code(step - 1), now, None, fake_code), Some(step - 1));
        assert_eq!(accept_totp(&fake_code(step + 1), now, None, fake_code), Some(step + 1));
        assert_eq!(accept_totp(&fake_code(step - 2), now, None, fake_code), None);
        // Replay of an accepted step fails, and so does an older one.
        assert_eq!(accept_totp(&fake_code(step), now, Some(step), fake_code), None);
        assert_eq!(accept_totp(&fake_code(step - 1), now, Some(step), fake_code), None);
        assert_eq!(accept_totp(&fake_code(step + 1), now, Some(step), fake_code), Some(step + 1));
        assert_eq!(accept_totp("12345", now, None, fake_code), None);
        assert_eq!(accept_totp("abcdef", now, None, fake_code), None);
    }

    #[test]
    fn recovery_codes_are_long_random_and_typed_loosely() {
        let code = new_recovery_code();
        assert_eq!(code.len(), RECOVERY_CODE_CHARS + 3, "{code}");
        assert_eq!(code.split('-').count(), 4);
        assert!(looks_like_recovery_code(&code));
        assert!(looks_like_recovery_code(&code.to_uppercase().replace('-', " ")));
        assert_ne!(code, new_recovery_code());
        assert_eq!(normalize_recovery_code("AbCdE-12345"), "abcde12345");
        // TOTP codes are not recovery codes; the short ones of before still are.
        assert!(!looks_like_recovery_code("123456"));
        assert!(looks_like_recovery_code("abcde-12345"));
        let never = |_: &str, _: &str| false;
        assert!(recovery_code_matches("abcde12345", &token_digest("abcde12345"), never));
        assert!(!recovery_code_matches("abcde12345", &token_digest("abcde12346"), never));
        assert!(!recovery_code_matches(&"a".repeat(20), &token_digest(&"a".repeat(20)), never));
        assert!(recovery_code_matches("x", "$argon2id$v=19$...", |c, h| c == "x" && h.starts_with("$argon2id")));
    }

    #[test]
    fn locale_follows_accept_language() {
        assert_eq!(preferred_locale(None), "en");
        assert_eq!(preferred_locale(Some("fr-FR,fr;q=0.9,en;q=0.8")), "fr");
        assert_eq!(preferred_locale(Some("en-GB,fr;q=0.5")), "en");
        assert_eq!(preferred_locale(Some("de-DE,fr;q=0.7,en;q=0.5")), "fr");
        assert_eq!(preferred_locale(Some("de")), "en");
        assert_eq!(preferred_locale(Some(";;;,q=")), "en");
    }

    #[test]
    fn only_known_roles() {
        assert!(valid_role("admin"));
        assert!(!valid_role("root"));
    }
}
