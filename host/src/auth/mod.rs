//! Who is calling: users, password hashes, sessions and personal API tokens.
//!
//! Passwords are hashed with argon2id; tokens are 256 random bits handed out once and
//! stored only as their SHA-256, so a leaked database yields no usable credential. Every
//! password check is counted by the throttle before it runs (per username and source, and
//! per source). Uniqueness of names and the last-active-admin rule rest on the store's
//! conditional batches, never on a read followed by a write. Authorization decisions are
//! not made here; this module only says who the caller is.

mod groups;
mod password;
mod throttle;
mod tokens;
mod users;

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use rand::RngCore;
use time::OffsetDateTime;

use crate::store::{Store, StoreError};

pub use groups::Group;
pub use password::{hash_password, verify_password};
pub use throttle::Throttle;
pub use tokens::{IssuedToken, TokenKind, TokenView};
pub use users::{NewUser, User, UserStatus, UserUpdate, UserView};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub username: String,
    pub is_admin: bool,
    /// Id of the token used (for logout and auditing).
    pub token_id: String,
    /// Actions or action prefixes (whole segments) a narrowed personal token may use;
    /// `None` = everything the user may.
    pub scope: Option<Vec<String>>,
}

impl Caller {
    /// Whether the token's scope covers `action`.
    pub fn token_allows(&self, action: &str) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|scopes| scopes.iter().any(|s| scope_covers(s, action)))
    }
}

/// Whether the token scope `scope` covers `action` (or a narrower scope): whole dot-separated
/// segments only, so `plugin.read` covers `plugin.read` but not `plugin.read-logs`, and
/// `plugin` (or `plugin.`) covers every `plugin.*`.
pub fn scope_covers(scope: &str, action: &str) -> bool {
    let scope = scope.strip_suffix('.').unwrap_or(scope);
    action
        .strip_prefix(scope)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// Errors of identity operations.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("too many failed logins; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error("the bearer token is missing, unknown or expired")]
    InvalidToken,
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("user `{0}` does not exist")]
    UserNotFound(String),
    #[error("token `{0}` does not exist")]
    TokenNotFound(String),
    #[error("the username `{0}` is taken")]
    UsernameTaken(String),
    #[error("group `{0}` does not exist")]
    GroupNotFound(String),
    #[error("the name `{0}` is taken")]
    NameTaken(String),
    #[error("{0}")]
    Refused(String),
    #[error("self-registration is disabled on this server")]
    RegistrationDisabled,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> AuthError {
    AuthError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// What first start did about the admin account.
pub enum AdminBootstrap {
    AlreadyPresent,
    CreatedWithGivenPassword,
    CreatedWithGeneratedPassword(String),
}

/// Users and sessions over the host store.
#[derive(Clone)]
pub struct Identity {
    store: Store,
    session_ttl: Duration,
    throttle: std::sync::Arc<Throttle>,
    allow_registration: bool,
}

impl Identity {
    pub fn new(store: Store, session_ttl: Duration) -> Self {
        Self {
            store,
            session_ttl,
            throttle: std::sync::Arc::new(Throttle::default()),
            allow_registration: false,
        }
    }

    /// Lets people register themselves; their accounts wait for an admin's approval.
    pub fn with_registration(mut self, allow: bool) -> Self {
        self.allow_registration = allow;
        self
    }

    /// Creates the `admin` user on first start. The password comes from `given`, or is
    /// generated and returned so the caller can print it once.
    pub async fn bootstrap_admin(
        &self,
        given: Option<String>,
    ) -> Result<AdminBootstrap, AuthError> {
        if self.user_by_name("admin")?.is_some() {
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
        let admin = NewUser {
            username: "admin".into(),
            password,
            display_name: Some("Administrator".into()),
            email: None,
            is_admin: true,
        };
        match self
            .create_user_with_status(admin, UserStatus::Active, "wharf")
            .await
        {
            Ok(_) => Ok(outcome),
            // Another host sharing the store created it first.
            Err(AuthError::UsernameTaken(_)) => Ok(AdminBootstrap::AlreadyPresent),
            Err(e) => Err(e),
        }
    }

    /// Checks a username and password and issues a session token.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        source: Option<IpAddr>,
    ) -> Result<IssuedToken, AuthError> {
        let user = self.verified_user(username, password, source).await?;
        self.issue(&user, TokenKind::Session, None, self.session_ttl, None)
            .await
    }

    /// Checks a username and password as [`Identity::login`] does (throttled, same timing
    /// for unknown users) without issuing a token: for clients that send credentials with
    /// every request, such as registry clients with basic auth.
    pub async fn check_password(
        &self,
        username: &str,
        password: &str,
        source: Option<IpAddr>,
    ) -> Result<Caller, AuthError> {
        let user = self.verified_user(username, password, source).await?;
        Ok(caller_from(user, "password", None))
    }

    /// The active user a username and password name; throttled per username and source.
    async fn verified_user(
        &self,
        username: &str,
        password: &str,
        source: Option<IpAddr>,
    ) -> Result<User, AuthError> {
        let attempt = self.throttle.begin(username, source)?;
        let user = self.user_by_name(username)?;
        // Verify against a dummy hash for unknown users so timing does not reveal which
        // usernames exist.
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| password::DUMMY_HASH.to_owned());
        let ok = blocking_verify(password.to_owned(), hash).await?;
        match user {
            Some(user) if ok && user.status == UserStatus::Active => {
                self.throttle.succeeded(attempt);
                Ok(user)
            }
            // The attempt stays counted.
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    /// The caller an already verified credential (a registry token) names, while the user
    /// stays active.
    pub fn caller_of(&self, user_id: &str, token_id: &str) -> Result<Caller, AuthError> {
        self.active_caller(user_id, token_id, None)
    }

    /// The caller behind a verified credential of `user_id`, refused once the user is
    /// gone or no longer active.
    fn active_caller(
        &self,
        user_id: &str,
        token_id: &str,
        scope: Option<Vec<String>>,
    ) -> Result<Caller, AuthError> {
        let user = self.user(user_id).map_err(|_| AuthError::InvalidToken)?;
        if user.status != UserStatus::Active {
            return Err(AuthError::InvalidToken);
        }
        Ok(caller_from(user, token_id, scope))
    }
}

fn caller_from(user: User, token_id: &str, scope: Option<Vec<String>>) -> Caller {
    Caller {
        user_id: user.id,
        username: user.username,
        is_admin: user.is_admin,
        token_id: token_id.to_owned(),
        scope,
    }
}

async fn blocking_hash(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AuthError::Hashing(e.to_string()))?
        .map_err(AuthError::Hashing)
}

async fn blocking_verify(password: String, hash: String) -> Result<bool, AuthError> {
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

/// `bytes` random bytes, base64url without padding.
pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
