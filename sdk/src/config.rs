//! Settings an admin gave this plugin (`wharf:host/config`), as JSON.
//!
//! Config is read-only and small; each call is a host round trip, so read once per call.
//! On native targets it comes from the current [`harness::Host`](crate::harness::Host).

use serde::de::DeserializeOwned;
use serde_json::Value;

#[cfg(target_arch = "wasm32")]
use crate::bindings::wharf::host::config as backend;
#[cfg(not(target_arch = "wasm32"))]
use crate::harness::config as backend;

/// All settings as one JSON object (`{}` when none were set).
///
/// The host always sends an object; should it ever send text that is not JSON, this
/// returns an empty object rather than failing the plugin over the host's fault.
pub fn get_all() -> Value {
    serde_json::from_str(&backend::get_all()).unwrap_or_else(|_| Value::Object(Default::default()))
}

/// One top-level setting as raw JSON text, if set.
pub fn get_raw(key: &str) -> Option<String> {
    backend::get(key)
}

/// One top-level setting decoded as `T`; `None` when unset or not a valid `T`
/// (use [`try_get`] to tell those apart).
pub fn get<T: DeserializeOwned>(key: &str) -> Option<T> {
    try_get(key).ok().flatten()
}

/// One top-level setting decoded as `T`; `Ok(None)` when unset, `Err` when set but not a
/// valid `T` (so the plugin can report a misconfiguration).
pub fn try_get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, serde_json::Error> {
    get_raw(key)
        .map(|text| serde_json::from_str(&text))
        .transpose()
}
