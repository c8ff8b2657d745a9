//! The plugins built from plugins/ by the build script.

/// A plugin embedded in the binary.
pub struct Bundled {
    pub name: &'static str,
    pub manifest: &'static str,
    pub component: &'static [u8],
}

/// A test fixture component on disk.
pub struct Fixture {
    pub name: &'static str,
    pub manifest_path: &'static str,
    pub component_path: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
