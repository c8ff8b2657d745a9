//! `market-ram`: the Rainbond application model ("RAM", the template JSON of a Rainbond
//! app store, rainstore.md §4, §6.1, §7) read into Wharf's normalized [`Template`], for
//! the marketplace plugins (`market-rainstore`, `market-local`, and anyone's).
//!
//! [`parse`] checks every rule and reports every violation at its JSON path
//! (`apps[1].port_map_list[0].container_port`); what it returns is what the host
//! installs, so the host never reads the store's format:
//!
//! ```
//! use market_ram::{Identity, parse};
//!
//! let template = parse(r#"{
//!     "group_key": "a1", "group_name": "Hello", "group_version": "1.0",
//!     "apps": [{
//!         "service_key": "web", "service_id": "0f3c", "service_cname": "Web",
//!         "image": "nginx:1.27", "extend_method": "stateless",
//!         "extend_method_map": {"min_node": 2, "init_memory": 256},
//!         "port_map_list": [{"container_port": "80", "protocol": "HTTP", "is_outer_service": true}]
//!     }]
//! }"#, Identity::Required).expect("a valid template");
//! let web = &template.components[0];
//! assert_eq!(web.extend_method, "stateless_multiple");
//! assert_eq!((web.resources.instances, web.resources.memory_mb, web.resources.cpu_millicores), (2, 256, 40));
//! assert_eq!(web.ports[0].protocol, "http");
//!
//! let broken = parse(r#"{"apps": [{"service_key": "web", "service_id": "1",
//!     "image": "x", "extend_method": "stateless",
//!     "port_map_list": [{"container_port": 0}]}]}"#, Identity::FromStore).unwrap_err();
//! assert_eq!(broken.0[0].field, "apps[0].port_map_list[0].container_port");
//! ```
//!
//! Also here because every catalog needs them: [`version::compare`] (Rainbond's version
//! order) and [`timestamp`] (RFC 3339 in UTC). With feature `wit`, [`wit`] converts to the
//! marketplace world's types.

mod component;
mod dependencies;
mod fields;
pub mod model;
mod parse;
pub mod timestamp;
pub mod version;
mod violation;

#[cfg(feature = "wit")]
pub mod wit;

pub use model::{Component, EnvVar, Port, Resources, Template, VersionSummary, Volume};
pub use parse::{Identity, MAX_COMPONENTS, MAX_TEMPLATE_BYTES, from_value, parse};
pub use violation::{Violation, Violations};
