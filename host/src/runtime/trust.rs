//! Package signatures: ed25519 over the package digest, checked against admin-trusted keys.
//!
//! A signature covers both the component and the manifest (whose grants and limits matter
//! as much as the code): the signed message is
//! `wharf-plugin-signature-v1\n<sha256 of component>\n<sha256 of manifest text>\n`.
//! Unsigned packages are refused unless the admin allows them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::store::{Store, StoreError};

/// A key the admin trusts to sign plugins.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustedKey {
    pub id: String,
    /// Base64 of the 32-byte ed25519 public key.
    pub public_key: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub added_at: OffsetDateTime,
    pub added_by: String,
}

/// Install policy set by the admin.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustSettings {
    pub allow_unsigned: bool,
}

/// A detached package signature.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageSignature {
    pub key_id: String,
    /// Base64 of the 64-byte ed25519 signature.
    pub signature: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(
        "unsigned packages are refused: sign the package with a trusted key, or allow unsigned packages"
    )]
    UnsignedRefused,
    #[error("no trusted key has id `{0}`")]
    UnknownKey(String),
    #[error("the signature does not verify with key `{0}`")]
    BadSignature(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The bytes a package signature signs.
pub fn signing_message(component_sha256: &str, manifest_text: &str) -> Vec<u8> {
    format!(
        "wharf-plugin-signature-v1\n{component_sha256}\n{}\n",
        sha256_hex(manifest_text.as_bytes())
    )
    .into_bytes()
}

/// Signs a package (used by `wharf plugin sign` and by tests).
pub fn sign_package(key: &SigningKey, component: &[u8], manifest_text: &str) -> String {
    let message = signing_message(&sha256_hex(component), manifest_text);
    B64.encode(key.sign(&message).to_bytes())
}

pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "an ed25519 public key is 32 bytes".to_owned())?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an ed25519 public key: {e}"))
}

fn key_key(id: &str) -> String {
    Store::key(&["trusted-keys", id])
}

fn settings_key() -> String {
    Store::key(&["settings", "plugin-trust"])
}

/// Trusted keys and the unsigned-package policy.
#[derive(Clone)]
pub struct Trust {
    store: Store,
}

impl Trust {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub fn keys(&self) -> Result<Vec<TrustedKey>, StoreError> {
        self.store
            .list_json(&format!("{}/", Store::key(&["trusted-keys"])))
    }

    pub async fn add_key(
        &self,
        id: &str,
        public_key: &str,
        actor: &str,
    ) -> Result<TrustedKey, TrustError> {
        super::manifest::validate_id(id).map_err(|m| TrustError::Invalid {
            field: "id".into(),
            message: m.replace("plugin id", "key id"),
        })?;
        parse_public_key(public_key).map_err(|m| TrustError::Invalid {
            field: "publicKey".into(),
            message: m,
        })?;
        let key = TrustedKey {
            id: id.to_owned(),
            public_key: public_key.trim().to_owned(),
            added_at: OffsetDateTime::now_utc(),
            added_by: actor.to_owned(),
        };
        self.store.put_json(&key_key(id), &key)?;
        self.store.commit().await?;
        Ok(key)
    }

    /// Returns whether the key existed.
    pub async fn remove_key(&self, id: &str) -> Result<bool, StoreError> {
        let existed = self.store.delete(&key_key(id))?;
        self.store.commit().await?;
        Ok(existed)
    }

    pub fn settings(&self) -> Result<TrustSettings, StoreError> {
        Ok(self.store.get_json(&settings_key())?.unwrap_or_default())
    }

    pub async fn set_settings(&self, settings: &TrustSettings) -> Result<(), StoreError> {
        self.store.put_json(&settings_key(), settings)?;
        self.store.commit().await
    }

    /// Checks a package's signature (or the unsigned policy). Returns the signer's key id.
    pub fn verify(
        &self,
        component_sha256: &str,
        manifest_text: &str,
        signature: Option<&PackageSignature>,
    ) -> Result<Option<String>, TrustError> {
        let Some(signature) = signature else {
            return if self.settings()?.allow_unsigned {
                Ok(None)
            } else {
                Err(TrustError::UnsignedRefused)
            };
        };
        let key: TrustedKey = self
            .store
            .get_json(&key_key(&signature.key_id))?
            .ok_or_else(|| TrustError::UnknownKey(signature.key_id.clone()))?;
        let public = parse_public_key(&key.public_key).map_err(|m| TrustError::Invalid {
            field: "signature.keyId".into(),
            message: m,
        })?;
        let raw = B64
            .decode(signature.signature.trim())
            .map_err(|e| TrustError::Invalid {
                field: "signature.signature".into(),
                message: format!("not base64: {e}"),
            })?;
        let sig = Signature::from_slice(&raw).map_err(|_| TrustError::Invalid {
            field: "signature.signature".into(),
            message: "an ed25519 signature is 64 bytes".into(),
        })?;
        // Strict: refuses weak (small-order) keys and non-canonical signatures, which the
        // plain check accepts for any message.
        public
            .verify_strict(&signing_message(component_sha256, manifest_text), &sig)
            .map_err(|_| TrustError::BadSignature(key.id.clone()))?;
        Ok(Some(key.id))
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Verifier;

    use super::*;

    #[test]
    fn a_signature_covers_component_and_manifest() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let sig = sign_package(&key, b"component", "id = \"x\"");
        let raw = B64.decode(sig).unwrap();
        let sig = Signature::from_slice(&raw).unwrap();
        let public = key.verifying_key();
        let ok = signing_message(&sha256_hex(b"component"), "id = \"x\"");
        assert!(public.verify(&ok, &sig).is_ok());
        let other_manifest = signing_message(&sha256_hex(b"component"), "id = \"y\"");
        assert!(public.verify(&other_manifest, &sig).is_err());
    }
}
