//! Host-side bindings generated from wit/: the host interfaces once, then one module per
//! plugin world that reuses them.

/// `wharf:host@0.1.0`: the traits each host interface implements.
pub mod host {
    wasmtime::component::bindgen!({
        path: "../wit/host",
        world: "imports",
        // Cluster calls await kube-rs; to the guest they still block.
        imports: { "wharf:host/cluster": async, "wharf:host/platform": async },
        // A step's host calls are journaled as JSON so a replay can answer them again.
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

macro_rules! world_bindings {
    ($module:ident, $world:literal) => {
        pub mod $module {
            wasmtime::component::bindgen!({
                path: "../wit/plugin",
                world: $world,
                exports: { default: async },
                with: { "wharf:host": crate::runtime::bindings::host::wharf::host },
            });
        }
    };
}

world_bindings!(authorizer, "authorizer");
world_bindings!(marketplace, "marketplace");
world_bindings!(gray_router, "gray-router");
world_bindings!(step, "pipeline-step");
world_bindings!(artifact_policy, "artifact-policy");

pub use host::wharf::host::types::HostError;
