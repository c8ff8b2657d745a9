//! The plugin's private key-value namespace (`wharf:host/kv`), stored durably by the host.
//!
//! Raw byte access plus typed JSON helpers. Every call is a host round trip and may be
//! refused with a [`HostError`] (size caps, rate caps, host unavailable). On native targets
//! calls are served by the current [`harness::Host`](crate::harness::Host).

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::HostError;

/// One page of keys from [`list_prefix`], in key order.
pub use crate::bindings::wharf::host::kv::KeyPage;

#[cfg(target_arch = "wasm32")]
use crate::bindings::wharf::host::kv as backend;
#[cfg(not(target_arch = "wasm32"))]
use crate::harness::kv as backend;

/// The value stored under `key`, if any.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, HostError> {
    backend::get(key)
}

/// Stores `value` under `key`, replacing any previous value.
pub fn set(key: &str, value: &[u8]) -> Result<(), HostError> {
    backend::set(key, value)
}

/// Removes `key`; returns whether it existed.
pub fn delete(key: &str) -> Result<bool, HostError> {
    backend::delete(key)
}

/// Keys starting with `prefix`, after `cursor`, at most `limit` (the host caps it).
/// Pass the returned `next_cursor` back to continue; it is `None` once the listing is done.
pub fn list_prefix(prefix: &str, cursor: Option<&str>, limit: u32) -> Result<KeyPage, HostError> {
    backend::list_prefix(prefix, cursor, limit)
}

/// Sets `key` to `replacement` (`None` deletes) only if its current value equals `expected`
/// (`None` means absent). Returns whether the swap happened; use it for race-free updates.
pub fn compare_and_swap(
    key: &str,
    expected: Option<&[u8]>,
    replacement: Option<&[u8]>,
) -> Result<bool, HostError> {
    backend::compare_and_swap(key, expected, replacement)
}

/// Why a typed kv call failed.
#[derive(Debug)]
pub enum JsonError {
    /// The host refused or failed the call.
    Host(HostError),
    /// The stored value is not valid JSON for the requested type, or the value to store
    /// could not be serialized.
    Json(serde_json::Error),
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Host(e) => write!(f, "kv: {e}"),
            JsonError::Json(e) => write!(f, "kv value is not valid JSON for this type: {e}"),
        }
    }
}

impl std::error::Error for JsonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JsonError::Host(e) => Some(e),
            JsonError::Json(e) => Some(e),
        }
    }
}

impl From<HostError> for JsonError {
    fn from(e: HostError) -> Self {
        JsonError::Host(e)
    }
}

impl From<serde_json::Error> for JsonError {
    fn from(e: serde_json::Error) -> Self {
        JsonError::Json(e)
    }
}

/// The value under `key` decoded from JSON, if any.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, JsonError> {
    match get(key)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

/// Stores `value` under `key` as JSON.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), JsonError> {
    let bytes = serde_json::to_vec(value)?;
    set(key, &bytes)?;
    Ok(())
}
