//! Hardening (issue 11): see `mod.rs` for what this file proves.
