//! Pure rules of the user module: what a valid profile change is, avatar sizes,
//! search text and notification channels.

use hometrip_kernel::FieldError;

pub const LOCALES: &[&str] = &["en", "fr"];
/// Currencies a guest may see prices in (ISO 4217).
pub const BIO_MAX_CHARS: usize = 2000;
pub const AVATAR_SIZES: &[u32] = &[512, 128];

pub fn check_locale(locale: &str) -> Result<(), FieldError> {
    if LOCALES.contains(&locale) {
        Ok(())
    } else {
        Err(FieldError::new("locale", format!("must be one of {}", LOCALES.join(", "))))
    }
}

pub fn check_currency(currency: &str) -> Result<(), FieldError> {
    if hometrip_kernel::money::is_currency(currency) {
        Ok(())
    } else {
        Err(FieldError::new("currency", "must be a supported ISO 4217 code (EUR, USD, GBP, CHF, ...)"))
    }
}

pub fn check_bio(bio: &str) -> Result<String, FieldError> {
    let bio = bio.trim();
    if bio.chars().count() > BIO_MAX_CHARS {
        return Err(FieldError::new("bio", format!("must be at most {BIO_MAX_CHARS} characters")));
    }
    if bio.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        return Err(FieldError::new("bio", "must not contain control characters"));
    }
    Ok(bio.to_owned())
}

pub fn check_display_name(name: &str) -> Result<String, FieldError> {
    let name = name.trim();
    let len = name.chars().count();
    if len == 0 || len > 80 {
        return Err(FieldError::new("display_name", "must be 1 to 80 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new("display_name", "must not contain control characters"));
    }
    Ok(name.to_owned())
}

pub fn channels_text(c: crate::api::NotificationChannels) -> String {
    [("email", c.email), ("sms", c.sms), ("push", c.push)]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(",")
}

pub fn parse_channels(text: &str) -> crate::api::NotificationChannels {
    let has = |name: &str| text.split(',').any(|c| c == name);
    crate::api::NotificationChannels { email: has("email"), sms: has("sms"), push: has("push") }
}

/// Lower-cased text admins search by (email and name).
pub fn search_text(email: &str, display_name: &str) -> String {
    format!("{} {}", email.to_lowercase(), display_name.to_lowercase())
}

/// A LIKE pattern matching `q` anywhere, with LIKE's wildcards escaped.
pub fn like_pattern(q: &str) -> String {
    let escaped: String = q
        .trim()
        .to_lowercase()
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_and_currencies_are_closed_lists() {
        assert!(check_locale("fr").is_ok());
        assert!(check_locale("de").is_err());
        assert!(check_currency("EUR").is_ok());
        assert!(check_currency("eur").is_err());
        assert!(check_currency("XXX").is_err());
    }

    #[test]
    fn bios_and_names_are_bounded() {
        assert_eq!(check_bio("  hello\nworld ").ok().as_deref(), Some("hello\nworld"));
        assert!(check_bio(&"x".repeat(2001)).is_err());
        assert!(check_bio("bell\u{7}").is_err());
        assert!(check_display_name("").is_err());
        assert!(check_display_name("Zoé").is_ok());
    }

    #[test]
    fn channels_round_trip() {
        use crate::api::NotificationChannels as C;
        for c in [
            C { email: true, sms: false, push: true },
            C { email: false, sms: false, push: false },
            C { email: true, sms: true, push: true },
        ] {
            assert_eq!(parse_channels(&channels_text(c)), c);
        }
        assert_eq!(channels_text(C { email: false, sms: true, push: false }), "sms");
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern(" Alice "), "%alice%");
        assert_eq!(like_pattern("100%_"), "%100\\%\\_%");
        assert_eq!(search_text("A@B.com", "Zoé Martin"), "a@b.com zoé martin");
    }
}
