//! The application model: projects now; apps, environments and deployments arrive with
//! their issues.

pub mod clusters;
pub mod config_items;
pub mod environments;
pub mod projects;
