//! Where a dataset lives: a local directory or an object-store URL
//! (`s3://bucket/prefix`), and the object store that reaches it.
//!
//! S3 credentials and settings come from the usual places, through
//! `object_store`'s `AmazonS3Builder::from_env`: `AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL` (an S3-compatible server), a pod's service account
//! (`AWS_WEB_IDENTITY_TOKEN_FILE` with `AWS_ROLE_ARN`, or the EKS pod
//! identity agent), else the instance metadata service.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use deltalake_core::logstore::{
    LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig, default_logstore, logstore_factories,
    object_store_factories,
};
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use url::Url;

use crate::Error;

/// A dataset's place.
#[derive(Clone)]
pub struct Location {
    /// The dataset's root, ending in `/`.
    pub url: Url,
    /// Rooted at the dataset (paths are relative to it).
    pub store: Arc<dyn ObjectStore>,
    /// The local directory, for a dataset on disk.
    pub local: Option<PathBuf>,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.url)
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.local {
            Some(p) => write!(f, "{}", p.display()),
            None => write!(f, "{}", self.url),
        }
    }
}

/// True when `s` names an object store rather than a local path.
pub fn is_url(s: &str) -> bool {
    s.contains("://")
}

impl Location {
    /// Parses a local path or an `s3://bucket/prefix` URL. A local
    /// directory is created when `create` is set.
    pub fn parse(s: &str, create: bool) -> Result<Location, Error> {
        let bad = |detail: String| Error::Location { location: s.to_string(), detail };
        if !is_url(s) {
            let path = PathBuf::from(s);
            if create {
                std::fs::create_dir_all(&path).map_err(|e| bad(format!("cannot create the directory: {e}")))?;
            } else if !path.is_dir() {
                return Err(bad("no such directory (expected a dataset written by `trawl index`)".into()));
            }
            return Location::local(&path).map_err(bad);
        }
        let mut url = Url::parse(s).map_err(|e| bad(format!("not a URL: {e}")))?;
        if url.scheme() != "s3" {
            return Err(bad(format!(
                "unsupported scheme {}:// (expected a local path or s3://bucket/prefix)",
                url.scheme()
            )));
        }
        let bucket =
            url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| bad("no bucket in the URL".into()))?.to_string();
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        register_s3();
        let root = s3_store(&bucket).map_err(|e| bad(e.to_string()))?;
        let prefix = object_store::path::Path::from(url.path().trim_matches('/'));
        let store: Arc<dyn ObjectStore> =
            if prefix.as_ref().is_empty() { root } else { Arc::new(PrefixStore::new(root, prefix)) };
        Ok(Location { url, store, local: None })
    }

    fn local(path: &Path) -> Result<Location, String> {
        let abs = std::path::absolute(path).map_err(|e| e.to_string())?;
        let store = LocalFileSystem::new_with_prefix(&abs).map_err(|e| e.to_string())?;
        let mut url = Url::from_directory_path(&abs).map_err(|_| "not an absolute path".to_string())?;
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Ok(Location { url, store: Arc::new(store), local: Some(abs) })
    }

    /// The URL of something inside the dataset (`api_calls/`, ...).
    pub fn join(&self, rel: &str) -> Result<Url, Error> {
        self.url.join(rel).map_err(|e| Error::storage(self, format!("{rel}: {e}")))
    }
}

/// An S3 store for `bucket`, configured from the environment. With an
/// `http://` endpoint (a local S3-compatible server) plain HTTP is allowed.
fn s3_store(bucket: &str) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").or_else(|_| std::env::var("AWS_ENDPOINT")).ok();
    if let Some(e) = endpoint {
        b = b.with_endpoint(&e).with_allow_http(e.starts_with("http://"));
    }
    if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
        b = b.with_region("us-east-1");
    }
    Ok(Arc::new(b.build()?))
}

/// Delta Lake reaches `s3://` through the same store: commits are
/// put-if-absent (`If-None-Match: *`), which S3 and compatible servers
/// honour, so no lock table is needed.
fn register_s3() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(scheme) = Url::parse("s3://") else { return };
        object_store_factories().insert(scheme.clone(), Arc::new(S3Factory));
        logstore_factories().insert(scheme, Arc::new(PutIfAbsentLogStore));
    });
}

struct S3Factory;

impl ObjectStoreFactory for S3Factory {
    fn parse_url_opts(
        &self,
        url: &Url,
        _config: &StorageConfig,
    ) -> deltalake_core::DeltaResult<(ObjectStoreRef, object_store::path::Path)> {
        let bucket = url.host_str().unwrap_or_default();
        let store = s3_store(bucket)?;
        let path = object_store::path::Path::from(url.path().trim_matches('/'));
        Ok((store, path))
    }
}

struct PutIfAbsentLogStore;

impl LogStoreFactory for PutIfAbsentLogStore {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> deltalake_core::DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(prefixed_store, root_store, location, options))
    }
}
