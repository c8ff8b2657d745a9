//! The `artifact-policy` world: decides what the artifact store accepts and keeps.
//!
//! Implement [`Meta`] and [`ArtifactPolicy`] on one type and call
//! [`export_artifact_policy!`](crate::export_artifact_policy) with it.

/// Bindings for the world's own export. `meta`, the other half of the world, is generated
/// once in [`crate::meta`]: wit-bindgen defines a crate-root macro per exported interface,
/// so generating `meta` in every world module would collide.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/plugin",
        inline: "package wharf:sdk-artifact-policy; world artifact-policy-exports { export wharf:plugin/policy@0.1.0; }",
        world: "wharf:sdk-artifact-policy/artifact-policy-exports",
        additional_derives: [PartialEq, Eq],
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "$crate::artifact_policy::bindings",
        type_section_suffix: "wharf-sdk",
    });
}

pub use crate::meta::{Meta, PluginInfo};
pub use bindings::exports::wharf::plugin::policy::{
    Artifact, Guest as ArtifactPolicy, PolicyError, Usage, Verdict,
};

/// Exports `$ty` (which implements [`Meta`] and [`ArtifactPolicy`]) as the artifact-policy world.
#[macro_export]
macro_rules! export_artifact_policy {
    ($ty:ident) => {
        // Exports exist only in the component. Native builds (the plugin's tests) skip them:
        // export names like `wharf:plugin/meta@0.1.0#info` are not valid native symbols.
        #[cfg(target_arch = "wasm32")]
        $crate::__export_meta!($ty);
        #[cfg(target_arch = "wasm32")]
        $crate::artifact_policy::bindings::__export_world!($ty);
        // Still check natively that the type implements the world, so `cargo test` catches it.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            const fn implements_world<
                T: $crate::meta::Meta + $crate::artifact_policy::ArtifactPolicy,
            >() {
            }
            implements_world::<$ty>()
        };
    };
}
