//! The `wharf:host/config` interface: the settings an admin gave a plugin, read-only.

use serde_json::json;

use super::bindings::host::wharf::host::config::Host;
use super::journal::{Journal, journaled};

/// What a call's `config` import sees: the plugin's settings object.
pub struct ConfigView<'a> {
    pub settings: &'a serde_json::Value,
    pub journal: Option<&'a Journal>,
}

impl ConfigView<'_> {
    fn get_all_now(&mut self) -> String {
        self.settings.to_string()
    }

    fn get_now(&mut self, key: String) -> Option<String> {
        self.settings.get(&key).map(|v| v.to_string())
    }
}

impl Host for ConfigView<'_> {
    fn get_all(&mut self) -> String {
        // A diverged replay is reported by the journal; the plugin still gets an answer.
        journaled!(
            self.journal,
            "config.get-all",
            json!([]),
            |_| String::new(),
            self.get_all_now()
        )
    }

    fn get(&mut self, key: String) -> Option<String> {
        journaled!(
            self.journal,
            "config.get",
            json!([&key]),
            |_| None,
            self.get_now(key)
        )
    }
}
