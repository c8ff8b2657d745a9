//! Compiled-component cache: `.cwasm` files named `<sha256>-<engine hash>.cwasm`.
//!
//! Compiling a component takes 50–150 ms; loading its precompiled form takes well under a
//! millisecond, so a restart with a warm cache loads every enabled plugin without
//! recompiling. The engine hash covers the wasmtime version and every codegen setting, so
//! a changed engine simply misses the cache instead of loading incompatible code.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether a component came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Compiled,
}

pub struct ComponentCache {
    dir: PathBuf,
    engine_hash: String,
}

impl ComponentCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir,
            engine_hash: format!("{:016x}", hasher.finish()),
        })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.cwasm", self.engine_hash))
    }

    /// Loads the compiled component for `sha256`, compiling `wasm()` on a miss.
    /// Blocking: call from a blocking thread.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        sha256: &str,
        wasm: impl FnOnce() -> Result<Vec<u8>, String>,
    ) -> Result<(Component, CacheOutcome), String> {
        let path = self.path(sha256);
        if path.exists() {
            // SAFETY: files in the cache directory are written only by `store` below,
            // from `Component::serialize` of this same engine configuration (the engine
            // hash is part of the name).
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable cache entry")
                }
            }
        }
        let bytes = wasm()?;
        let component = Component::new(engine, &bytes).map_err(|e| format!("{e:#}"))?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), error = %e, "could not write the compiled-component cache");
        }
        Ok((component, CacheOutcome::Compiled))
    }

    fn store(&self, path: &PathBuf, component: &Component) -> Result<(), String> {
        let bytes = component.serialize().map_err(|e| e.to_string())?;
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
        std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, path).map_err(|e| e.to_string())
    }
}
