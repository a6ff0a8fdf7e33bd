//! Image uploads: decoding proves an upload is an image; re-encoding at fixed
//! sizes strips every metadata block (EXIF location included).
//!
//! Decoding is where a small file becomes a large allocation (a 200 KB PNG of
//! one colour can declare 12,000 × 12,000 pixels): the header's pixel count is
//! checked before anything is decoded ([`MAX_PIXELS`]), and [`reencode_bounded`]
//! lets only [`MAX_CONCURRENT_DECODES`] decodes run at once across requests.

/// Largest image decoded: 40 megapixels (a full-frame camera's photo).
pub const MAX_PIXELS: u64 = 40_000_000;
/// Decodes running at once in a process; others wait their turn.
pub const MAX_CONCURRENT_DECODES: usize = 2;

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
    let (width, height) = image::ImageReader::with_format(std::io::Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| ImageError::Invalid(e.to_string()))?;
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageError::Invalid(format!(
            "{width}×{height} is more than {} megapixels",
            MAX_PIXELS / 1_000_000
        )));
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(20_000);
    limits.max_image_height = Some(20_000);
    // RGBA at the largest size, with room for the decoder's own buffers.
    limits.max_alloc = Some(MAX_PIXELS * 4 + 32 * 1024 * 1024);
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

fn decodes() -> std::sync::Arc<tokio::sync::Semaphore> {
    static DECODES: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    std::sync::Arc::clone(
        DECODES.get_or_init(|| std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_DECODES))),
    )
}

/// [`reencode`] on a blocking thread, waiting for one of the process's
/// decode slots first; a refused image is a problem naming `field`.
pub async fn reencode_bounded(
    bytes: Vec<u8>,
    sizes: &'static [u32],
    field: &str,
) -> Result<Vec<(u32, Vec<u8>)>, crate::Problem> {
    let slot = decodes().acquire_owned().await.map_err(crate::Problem::internal)?;
    // The slot goes with the decode: a client that hangs up drops the request's
    // future, not the blocking work, which keeps the slot until it ends.
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        reencode(&bytes, sizes)
    })
    .await
    .map_err(crate::Problem::internal)?
    .map_err(|e| e.into_problem(field))
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

    #[test]
    fn images_over_the_pixel_cap_are_refused_before_decoding() {
        // A valid PNG header declaring 8,000 × 6,000 (48 Mpx) with no real pixel data:
        // refused on the header alone, not by a failed decode.
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&8000u32.to_be_bytes());
        ihdr.extend_from_slice(&6000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        for (kind, data) in [(&b"IDAT"[..], &[0x78u8, 0x9c][..]), (&b"IEND"[..], &[][..])] {
            let mut chunk = kind.to_vec();
            chunk.extend_from_slice(data);
            png.extend_from_slice(&(data.len() as u32).to_be_bytes());
            png.extend_from_slice(&chunk);
            png.extend_from_slice(&crc32(&chunk).to_be_bytes());
        }
        let Err(ImageError::Invalid(why)) = reencode(&png, &[64]) else { panic!("accepted") };
        assert!(why.contains("megapixels"), "{why}");
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}
