//! Embeds the window's message catalogs: every `i18n/<language>.ftl` becomes one entry of the
//! `CATALOGS` table in `$OUT_DIR/catalogs.rs` (see `src/i18n`), so adding a language is adding
//! a file — no Rust code to change.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=i18n");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("i18n");
    let mut catalogs: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot list the catalogs in {}: {error}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "ftl"))
        .filter_map(|path| {
            let code = path.file_stem()?.to_str()?.to_owned();
            Some((code, path.to_str()?.to_owned()))
        })
        .collect();
    for (code, path) in &catalogs {
        assert!(
            !code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "a catalog is named after its language tag (e.g. `pt-BR.ftl`): {path}"
        );
        println!("cargo:rerun-if-changed={path}");
    }
    // English first: it is the fallback of every other language.
    catalogs.sort_by(|a, b| (a.0 != "en", &a.0).cmp(&(b.0 != "en", &b.0)));
    let mut out = String::from(
        "/// (language tag, Fluent source) of every catalog in `i18n/`, English first.\n\
         pub const CATALOGS: &[(&str, &str)] = &[\n",
    );
    for (code, path) in &catalogs {
        out.push_str(&format!("    ({code:?}, include_str!({path:?})),\n"));
    }
    out.push_str("];\n");
    let target =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("catalogs.rs");
    std::fs::write(&target, out)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", target.display()));
}
