//! What a pushed manifest says: its media type, the blobs and manifests it references and
//! the subject it refers to. Four kinds are accepted — OCI image manifest and index, Docker
//! v2 schema 2 manifest and manifest list — each read only as far as the registry needs.

use serde::Deserialize;

use super::RegistryError;
use super::blobs::Digest;

/// The largest manifest accepted (the spec's suggested minimum a registry must take).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A descriptor as manifests write them.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    size: Option<i64>,
    /// Where a foreign layer is fetched from; such a layer is never pushed.
    #[serde(default)]
    urls: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    subject: Option<Descriptor>,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A manifest as the registry keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub media_type: String,
    /// Blobs it needs in its repository (config and layers).
    pub blobs: Vec<Digest>,
    /// Manifests it needs in its repository (the entries of an index or list).
    pub manifests: Vec<Digest>,
    pub subject: Option<Digest>,
    /// The artifact type the referrers API reports: `artifactType`, else the config's.
    pub artifact_type: Option<String>,
    /// The manifest's annotations, which the referrers API repeats.
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

fn digest_of(descriptor: &Descriptor, field: &str) -> Result<Digest, RegistryError> {
    if descriptor.size.is_some_and(|s| s < 0) {
        return Err(RegistryError::ManifestInvalid(format!(
            "{field}: size must not be negative"
        )));
    }
    Digest::parse(&descriptor.digest)
        .map_err(|e| RegistryError::ManifestInvalid(format!("{field}: {e}")))
}

/// Reads `bytes` pushed with `content_type` (the header; the body's `mediaType` wins
/// when both are set and they agree, and a disagreement is refused).
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Parsed, RegistryError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(RegistryError::ManifestInvalid(format!(
            "a manifest is at most {MAX_MANIFEST_BYTES} bytes"
        )));
    }
    let body: Body = serde_json::from_slice(bytes)
        .map_err(|e| RegistryError::ManifestInvalid(format!("not a manifest: {e}")))?;
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or_default().trim())
        .filter(|c| !c.is_empty() && *c != "application/json");
    let media_type = match (body.media_type.as_deref(), header) {
        (Some(own), Some(header)) if own != header => {
            return Err(RegistryError::ManifestInvalid(format!(
                "mediaType `{own}` differs from Content-Type `{header}`"
            )));
        }
        (Some(own), _) => own.to_owned(),
        (None, Some(header)) => header.to_owned(),
        // An OCI manifest may leave mediaType out; its shape tells.
        (None, None) if body.manifests.is_some() => OCI_INDEX.to_owned(),
        (None, None) => OCI_MANIFEST.to_owned(),
    };
    let mut parsed = Parsed {
        media_type,
        blobs: Vec::new(),
        manifests: Vec::new(),
        subject: body
            .subject
            .as_ref()
            .map(|s| digest_of(s, "subject"))
            .transpose()?,
        artifact_type: body.artifact_type.clone(),
        annotations: body.annotations.clone(),
    };
    match parsed.media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config = body.config.as_ref().ok_or_else(|| {
                RegistryError::ManifestInvalid("config: an image manifest has a config".into())
            })?;
            parsed.blobs.push(digest_of(config, "config")?);
            if parsed.artifact_type.is_none() {
                parsed.artifact_type = config.media_type.clone();
            }
            for (i, layer) in body.layers.iter().flatten().enumerate() {
                let digest = digest_of(layer, &format!("layers[{i}]"))?;
                // A foreign layer lives at its `urls`; it is never pushed here.
                if layer.urls.is_empty() {
                    parsed.blobs.push(digest);
                }
            }
        }
        OCI_INDEX | DOCKER_LIST => {
            let entries = body.manifests.as_ref().ok_or_else(|| {
                RegistryError::ManifestInvalid("manifests: an index lists its manifests".into())
            })?;
            for (i, entry) in entries.iter().enumerate() {
                parsed
                    .manifests
                    .push(digest_of(entry, &format!("manifests[{i}]"))?);
            }
        }
        other => {
            return Err(RegistryError::ManifestInvalid(format!(
                "media type `{other}` is not a manifest this registry keeps"
            )));
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn an_image_manifest_needs_its_config_and_layers() {
        let body = json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": d('a'), "size": 2},
            "layers": [{"digest": d('b'), "size": 3}, {"digest": d('c'), "size": 4}]});
        let parsed = parse(body.to_string().as_bytes(), None).expect("parsed");
        assert_eq!(parsed.media_type, DOCKER_MANIFEST);
        let blobs: Vec<String> = parsed.blobs.iter().map(|b| b.to_string()).collect();
        assert_eq!(blobs, [d('a'), d('b'), d('c')]);
        assert!(parsed.manifests.is_empty());
    }

    #[test]
    fn an_index_needs_its_manifests_and_a_subject_is_read() {
        let body = json!({"schemaVersion": 2, "manifests": [{"digest": d('e'), "size": 9}],
            "subject": {"digest": d('f'), "size": 1}, "artifactType": "application/x-sbom"});
        let parsed = parse(body.to_string().as_bytes(), Some(OCI_INDEX)).expect("parsed");
        assert_eq!(parsed.media_type, OCI_INDEX);
        assert_eq!(parsed.manifests.len(), 1);
        assert_eq!(parsed.subject.map(|s| s.to_string()), Some(d('f')));
        assert_eq!(parsed.artifact_type.as_deref(), Some("application/x-sbom"));
    }

    #[test]
    fn what_is_not_a_kept_manifest_is_refused_naming_why() {
        let no_config = json!({"mediaType": OCI_MANIFEST, "layers": []}).to_string();
        let bad_digest =
            json!({"mediaType": OCI_MANIFEST, "config": {"digest": "md5:1"}}).to_string();
        let clash = json!({"mediaType": OCI_MANIFEST, "config": {"digest": d('a')}}).to_string();
        for (body, header, says) in [
            ("{", None, "not a manifest"),
            (no_config.as_str(), None, "config"),
            (bad_digest.as_str(), None, "config: "),
            (clash.as_str(), Some(OCI_INDEX), "differs from Content-Type"),
            (r#"{"mediaType":"text/plain"}"#, None, "text/plain"),
        ] {
            match parse(body.as_bytes(), header) {
                Err(RegistryError::ManifestInvalid(why)) => assert!(why.contains(says), "{why}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
