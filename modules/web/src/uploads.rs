//! A browser's upload form: multipart with its CSRF token and its files.
//! Read with bounds (the module the files go to checks them again).

use actix_multipart::Multipart;
use futures_util::TryStreamExt;
use hometrip_kernel::{ErrorCode, Problem};

/// Files of one form, at most (a form is read whole before it is sent on).
const MAX_FILES: usize = 10;
/// One file, at most: the listing module's default limit (it checks its own).
const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;
/// A text field, at most (a message's body is 5,000 characters).
const MAX_FIELD_BYTES: usize = 32 * 1024;
/// Text fields, at most.
const MAX_FIELDS: usize = 16;

pub struct Upload {
    pub csrf: String,
    pub files: Vec<Vec<u8>>,
    /// The other text fields, by name.
    pub texts: Vec<(String, String)>,
}

impl Upload {
    /// The text field `name` (empty when absent).
    pub fn text(&self, name: &str) -> String {
        self.texts.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
    }
}

/// The `csrf` field, the non-empty files under `field` and the other text
/// fields. Too many or too large files are 413, a body that is not
/// multipart 400.
pub async fn read_upload(mut payload: Multipart, field: &str) -> Result<Upload, Problem> {
    let unreadable = |_| Problem::new(ErrorCode::BadRequest, "the upload could not be read");
    let too_large = || Problem::new(ErrorCode::PayloadTooLarge, "the upload is too large");
    let unreadable_text = || Problem::new(ErrorCode::BadRequest, "a field of the upload is not text");
    let mut upload = Upload { csrf: String::new(), files: Vec::new(), texts: Vec::new() };
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
        } else if name != field && upload.texts.len() < MAX_FIELDS {
            upload.texts.push((name, String::from_utf8(buf).map_err(|_| unreadable_text())?));
        }
    }
    Ok(upload)
}
