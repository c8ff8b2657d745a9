//! Bearer tokens: sessions from login and named personal API tokens.
//!
//! A token is `wharf_` + 256 random bits, shown once; only its SHA-256 is stored
//! (`v1/tokens/<sha256>`), with a per-user index (`v1/user-tokens/<user>/<token id>`) for
//! listing and revoking. Personal tokens may be narrowed to actions or action prefixes of
//! whole segments (see [`super::scope_covers`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::users::User;
use super::{AuthError, Caller, Identity, invalid, now, random_secret, scope_covers};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TokenKind {
    Session,
    Personal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenRecord {
    id: String,
    user_id: String,
    kind: TokenKind,
    name: Option<String>,
    scope: Option<Vec<String>>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// A token as listed (never the secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: String,
    pub kind: TokenKind,
    pub name: Option<String>,
    pub scope: Option<Vec<String>>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub expires_at: OffsetDateTime,
}

/// A freshly issued token, shown to the caller once.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub id: String,
    pub expires_at: OffsetDateTime,
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn token_key(digest: &str) -> String {
    Store::key(&["tokens", digest])
}

fn index_key(user_id: &str, token_id: &str) -> String {
    Store::key(&["user-tokens", user_id, token_id])
}

fn view(r: &TokenRecord) -> TokenView {
    TokenView {
        id: r.id.clone(),
        kind: r.kind,
        name: r.name.clone(),
        scope: r.scope.clone(),
        created_at: r.created_at,
        expires_at: r.expires_at,
    }
}

/// Most a personal token may live.
pub const MAX_PERSONAL_TOKEN_DAYS: u32 = 365;

/// A token scope as stored: dot-separated segments of `a-z`, `0-9` and `-` (a trailing dot
/// is dropped: `plugin.` and `plugin` mean the same), so matching is by whole segments.
fn normalize_scope(scopes: Vec<String>) -> Result<Vec<String>, AuthError> {
    if scopes.is_empty() {
        return Err(invalid(
            "scope",
            "give one or more actions or action prefixes such as `plugin.read` or `audit`",
        ));
    }
    scopes
        .into_iter()
        .enumerate()
        .map(|(i, scope)| {
            let trimmed = scope.strip_suffix('.').unwrap_or(&scope);
            let well_formed = !trimmed.is_empty()
                && scope.len() <= 64
                && trimmed.split('.').all(|segment| {
                    !segment.is_empty()
                        && segment
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                });
            if well_formed {
                Ok(trimmed.to_owned())
            } else {
                Err(invalid(
                    &format!("scope[{i}]"),
                    "an action or action prefix of whole segments, e.g. `plugin.read` or `plugin`",
                ))
            }
        })
        .collect()
}

impl Identity {
    pub(super) async fn issue(
        &self,
        user: &User,
        kind: TokenKind,
        name: Option<String>,
        ttl: Duration,
        scope: Option<Vec<String>>,
    ) -> Result<IssuedToken, AuthError> {
        let token = format!("wharf_{}", random_secret(32));
        let record = TokenRecord {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user.id.clone(),
            kind,
            name,
            scope,
            created_at: now(),
            expires_at: now() + ttl,
        };
        let digest = digest(&token);
        self.store.put_json(&token_key(&digest), &record)?;
        self.store
            .put_json(&index_key(&user.id, &record.id), &digest)?;
        self.store.commit().await?;
        Ok(IssuedToken {
            token,
            id: record.id,
            expires_at: record.expires_at,
        })
    }

    /// Resolves a bearer token to its caller. Expired tokens are removed.
    pub fn authenticate(&self, token: &str) -> Result<Caller, AuthError> {
        let key = token_key(&digest(token));
        let record: TokenRecord = self.store.get_json(&key)?.ok_or(AuthError::InvalidToken)?;
        if record.expires_at <= now() {
            self.store.delete(&key)?;
            self.store.delete(&index_key(&record.user_id, &record.id))?;
            return Err(AuthError::InvalidToken);
        }
        self.active_caller(&record.user_id, &record.id, record.scope)
    }

    /// Revokes one of a user's tokens.
    pub async fn revoke(&self, user_id: &str, token_id: &str) -> Result<(), AuthError> {
        let index = index_key(user_id, token_id);
        let digest: String = self
            .store
            .get_json(&index)?
            .ok_or_else(|| AuthError::TokenNotFound(token_id.to_owned()))?;
        self.store.delete(&token_key(&digest))?;
        self.store.delete(&index)?;
        self.store.commit().await?;
        Ok(())
    }

    /// Revokes every token of a user but `keep` (the one in use, when the user acts on
    /// their own account).
    pub(super) async fn revoke_all(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> Result<(), AuthError> {
        let prefix = format!("{}/", Store::key(&["user-tokens", user_id]));
        let kept = keep.map(|token_id| index_key(user_id, token_id));
        for (key, value) in self
            .store
            .backend()
            .scan(prefix.as_bytes(), None, usize::MAX)?
        {
            if kept
                .as_ref()
                .is_some_and(|k| k.as_bytes() == key.as_slice())
            {
                continue;
            }
            if let Ok(digest) = serde_json::from_slice::<String>(&value) {
                self.store.delete(&token_key(&digest))?;
            }
            self.store.backend().delete(&key)?;
        }
        self.store.commit().await?;
        Ok(())
    }

    /// Ends the caller's session.
    pub async fn logout(&self, caller: &Caller) -> Result<(), AuthError> {
        self.revoke(&caller.user_id, &caller.token_id).await
    }

    /// Replaces the caller's session token with a fresh one.
    pub async fn refresh(&self, caller: &Caller) -> Result<IssuedToken, AuthError> {
        let user = self.user(&caller.user_id)?;
        let issued = self
            .issue(
                &user,
                TokenKind::Session,
                None,
                self.session_ttl,
                caller.scope.clone(),
            )
            .await?;
        self.revoke(&caller.user_id, &caller.token_id).await?;
        Ok(issued)
    }

    /// Creates a personal API token for the caller, optionally narrowed to action prefixes.
    pub async fn create_personal_token(
        &self,
        caller: &Caller,
        name: String,
        expires_in_days: u32,
        scope: Option<Vec<String>>,
    ) -> Result<IssuedToken, AuthError> {
        if name.trim().is_empty() || name.chars().count() > 64 {
            return Err(invalid("name", "must be 1 to 64 characters"));
        }
        if !(1..=MAX_PERSONAL_TOKEN_DAYS).contains(&expires_in_days) {
            return Err(invalid(
                "expiresInDays",
                format!("must be 1 to {MAX_PERSONAL_TOKEN_DAYS}"),
            ));
        }
        let scope = scope.map(normalize_scope).transpose()?;
        // A token can never reach further than the token that created it.
        let scope = match (&caller.scope, scope) {
            (Some(outer), Some(inner))
                if !inner
                    .iter()
                    .all(|p| outer.iter().any(|o| scope_covers(o, p))) =>
            {
                return Err(invalid(
                    "scope",
                    "cannot be wider than the scope of the token used to create it",
                ));
            }
            (Some(outer), None) => Some(outer.clone()),
            (_, inner) => inner,
        };
        let user = self.user(&caller.user_id)?;
        let ttl = Duration::from_secs(u64::from(expires_in_days) * 86_400);
        self.issue(&user, TokenKind::Personal, Some(name), ttl, scope)
            .await
    }

    /// The user's live tokens (personal and sessions), newest first.
    pub fn list_tokens(&self, user_id: &str) -> Result<Vec<TokenView>, AuthError> {
        let prefix = format!("{}/", Store::key(&["user-tokens", user_id]));
        let mut tokens = Vec::new();
        for (_, value) in self
            .store
            .backend()
            .scan(prefix.as_bytes(), None, usize::MAX)?
        {
            let Ok(digest) = serde_json::from_slice::<String>(&value) else {
                continue;
            };
            if let Some(record) = self.store.get_json::<TokenRecord>(&token_key(&digest))?
                && record.expires_at > now()
            {
                tokens.push(view(&record));
            }
        }
        tokens.sort_by_key(|t| std::cmp::Reverse(t.created_at));
        Ok(tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_are_stored_hashed_and_expire() {
        let dir = std::env::temp_dir().join(format!("wharf-tokens-{}", uuid::Uuid::new_v4()));
        let store = Store::open_sled(&dir).unwrap();
        let identity = Identity::new(store.clone(), Duration::from_secs(3600));
        identity
            .bootstrap_admin(Some("admin-password".into()))
            .await
            .unwrap();
        let issued = identity
            .login("admin", "admin-password", None)
            .await
            .unwrap();
        assert!(identity.authenticate(&issued.token).unwrap().is_admin);
        for (key, value) in store.backend().scan(b"v1/", None, usize::MAX).unwrap() {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&key),
                String::from_utf8_lossy(&value)
            );
            assert!(
                !text.contains(&issued.token),
                "the token is stored in the clear"
            );
            assert!(
                !text.contains("admin-password"),
                "the password is stored in the clear"
            );
        }
        let expiring = Identity::new(store, Duration::ZERO);
        let expired = expiring
            .login("admin", "admin-password", None)
            .await
            .unwrap();
        assert!(matches!(
            expiring.authenticate(&expired.token),
            Err(AuthError::InvalidToken)
        ));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn scopes_are_whole_segments() {
        assert_eq!(
            normalize_scope(vec!["plugin.".into(), "audit.read".into()]).unwrap(),
            ["plugin", "audit.read"]
        );
        for bad in ["", ".", "plugin..read", "Plugin", "plugin.*", "a b"] {
            assert!(
                matches!(normalize_scope(vec![bad.into()]), Err(AuthError::Invalid { field, .. }) if field == "scope[0]"),
                "{bad:?} was accepted"
            );
        }
        assert!(scope_covers("plugin.read", "plugin.read"));
        assert!(!scope_covers("plugin.read", "plugin.read-logs"));
        assert!(scope_covers("plugin", "plugin.read-logs"));
        assert!(scope_covers("plugin.", "plugin.read"));
        assert!(!scope_covers("plugin", "plugin-trust.read"));
    }
}
