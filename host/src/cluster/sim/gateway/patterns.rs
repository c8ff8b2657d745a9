//! Regular expressions of routing objects, compiled once and matched against the whole
//! value (Gateway API `RegularExpression` and ingress-nginx header patterns are full
//! matches here). A pattern that does not compile matches nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use regex::Regex;

/// Patterns kept compiled; past this the cache starts over (routing objects hold few).
const CACHE_LIMIT: usize = 4096;
/// Longest pattern compiled; a longer one matches nothing.
const PATTERN_LIMIT: usize = 4096;

#[derive(Default)]
pub struct Patterns {
    compiled: Mutex<HashMap<String, Option<Arc<Regex>>>>,
}

impl Patterns {
    /// Whether `pattern` matches all of `text`.
    pub fn full_match(&self, pattern: &str, text: &str) -> bool {
        self.compiled(pattern)
            .is_some_and(|regex| regex.is_match(text))
    }

    fn compiled(&self, pattern: &str) -> Option<Arc<Regex>> {
        let mut cache = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = cache.get(pattern) {
            return found.clone();
        }
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        let regex = (pattern.len() <= PATTERN_LIMIT)
            .then(|| Regex::new(&format!("^(?:{pattern})$")).ok())
            .flatten()
            .map(Arc::new);
        cache.insert(pattern.to_owned(), regex.clone());
        regex
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_the_whole_value() {
        let patterns = Patterns::default();
        assert!(patterns.full_match("alice|bob", "bob"));
        assert!(!patterns.full_match("alice|bob", "bobby"));
        assert!(!patterns.full_match("b", "abc"));
        assert!(patterns.full_match("^(alice|bob)$", "alice"));
        assert!(
            !patterns.full_match("(", "("),
            "an invalid pattern matches nothing"
        );
    }
}
