//! The `wharf:host/config` interface: the settings an admin gave a plugin, read-only.

use super::bindings::host::wharf::host::config::Host;

/// What a call's `config` import sees: the plugin's settings object.
pub struct ConfigView<'a> {
    pub settings: &'a serde_json::Value,
}

impl Host for ConfigView<'_> {
    fn get_all(&mut self) -> String {
        self.settings.to_string()
    }

    fn get(&mut self, key: String) -> Option<String> {
        self.settings.get(&key).map(|v| v.to_string())
    }
}
