//! Builds the guest plugins in ../plugins to wasm32-wasip2 components and generates the
//! list of them: bundled plugins (plugins/<name>) are embedded in the binary, hostile
//! test fixtures (plugins/fixtures/<name>) are referenced by path for the tests.
//!
//! The nested cargo uses its own target dir (sharing ours would deadlock on its lock) and
//! none of the outer build's RUSTFLAGS. The wasm target is installed when missing.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("workspace root").to_path_buf();
    let plugins = root.join("plugins");
    for watched in ["plugins", "sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    ensure_wasm_target();

    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    // OUT_DIR is <target>/<profile>/build/<pkg>/out; keep guest builds beside the profile.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(|t| t.join("wharf-plugins"))
        .unwrap_or_else(|| out_dir.join("wharf-plugins"));

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--workspace",
            "--target",
            TARGET,
            "--manifest-path",
        ])
        .arg(plugins.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .expect("running cargo for the plugins workspace");
    assert!(status.success(), "building plugins/ for {TARGET} failed");

    let wasm_dir = target_dir.join(TARGET).join("release");
    let mut bundled = Vec::new();
    let mut fixtures = Vec::new();
    for (dir, is_fixture) in plugin_dirs(&plugins) {
        let crate_name = package_name(&dir.join("Cargo.toml"));
        let wasm = wasm_dir.join(format!("{}.wasm", crate_name.replace('-', "_")));
        assert!(wasm.exists(), "{} was not built", wasm.display());
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("plugin dir name")
            .to_owned();
        let entry = (name, dir.join("wharf-plugin.toml"), wasm);
        if is_fixture {
            fixtures.push(entry)
        } else {
            bundled.push(entry)
        }
    }

    let mut code = String::new();
    code.push_str("/// Plugins embedded in the binary, installed and enabled on first start.\n");
    code.push_str("pub const BUNDLED: &[Bundled] = &[\n");
    for (name, manifest, wasm) in &bundled {
        writeln!(
            code,
            "    Bundled {{ name: {name:?}, manifest: include_str!({:?}), component: include_bytes!({:?}) }},",
            manifest.display().to_string(),
            wasm.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n\n/// Hostile and helper fixtures for tests, by path.\n");
    code.push_str("pub const FIXTURES: &[Fixture] = &[\n");
    for (name, manifest, wasm) in &fixtures {
        writeln!(
            code,
            "    Fixture {{ name: {name:?}, manifest_path: {:?}, component_path: {:?} }},",
            manifest.display().to_string(),
            wasm.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    fs::write(out_dir.join("plugins.rs"), code).expect("writing plugins.rs");
}

/// Every crate directory under plugins/ (bundled) and plugins/fixtures/ (fixtures).
fn plugin_dirs(plugins: &Path) -> Vec<(PathBuf, bool)> {
    let mut dirs = Vec::new();
    for (parent, is_fixture) in [
        (plugins.to_path_buf(), false),
        (plugins.join("fixtures"), true),
    ] {
        let Ok(entries) = fs::read_dir(&parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.join("wharf-plugin.toml").exists() {
                dirs.push((path, is_fixture));
            }
        }
    }
    dirs.sort();
    dirs
}

fn package_name(cargo_toml: &Path) -> String {
    let text = fs::read_to_string(cargo_toml).expect("reading a plugin's Cargo.toml");
    text.lines()
        .skip_while(|l| l.trim() != "[package]")
        .find_map(|l| {
            let (key, value) = l.split_once('=')?;
            (key.trim() == "name").then(|| value.trim().trim_matches('"').to_owned())
        })
        .expect("a [package] name")
}

fn ensure_wasm_target() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
        })
        .unwrap_or(false);
    if !installed {
        let status = Command::new("rustup")
            .args(["target", "add", TARGET])
            .status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "the {TARGET} target is missing and `rustup target add {TARGET}` failed"
        );
    }
}
