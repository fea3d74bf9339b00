//! The committed JSON Schemas match the Rust types. Set `HOOKLINE_BLESS=1` to rewrite them.

use std::path::PathBuf;

#[test]
fn committed_json_schemas_match_the_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("json");
    let bless = std::env::var_os("HOOKLINE_BLESS").is_some();
    for (file, schema) in hookline_schemas::topic_schemas() {
        let path = dir.join(file);
        let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|err| {
            panic!(
                "{} unreadable ({err}); run with HOOKLINE_BLESS=1",
                path.display()
            )
        });
        assert_eq!(
            committed, generated,
            "{file} is stale; run with HOOKLINE_BLESS=1"
        );
    }
}
