//! Embeds `stacks/` (presets) and `docker/` (stand-in build contexts) into the
//! binary, so `use = "postgres"` and the offline fallbacks work for projects
//! that do not carry their own copies.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Wheels are downloaded per machine by the contexts' prepare scripts.
        if name == "wheels" || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let mut files = Vec::new();
    for dir in ["stacks", "docker"] {
        println!("cargo:rerun-if-changed={dir}");
        walk(&root.join(dir), &mut files);
    }
    let mut hasher = DefaultHasher::new();
    let mut entries = String::new();
    for file in &files {
        // A folder's own mtime misses edits to files inside it.
        println!("cargo:rerun-if-changed={}", file.display());
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        rel.hash(&mut hasher);
        std::fs::read(file).unwrap().hash(&mut hasher);
        entries.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?})),\n",
            file.display().to_string()
        ));
    }
    let code = format!(
        "/// Files under `stacks/` and `docker/`, by path relative to the repository.\n\
         pub static FILES: &[(&str, &[u8])] = &[\n{entries}];\n\
         /// A hash of all of them: names the folder they are unpacked to.\n\
         pub const HASH: &str = \"{:016x}\";\n",
        hasher.finish()
    );
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("assets.rs");
    std::fs::write(out, code).unwrap();
}
