//! The integration tests, as one binary: the library and its dependencies
//! are linked once, not once per file (ripgrep's `tests/tests.rs`). Each
//! file beside this one is a module; `support` holds what they share.
//!
//! Run one area with `cargo test --test tests e2e::`, one test by name
//! with `cargo test --test tests NAME`.

mod support;

mod checkouts;
mod ci;
mod cli;
mod day;
mod e2e;
mod endpoints;
mod everyday;
mod export;
mod fresh_clone;
mod import;
mod import_exact;
mod laravel;
mod plan;
mod robust;
mod router;
mod safety;
mod secondday;
mod session;
mod testrun;
mod ui;
mod watch;

/// A test file that is not a module here would silently never run.
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let here = include_str!("tests.rs");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "rs")
            && stem != "tests"
            && !here.contains(&format!("\nmod {stem};\n"))
        {
            missing.push(stem);
        }
    }
    assert!(
        missing.is_empty(),
        "add `mod NAME;` to tests/tests.rs for: {missing:?}"
    );
}
