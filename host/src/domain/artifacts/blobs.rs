//! Content-addressed blob files under the data directory: `blobs/sha256/<2 hex>/<64 hex>`,
//! and upload files under `blobs/uploads/<uuid>` that grow chunk by chunk until they are
//! committed under their digest.
//!
//! Bytes stream through in bounded chunks, so memory stays flat whatever the blob's size.
//! A commit hashes the upload file again (an upload can span requests and restarts, and a
//! hasher's state cannot be kept across them), fsyncs it and renames it into place, so a
//! blob is either whole under its digest or absent. Two uploads of the same content end
//! as one file: the second rename replaces the first with identical bytes. The names of
//! files are built only from parsed digests and upload ids this store made, never from
//! request text.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// How much of a file is read at once when hashing or serving it.
const READ_CHUNK: usize = 256 * 1024;

/// A `sha256:<64 lowercase hex>` digest, the only algorithm this store keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    pub fn parse(text: &str) -> Result<Digest, BlobError> {
        let Some((algorithm, hex)) = text.split_once(':') else {
            return Err(BlobError::DigestInvalid(format!(
                "`{text}` is not `algorithm:hex`"
            )));
        };
        if algorithm != "sha256" {
            return Err(BlobError::DigestInvalid(format!(
                "algorithm `{algorithm}` is not supported; use sha256"
            )));
        }
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(BlobError::DigestInvalid(format!(
                "`{text}` does not have 64 lowercase hex digits"
            )));
        }
        Ok(Digest(text.to_owned()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    fn from_hasher(hasher: Sha256) -> Digest {
        Digest(format!("sha256:{}", hex::encode(hasher.finalize())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An upload this store started: the uuid it named the upload file with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadId(uuid::Uuid);

impl UploadId {
    /// An upload id from a URL; only the canonical form of a uuid is one.
    pub fn parse(text: &str) -> Option<UploadId> {
        let id = uuid::Uuid::try_parse(text).ok()?;
        (id.hyphenated().to_string() == text).then_some(UploadId(id))
    }
}

impl std::fmt::Display for UploadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.hyphenated())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("{0}")]
    DigestInvalid(String),
    #[error("the content's digest is {actual}, not {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("no upload `{0}`")]
    UploadUnknown(String),
    /// A chunk that does not start where the upload ends.
    #[error("the upload is {size} bytes long; a chunk must start at {size}, not {offset}")]
    OutOfOrder { size: u64, offset: u64 },
    #[error("the blob would exceed {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("reading the request body: {0}")]
    Body(String),
    #[error("blob storage: {0}")]
    Io(#[from] std::io::Error),
}

/// A file only one request writes; removed when the request ends without placing it (an
/// error, a refused digest, or the client going away mid-body).
struct Staged(PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        // Placed files were renamed away; this finds nothing then.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The blob and upload files of one data directory.
#[derive(Debug, Clone)]
pub struct BlobFiles {
    root: PathBuf,
    max_blob_bytes: u64,
}

impl BlobFiles {
    /// Blob files under `root`, creating its directories; no blob may exceed `max_blob_bytes`.
    pub fn open(root: &Path, max_blob_bytes: u64) -> Result<BlobFiles, BlobError> {
        std::fs::create_dir_all(root.join("sha256"))?;
        std::fs::create_dir_all(root.join("uploads"))?;
        Ok(BlobFiles {
            root: root.to_owned(),
            max_blob_bytes,
        })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root.join("sha256").join(&hex[..2]).join(hex)
    }

    fn upload_path(&self, upload: UploadId) -> PathBuf {
        self.root.join("uploads").join(upload.to_string())
    }

    /// The size of the blob, if it is stored.
    pub async fn size(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `len` bytes of the blob from `start`, as a stream of bounded chunks; `None` when the
    /// blob is not stored.
    pub async fn read(
        &self,
        digest: &Digest,
        start: u64,
        len: u64,
    ) -> Result<
        Option<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static + use<>>,
        BlobError,
    > {
        let mut file = match tokio::fs::File::open(self.blob_path(digest)).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        file.seek(SeekFrom::Start(start)).await?;
        Ok(Some(async_stream::try_stream! {
            let mut left = len;
            let mut buffer = vec![0u8; READ_CHUNK];
            while left > 0 {
                let want = buffer.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let got = file.read(&mut buffer[..want]).await?;
                if got == 0 {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the blob file ended early",
                    ))?;
                }
                left -= got as u64;
                yield Bytes::copy_from_slice(&buffer[..got]);
            }
        }))
    }

    /// Stores small content (a manifest) under its digest.
    pub async fn put(&self, bytes: &[u8]) -> Result<Digest, BlobError> {
        let upload = self.start().await?;
        let path = self.upload_path(upload);
        tokio::fs::write(&path, bytes).await?;
        let digest = Digest::of(bytes);
        self.commit(upload, &digest).await?;
        Ok(digest)
    }

    /// Starts an empty upload.
    pub async fn start(&self) -> Result<UploadId, BlobError> {
        let upload = UploadId(uuid::Uuid::new_v4());
        tokio::fs::File::create_new(self.upload_path(upload)).await?;
        Ok(upload)
    }

    /// How many bytes the upload holds so far.
    pub async fn uploaded(&self, upload: UploadId) -> Result<u64, BlobError> {
        match tokio::fs::metadata(self.upload_path(upload)).await {
            Ok(meta) => Ok(meta.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(BlobError::UploadUnknown(upload.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Appends `body` to the upload; `offset` is where the client says the chunk starts
    /// (`None`: at the end). Returns the upload's new size.
    pub async fn append<S, E>(
        &self,
        upload: UploadId,
        offset: Option<u64>,
        body: S,
    ) -> Result<u64, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let size = self.uploaded(upload).await?;
        if let Some(offset) = offset
            && offset != size
        {
            return Err(BlobError::OutOfOrder { size, offset });
        }
        let mut file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(self.upload_path(upload))
            .await?;
        let mut written = size;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    // What arrived stays, whole, so a resumed upload continues after it.
                    file.flush().await?;
                    return Err(BlobError::Body(e.to_string()));
                }
            };
            written += chunk.len() as u64;
            if written > self.max_blob_bytes {
                // What was written stays until the client cancels the upload.
                file.flush().await?;
                return Err(BlobError::TooLarge {
                    limit: self.max_blob_bytes,
                });
            }
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        Ok(written)
    }

    /// Checks the upload against `digest` and moves it into place; returns the blob's size.
    /// A mismatch discards the upload.
    ///
    /// The bytes are copied, while hashing, into a file only this commit knows, and that
    /// copy becomes the blob: a request still appending to the upload file cannot change
    /// a committed blob. A blob already stored under the digest is kept as it is.
    pub async fn commit(&self, upload: UploadId, digest: &Digest) -> Result<u64, BlobError> {
        let path = self.upload_path(upload);
        let mut source = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::UploadUnknown(upload.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        let staged = self.root.join("uploads").join(format!("{upload}.commit"));
        let mut copy = tokio::fs::File::create_new(&staged).await?;
        let copied = async {
            let mut hasher = Sha256::new();
            let mut buffer = vec![0u8; READ_CHUNK];
            let mut size = 0u64;
            loop {
                let got = source.read(&mut buffer).await?;
                if got == 0 {
                    break;
                }
                hasher.update(&buffer[..got]);
                copy.write_all(&buffer[..got]).await?;
                size += got as u64;
            }
            copy.sync_all().await?;
            Ok::<_, std::io::Error>((Digest::from_hasher(hasher), size))
        }
        .await;
        drop((source, copy));
        tokio::fs::remove_file(&path).await.ok();
        let (actual, size) = match copied {
            Ok(done) => done,
            Err(e) => {
                tokio::fs::remove_file(&staged).await.ok();
                return Err(e.into());
            }
        };
        if &actual != digest {
            tokio::fs::remove_file(&staged).await?;
            return Err(BlobError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        self.place(&staged, digest).await?;
        Ok(size)
    }

    /// Moves a whole, synced file into place as the blob `digest`, or drops it when the
    /// blob is already stored.
    async fn place(&self, staged: &Path, digest: &Digest) -> Result<(), BlobError> {
        let target = self.blob_path(digest);
        if tokio::fs::try_exists(&target).await? {
            tokio::fs::remove_file(staged).await?;
            return Ok(());
        }
        let parent = target
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| self.root.clone());
        tokio::fs::create_dir_all(&parent).await?;
        tokio::fs::rename(staged, &target).await?;
        // The rename is durable only once the directory holding it is.
        tokio::fs::File::open(&parent).await?.sync_all().await?;
        Ok(())
    }

    /// Stores a whole body sent in one request, hashing it as it arrives (its file is
    /// known to this call alone, so nothing else can write to it), and returns its digest
    /// and size. With `expected`, a body of another digest is refused and nothing kept.
    pub async fn store_stream<S, E>(
        &self,
        body: S,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let staged = Staged(
            self.root
                .join("uploads")
                .join(format!("{}.whole", uuid::Uuid::new_v4())),
        );
        let (actual, size) = self.write_hashed(&staged.0, body).await?;
        if let Some(expected) = expected
            && expected != &actual
        {
            return Err(BlobError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        self.place(&staged.0, &actual).await?;
        Ok((actual, size))
    }

    async fn write_hashed<S, E>(&self, path: &Path, body: S) -> Result<(Digest, u64), BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let mut file = tokio::fs::File::create_new(path).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| BlobError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > self.max_blob_bytes {
                return Err(BlobError::TooLarge {
                    limit: self.max_blob_bytes,
                });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        Ok((Digest::from_hasher(hasher), size))
    }

    /// Drops an upload and what it holds.
    pub async fn cancel(&self, upload: UploadId) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.upload_path(upload)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(BlobError::UploadUnknown(upload.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a blob file (garbage collection); whether it was there.
    pub async fn remove(&self, digest: &Digest) -> Result<bool, BlobError> {
        match tokio::fs::remove_file(self.blob_path(digest)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    async fn read_all(files: &BlobFiles, digest: &Digest, start: u64, len: u64) -> Vec<u8> {
        let stream = files
            .read(digest, start, len)
            .await
            .expect("read")
            .expect("stored");
        let mut stream = std::pin::pin!(stream);
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.expect("chunk"));
        }
        out
    }

    fn temp_root(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wharf-blobs-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn only_sha256_with_64_lowercase_hex_digits_is_a_digest() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert!(Digest::parse(&good).is_ok());
        for bad in [
            "sha256:abc".to_owned(),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha512:{}", "a".repeat(128)),
            format!("sha256:{}/../x", "a".repeat(60)),
            "plain".to_owned(),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad}");
        }
        assert!(UploadId::parse("../../etc/passwd").is_none());
        assert!(UploadId::parse("67E55044-10B1-426F-9247-BB680E5FE0C8").is_none());
    }

    #[tokio::test]
    async fn chunks_in_order_commit_under_their_digest_and_read_back_by_range() {
        let root = temp_root("chunks");
        let files = BlobFiles::open(&root, 1 << 20).expect("open");
        let upload = files.start().await.expect("start");
        assert_eq!(
            files
                .append(upload, Some(0), chunks(&[b"hello ", b"wor"]))
                .await
                .expect("first"),
            9
        );
        let refused = files.append(upload, Some(4), chunks(&[b"x"])).await;
        assert!(
            matches!(refused, Err(BlobError::OutOfOrder { size: 9, offset: 4 })),
            "{refused:?}"
        );
        assert_eq!(
            files
                .append(upload, Some(9), chunks(&[b"ld"]))
                .await
                .expect("second"),
            11
        );
        let digest = Digest::of(b"hello world");
        assert_eq!(files.commit(upload, &digest).await.expect("commit"), 11);
        assert_eq!(files.size(&digest).await.expect("size"), Some(11));
        assert_eq!(read_all(&files, &digest, 0, 11).await, b"hello world");
        assert_eq!(read_all(&files, &digest, 6, 3).await, b"wor");
        assert!(matches!(
            files.uploaded(upload).await,
            Err(BlobError::UploadUnknown(_))
        ));
        std::fs::remove_dir_all(root).ok();
    }

    #[tokio::test]
    async fn a_wrong_digest_stores_nothing_and_a_too_large_blob_is_refused() {
        let root = temp_root("wrong");
        let files = BlobFiles::open(&root, 4).expect("open");
        let upload = files.start().await.expect("start");
        files
            .append(upload, None, chunks(&[b"abc"]))
            .await
            .expect("append");
        let claimed = Digest::of(b"abd");
        let refused = files.commit(upload, &claimed).await;
        assert!(
            matches!(refused, Err(BlobError::DigestMismatch { .. })),
            "{refused:?}"
        );
        assert_eq!(files.size(&claimed).await.expect("size"), None);
        assert_eq!(files.size(&Digest::of(b"abc")).await.expect("size"), None);

        let upload = files.start().await.expect("start");
        let big = files.append(upload, None, chunks(&[b"abc", b"de"])).await;
        assert!(
            matches!(big, Err(BlobError::TooLarge { limit: 4 })),
            "{big:?}"
        );
        files.cancel(upload).await.expect("cancel");
        std::fs::remove_dir_all(root).ok();
    }

    #[tokio::test]
    async fn the_same_content_pushed_twice_is_one_blob() {
        let root = temp_root("dedupe");
        let files = BlobFiles::open(&root, 1 << 20).expect("open");
        let first = files.put(b"{\"same\":true}").await.expect("first");
        let second = files.put(b"{\"same\":true}").await.expect("second");
        assert_eq!(first, second);
        let kept = std::fs::read_dir(root.join("sha256").join(&first.hex()[..2]))
            .expect("dir")
            .count();
        assert_eq!(kept, 1);
        assert!(files.remove(&first).await.expect("remove"));
        assert!(!files.remove(&first).await.expect("again"));
        std::fs::remove_dir_all(root).ok();
    }
}
