//! Raw guest bindings for the host imports (`wharf:host/imports`).
//!
//! Generated once here and mapped into every world module with `with:`, so `HostError`,
//! `log::Level` and `kv::KeyPage` are a single type whichever world a plugin implements.
//! Plugin code goes through the `log`/`kv`/`config`/`cluster`/`platform` helpers instead,
//! which also serve the native test harness. A core module only imports a host function
//! when it is called, so a plugin's component imports just the interfaces it uses.

wit_bindgen::generate!({
    path: "../wit/host",
    world: "wharf:host/imports",
    with: {
        "wharf:host/types@0.1.0/host-error": crate::HostError,
        "wharf:host/cluster@0.1.0/cluster-error": crate::cluster::ClusterError,
        "wharf:host/platform@0.1.0/platform-error": crate::platform::PlatformError,
    },
    additional_derives: [PartialEq, Eq],
    type_section_suffix: "wharf-sdk",
});
