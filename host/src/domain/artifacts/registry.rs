//! The distribution spec's operations over blob files and the store's records:
//!
//! - `v1/registry/repos/<repo>`: a repository, made by its first blob or manifest;
//! - `v1/registry/uploads/<uuid>`: an upload in progress and the repository it is for;
//! - `v1/registry/links/<repo>/<digest>`: a blob that is part of a repository (pushed or
//!   mounted there); a blob file may be linked into many repositories and is stored once;
//! - `v1/registry/manifests/<repo>/<digest>`: a manifest, what it references, its subject;
//! - `v1/registry/tags/<repo>/<tag>`: the digest a tag points to;
//! - `v1/registry/referrers/<repo>/<subject>/<digest>`: manifests whose subject it is.
//!
//! `<repo>` is [`Repository::key_segment`]. The records of one manifest push are written
//! in one batch, after every blob it references was found linked, so a refused manifest
//! leaves nothing behind.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::RegistryError;
use super::blobs::{BlobFiles, Digest, UploadId};
use super::manifests::{self, MAX_MANIFEST_BYTES};
use super::names::{Reference, Repository};
use super::policy::{Gate, PushCandidate};
use crate::store::{Batch, Store, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RepositoryRecord {
    name: String,
    project: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UploadRecord {
    repository: String,
    started_by: String,
    #[serde(with = "time::serde::rfc3339")]
    started_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlobLink {
    size: u64,
    #[serde(with = "time::serde::rfc3339")]
    linked_at: OffsetDateTime,
}

/// A stored manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestRecord {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub blobs: Vec<String>,
    pub manifests: Vec<String>,
    pub subject: Option<String>,
    pub artifact_type: Option<String>,
    pub pushed_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub pushed_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagRecord {
    digest: String,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

/// A tag and the manifest it points to, as the registry views list images.
#[derive(Debug, Clone)]
pub struct TaggedImage {
    pub repository: String,
    pub tag: String,
    pub manifest: ManifestRecord,
    /// The manifest and the blobs it lists, in bytes.
    pub size: u64,
    /// When the tag last moved.
    pub tagged_at: OffsetDateTime,
}

/// A referrer as the referrers API lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// An upload's state, as the `Location` and `Range` headers tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadState {
    pub id: UploadId,
    /// Bytes received so far.
    pub size: u64,
}

/// A manifest read back: its record and bytes.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub record: ManifestRecord,
    pub bytes: Bytes,
}

fn key(segments: &[&str]) -> String {
    Store::key(
        &["registry"]
            .iter()
            .chain(segments)
            .copied()
            .collect::<Vec<_>>(),
    )
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Repositories, uploads, blobs, manifests and tags.
#[derive(Clone)]
pub struct Registry {
    store: Store,
    files: BlobFiles,
}

impl Registry {
    pub fn new(store: Store, files: BlobFiles) -> Registry {
        Registry { store, files }
    }

    /// The registry of a data directory: blob files under `<data_dir>/blobs`.
    pub fn open(
        store: Store,
        data_dir: &std::path::Path,
        max_blob_bytes: u64,
    ) -> Result<Registry, RegistryError> {
        let files = BlobFiles::open(&data_dir.join("blobs"), max_blob_bytes)?;
        Ok(Registry::new(store, files))
    }

    /// The blob files, which generic packages share.
    pub fn blob_files(&self) -> &BlobFiles {
        &self.files
    }

    fn repository_batch(&self, repo: &Repository, batch: Batch) -> Result<Batch, RegistryError> {
        let at = key(&["repos", &repo.key_segment()]);
        if self.store.get_raw(&at)?.is_some() {
            return Ok(batch);
        }
        Ok(batch.put_json(
            &at,
            &RepositoryRecord {
                name: repo.to_string(),
                project: repo.project().to_owned(),
                created_at: now(),
            },
        )?)
    }

    fn apply(&self, batch: Batch) -> Result<(), RegistryError> {
        // The batch carries no checks, so it cannot conflict.
        self.store
            .apply(&batch)?
            .map_err(|c| StoreError::Backend(format!("unexpected conflict on {c:?}")))?;
        Ok(())
    }

    fn upload_record(
        &self,
        repo: &Repository,
        upload: &str,
    ) -> Result<(UploadId, UploadRecord), RegistryError> {
        let unknown = || RegistryError::UploadUnknown(upload.to_owned());
        let id = UploadId::parse(upload).ok_or_else(unknown)?;
        let record: UploadRecord = self
            .store
            .get_json(&key(&["uploads", &id.to_string()]))?
            .ok_or_else(unknown)?;
        if record.repository != repo.as_str() {
            return Err(unknown());
        }
        Ok((id, record))
    }

    /// Starts an upload into `repo`.
    pub async fn start_upload(
        &self,
        repo: &Repository,
        user: &str,
    ) -> Result<UploadState, RegistryError> {
        let id = self.files.start().await?;
        self.store.put_json(
            &key(&["uploads", &id.to_string()]),
            &UploadRecord {
                repository: repo.to_string(),
                started_by: user.to_owned(),
                started_at: now(),
            },
        )?;
        Ok(UploadState { id, size: 0 })
    }

    pub async fn upload_status(
        &self,
        repo: &Repository,
        upload: &str,
    ) -> Result<UploadState, RegistryError> {
        let (id, _) = self.upload_record(repo, upload)?;
        let size = self.files.uploaded(id).await?;
        Ok(UploadState { id, size })
    }

    /// Appends a chunk; `start` is where its `Content-Range` says it begins.
    pub async fn append<S, E>(
        &self,
        repo: &Repository,
        upload: &str,
        start: Option<u64>,
        body: S,
    ) -> Result<UploadState, RegistryError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let (id, _) = self.upload_record(repo, upload)?;
        let size = self.files.append(id, start, body).await?;
        Ok(UploadState { id, size })
    }

    /// Appends the last chunk (if any), checks the digest and links the blob into `repo`.
    pub async fn finish_upload<S, E>(
        &self,
        repo: &Repository,
        upload: &str,
        digest: &Digest,
        body: S,
    ) -> Result<u64, RegistryError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let (id, _) = self.upload_record(repo, upload)?;
        self.files.append(id, None, body).await?;
        let committed = self.files.commit(id, digest).await;
        // Committed or refused, the upload is over.
        self.store.delete(&key(&["uploads", &id.to_string()]))?;
        let size = committed?;
        self.link(repo, digest, size)?;
        Ok(size)
    }

    fn link(&self, repo: &Repository, digest: &Digest, size: u64) -> Result<(), RegistryError> {
        let batch = Batch::new().put_json(
            &key(&["links", &repo.key_segment(), digest.as_str()]),
            &BlobLink {
                size,
                linked_at: now(),
            },
        )?;
        let batch = self.repository_batch(repo, batch)?;
        self.apply(batch)
    }

    pub async fn cancel_upload(
        &self,
        repo: &Repository,
        upload: &str,
    ) -> Result<(), RegistryError> {
        let (id, _) = self.upload_record(repo, upload)?;
        self.store.delete(&key(&["uploads", &id.to_string()]))?;
        match self.files.cancel(id).await {
            Ok(()) | Err(super::BlobError::UploadUnknown(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The size of a blob of `repo`, if it is linked there and stored.
    pub async fn blob_size(
        &self,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let link: Option<BlobLink> =
            self.store
                .get_json(&key(&["links", &repo.key_segment(), digest.as_str()]))?;
        if link.is_none() {
            return Ok(None);
        }
        Ok(self.files.size(digest).await?)
    }

    /// The bytes `start..start+len` of a blob of `repo`.
    pub async fn read_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        start: u64,
        len: u64,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, RegistryError> {
        if self.blob_size(repo, digest).await?.is_none() {
            return Err(RegistryError::BlobUnknown(digest.to_string()));
        }
        self.files
            .read(digest, start, len)
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.to_string()))
    }

    /// Links a blob of `from` into `repo` (a cross-repository mount); its size, or `None`
    /// when `from` has no such blob (the client then uploads it).
    pub async fn mount(
        &self,
        repo: &Repository,
        from: &Repository,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let Some(size) = self.blob_size(from, digest).await? else {
            return Ok(None);
        };
        self.link(repo, digest, size)?;
        Ok(Some(size))
    }

    /// Unlinks a blob from `repo`; its file goes when no repository links it any more.
    pub fn delete_blob(&self, repo: &Repository, digest: &Digest) -> Result<(), RegistryError> {
        if !self
            .store
            .delete(&key(&["links", &repo.key_segment(), digest.as_str()]))?
        {
            return Err(RegistryError::BlobUnknown(digest.to_string()));
        }
        Ok(())
    }

    /// Stores a manifest under `reference` (a tag, or the digest it must have); its digest.
    /// A tag moves only if `gate` allows it, and only if nobody moved it since `gate` was
    /// asked (else it is asked again about the new state).
    pub async fn put_manifest<G: Gate>(
        &self,
        repo: &Repository,
        reference: &Reference,
        bytes: Bytes,
        content_type: Option<&str>,
        user: &str,
        gate: &G,
    ) -> Result<(Digest, Option<String>), RegistryError> {
        let parsed = manifests::parse(&bytes, content_type)?;
        let digest = Digest::of(&bytes);
        if let Reference::Digest(named) = reference
            && named != &digest
        {
            return Err(RegistryError::DigestInvalid(format!(
                "the manifest's digest is {digest}, not {named}"
            )));
        }
        let mut size = bytes.len() as u64;
        for blob in &parsed.blobs {
            match self.blob_size(repo, blob).await? {
                Some(blob_size) => size += blob_size,
                None => return Err(RegistryError::ManifestBlobUnknown(blob.to_string())),
            }
        }
        for manifest in &parsed.manifests {
            match self.manifest_record(repo, manifest)? {
                Some(child) => size += self.footprint(repo, &child, false)?,
                None => return Err(RegistryError::ManifestBlobUnknown(manifest.to_string())),
            }
        }
        let repo_key = repo.key_segment();
        let record = ManifestRecord {
            digest: digest.to_string(),
            media_type: parsed.media_type.clone(),
            size: bytes.len() as u64,
            blobs: parsed.blobs.iter().map(Digest::to_string).collect(),
            manifests: parsed.manifests.iter().map(Digest::to_string).collect(),
            subject: parsed.subject.as_ref().map(Digest::to_string),
            artifact_type: parsed.artifact_type.clone(),
            pushed_by: user.to_owned(),
            pushed_at: now(),
        };
        let mut written = false;
        loop {
            let mut batch =
                Batch::new().put_json(&key(&["manifests", &repo_key, digest.as_str()]), &record)?;
            if let Reference::Tag(tag) = reference {
                let tag_key = key(&["tags", &repo_key, tag]);
                let read = self.store.get_raw(&tag_key)?;
                let existing = self.tagged(repo, tag, read.as_deref())?;
                let candidate = PushCandidate {
                    repository: repo.to_string(),
                    tag: tag.clone(),
                    digest: digest.to_string(),
                    media_type: record.media_type.clone(),
                    size,
                    existing,
                };
                gate.allow_push(&candidate).await?;
                batch = batch.unchanged(&tag_key, read).put_json(
                    &tag_key,
                    &TagRecord {
                        digest: digest.to_string(),
                        updated_at: now(),
                    },
                )?;
            }
            if !written {
                self.files.put(&bytes).await?;
                written = true;
            }
            if let Some(subject) = &parsed.subject {
                batch = batch.put_json(
                    &key(&["referrers", &repo_key, subject.as_str(), digest.as_str()]),
                    &Referrer {
                        media_type: record.media_type.clone(),
                        digest: digest.to_string(),
                        size: record.size,
                        artifact_type: record.artifact_type.clone(),
                        annotations: parsed.annotations.clone(),
                    },
                )?;
            }
            let batch = self.repository_batch(repo, batch)?;
            if self.store.apply(&batch)?.is_ok() {
                break;
            }
        }
        Ok((digest, record.subject))
    }

    /// The image a tag record (as read) points to, if the tag exists.
    fn tagged(
        &self,
        repo: &Repository,
        tag: &str,
        read: Option<&[u8]>,
    ) -> Result<Option<TaggedImage>, RegistryError> {
        let Some(bytes) = read else {
            return Ok(None);
        };
        let pointed: TagRecord =
            serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
                key: key(&["tags", &repo.key_segment(), tag]),
                reason: e.to_string(),
            })?;
        self.image(repo, tag, pointed)
    }

    /// The bytes a manifest stands for: itself, its blobs and, for an index, its child
    /// manifests' (one level: an index of indexes is not followed further). A blob shared
    /// by two images counts in each.
    fn footprint(
        &self,
        repo: &Repository,
        manifest: &ManifestRecord,
        with_children: bool,
    ) -> Result<u64, RegistryError> {
        let mut size = manifest.size;
        for blob in &manifest.blobs {
            let link: Option<BlobLink> =
                self.store
                    .get_json(&key(&["links", &repo.key_segment(), blob]))?;
            size += link.map_or(0, |l| l.size);
        }
        if with_children {
            for child in &manifest.manifests {
                if let Some(record) = self.manifest_record(repo, &Digest::parse(child)?)? {
                    size += self.footprint(repo, &record, false)?;
                }
            }
        }
        Ok(size)
    }

    /// A tag with its manifest and size; `None` when the manifest is gone.
    fn image(
        &self,
        repo: &Repository,
        tag: &str,
        pointed: TagRecord,
    ) -> Result<Option<TaggedImage>, RegistryError> {
        let digest = Digest::parse(&pointed.digest)?;
        let Some(manifest) = self.manifest_record(repo, &digest)? else {
            return Ok(None);
        };
        let size = self.footprint(repo, &manifest, true)?;
        Ok(Some(TaggedImage {
            repository: repo.to_string(),
            tag: tag.to_owned(),
            manifest,
            size,
            tagged_at: pointed.updated_at,
        }))
    }

    fn manifest_record(
        &self,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<Option<ManifestRecord>, RegistryError> {
        Ok(self
            .store
            .get_json(&key(&["manifests", &repo.key_segment(), digest.as_str()]))?)
    }

    /// The digest a reference names in `repo`.
    fn resolve(&self, repo: &Repository, reference: &Reference) -> Result<Digest, RegistryError> {
        match reference {
            Reference::Digest(digest) => Ok(digest.clone()),
            Reference::Tag(tag) => {
                let record: TagRecord = self
                    .store
                    .get_json(&key(&["tags", &repo.key_segment(), tag]))?
                    .ok_or_else(|| RegistryError::ManifestUnknown(tag.clone()))?;
                Digest::parse(&record.digest).map_err(|e| {
                    RegistryError::Store(StoreError::Corrupt {
                        key: key(&["tags", &repo.key_segment(), tag]),
                        reason: e.to_string(),
                    })
                })
            }
        }
    }

    /// The record of a manifest (for HEAD).
    pub fn manifest_info(
        &self,
        repo: &Repository,
        reference: &Reference,
    ) -> Result<ManifestRecord, RegistryError> {
        let digest = self.resolve(repo, reference)?;
        self.manifest_record(repo, &digest)?
            .ok_or_else(|| RegistryError::ManifestUnknown(digest.to_string()))
    }

    /// A manifest with its bytes.
    pub async fn manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
    ) -> Result<Manifest, RegistryError> {
        let record = self.manifest_info(repo, reference)?;
        let digest = Digest::parse(&record.digest)?;
        let size = record.size.min(MAX_MANIFEST_BYTES as u64);
        let stream = self
            .files
            .read(&digest, 0, size)
            .await?
            .ok_or_else(|| RegistryError::ManifestUnknown(digest.to_string()))?;
        let mut stream = std::pin::pin!(stream);
        let mut bytes = Vec::with_capacity(size as usize);
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| RegistryError::Io(e.to_string()))?);
        }
        Ok(Manifest {
            record,
            bytes: Bytes::from(bytes),
        })
    }

    /// Deletes a manifest by digest (with every tag pointing to it) or one tag, each tag
    /// only if `gate` allows it and nobody moved it since.
    pub async fn delete_manifest<G: Gate>(
        &self,
        repo: &Repository,
        reference: &Reference,
        gate: &G,
    ) -> Result<(), RegistryError> {
        let repo_key = repo.key_segment();
        loop {
            let mut batch = Batch::new();
            match reference {
                Reference::Tag(tag) => {
                    let tag_key = key(&["tags", &repo_key, tag]);
                    let read = self.store.get_raw(&tag_key)?;
                    if read.is_none() {
                        return Err(RegistryError::ManifestUnknown(tag.clone()));
                    }
                    if let Some(image) = self.tagged(repo, tag, read.as_deref())? {
                        gate.allow_delete(&image).await?;
                    }
                    batch = batch.unchanged(&tag_key, read).delete(&tag_key);
                }
                Reference::Digest(digest) => {
                    let record = self
                        .manifest_record(repo, digest)?
                        .ok_or_else(|| RegistryError::ManifestUnknown(digest.to_string()))?;
                    batch = batch.delete(&key(&["manifests", &repo_key, digest.as_str()]));
                    for (tag, pointed) in self.tag_records(repo)? {
                        if pointed.digest != record.digest {
                            continue;
                        }
                        let tag_key = key(&["tags", &repo_key, &tag]);
                        let read = self.store.get_raw(&tag_key)?;
                        // A tag moved since the listing is not this manifest's any more.
                        let Some(image) = self
                            .tagged(repo, &tag, read.as_deref())?
                            .filter(|image| image.manifest.digest == record.digest)
                        else {
                            continue;
                        };
                        gate.allow_delete(&image).await?;
                        batch = batch.unchanged(&tag_key, read).delete(&tag_key);
                    }
                    if let Some(subject) = &record.subject {
                        batch =
                            batch.delete(&key(&["referrers", &repo_key, subject, digest.as_str()]));
                    }
                }
            }
            if self.store.apply(&batch)?.is_ok() {
                return Ok(());
            }
        }
    }

    /// Deletes the tag of `image` if it is still as `image` saw it (same digest, not pushed
    /// again since); whether it did.
    pub fn untag_if(&self, repo: &Repository, image: &TaggedImage) -> Result<bool, RegistryError> {
        let tag_key = key(&["tags", &repo.key_segment(), &image.tag]);
        let Some(read) = self.store.get_raw(&tag_key)? else {
            return Ok(false);
        };
        let pointed: TagRecord =
            serde_json::from_slice(&read).map_err(|e| StoreError::Corrupt {
                key: tag_key.clone(),
                reason: e.to_string(),
            })?;
        if pointed.digest != image.manifest.digest || pointed.updated_at != image.tagged_at {
            return Ok(false);
        }
        let batch = Batch::new().equals(&tag_key, read).delete(&tag_key);
        Ok(self.store.apply(&batch)?.is_ok())
    }

    fn tag_records(&self, repo: &Repository) -> Result<Vec<(String, TagRecord)>, RegistryError> {
        let prefix = format!("{}/", key(&["tags", &repo.key_segment()]));
        let rows = self
            .store
            .backend()
            .scan(prefix.as_bytes(), None, usize::MAX)?;
        rows.into_iter()
            .map(|(k, v)| {
                let tag = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                let record = serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    reason: e.to_string(),
                })?;
                Ok((tag, record))
            })
            .collect()
    }

    /// Whether the repository exists (has had a blob or manifest pushed).
    pub fn exists(&self, repo: &Repository) -> Result<bool, RegistryError> {
        Ok(self
            .store
            .get_raw(&key(&["repos", &repo.key_segment()]))?
            .is_some())
    }

    /// Tags of `repo` in lexical order after `last`, at most `n`; and whether more follow.
    pub fn tags(
        &self,
        repo: &Repository,
        n: usize,
        last: Option<&str>,
    ) -> Result<(Vec<String>, bool), RegistryError> {
        if !self.exists(repo)? {
            return Err(RegistryError::NameUnknown(repo.to_string()));
        }
        let prefix = format!("{}/", key(&["tags", &repo.key_segment()]));
        self.page(&prefix, last, n)
    }

    /// Every tag of the repositories of `project`, by repository and tag.
    pub fn tagged_images(&self, project: &str) -> Result<Vec<TaggedImage>, RegistryError> {
        let mut images = Vec::new();
        for repo in self.project_repositories(project)? {
            images.extend(self.repository_images(&repo)?);
        }
        Ok(images)
    }

    /// The repositories of `project`.
    pub fn project_repositories(&self, project: &str) -> Result<Vec<Repository>, RegistryError> {
        let prefix = format!("{}/{project}+", key(&["repos"]));
        let records: Vec<RepositoryRecord> = self.store.list_json(&prefix)?;
        records.iter().map(|r| Repository::parse(&r.name)).collect()
    }

    /// The tags of `repo` with their manifests, by tag.
    pub fn repository_images(&self, repo: &Repository) -> Result<Vec<TaggedImage>, RegistryError> {
        let mut images = Vec::new();
        for (tag, pointed) in self.tag_records(repo)? {
            if let Some(image) = self.image(repo, &tag, pointed)? {
                images.push(image);
            }
        }
        Ok(images)
    }

    /// Manifests of `repo` whose subject is `digest`, of `artifact_type` when given.
    pub fn referrers(
        &self,
        repo: &Repository,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, RegistryError> {
        let prefix = format!(
            "{}/",
            key(&["referrers", &repo.key_segment(), digest.as_str()])
        );
        let all: Vec<Referrer> = self.store.list_json(&prefix)?;
        Ok(all
            .into_iter()
            .filter(|r| artifact_type.is_none_or(|t| r.artifact_type.as_deref() == Some(t)))
            .collect())
    }

    /// Repository names in lexical order after `last`, at most `n`; and whether more follow.
    pub fn catalog(
        &self,
        n: usize,
        last: Option<&str>,
    ) -> Result<(Vec<String>, bool), RegistryError> {
        let prefix = format!("{}/", key(&["repos"]));
        let after = last.map(|l| l.replace('/', "+"));
        let (names, more) = self.page(&prefix, after.as_deref(), n)?;
        Ok((names.iter().map(|n| n.replace('+', "/")).collect(), more))
    }

    /// Up to `n` key suffixes under `prefix` after `after`, and whether more follow.
    fn page(
        &self,
        prefix: &str,
        after: Option<&str>,
        n: usize,
    ) -> Result<(Vec<String>, bool), RegistryError> {
        let after = after.map(|a| format!("{prefix}{a}"));
        let rows = self.store.backend().scan(
            prefix.as_bytes(),
            after.as_deref().map(str::as_bytes),
            n.saturating_add(1),
        )?;
        let mut suffixes: Vec<String> = rows
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
            .collect();
        let more = suffixes.len() > n;
        suffixes.truncate(n);
        Ok((suffixes, more))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::artifacts::policy::OpenGate;

    fn registry() -> (Registry, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("wharf-registry-{}", uuid::Uuid::new_v4()));
        let store = Store::open_sled(&dir.join("db")).expect("store");
        let files = BlobFiles::open(&dir.join("blobs"), 1 << 20).expect("files");
        (Registry::new(store, files), dir)
    }

    fn once(bytes: &'static [u8]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
        futures::stream::iter([Ok(Bytes::from_static(bytes))])
    }

    async fn push_blob(registry: &Registry, repo: &Repository, bytes: &'static [u8]) -> Digest {
        let upload = registry.start_upload(repo, "admin").await.expect("start");
        let digest = Digest::of(bytes);
        registry
            .finish_upload(repo, &upload.id.to_string(), &digest, once(bytes))
            .await
            .expect("finish");
        digest
    }

    fn image(config: &Digest, layer: &Digest) -> Bytes {
        Bytes::from(
            json!({"schemaVersion": 2, "mediaType": manifests::OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": 5}]})
            .to_string(),
        )
    }

    #[tokio::test]
    async fn a_manifest_whose_blobs_are_missing_is_refused_and_stores_nothing() {
        let (registry, dir) = registry();
        let repo = Repository::parse("shop/web").expect("repo");
        let config = push_blob(&registry, &repo, b"{}").await;
        let missing = Digest::of(b"layer");
        let tag = Reference::parse("v1").expect("tag");
        let refused = registry
            .put_manifest(
                &repo,
                &tag,
                image(&config, &missing),
                None,
                "admin",
                &OpenGate,
            )
            .await;
        assert!(
            matches!(&refused, Err(RegistryError::ManifestBlobUnknown(d)) if *d == missing.to_string()),
            "{refused:?}"
        );
        assert!(matches!(
            registry.manifest_info(&repo, &tag),
            Err(RegistryError::ManifestUnknown(_))
        ));

        let layer = push_blob(&registry, &repo, b"layer").await;
        let (digest, _) = registry
            .put_manifest(
                &repo,
                &tag,
                image(&config, &layer),
                None,
                "admin",
                &OpenGate,
            )
            .await
            .expect("pushed");
        let read = registry.manifest(&repo, &tag).await.expect("read");
        assert_eq!(Digest::of(&read.bytes), digest);
        assert_eq!(
            registry.tags(&repo, 10, None).expect("tags"),
            (vec!["v1".to_owned()], false)
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn blobs_are_per_repository_until_mounted_and_tags_page_in_order() {
        let (registry, dir) = registry();
        let web = Repository::parse("shop/web").expect("repo");
        let api = Repository::parse("shop/api").expect("repo");
        let blob = push_blob(&registry, &web, b"shared").await;
        assert_eq!(registry.blob_size(&api, &blob).await.expect("size"), None);
        assert_eq!(
            registry.mount(&api, &web, &blob).await.expect("mount"),
            Some(6)
        );
        assert_eq!(
            registry.blob_size(&api, &blob).await.expect("size"),
            Some(6)
        );
        assert_eq!(
            registry
                .mount(&api, &web, &Digest::of(b"other"))
                .await
                .expect("mount"),
            None
        );

        let config = push_blob(&registry, &web, b"{}").await;
        for tag in ["c", "a", "b"] {
            registry
                .put_manifest(
                    &web,
                    &Reference::parse(tag).expect("tag"),
                    image(&config, &blob),
                    None,
                    "admin",
                    &OpenGate,
                )
                .await
                .expect("pushed");
        }
        assert_eq!(
            registry.tags(&web, 2, None).expect("page 1"),
            (vec!["a".to_owned(), "b".to_owned()], true)
        );
        assert_eq!(
            registry.tags(&web, 2, Some("b")).expect("page 2"),
            (vec!["c".to_owned()], false)
        );
        assert_eq!(
            registry.catalog(10, None).expect("catalog").0,
            ["shop/api", "shop/web"]
        );
        assert!(matches!(
            registry.tags(&Repository::parse("shop/none").expect("repo"), 5, None),
            Err(RegistryError::NameUnknown(_))
        ));
        // Deleting by digest removes every tag pointing to it.
        let digest = Digest::of(&image(&config, &blob));
        registry
            .delete_manifest(&web, &Reference::Digest(digest), &OpenGate)
            .await
            .expect("deleted");
        assert_eq!(
            registry.tags(&web, 10, None).expect("tags").0,
            Vec::<String>::new()
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn an_upload_belongs_to_its_repository() {
        let (registry, dir) = registry();
        let web = Repository::parse("shop/web").expect("repo");
        let other = Repository::parse("shop/other").expect("repo");
        let upload = registry.start_upload(&web, "admin").await.expect("start");
        let id = upload.id.to_string();
        assert!(matches!(
            registry.upload_status(&other, &id).await,
            Err(RegistryError::UploadUnknown(_))
        ));
        let grown = registry
            .append(&web, &id, Some(0), once(b"abc"))
            .await
            .expect("append");
        assert_eq!(grown.size, 3);
        let out_of_order = registry.append(&web, &id, Some(1), once(b"x")).await;
        assert!(
            matches!(
                out_of_order,
                Err(RegistryError::RangeInvalid { size: 3, .. })
            ),
            "{out_of_order:?}"
        );
        registry.cancel_upload(&web, &id).await.expect("cancel");
        assert!(matches!(
            registry.upload_status(&web, &id).await,
            Err(RegistryError::UploadUnknown(_))
        ));
        std::fs::remove_dir_all(dir).ok();
    }
}
