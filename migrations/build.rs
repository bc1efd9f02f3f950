//! Embeds every migration under `migrations/{sqlite,postgres}` so that one migrator applies the
//! whole shared folder (other crates' migrations included) without sqlx's `migrate!` macro, which
//! needs the `macros` feature the workspace leaves off.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    let mut out = String::new();
    for backend in ["sqlite", "postgres"] {
        let dir = root.join(backend);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<(i64, String, String)> = Vec::new();
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let Some(stem) = name.strip_suffix(".sql") else {
                    continue;
                };
                let Some((version, description)) = stem.split_once('_') else {
                    panic!("migration {name} is not named <version>_<description>.sql");
                };
                let Ok(version) = version.parse::<i64>() else {
                    panic!("migration {name} does not start with a number");
                };
                println!("cargo:rerun-if-changed={}", path.display());
                files.push((
                    version,
                    description.replace('_', " "),
                    path.display().to_string(),
                ));
            }
        }
        files.sort();
        let _ = writeln!(
            out,
            "pub(crate) const {}: &[(i64, &str, &str)] = &[",
            backend.to_uppercase()
        );
        for (version, description, path) in files {
            let _ = writeln!(
                out,
                "    ({version}, {description:?}, include_str!({path:?})),"
            );
        }
        out.push_str("];\n");
    }
    let dest = Path::new(&env::var("OUT_DIR").unwrap_or_default()).join("migrations.rs");
    if let Err(e) = fs::write(&dest, out) {
        panic!("writing {}: {e}", dest.display());
    }
}
