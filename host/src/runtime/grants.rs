//! Grants: which imports a component may have, and the linker that provides exactly those.
//!
//! Checked once when a plugin version is enabled (the Spin "configure" step): every import
//! of the component must be base WASI or covered by an approved grant, otherwise enabling
//! fails with a message naming the import. The linker then links only the granted Wharf
//! interfaces; scoped checks (kv caps, outbound hosts, cluster kinds and namespaces) happen
//! inside each interface.

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::bindings::host::wharf::host as wit;
use super::manifest::Grants;
use super::state::{ClusterData, ConfigData, KvData, LogData, PlatformData, PluginState};

/// What an import needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Requirement {
    /// Base WASI every plugin gets (clocks, random, io, cli, filesystem without preopens).
    Always,
    Log,
    Kv,
    Config,
    Cluster,
    Platform,
    Http,
    /// Never linked.
    Refused(&'static str),
}

fn requirement(import: &str) -> Requirement {
    let interface = import.split('@').next().unwrap_or(import);
    match interface {
        // Types-only interfaces: nothing to call, imported because other interfaces use them.
        "wharf:host/types" | "wharf:plugin/types" => Requirement::Always,
        "wharf:host/log" => Requirement::Log,
        "wharf:host/kv" => Requirement::Kv,
        "wharf:host/config" => Requirement::Config,
        "wharf:host/cluster" => Requirement::Cluster,
        "wharf:host/platform" => Requirement::Platform,
        "wasi:http/outgoing-handler" | "wasi:http/types" => Requirement::Http,
        i if i.starts_with("wasi:sockets/") => {
            Requirement::Refused("plugins reach the network only through wasi:http")
        }
        i if [
            "wasi:cli/",
            "wasi:io/",
            "wasi:clocks/",
            "wasi:random/",
            "wasi:filesystem/",
        ]
        .iter()
        .any(|p| i.starts_with(p)) =>
        {
            Requirement::Always
        }
        _ => Requirement::Refused("Wharf does not provide it"),
    }
}

/// An import the approved grants do not cover.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the component imports `{import}`, {reason}")]
pub struct UngrantedImport {
    pub import: String,
    pub reason: String,
}

/// Checks every import of `component` against `grants`.
pub fn check_imports(
    engine: &Engine,
    component: &Component,
    grants: &Grants,
) -> Result<(), UngrantedImport> {
    for (import, _) in component.component_type().imports(engine) {
        let granted = match requirement(import) {
            Requirement::Always => true,
            Requirement::Log => grants.log.is_some(),
            Requirement::Kv => grants.kv.is_some(),
            Requirement::Config => grants.config.is_some(),
            Requirement::Cluster => grants.cluster.is_some(),
            Requirement::Platform => grants.platform.is_some(),
            Requirement::Http => grants.http.is_some(),
            Requirement::Refused(why) => {
                return Err(UngrantedImport {
                    import: import.to_owned(),
                    reason: format!("which is never granted: {why}"),
                });
            }
        };
        if !granted {
            return Err(UngrantedImport {
                import: import.to_owned(),
                reason: "which was not granted: approve the grant when enabling".to_owned(),
            });
        }
    }
    Ok(())
}

/// Interfaces that only define types: an empty instance satisfies their import.
const TYPES_ONLY_INTERFACES: [&str; 2] = ["wharf:host/types@0.1.0", "wharf:plugin/types@0.1.0"];

/// The linker for a plugin with `grants`: base WASI plus the granted interfaces.
pub fn linker_for(engine: &Engine, grants: &Grants) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    for types_only in TYPES_ONLY_INTERFACES {
        linker.instance(types_only)?;
    }
    if grants.log.is_some() {
        wit::log::add_to_linker::<PluginState, LogData>(&mut linker, PluginState::log_view)?;
    }
    if grants.kv.is_some() {
        wit::kv::add_to_linker::<PluginState, KvData>(&mut linker, PluginState::kv_view)?;
    }
    if grants.config.is_some() {
        wit::config::add_to_linker::<PluginState, ConfigData>(
            &mut linker,
            PluginState::config_view,
        )?;
    }
    if grants.cluster.is_some() {
        wit::cluster::add_to_linker::<PluginState, ClusterData>(
            &mut linker,
            PluginState::cluster_view,
        )?;
    }
    if grants.platform.is_some() {
        wit::platform::add_to_linker::<PluginState, PlatformData>(
            &mut linker,
            PluginState::platform_view,
        )?;
    }
    if grants.http.is_some() {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    }
    Ok(linker)
}

/// Grants covering every Wharf interface, used to inspect a package at install time.
pub fn everything() -> Grants {
    Grants {
        log: Some(Default::default()),
        kv: Some(Default::default()),
        config: Some(Default::default()),
        http: Some(Default::default()),
        cluster: Some(Default::default()),
        platform: Some(Default::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_map_to_their_grants() {
        assert_eq!(requirement("wharf:host/kv@0.1.0"), Requirement::Kv);
        assert_eq!(
            requirement("wharf:host/cluster@0.1.0"),
            Requirement::Cluster
        );
        assert_eq!(
            requirement("wasi:http/outgoing-handler@0.2.6"),
            Requirement::Http
        );
        assert_eq!(requirement("wasi:cli/stderr@0.2.6"), Requirement::Always);
        assert!(matches!(
            requirement("wasi:sockets/tcp@0.2.6"),
            Requirement::Refused(_)
        ));
        assert!(matches!(
            requirement("acme:evil/thing"),
            Requirement::Refused(_)
        ));
    }
}
