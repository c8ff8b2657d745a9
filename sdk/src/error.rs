//! [`HostError`]: why the host refused or failed a call (the WIT `wharf:host/types.host-error`).
//!
//! The generated bindings are told (via `with:`) to use this hand-written type instead of
//! generating their own, so it can carry a readable `Display` and be shared by every world.
//! Its shape must stay identical to the WIT variant: the generated code lifts into it
//! case by case.

use std::fmt;

/// Why a host call was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The plugin was not granted this; the text names what was refused.
    AccessDenied(String),
    /// A size or rate cap was exceeded; the text names the cap.
    LimitExceeded(String),
    /// The arguments were rejected; the text says which and why.
    InvalidArgument(String),
    /// The host could not serve the call now; retrying later may work.
    Unavailable(String),
}

impl HostError {
    /// The host's explanation, without the kind prefix.
    pub fn message(&self) -> &str {
        match self {
            HostError::AccessDenied(m)
            | HostError::LimitExceeded(m)
            | HostError::InvalidArgument(m)
            | HostError::Unavailable(m) => m,
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            HostError::AccessDenied(_) => "access denied",
            HostError::LimitExceeded(_) => "limit exceeded",
            HostError::InvalidArgument(_) => "invalid argument",
            HostError::Unavailable(_) => "unavailable",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for HostError {}
