//! Embeds every scenario file of `scenarios/` into the harness binary, so `--scenario NAME`
//! works from any directory and a new file joins the catalogue with the next build.

use std::fmt::Write;
use std::path::Path;

fn main() {
    // Read at run time, not baked in with env!(): a build-script binary copied from another
    // checkout's target/ would otherwise embed that checkout's scenarios.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR set by cargo");
    let dir = Path::new(&manifest).join("../scenarios");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the scenarios/ directory sits beside harness/")
        .map(|e| e.expect("readable scenarios/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut out = String::from("/// (name, file content) of every scenario in `scenarios/`, sorted by name.\npub const CATALOGUE: &[(&str, &str)] = &[\n");
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 scenario file name");
        let path = path.canonicalize().expect("scenario path");
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR set by cargo")).join("catalogue.rs");
    std::fs::write(dest, out).expect("write catalogue.rs");
}
