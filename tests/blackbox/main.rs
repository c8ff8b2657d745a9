//! Black-box tests: each starts a real `wharf serve` on loopback and drives it over REST
//! or the CLI, the way a user or an admin would.

mod api_surface;
mod apps;
mod audit;
mod authz;
mod cli;
mod clusters;
mod deploy_configs;
mod durability;
mod environments;
mod fixtures_used;
mod gray;
mod hardening;
mod hostile;
mod identity;
mod image_policy;
mod lifecycle;
mod market;
mod packages;
mod pipelines;
mod plugin_cluster;
mod projects;
mod registry;
mod rollouts;
