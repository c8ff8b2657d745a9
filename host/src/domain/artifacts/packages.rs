//! Generic packages (seed 001 §5.7): build outputs (jar, war, zip, tar.gz, rpm) kept per
//! project, optionally filed under an app group and an app, with the seed's metadata.
//!
//! - `v1/packages/<project>/<id>`: a package's record;
//! - `v1/package-ids/<id>`: the project of a package id (the seed's routes name a package
//!   by id alone);
//! - `v1/package-versions/<project>/<name>/<version>/<type>`: the id holding that version,
//!   so a version is uploaded once (a release does not change under its users).
//!
//! The bytes are blob files, shared with the registry and deduplicated by sha256; the
//! records of one upload are written in one batch that requires the version to be free
//! and the project to exist, and counts the package as a child of the project so a
//! project holding packages cannot be deleted (see [`crate::domain::dependents`]).

use bytes::Bytes;
use futures::Stream;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::blobs::{BlobError, BlobFiles, Digest};
use crate::domain::{apps, dependents, projects};
use crate::store::{Batch, Store, StoreError};

/// The kinds of file a package may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum PackageType {
    #[serde(rename = "jar")]
    Jar,
    #[serde(rename = "war")]
    War,
    #[serde(rename = "zip")]
    Zip,
    #[serde(rename = "tar.gz")]
    TarGz,
    #[serde(rename = "rpm")]
    Rpm,
}

impl PackageType {
    const ALL: [PackageType; 5] = [
        PackageType::Jar,
        PackageType::War,
        PackageType::Zip,
        PackageType::TarGz,
        PackageType::Rpm,
    ];

    /// The file extension, which is also the name the API uses.
    pub fn extension(self) -> &'static str {
        match self {
            PackageType::Jar => "jar",
            PackageType::War => "war",
            PackageType::Zip => "zip",
            PackageType::TarGz => "tar.gz",
            PackageType::Rpm => "rpm",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            PackageType::Jar | PackageType::War => "application/java-archive",
            PackageType::Zip => "application/zip",
            PackageType::TarGz => "application/gzip",
            PackageType::Rpm => "application/x-rpm",
        }
    }

    /// The name and type of a file name that ends with a type's extension
    /// (`orders.jar` → `orders`, jar).
    pub fn split_file_name(file: &str) -> Option<(&str, PackageType)> {
        let lower = file.to_ascii_lowercase();
        PackageType::ALL.into_iter().find_map(|t| {
            let suffix = format!(".{}", t.extension());
            (lower.ends_with(&suffix) && file.len() > suffix.len())
                .then(|| (&file[..file.len() - suffix.len()], t))
        })
    }

    /// `jar`, `JAR` (the seed writes both), `tgz` for `tar.gz`.
    pub fn parse(text: &str) -> Option<PackageType> {
        let lower = text.trim().to_ascii_lowercase();
        if lower == "tgz" {
            return Some(PackageType::TarGz);
        }
        PackageType::ALL
            .into_iter()
            .find(|t| t.extension() == lower)
    }
}

/// Where a package came from: seed 001's `packageSource`, as deploys name it too.
pub use crate::domain::spec::PackageSource;

/// A stored package.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    /// 32 hex digits.
    pub id: String,
    pub project: String,
    pub name: String,
    pub version: String,
    #[serde(rename = "type")]
    pub package_type: PackageType,
    pub source: PackageSource,
    /// The code branch it was built from.
    pub branch: Option<String>,
    /// An official (release) build rather than a snapshot.
    pub official: bool,
    /// The app it belongs to (its name), if any.
    pub app: Option<String>,
    /// The app group it is filed under (its id), if any; an app's package is filed under
    /// the app's group.
    pub app_group: Option<String>,
    pub size: u64,
    /// Lowercase hex of the content's sha256.
    pub sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    pub created_by: String,
}

impl Package {
    /// The name a download is saved under.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}.{}",
            self.name,
            self.version,
            self.package_type.extension()
        )
    }

    fn digest(&self) -> Result<Digest, PackageError> {
        Digest::parse(&format!("sha256:{}", self.sha256))
            .map_err(|e| PackageError::Storage(e.to_string()))
    }
}

/// What an upload says about the package; the bytes come separately.
#[derive(Debug, Clone, Default)]
pub struct NewPackage {
    pub name: String,
    pub version: String,
    pub package_type: Option<String>,
    pub source: Option<String>,
    pub branch: Option<String>,
    pub official: bool,
    pub app: Option<String>,
    pub app_group: Option<String>,
    /// The content's sha256 as the client computed it (hex, or `sha256:<hex>`), checked
    /// against what arrives.
    pub sha256: Option<String>,
}

/// Which packages a listing shows.
#[derive(Debug, Clone, Default)]
pub struct PackageFilter {
    pub app: Option<String>,
    pub app_group: Option<String>,
    /// Part of the name, case-insensitive.
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("project `{0}` does not exist")]
    ProjectNotFound(String),
    #[error("package `{0}` does not exist")]
    NotFound(String),
    #[error("{name} {version} ({package_type}) is already uploaded as package `{id}`")]
    VersionExists {
        name: String,
        version: String,
        package_type: &'static str,
        id: String,
    },
    #[error("sha256: the upload's content is {actual}, not {expected}")]
    DigestMismatch { expected: String, actual: String },
    #[error("the package would exceed {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    #[error("package storage: {0}")]
    Storage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &str, message: impl Into<String>) -> PackageError {
    PackageError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl From<BlobError> for PackageError {
    fn from(error: BlobError) -> Self {
        match error {
            BlobError::DigestMismatch { expected, actual } => PackageError::DigestMismatch {
                expected: expected.hex().to_owned(),
                actual: actual.hex().to_owned(),
            },
            BlobError::TooLarge { limit } => PackageError::TooLarge { limit },
            BlobError::Body(message) => PackageError::Interrupted(message),
            other => PackageError::Storage(other.to_string()),
        }
    }
}

fn key(project: &str, id: &str) -> String {
    Store::key(&["packages", project, id])
}

fn id_key(id: &str) -> String {
    Store::key(&["package-ids", id])
}

fn version_key(project: &str, name: &str, version: &str, package_type: PackageType) -> String {
    Store::key(&[
        "package-versions",
        project,
        name,
        version,
        package_type.extension(),
    ])
}

/// The key prefix of a project's packages (a kind of child of the project).
pub(crate) fn project_prefix(project: &str) -> String {
    format!("{}/", Store::key(&["packages", project]))
}

/// Names and versions: a letter or digit first, then letters, digits, `.`, `_`, `-`
/// (versions also `+`); no path separators, since they become file names on download.
fn check_token(field: &str, text: &str, max: usize, extra: &[char]) -> Result<(), PackageError> {
    let mut chars = text.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') || extra.contains(&c));
    if text.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if text.len() > max || !first_ok || !rest_ok {
        return Err(invalid(
            field,
            format!(
                "`{text}` must be at most {max} characters, a letter or digit first, then letters, digits, `.`, `_`, `-`{}",
                extra.iter().map(|c| format!(", `{c}`")).collect::<String>()
            ),
        ));
    }
    Ok(())
}

/// A checked upload: what the record will hold besides the bytes.
#[derive(Debug, Clone)]
pub struct CheckedUpload {
    project: String,
    name: String,
    version: String,
    package_type: PackageType,
    source: PackageSource,
    branch: Option<String>,
    official: bool,
    app: Option<String>,
    app_group: Option<String>,
    expected: Option<Digest>,
}

/// Packages over the host store and the blob files.
#[derive(Clone)]
pub struct Packages {
    store: Store,
    files: BlobFiles,
}

impl Packages {
    pub fn new(store: Store, files: BlobFiles) -> Packages {
        Packages { store, files }
    }

    /// Checks an upload's metadata before any byte is read, so a refused upload costs
    /// nothing.
    pub fn check(&self, project: &str, new: NewPackage) -> Result<CheckedUpload, PackageError> {
        if self
            .store
            .get_raw(&Store::key(&["projects", project]))?
            .is_none()
        {
            return Err(PackageError::ProjectNotFound(project.to_owned()));
        }
        check_token("name", &new.name, 128, &[])?;
        check_token("version", &new.version, 64, &['+'])?;
        let type_text = new
            .package_type
            .as_deref()
            .ok_or_else(|| invalid("type", "is required: one of jar, war, zip, tar.gz, rpm"))?;
        let package_type = PackageType::parse(type_text).ok_or_else(|| {
            invalid(
                "type",
                format!("`{type_text}` is not one of jar, war, zip, tar.gz, rpm"),
            )
        })?;
        let source = match new.source.as_deref() {
            None => PackageSource::UserUpload,
            Some(text) => PackageSource::parse(text).ok_or_else(|| {
                invalid(
                    "source",
                    format!(
                        "`{text}` is not one of USER_UPLOAD, OFFICIAL_DEMO, CODE_GENERATE, EXISTED_PACKAGE"
                    ),
                )
            })?,
        };
        if let Some(branch) = &new.branch {
            check_token("branch", branch, 128, &['/'])?;
        }
        let mut app_group = new.app_group.clone();
        if let Some(app) = &new.app {
            let found = apps::get(&self.store, project, app)?.ok_or_else(|| {
                invalid("app", format!("app `{app}` does not exist in this project"))
            })?;
            match (&app_group, &found.group_id) {
                (Some(given), Some(own)) if given != own => {
                    return Err(invalid(
                        "appGroup",
                        format!("app `{app}` is in app group `{own}`, not `{given}`"),
                    ));
                }
                (None, own) => app_group = own.clone(),
                _ => {}
            }
        }
        if let Some(group) = &new.app_group
            && self
                .store
                .get_raw(&Store::key(&["app-groups", project, group]))?
                .is_none()
        {
            return Err(invalid(
                "appGroup",
                format!("app group `{group}` does not exist in this project"),
            ));
        }
        let expected = match &new.sha256 {
            None => None,
            Some(text) => {
                let full = if text.starts_with("sha256:") {
                    text.clone()
                } else {
                    format!("sha256:{text}")
                };
                Some(Digest::parse(&full).map_err(|_| {
                    invalid("sha256", format!("`{text}` is not 64 lowercase hex digits"))
                })?)
            }
        };
        let free = self.store.get_json::<String>(&version_key(
            project,
            &new.name,
            &new.version,
            package_type,
        ))?;
        if let Some(id) = free {
            return Err(PackageError::VersionExists {
                name: new.name,
                version: new.version,
                package_type: package_type.extension(),
                id,
            });
        }
        Ok(CheckedUpload {
            project: project.to_owned(),
            name: new.name,
            version: new.version,
            package_type,
            source,
            branch: new.branch,
            official: new.official,
            app: new.app,
            app_group,
            expected,
        })
    }

    /// Streams the content into blob storage and records the package.
    pub async fn upload<S, E>(
        &self,
        upload: CheckedUpload,
        body: S,
        user: &str,
    ) -> Result<Package, PackageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let (digest, size) = self
            .files
            .store_stream(body, upload.expected.as_ref())
            .await?;
        let package = Package {
            id: uuid::Uuid::new_v4().simple().to_string(),
            project: upload.project,
            name: upload.name,
            version: upload.version,
            package_type: upload.package_type,
            source: upload.source,
            branch: upload.branch,
            official: upload.official,
            app: upload.app,
            app_group: upload.app_group,
            size,
            sha256: digest.hex().to_owned(),
            created_at: OffsetDateTime::now_utc(),
            created_by: user.to_owned(),
        };
        let version = version_key(
            &package.project,
            &package.name,
            &package.version,
            package.package_type,
        );
        loop {
            let owned = projects::dependents(&self.store, &package.project)?;
            let batch = Batch::new()
                .absent(&version)
                .put_json(&key(&package.project, &package.id), &package)?
                .put_json(&id_key(&package.id), &package.project)?
                .put_json(&version, &package.id)?;
            let batch = owned
                .add("packages")
                .write(projects::exists(batch, &package.project))?;
            match self.store.apply(&batch)? {
                Ok(()) => break,
                Err(conflict) if dependents::is_dependents_key(&conflict.key) => continue,
                Err(conflict) if projects::is_record(&package.project, &conflict.key) => {
                    return Err(PackageError::ProjectNotFound(package.project));
                }
                Err(_) => {
                    let id = self.store.get_json::<String>(&version)?.unwrap_or_default();
                    return Err(PackageError::VersionExists {
                        name: package.name,
                        version: package.version,
                        package_type: package.package_type.extension(),
                        id,
                    });
                }
            }
        }
        self.store.commit().await?;
        Ok(package)
    }

    /// A package of `project`.
    pub fn get(&self, project: &str, id: &str) -> Result<Package, PackageError> {
        self.store
            .get_json(&key(project, id))?
            .ok_or_else(|| PackageError::NotFound(id.to_owned()))
    }

    /// A package by id alone.
    pub fn find(&self, id: &str) -> Result<Package, PackageError> {
        let project: String = self
            .store
            .get_json(&id_key(id))?
            .ok_or_else(|| PackageError::NotFound(id.to_owned()))?;
        self.get(&project, id)
    }

    /// The packages of `project` that match `filter`, newest first.
    pub fn list(
        &self,
        project: &str,
        filter: &PackageFilter,
    ) -> Result<Vec<Package>, PackageError> {
        if self
            .store
            .get_raw(&Store::key(&["projects", project]))?
            .is_none()
        {
            return Err(PackageError::ProjectNotFound(project.to_owned()));
        }
        let needle = filter.name.as_deref().map(str::to_lowercase);
        let mut found: Vec<Package> = self
            .store
            .list_json::<Package>(&project_prefix(project))?
            .into_iter()
            .filter(|p| {
                filter
                    .app
                    .as_ref()
                    .is_none_or(|a| p.app.as_ref() == Some(a))
            })
            .filter(|p| {
                filter
                    .app_group
                    .as_ref()
                    .is_none_or(|g| p.app_group.as_ref() == Some(g))
            })
            .filter(|p| {
                needle
                    .as_deref()
                    .is_none_or(|n| p.name.to_lowercase().contains(n))
            })
            .collect();
        found.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(found)
    }

    /// The content of a package as a stream of bounded chunks.
    pub async fn content(
        &self,
        package: &Package,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, PackageError> {
        self.files
            .read(&package.digest()?, 0, package.size)
            .await?
            .ok_or_else(|| {
                PackageError::Storage(format!(
                    "the content of package `{}` is missing from blob storage",
                    package.id
                ))
            })
    }

    /// Deletes a package's records. Its blob file stays: identical content may be shared
    /// with other packages and images, and there is no garbage collection yet.
    pub async fn delete(&self, project: &str, id: &str) -> Result<Package, PackageError> {
        let record = key(project, id);
        loop {
            let read = self
                .store
                .get_raw(&record)?
                .ok_or_else(|| PackageError::NotFound(id.to_owned()))?;
            let package: Package =
                serde_json::from_slice(&read).map_err(|e| StoreError::Corrupt {
                    key: record.clone(),
                    reason: e.to_string(),
                })?;
            let owned = projects::dependents(&self.store, project)?;
            let batch = Batch::new()
                .equals(&record, read)
                .delete(&record)
                .delete(&id_key(id))
                .delete(&version_key(
                    project,
                    &package.name,
                    &package.version,
                    package.package_type,
                ));
            let batch = owned.remove("packages").write(batch)?;
            if self.store.apply(&batch)?.is_ok() {
                self.store.commit().await?;
                return Ok(package);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_parse_as_the_seed_writes_them() {
        assert_eq!(PackageType::parse("JAR"), Some(PackageType::Jar));
        assert_eq!(PackageType::parse("tar.gz"), Some(PackageType::TarGz));
        assert_eq!(PackageType::parse("tgz"), Some(PackageType::TarGz));
        assert_eq!(PackageType::parse("exe"), None);
        assert_eq!(
            PackageSource::parse("user_upload"),
            Some(PackageSource::UserUpload)
        );
        assert_eq!(PackageSource::parse("ELSEWHERE"), None);
    }

    #[test]
    fn names_cannot_become_paths() {
        assert!(check_token("name", "shop-api", 128, &[]).is_ok());
        assert!(check_token("version", "1.0.0+build.7", 64, &['+']).is_ok());
        for bad in ["", "../etc", "a/b", ".hidden", "a b", "é"] {
            assert!(check_token("name", bad, 128, &[]).is_err(), "{bad}");
        }
    }
}
