//! Image uploads: decoding proves an upload is an image; re-encoding at fixed
//! sizes strips every metadata block (EXIF location included).

#[derive(Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Not an image format we take (answered 415).
    Unsupported,
    /// Looks like an image but does not decode, or is degenerate (answered 422).
    Invalid(String),
}

impl ImageError {
    pub fn into_problem(self, field: &str) -> crate::Problem {
        match self {
            ImageError::Unsupported => {
                crate::Problem::new(crate::ErrorCode::UnsupportedMediaType, "upload a PNG, JPEG, WebP or GIF image")
            }
            ImageError::Invalid(why) => crate::Problem::field(field, &format!("not a valid image: {why}")),
        }
    }
}

/// Decodes `bytes` and re-encodes it as JPEG with its longest side at most
/// each of `sizes`.
pub fn reencode(bytes: &[u8], sizes: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, ImageError> {
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
    fn images_are_reencoded_at_each_size() {
        let out = reencode(&png(1024, 600), &[512, 128]);
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
        assert_eq!(reencode(b"%PDF-1.4 not an image", &[64]), Err(ImageError::Unsupported));
        let mut broken = png(64, 64);
        broken.truncate(60);
        assert!(matches!(reencode(&broken, &[64]), Err(ImageError::Invalid(_))));
        assert!(matches!(reencode(&png(4, 4), &[64]), Err(ImageError::Invalid(_))));
    }
}
