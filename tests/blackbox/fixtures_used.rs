//! Every fixture and bundled plugin the build produced is exercised by some test.

#[test]
fn every_fixture_and_bundled_plugin_is_used_by_a_test() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("blackbox");
    let mut sources = String::new();
    // Test modules may live in subdirectories (hardening/).
    let mut dirs = vec![dir];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("blackbox dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if entry.file_name() != "fixtures_used.rs" {
                sources.push_str(&std::fs::read_to_string(path).expect("source"));
            }
        }
    }
    for fixture in wharf_tests::FIXTURES {
        assert!(
            sources.contains(&format!("fixture(\"{}\")", fixture.name)),
            "no test uses fixture {}",
            fixture.name
        );
    }
    for bundled in wharf_tests::BUNDLED {
        assert!(
            sources.contains(&format!("\"{}\"", bundled.name)),
            "no test uses bundled plugin {}",
            bundled.name
        );
    }
    assert!(!wharf_tests::FIXTURES.is_empty() && !wharf_tests::BUNDLED.is_empty());
}
