//! Registry tokens: what the token endpoint (`GET /v2/token?service=…&scope=…`) hands a
//! client that proved who it is, so its next requests carry a short-lived bearer token
//! instead of a password.
//!
//! A token is `<claims>.<signature>`, both base64url: the claims name the user, the
//! expiry and, per repository, the actions granted (`pull`, `push`, `delete`); the
//! signature is ed25519 with a key kept in the store (`v1/registry/token-key`, made once
//! with compare-and-swap), so every host verifies without a lookup and nothing
//! accumulates per token. A token only narrows: each request is still decided by the
//! authorizer as the user it names.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::store::{Store, StoreError};

/// How long a token lasts.
pub const TOKEN_SECONDS: i64 = 300;
/// Most repositories one token may name.
pub const MAX_SCOPES: usize = 32;

/// What a token grants on one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    /// The user's id.
    sub: String,
    /// Expiry, Unix seconds.
    exp: i64,
    access: Vec<Grant>,
}

/// A verified token: whose, and what it grants.
#[derive(Debug, Clone)]
pub struct Verified {
    pub user_id: String,
    pub access: Vec<Grant>,
}

impl Verified {
    /// Whether the token grants `action` (`pull`, `push`, `delete`) on `repository`.
    pub fn grants(&self, repository: &str, action: &str) -> bool {
        self.access
            .iter()
            .any(|g| g.name == repository && g.actions.iter().any(|a| a == action || a == "*"))
    }
}

fn key_path() -> String {
    Store::key(&["registry", "token-key"])
}

/// The signing key, made on first use; two hosts racing keep the first one written.
fn signing_key(store: &Store) -> Result<SigningKey, StoreError> {
    loop {
        if let Some(bytes) = store.get_raw(&key_path())? {
            let seed: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt {
                    key: key_path(),
                    reason: "the registry token key is not 32 bytes".into(),
                })?;
            return Ok(SigningKey::from_bytes(&seed));
        }
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        // Lost the race: the next read takes the winner's key.
        let _ = store
            .backend()
            .compare_and_swap(key_path().as_bytes(), None, Some(&seed))?;
    }
}

/// A token for `user_id` granting `access`, and its lifetime in seconds.
pub fn issue(store: &Store, user_id: &str, access: Vec<Grant>) -> Result<String, StoreError> {
    let claims = Claims {
        sub: user_id.to_owned(),
        exp: OffsetDateTime::now_utc().unix_timestamp() + TOKEN_SECONDS,
        access,
    };
    let body = serde_json::to_vec(&claims).map_err(|e| StoreError::Backend(e.to_string()))?;
    let signature = signing_key(store)?.sign(&body);
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&body),
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    ))
}

/// The token's claims if its signature holds and it has not expired.
pub fn verify(store: &Store, token: &str) -> Result<Option<Verified>, StoreError> {
    let Some((body, signature)) = token.split_once('.') else {
        return Ok(None);
    };
    let (Ok(body), Ok(signature)) = (
        URL_SAFE_NO_PAD.decode(body),
        URL_SAFE_NO_PAD.decode(signature),
    ) else {
        return Ok(None);
    };
    let Ok(signature) = Signature::from_slice(&signature) else {
        return Ok(None);
    };
    if signing_key(store)?
        .verifying_key()
        .verify(&body, &signature)
        .is_err()
    {
        return Ok(None);
    }
    let Ok(claims) = serde_json::from_slice::<Claims>(&body) else {
        return Ok(None);
    };
    if claims.exp <= OffsetDateTime::now_utc().unix_timestamp() {
        return Ok(None);
    }
    Ok(Some(Verified {
        user_id: claims.sub,
        access: claims.access,
    }))
}

/// Reads one `scope` parameter: `repository:<name>:<action>[,<action>…]`. Other resource
/// types (`registry:catalog:*`) are not granted by tokens.
pub fn parse_scope(scope: &str) -> Option<(String, Vec<String>)> {
    let rest = scope.strip_prefix("repository:")?;
    let (name, actions) = rest.rsplit_once(':')?;
    let actions: Vec<String> = actions
        .split(',')
        .map(str::trim)
        .filter(|a| matches!(*a, "pull" | "push" | "delete" | "*"))
        .map(str::to_owned)
        .collect();
    (!name.is_empty() && !actions.is_empty()).then(|| (name.to_owned(), actions))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        let dir = std::env::temp_dir().join(format!("wharf-token-{}", uuid::Uuid::new_v4()));
        Store::open_sled(&dir).expect("store")
    }

    #[test]
    fn a_token_verifies_with_its_grants_and_a_changed_one_does_not() {
        let store = store();
        let grant = Grant {
            name: "shop/web".into(),
            actions: vec!["pull".into()],
        };
        let token = issue(&store, "u1", vec![grant]).expect("issued");
        let verified = verify(&store, &token).expect("read").expect("valid");
        assert_eq!(verified.user_id, "u1");
        assert!(verified.grants("shop/web", "pull"));
        assert!(!verified.grants("shop/web", "push"));
        assert!(!verified.grants("shop/api", "pull"));

        let (body, signature) = token.split_once('.').expect("two parts");
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).expect("b64")).expect("json");
        claims["access"][0]["actions"] = serde_json::json!(["pull", "push"]);
        let forged = format!("{}.{signature}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        assert!(verify(&store, &forged).expect("read").is_none());
        assert!(verify(&store, "not-a-token").expect("read").is_none());
    }

    #[test]
    fn scopes_name_a_repository_and_known_actions() {
        assert_eq!(
            parse_scope("repository:shop/team/web:pull,push"),
            Some(("shop/team/web".into(), vec!["pull".into(), "push".into()]))
        );
        assert_eq!(parse_scope("repository:shop/web:steal"), None);
        assert_eq!(parse_scope("registry:catalog:*"), None);
    }
}
