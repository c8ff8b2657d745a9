//! The `marketplace` world: a catalog of installable application templates.
//!
//! Implement [`Meta`] and [`Marketplace`] on one type and call
//! [`export_marketplace!`](crate::export_marketplace) with it. Every call names the
//! [`Market`] connection it serves; templates cross normalized ([`Template`] and its
//! [`Component`]s), so the host never reads a store's own format. [`Violation`] is the same
//! type as [`step::Violation`](crate::step::Violation).

/// Bindings for the world's own export. `meta`, the other half of the world, is generated
/// once in [`crate::meta`]: wit-bindgen defines a crate-root macro per exported interface,
/// so generating `meta` in every world module would collide.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/plugin",
        inline: "package wharf:sdk-marketplace; world marketplace-exports { export wharf:plugin/catalog@0.1.0; }",
        world: "wharf:sdk-marketplace/marketplace-exports",
        with: {
            // One `Violation` type for every world, generated in `step`.
            "wharf:plugin/types@0.1.0": crate::step::bindings::wharf::plugin::types,
        },
        additional_derives: [PartialEq, Eq],
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "$crate::marketplace::bindings",
        type_section_suffix: "wharf-sdk",
    });
}

pub use crate::meta::{Meta, PluginInfo};
pub use crate::step::Violation;
pub use bindings::exports::wharf::plugin::catalog::{
    AppPage, AppQuery, AppSummary, CatalogError, Component, EnvVar, Guest as Marketplace, Market,
    Port, Resources, Template, VersionSummary, Volume,
};

impl CatalogError {
    /// `InvalidTemplate` with a single violation at `field` (a JSON path).
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        CatalogError::InvalidTemplate(vec![Violation::new(field, message)])
    }
}

/// Exports `$ty` (which implements [`Meta`] and [`Marketplace`]) as the marketplace world.
#[macro_export]
macro_rules! export_marketplace {
    ($ty:ident) => {
        // Exports exist only in the component. Native builds (the plugin's tests) skip them:
        // export names like `wharf:plugin/meta@0.1.0#info` are not valid native symbols.
        #[cfg(target_arch = "wasm32")]
        $crate::__export_meta!($ty);
        #[cfg(target_arch = "wasm32")]
        $crate::marketplace::bindings::__export_world!($ty);
        // Still check natively that the type implements the world, so `cargo test` catches it.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            const fn implements_world<T: $crate::meta::Meta + $crate::marketplace::Marketplace>() {}
            implements_world::<$ty>()
        };
    };
}
