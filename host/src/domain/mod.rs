//! The application model: projects now; apps, environments and deployments arrive with
//! their issues.

pub mod projects;
