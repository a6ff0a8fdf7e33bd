//! A browser's upload form: multipart with its CSRF token and its files.
//! Read with bounds (the module the files go to checks them again).

use actix_multipart::Multipart;
use futures_util::TryStreamExt;
use hometrip_kernel::{ErrorCode, Problem};

/// Files of one form, at most (a form is read whole before it is sent on).
const MAX_FILES: usize = 10;
/// One file, at most: the listing module's default limit (it checks its own).
const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;
/// A text field, at most.
const MAX_FIELD_BYTES: usize = 1024;

pub struct Upload {
    pub csrf: String,
    pub files: Vec<Vec<u8>>,
}

/// The `csrf` field and the non-empty files under `field`; other fields are
/// read and dropped. Too many or too large files are 413, a body that is not
/// multipart 400.
pub async fn read_upload(mut payload: Multipart, field: &str) -> Result<Upload, Problem> {
    let unreadable = |_| Problem::new(ErrorCode::BadRequest, "the upload could not be read");
    let too_large = || Problem::new(ErrorCode::PayloadTooLarge, "the upload is too large");
    let mut upload = Upload { csrf: String::new(), files: Vec::new() };
    while let Some(mut part) = payload.try_next().await.map_err(unreadable)? {
        let name = part.name().unwrap_or_default().to_owned();
        let limit = if name == field { MAX_FILE_BYTES } else { MAX_FIELD_BYTES };
        let mut buf = Vec::new();
        while let Some(chunk) = part.try_next().await.map_err(unreadable)? {
            if buf.len() + chunk.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        if name == "csrf" {
            upload.csrf = String::from_utf8(buf).unwrap_or_default();
        } else if name == field && !buf.is_empty() {
            if upload.files.len() == MAX_FILES {
                return Err(too_large());
            }
            upload.files.push(buf);
        }
    }
    Ok(upload)
}
