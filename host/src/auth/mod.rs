//! Who is calling: users, password hashes and bearer tokens.
//!
//! Passwords are hashed with argon2id; tokens are 256 random bits handed out once and
//! stored only as their SHA-256, so a leaked database yields no usable credential.
//! Authorization decisions are not made here (see the authorizer plugin issue); this
//! module only says who the caller is and whether they are the admin.

mod password;

use std::time::Duration;

use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::store::{Store, StoreError};

pub use password::{hash_password, verify_password};

/// A stored user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A stored session token (the token itself is never stored).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenRecord {
    user_id: String,
    username: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub username: String,
    pub is_admin: bool,
}

/// Errors of identity operations.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("the bearer token is missing, unknown or expired")]
    InvalidToken,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// A freshly issued token, shown to the caller once.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: OffsetDateTime,
}

/// Users and sessions over the host store.
#[derive(Clone)]
pub struct Identity {
    store: Store,
    token_ttl: Duration,
}

/// What first start did about the admin account.
pub enum AdminBootstrap {
    AlreadyPresent,
    CreatedWithGivenPassword,
    CreatedWithGeneratedPassword(String),
}

fn user_key(username: &str) -> String {
    Store::key(&["users", username])
}

fn token_key(token: &str) -> String {
    Store::key(&["tokens", &hex::encode(Sha256::digest(token.as_bytes()))])
}

impl Identity {
    pub fn new(store: Store, token_ttl: Duration) -> Self {
        Self { store, token_ttl }
    }

    /// Creates the `admin` user on first start. The password comes from `given`, or is
    /// generated and returned so the caller can print it once.
    pub async fn bootstrap_admin(
        &self,
        given: Option<String>,
    ) -> Result<AdminBootstrap, AuthError> {
        if self.store.get_json::<User>(&user_key("admin"))?.is_some() {
            return Ok(AdminBootstrap::AlreadyPresent);
        }
        let (password, outcome) = match given {
            Some(p) => (p, AdminBootstrap::CreatedWithGivenPassword),
            None => {
                let generated = random_secret(18);
                (
                    generated.clone(),
                    AdminBootstrap::CreatedWithGeneratedPassword(generated),
                )
            }
        };
        let password_hash = blocking_hash(password).await?;
        let user = User {
            id: uuid::Uuid::new_v4().to_string(),
            username: "admin".into(),
            password_hash,
            is_admin: true,
            created_at: OffsetDateTime::now_utc(),
        };
        self.store.put_json(&user_key("admin"), &user)?;
        self.store.commit().await?;
        Ok(outcome)
    }

    /// Checks a username and password and issues a session token.
    pub async fn login(&self, username: &str, password: &str) -> Result<IssuedToken, AuthError> {
        let user = self.store.get_json::<User>(&user_key(username))?;
        // Verify against a dummy hash for unknown users so timing does not reveal which
        // usernames exist.
        let (hash, known) = match &user {
            Some(u) => (u.password_hash.clone(), true),
            None => (password::DUMMY_HASH.to_owned(), false),
        };
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .map_err(|e| AuthError::Hashing(e.to_string()))?;
        let user = match (ok && known, user) {
            (true, Some(user)) => user,
            _ => return Err(AuthError::InvalidCredentials),
        };
        self.issue_token(&user).await
    }

    async fn issue_token(&self, user: &User) -> Result<IssuedToken, AuthError> {
        let token = format!("wharf_{}", random_secret(32));
        let now = OffsetDateTime::now_utc();
        let expires_at = now + self.token_ttl;
        let record = TokenRecord {
            user_id: user.id.clone(),
            username: user.username.clone(),
            created_at: now,
            expires_at,
        };
        self.store.put_json(&token_key(&token), &record)?;
        self.store.commit().await?;
        Ok(IssuedToken { token, expires_at })
    }

    /// Resolves a bearer token to its caller. Expired tokens are removed.
    pub fn authenticate(&self, token: &str) -> Result<Caller, AuthError> {
        let key = token_key(token);
        let record = self
            .store
            .get_json::<TokenRecord>(&key)?
            .ok_or(AuthError::InvalidToken)?;
        if record.expires_at <= OffsetDateTime::now_utc() {
            self.store.delete(&key)?;
            return Err(AuthError::InvalidToken);
        }
        let user = self
            .store
            .get_json::<User>(&user_key(&record.username))?
            .filter(|u| u.id == record.user_id)
            .ok_or(AuthError::InvalidToken)?;
        Ok(Caller {
            user_id: user.id,
            username: user.username,
            is_admin: user.is_admin,
        })
    }
}

async fn blocking_hash(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AuthError::Hashing(e.to_string()))?
        .map_err(AuthError::Hashing)
}

/// `bytes` random bytes, base64url without padding.
pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (std::path::PathBuf, Store) {
        let dir = std::env::temp_dir().join(format!("wharf-auth-{}", uuid::Uuid::new_v4()));
        let store = Store::open_sled(&dir).expect("open store");
        (dir, store)
    }

    #[tokio::test]
    async fn tokens_are_stored_hashed_and_expire() {
        let (dir, store) = store();
        let identity = Identity::new(store.clone(), Duration::from_secs(3600));
        identity.bootstrap_admin(Some("pw".into())).await.unwrap();
        let issued = identity.login("admin", "pw").await.unwrap();
        assert!(identity.authenticate(&issued.token).unwrap().is_admin);
        let raw = store.backend().scan(b"v1/tokens/", None, 10).unwrap();
        assert_eq!(raw.len(), 1);
        assert!(!String::from_utf8_lossy(&raw[0].0).contains(&issued.token));
        assert!(!String::from_utf8_lossy(&raw[0].1).contains(&issued.token));

        let short = Identity::new(store, Duration::ZERO);
        let expired = short.login("admin", "pw").await.unwrap();
        assert!(matches!(
            short.authenticate(&expired.token),
            Err(AuthError::InvalidToken)
        ));
        assert!(matches!(
            identity.login("admin", "wrong").await,
            Err(AuthError::InvalidCredentials)
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
