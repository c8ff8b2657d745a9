//! The artifact store: OCI images served under `/v2/` and generic packages.
//!
//! - `blobs`: content-addressed blob files and resumable upload files on disk; bytes stream
//!   through them and never pass through WebAssembly.
//! - `names`: repository names (`<project>/<name>`) and manifest references.
//! - `manifests`: reading a pushed manifest for the blobs and manifests it needs.
//! - `registry`: what the store keeps about repositories — uploads in progress, blobs
//!   linked into a repository, manifests, tags, referrers — and the operations of the
//!   distribution spec on them.
//! - `packages`: generic packages (jar, war, zip, tar.gz, rpm) and their records.
//! - `policy`: the artifact-policy plugin as pushes and deletes consult it.
//! - `retention`: retention runs (dry or real) that the policy plugin decides.

pub mod blobs;
pub mod manifests;
pub mod names;
pub mod packages;
pub mod policy;
pub mod registry;
pub mod retention;

pub use blobs::{BlobError, BlobFiles, Digest, UploadId};
pub use names::{Reference, Repository};
pub use registry::Registry;

use crate::store::StoreError;

/// What the registry refuses, in the distribution spec's terms (its error codes are
/// [`RegistryError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    NameInvalid(String),
    #[error("repository `{0}` is not known")]
    NameUnknown(String),
    #[error("{0}")]
    DigestInvalid(String),
    #[error("{0}")]
    TagInvalid(String),
    #[error("blob `{0}` is not in this repository")]
    BlobUnknown(String),
    #[error("upload `{0}` is not in progress in this repository")]
    UploadUnknown(String),
    #[error("{0}")]
    UploadInvalid(String),
    /// A chunk that does not start where the upload ends (416); `size` is where it ends.
    #[error("{message}")]
    RangeInvalid { message: String, size: u64 },
    #[error("{0}")]
    SizeInvalid(String),
    #[error("manifest `{0}` is not in this repository")]
    ManifestUnknown(String),
    #[error("{0}")]
    ManifestInvalid(String),
    #[error("the manifest references `{0}`, which is not in this repository")]
    ManifestBlobUnknown(String),
    #[error("{0}")]
    Unsupported(String),
    /// The artifact policy refused (403 `DENIED`).
    #[error("{0}")]
    Denied(String),
    /// The artifact policy could not answer, so nothing was changed (503).
    #[error("{0}")]
    PolicyUnavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("blob storage: {0}")]
    Io(String),
}

impl RegistryError {
    /// The distribution spec's error code.
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::NameInvalid(_) => "NAME_INVALID",
            RegistryError::NameUnknown(_) => "NAME_UNKNOWN",
            RegistryError::DigestInvalid(_) => "DIGEST_INVALID",
            RegistryError::TagInvalid(_) => "TAG_INVALID",
            RegistryError::BlobUnknown(_) => "BLOB_UNKNOWN",
            RegistryError::UploadUnknown(_) => "BLOB_UPLOAD_UNKNOWN",
            RegistryError::UploadInvalid(_) | RegistryError::RangeInvalid { .. } => {
                "BLOB_UPLOAD_INVALID"
            }
            RegistryError::SizeInvalid(_) => "SIZE_INVALID",
            RegistryError::ManifestUnknown(_) => "MANIFEST_UNKNOWN",
            RegistryError::ManifestInvalid(_) => "MANIFEST_INVALID",
            RegistryError::ManifestBlobUnknown(_) => "MANIFEST_BLOB_UNKNOWN",
            RegistryError::Unsupported(_) => "UNSUPPORTED",
            RegistryError::Denied(_) => "DENIED",
            RegistryError::PolicyUnavailable(_) => "UNAVAILABLE",
            RegistryError::Store(_) | RegistryError::Io(_) => "UNKNOWN",
        }
    }
}

impl From<BlobError> for RegistryError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::DigestInvalid(why) => RegistryError::DigestInvalid(why),
            BlobError::DigestMismatch { .. } => RegistryError::DigestInvalid(e.to_string()),
            BlobError::UploadUnknown(id) => RegistryError::UploadUnknown(id),
            BlobError::OutOfOrder { size, .. } => RegistryError::RangeInvalid {
                message: e.to_string(),
                size,
            },
            BlobError::TooLarge { .. } => RegistryError::SizeInvalid(e.to_string()),
            BlobError::Body(why) => RegistryError::UploadInvalid(why),
            BlobError::Io(io) => RegistryError::Io(io.to_string()),
        }
    }
}
