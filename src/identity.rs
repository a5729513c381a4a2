//! Which name a folder's stack goes by on the engine, so that several
//! checkouts (clones, `git worktree`s) of one project are several projects.
//!
//! # How it works
//!
//! A project is its name plus its folder (the `devenv.project-dir` label on
//! every container, network and volume). The name from `dev.toml` (or the
//! folder's) is the first choice; when a devenv project of that name
//! belongs to another folder that still exists, this checkout takes its
//! folder's own name (`shopdev`, `feature-x`), and when that is another
//! folder's too (a second clone in a folder also called `shop`), the
//! folder's name plus `-2`, `-3`, … (`shop-2`). The choice is
//! stable without any state of devenv's own: every command first looks for
//! one of those names whose objects carry this folder's label, and only
//! then takes the first name nobody else holds. The command that takes a
//! new name claims it at once, under a lock, by creating the project's
//! network, so two checkouts starting at the same moment cannot both pick
//! it. `-p NAME` skips all this: it names the project outright.
//!
//! Images built from the stack (`shop-app:latest`) keep the name from the
//! file: checkouts share them rather than each building its own.

use std::path::Path;

use crate::config::model::Stack;
use crate::engine::{project_dir, Engine, EngineError, ProjectClaim};
use crate::report::Reporter;

/// How many numbered names (`shop-2` … `shop-99`) a checkout may try.
const NUMBERED: u32 = 99;

/// The names a checkout in folder `dir` may go by, in order of preference:
/// the name from the file (`base`), the folder's own name (lowercased,
/// other characters turned into `-`), then that name plus `-2`, `-3`, ….
pub fn candidates(base: &str, dir: &str) -> Vec<String> {
    let folder: String = Path::new(dir)
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let folder = folder.trim_matches(['-', '_']);
    let stem = if folder.is_empty() { base } else { folder };
    let mut names = vec![base.to_string()];
    if stem != base {
        names.push(stem.to_string());
    }
    names.extend((2..=NUMBERED).map(|n| format!("{stem}-{n}")));
    names
}

/// What [`choose`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub name: String,
    /// Nothing of this folder's is on the engine under `name` yet: the
    /// caller that creates something claims it first.
    pub unclaimed: bool,
    /// The folder that holds the name from the file, when this is another name.
    pub because: Option<String>,
}

/// The name for the checkout in `ours`: the first candidate whose objects
/// are this folder's, else the first one no other folder that still exists
/// holds. Objects without a folder label, or whose folder is gone, hold
/// nothing (devenv adopts them, as `up` does).
pub fn choose(
    base: &str,
    ours: &str,
    claims: &[ProjectClaim],
    exists: &dyn Fn(&str) -> bool,
) -> Choice {
    let names = candidates(base, ours);
    let holder = |name: &str| {
        claims
            .iter()
            .filter(|c| c.project == name)
            .filter_map(|c| c.dir.as_deref())
            .find(|d| *d != ours && exists(d))
            .map(str::to_string)
    };
    let because = holder(base);
    if let Some(name) = names.iter().find(|n| {
        claims
            .iter()
            .any(|c| c.project == **n && c.dir.as_deref() == Some(ours))
    }) {
        return Choice {
            name: name.clone(),
            unclaimed: false,
            because: (name != base).then_some(because).flatten(),
        };
    }
    let name = names
        .iter()
        .find(|n| holder(n).is_none())
        .unwrap_or_else(|| names.last().expect("there is always a candidate"))
        .clone();
    Choice {
        because: (name != base).then_some(because).flatten(),
        name,
        unclaimed: true,
    }
}

/// Gives `stack` the name its folder goes by on the engine (see the module
/// docs); unless `explicit` (`-p NAME`), which is taken as it is. With
/// `claim` (the command creates containers or networks) a name not yet on
/// the engine is claimed at once, and a name other than the file's is said.
pub async fn resolve(
    engine: &Engine,
    stack: &mut Stack,
    explicit: bool,
    claim: bool,
    reporter: &dyn Reporter,
) -> Result<(), EngineError> {
    if explicit {
        return Ok(());
    }
    let base = stack.project.clone();
    let ours = project_dir(stack);
    // Two checkouts starting at once must not both take a free name: the
    // choice and its claim happen under one lock per name from the file.
    let _lock = if claim { name_lock(&base) } else { None };
    let claims = engine.project_claims().await?;
    let choice = choose(&base, &ours, &claims, &|d| Path::new(d).exists());
    stack.rename(&choice.name);
    if !choice.unclaimed {
        return Ok(());
    }
    if claim {
        engine
            .ensure_network(&crate::plan::spec::network(&stack.project, &ours))
            .await?;
    }
    if let Some(theirs) = &choice.because {
        // Said by the command that takes the name, and by those that only
        // look before it is taken (`up --dry-run`, `ps`), so a plan's names
        // are never a surprise.
        let is = if claim { "is" } else { "would be" };
        reporter.notice(&format!(
            "project `{base}` is the checkout in `{theirs}`: this one {is} project `{}` (`devenv -p NAME …` picks another name)",
            choice.name
        ));
    }
    Ok(())
}

/// Holds the lock for choosing a name derived from `base` while it lives;
/// `None` when devenv's private folder is not usable (the claim is then
/// only as good as the engine's own checks).
fn name_lock(base: &str) -> Option<std::fs::File> {
    let dir = crate::scratch::private_dir().ok()?;
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{base}.name.lock")))
        .ok()?;
    file.lock().ok()?;
    Some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(project: &str, dir: Option<&str>) -> ProjectClaim {
        ProjectClaim {
            project: project.into(),
            dir: dir.map(str::to_string),
        }
    }

    #[test]
    fn r26_candidates_are_the_files_name_the_folders_then_numbered() {
        let c = candidates("shop", "/home/a/Feature X");
        assert_eq!(c[..3], ["shop", "feature-x", "feature-x-2"]);
        assert_eq!(candidates("shop", "/src/shopdev")[1], "shopdev");
        assert_eq!(candidates("shop", "/src/shop-review")[1], "shop-review");
        // A folder named like the project: numbered straight away.
        let c = candidates("shop", "/tmp/b/shop");
        assert_eq!(c[..3], ["shop", "shop-2", "shop-3"]);
        assert_eq!(c.last().unwrap(), "shop-99");
    }

    #[test]
    fn a_free_name_is_the_files_own() {
        let c = choose("shop", "/a/shop", &[], &|_| true);
        assert_eq!(
            c,
            Choice {
                name: "shop".into(),
                unclaimed: true,
                because: None
            }
        );
        let c = choose(
            "shop",
            "/a/shop",
            &[claim("shop", Some("/a/shop"))],
            &|_| true,
        );
        assert!(!c.unclaimed);
    }

    #[test]
    fn a_name_another_folder_holds_gives_a_name_with_the_folder_and_it_stays() {
        let others = [claim("shop", Some("/a/shop"))];
        let c = choose("shop", "/b/feature", &others, &|_| true);
        assert_eq!(c.name, "feature");
        assert!(c.unclaimed);
        assert_eq!(c.because.as_deref(), Some("/a/shop"));
        // Once claimed, every later command finds it, even when `shop` is free again.
        let claimed = [claim("feature", Some("/b/feature"))];
        let c = choose("shop", "/b/feature", &claimed, &|_| true);
        assert_eq!((c.name.as_str(), c.unclaimed), ("feature", false));
    }

    #[test]
    fn a_third_checkout_in_a_folder_of_the_same_name_gets_the_next_number() {
        let others = [
            claim("shop", Some("/a/shop")),
            claim("shop-2", Some("/b/shop")),
        ];
        let c = choose("shop", "/c/shop", &others, &|_| true);
        assert_eq!(c.name, "shop-3");
        let others = [
            claim("shop", Some("/a/shop")),
            claim("feature", Some("/b/feature")),
        ];
        assert_eq!(
            choose("shop", "/c/feature", &others, &|_| true).name,
            "feature-2"
        );
    }

    #[test]
    fn gone_folders_and_unlabelled_objects_hold_nothing() {
        let c = choose(
            "shop",
            "/b/shop",
            &[claim("shop", Some("/moved/away"))],
            &|d| d != "/moved/away",
        );
        assert_eq!(c.name, "shop");
        let c = choose("shop", "/b/shop", &[claim("shop", None)], &|_| true);
        assert_eq!(c.name, "shop");
    }
}
