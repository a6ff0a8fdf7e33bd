//! File storage (avatars, photos, documents) through `object_store`: a local
//! directory by default, any S3-compatible store in production.

use std::sync::Arc;

use object_store::{local::LocalFileSystem, path::Path, ObjectStore, PutPayload};

use crate::error::Problem;

#[derive(Clone)]
pub struct FileStore {
    store: Arc<dyn ObjectStore>,
    /// Public URL prefix under which stored objects are served.
    public_base: String,
}

impl FileStore {
    /// A store rooted at `dir` (created if missing), served under `public_base`.
    pub fn local(dir: &std::path::Path, public_base: &str) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(FileStore { store: Arc::new(store), public_base: public_base.trim_end_matches('/').to_owned() })
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<String, Problem> {
        let path = Path::parse(key).map_err(Problem::internal)?;
        self.store.put(&path, PutPayload::from(bytes)).await.map_err(Problem::internal)?;
        Ok(self.url(key))
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Problem> {
        let path = Path::parse(key).map_err(|_| Problem::not_found("file"))?;
        match self.store.get(&path).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(Problem::internal)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Problem::internal(e)),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), Problem> {
        let path = Path::parse(key).map_err(Problem::internal)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Problem::internal(e)),
        }
    }

    pub fn url(&self, key: &str) -> String {
        format!("{}/{}", self.public_base, key)
    }
}

/// Reads a secret kept in a file, creating it with `create` (mode 0600) on
/// first use. Used for generated keys and credentials under the data dir.
pub fn read_or_create_secret(
    path: &std::path::Path,
    create: impl FnOnce() -> Result<String, String>,
) -> Result<String, String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok(existing);
    }
    let value = create()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            use std::io::Write;
            file.write_all(value.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(value)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}
