//! `wharf:plugin/meta`, the self-description every world exports.
//!
//! Generated once, from a one-export inline world, rather than in each world module:
//! wit-bindgen defines a `#[macro_export]` macro per exported interface, so five copies
//! would collide at the crate root. Sharing it also makes [`PluginInfo`] one type for all
//! worlds. Each `export_*!` macro exports it next to the world's own interface; the
//! component-type sections of both halves are merged by wit-component into the full world.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/plugin",
        inline: "package wharf:sdk-meta; world meta-only { export wharf:plugin/meta@0.1.0; }",
        world: "wharf:sdk-meta/meta-only",
        additional_derives: [PartialEq, Eq],
        pub_export_macro: true,
        export_macro_name: "__export_meta_only",
        default_bindings_module: "$crate::meta::bindings",
        type_section_suffix: "wharf-sdk",
    });
}

/// The `meta` interface every plugin implements: `fn info() -> PluginInfo`.
pub use bindings::exports::wharf::plugin::meta::Guest as Meta;
/// What [`Meta::info`] returns; must match the plugin's `wharf-plugin.toml`.
pub use bindings::exports::wharf::plugin::meta::PluginInfo;

/// Exports `wharf:plugin/meta` for `$ty`; used by every `export_*!` macro.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_meta {
    ($ty:ident) => {
        $crate::meta::bindings::__export_meta_only!($ty);
    };
}
