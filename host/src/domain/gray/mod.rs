//! Gray (canary) releases: the host's half of the gray-router domain. The rules
//! themselves — their shape, what a provider can express, where a request goes — belong
//! to the environment's gray-router plugin; the host decides when to ask it and what it
//! may write to the cluster.
//!
//! - [`providers`]: which plugin serves an environment, and checking it exists.
//! - [`release`]: the gray state of a change order and the render target of each step.
//! - [`objects`]: checking rendered objects, applying and removing them through kube-rs.
//! - [`rules`]: validating and evaluating rules for the API (dry runs).

pub mod objects;
pub mod providers;
pub mod release;
pub mod rules;
