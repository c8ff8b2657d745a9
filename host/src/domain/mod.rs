//! The application model: projects, clusters, environments, config items, apps, deploy
//! specs, deployments and the change orders that alter them.

pub mod apps;
pub mod artifacts;
pub mod changes;
pub mod clusters;
pub mod config_items;
pub mod dependents;
pub mod deploy_configs;
pub mod deployments;
pub mod environments;
pub mod gray;
pub mod market;
pub mod pipelines;
pub mod projects;
pub mod render;
pub mod rollout;
pub mod spec;
pub mod workloads;
