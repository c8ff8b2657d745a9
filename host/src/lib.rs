//! Wharf host: storage, identity, the HTTP surface and the WebAssembly plugin runtime.

pub mod api;
pub mod artifacts;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod domain;
mod input;
pub mod runtime;
pub mod serve;
pub mod store;
