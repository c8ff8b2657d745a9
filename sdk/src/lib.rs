//! # wharf-sdk: write Wharf plugins in Rust
//!
//! A Wharf plugin is a WebAssembly component (target `wasm32-wasip2`) implementing one of
//! the worlds in `wit/plugin/plugin.wit`. This crate owns the guest side of that contract:
//!
//! - one module per world — [`step`], [`authorizer`], [`marketplace`], [`gray_router`],
//!   [`artifact_policy`] — re-exporting the trait to implement and its types under short
//!   names, plus an `export_*!` macro at the crate root ([`export_step!`] …);
//! - helpers for the host interfaces: [`log`] (and the [`trace!`] … [`error!`] macros),
//!   [`kv`], [`config`], [`cluster`] (Kubernetes objects within the granted kinds and
//!   namespaces), [`platform`] (actions on Wharf itself for pipeline steps — deploys
//!   through change orders, config items, artifacts, user decisions — authorized as the
//!   run's starter), and [`http`] (outbound HTTP through `wasi:http`);
//! - [`harness`], an in-memory host so plugin code runs under plain `cargo test`.
//!
//! A component imports only the host interfaces its code actually calls, and the admin only
//! has to grant those: a plugin that never logs does not import `wharf:host/log`.
//!
//! ## A complete plugin
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "wharf-plugin-hello"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib", "rlib"]   # cdylib: the component; rlib: native tests
//!
//! [dependencies]
//! wharf-sdk = { path = "../../sdk" }
//! serde_json = "1"
//! ```
//!
//! `wharf-plugin.toml` next to it (the host reads it on install):
//!
//! ```toml
//! id = "hello"
//! version = "0.1.0"
//! world = "step"
//! description = "Greets someone"
//!
//! [grants]
//! log = {}
//! config = {}
//! ```
//!
//! `src/lib.rs`:
//!
//! ```ignore
//! use serde_json::json;
//! use wharf_sdk::step::{Descriptor, Meta, Outcome, PluginInfo, RunContext, Step, StepError};
//!
//! pub struct Hello;
//!
//! impl Meta for Hello {
//!     fn info() -> PluginInfo {
//!         PluginInfo {
//!             id: "hello".into(),
//!             version: env!("CARGO_PKG_VERSION").into(),
//!             description: "Greets someone".into(),
//!             world: "step".into(),
//!         }
//!     }
//! }
//!
//! impl Step for Hello {
//!     fn describe() -> Descriptor {
//!         Descriptor {
//!             kind: "hello".into(),
//!             version: "0.1.0".into(),
//!             description: "Greets someone".into(),
//!             params_schema: r#"{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}"#.into(),
//!             outputs: vec![],
//!             can_compensate: false,
//!         }
//!     }
//!
//!     fn run(_ctx: RunContext, params_json: String) -> Result<Outcome, StepError> {
//!         let params: serde_json::Value = serde_json::from_str(&params_json)
//!             .map_err(|e| StepError::invalid_param("", e.to_string()))?;
//!         let name = params["name"]
//!             .as_str()
//!             .ok_or_else(|| StepError::invalid_param("name", "must be a string"))?;
//!         let greeting: String = wharf_sdk::config::get("greeting").unwrap_or_else(|| "Hello".into());
//!         wharf_sdk::info!("greeting {name}");
//!         Ok(Outcome::done_json(&json!({ "message": format!("{greeting}, {name}!") })))
//!     }
//! }
//!
//! wharf_sdk::export_step!(Hello);
//! ```
//!
//! Build the component with
//! `cargo build --release --target wasm32-wasip2` → `target/wasm32-wasip2/release/wharf_plugin_hello.wasm`.
//!
//! ## Testing under the harness
//!
//! On native targets the helpers talk to a [`harness::Host`] instead of the WIT imports:
//!
//! ```ignore
//! #[cfg(test)]
//! mod tests {
//!     use super::*;
//!     use wharf_sdk::harness::{self, Host};
//!
//!     #[test]
//!     fn greets_with_configured_greeting() {
//!         let host = Host::new().config(json!({ "greeting": "Hi" }));
//!         let outcome = host.run(|| Hello::run(harness::run_context(), r#"{"name":"Ada"}"#.into()));
//!         assert_eq!(outcome, Ok(Outcome::done_json(&json!({ "message": "Hi, Ada!" }))));
//!         assert_eq!(host.log_messages(), vec!["greeting Ada".to_string()]);
//!     }
//!
//!     #[test]
//!     fn manifest_matches_info() {
//!         let manifest = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wharf-plugin.toml"));
//!         harness::assert_manifest_matches(manifest, &Hello::info());
//!     }
//! }
//! ```
//!
//! and `cargo test` runs them. `plugins/hello` in the Wharf repository is the full example.
//!
//! ## Panics
//!
//! A panic in a plugin aborts the call: the host sees a trap and reports the call failed.
//! Return errors (`StepError`, `Outcome::Failed`, …) for anything a user can fix.

// The harness (and links to it) only exist on native targets.
#![cfg_attr(target_arch = "wasm32", allow(rustdoc::broken_intra_doc_links))]

mod bindings;
mod error;

pub mod artifact_policy;
pub mod authorizer;
pub mod cluster;
pub mod config;
pub mod gray_router;
pub mod http;
pub mod kv;
pub mod log;
pub mod marketplace;
pub mod meta;
pub mod platform;
pub mod step;

#[cfg(not(target_arch = "wasm32"))]
pub mod harness;

pub use error::HostError;
