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
        let store =
            LocalFileSystem::new_with_prefix(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(FileStore {
            store: Arc::new(store),
            public_base: public_base.trim_end_matches('/').to_owned(),
        })
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<String, Problem> {
        let path = Path::parse(key).map_err(Problem::internal)?;
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(Problem::internal)?;
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
