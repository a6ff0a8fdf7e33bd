//! Pure rules of the user module: what a valid profile change is, how images
//! are checked and resized.

use hometrip_kernel::FieldError;

pub const LOCALES: &[&str] = &["en", "fr"];
/// Currencies a guest may see prices in (ISO 4217).
pub const CURRENCIES: &[&str] = &["EUR", "USD", "GBP", "CHF", "CAD", "AUD", "JPY", "SEK", "NOK", "DKK", "PLN", "CZK"];
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
    if CURRENCIES.contains(&currency) {
        Ok(())
    } else {
        Err(FieldError::new("currency", format!("must be one of {}", CURRENCIES.join(", "))))
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

#[derive(Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Not an image format we take (answered 415).
    Unsupported,
    /// Looks like an image but does not decode, or is degenerate (answered 422).
    Invalid(String),
}

/// Decodes an upload (proving it is an image) and re-encodes it as JPEG at
/// each of `sizes` (longest side), which also strips every metadata block.
pub fn reencode_image(bytes: &[u8], sizes: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, ImageError> {
    let format = image::guess_format(bytes).map_err(|_| ImageError::Unsupported)?;
    if !matches!(
        format,
        image::ImageFormat::Png | image::ImageFormat::Jpeg | image::ImageFormat::WebP | image::ImageFormat::Gif
    ) {
        return Err(ImageError::Unsupported);
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(12_000);
    limits.max_image_height = Some(12_000);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| ImageError::Invalid(e.to_string()))?;
    if img.width() < 16 || img.height() < 16 {
        return Err(ImageError::Invalid("image must be at least 16×16 pixels".into()));
    }
    let mut out = Vec::new();
    for &size in sizes {
        let resized = if img.width() > size || img.height() > size {
            img.resize(size, size, image::imageops::FilterType::Triangle)
        } else {
            img.clone()
        };
        let rgb = image::DynamicImage::ImageRgb8(resized.to_rgb8());
        let mut buf = std::io::Cursor::new(Vec::new());
        rgb.write_to(&mut buf, image::ImageFormat::Jpeg).map_err(|e| ImageError::Invalid(e.to_string()))?;
        out.push((size, buf.into_inner()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 255) as u8, (y % 255) as u8, 7]));
        let mut buf = std::io::Cursor::new(Vec::new());
        assert!(image::DynamicImage::ImageRgb8(img).write_to(&mut buf, image::ImageFormat::Png).is_ok());
        buf.into_inner()
    }

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

    #[test]
    fn images_are_reencoded_at_each_size() {
        let out = reencode_image(&png(1024, 600), AVATAR_SIZES);
        let Ok(out) = out else { panic!("decode failed: {out:?}") };
        assert_eq!(out.len(), 2);
        for (size, bytes) in out {
            let Ok(img) = image::load_from_memory(&bytes) else { panic!("not decodable") };
            assert_eq!(img.width().max(img.height()), size);
            assert_eq!(image::guess_format(&bytes).ok(), Some(image::ImageFormat::Jpeg));
        }
    }

    #[test]
    fn non_images_and_broken_images_are_refused() {
        assert_eq!(reencode_image(b"%PDF-1.4 not an image", AVATAR_SIZES), Err(ImageError::Unsupported));
        let mut broken = png(64, 64);
        broken.truncate(60);
        assert!(matches!(reencode_image(&broken, AVATAR_SIZES), Err(ImageError::Invalid(_))));
        assert!(matches!(reencode_image(&png(4, 4), AVATAR_SIZES), Err(ImageError::Invalid(_))));
    }
}
