//! The planner: pure functions from the resolved model and the engine's
//! actual state to what `up` must do. No I/O.
//!
//! # How it works
//!
//! The dependency graph is cut into levels (Kahn's algorithm): every service
//! in a level depends only on services in earlier levels, so a level starts
//! in parallel once the one before it meets its conditions. A cycle is
//! reported whole (`a → b → a`), found by a depth-first walk.
//!
//! Desired state is a hash per service of its resolved config plus the id of
//! the image it runs; the container carries that hash as a label. Diffing
//! hashes (not fields) is what makes a no-op `up` cheap and exact: same hash,
//! same container; any change, recreate that one service alone.

use indexmap::IndexMap;
use sha2::{Digest, Sha256};

use crate::config::model::Service;

/// Services grouped so that each depends only on earlier groups; or the cycle.
pub fn levels(deps: &IndexMap<String, Vec<String>>) -> Result<Vec<Vec<String>>, Vec<String>> {
    if let Some(cycle) = find_cycle(deps) {
        return Err(cycle);
    }
    let mut level_of: IndexMap<&str, usize> = IndexMap::new();
    // Without cycles, repeated relaxation settles in at most n rounds.
    for _ in 0..=deps.len() {
        let mut changed = false;
        for (name, ds) in deps {
            let lvl = ds
                .iter()
                .filter_map(|d| level_of.get(d.as_str()).map(|l| l + 1))
                .max()
                .unwrap_or(0);
            let all_known = ds
                .iter()
                .all(|d| level_of.contains_key(d.as_str()) || !deps.contains_key(d));
            if all_known && level_of.get(name.as_str()) != Some(&lvl) {
                level_of.insert(name, lvl);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let depth = level_of.values().max().map_or(0, |m| m + 1);
    let mut out = vec![Vec::new(); depth];
    for name in deps.keys() {
        out[level_of[name.as_str()]].push(name.clone());
    }
    Ok(out)
}

fn find_cycle(deps: &IndexMap<String, Vec<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit<'a>(
        n: &'a str,
        deps: &'a IndexMap<String, Vec<String>>,
        marks: &mut IndexMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        marks.insert(n, Mark::Active);
        stack.push(n);
        for d in deps.get(n).into_iter().flatten() {
            match marks.get(d.as_str()).copied().unwrap_or(Mark::New) {
                Mark::Active => {
                    let start = stack
                        .iter()
                        .position(|s| s == d)
                        .expect("active nodes are on the stack");
                    let mut cycle: Vec<String> =
                        stack[start..].iter().map(|s| s.to_string()).collect();
                    cycle.push(d.clone());
                    return Some(cycle);
                }
                Mark::New if deps.contains_key(d) => {
                    if let Some(c) = visit(d, deps, marks, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        marks.insert(n, Mark::Done);
        None
    }
    let mut marks = IndexMap::new();
    for n in deps.keys() {
        if marks.get(n.as_str()).copied().unwrap_or(Mark::New) == Mark::New {
            if let Some(c) = visit(n, deps, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// The label value that says "this container runs exactly this config".
pub fn config_hash(service: &Service, image_id: &str) -> String {
    // Only what shapes the container counts: a new watch rule, hook, probe or
    // k8s setting must not recreate it.
    let mut shape = service.clone();
    shape.watch.clear();
    shape.hooks = Default::default();
    shape.ready = None;
    shape.ready_timeout = Default::default();
    shape.depends_on.clear();
    shape.k8s = None;
    let mut h = Sha256::new();
    // The model's JSON form is stable (IndexMap keeps file order, BTreeMap sorts).
    h.update(serde_json::to_vec(&shape).expect("the model serialises"));
    // Secrets serialise as a mask; a changed password must still recreate.
    for secret in shape.secret_values() {
        h.update((secret.len() as u64).to_le_bytes());
        h.update(secret.as_bytes());
    }
    h.update(image_id.as_bytes());
    let digest = h.finalize();
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// A container devenv found on the engine for this project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actual {
    pub service: String,
    pub id: String,
    pub hash: String,
    pub running: bool,
}

/// What to do about one service or container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No container yet.
    Create { service: String },
    /// A container with another config: remove it, create anew.
    Recreate { service: String, id: String },
    /// The right container, stopped.
    Start { service: String, id: String },
    /// The right container, running: nothing to do.
    Keep { service: String, id: String },
    /// A container of a service no longer in the file (or a duplicate).
    Remove { service: String, id: String },
}

/// Compares desired hashes (service → hash, only the services asked for)
/// with what runs; `known` lists every service in the file, so that
/// containers of services merely not selected are not treated as orphans.
pub fn diff(desired: &IndexMap<String, String>, known: &[String], actual: &[Actual]) -> Vec<Step> {
    let mut steps = Vec::new();
    for (service, hash) in desired {
        let mut mine = actual.iter().filter(|a| &a.service == service);
        match mine.next() {
            None => steps.push(Step::Create {
                service: service.clone(),
            }),
            Some(a) if &a.hash != hash => steps.push(Step::Recreate {
                service: service.clone(),
                id: a.id.clone(),
            }),
            Some(a) if a.running => steps.push(Step::Keep {
                service: service.clone(),
                id: a.id.clone(),
            }),
            Some(a) => steps.push(Step::Start {
                service: service.clone(),
                id: a.id.clone(),
            }),
        }
        // An interrupted run may have left a second container for the service.
        for extra in mine {
            steps.push(Step::Remove {
                service: service.clone(),
                id: extra.id.clone(),
            });
        }
    }
    for a in actual {
        if !known.contains(&a.service) {
            steps.push(Step::Remove {
                service: a.service.clone(),
                id: a.id.clone(),
            });
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> IndexMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(n, ds)| (n.to_string(), ds.iter().map(|d| d.to_string()).collect()))
            .collect()
    }

    #[test]
    fn levels_start_independent_services_together() {
        let g = graph(&[
            ("app", &["db", "cache"]),
            ("db", &[]),
            ("cache", &[]),
            ("worker", &["app"]),
        ]);
        assert_eq!(
            levels(&g).unwrap(),
            vec![vec!["db", "cache"], vec!["app"], vec!["worker"]]
        );
    }

    #[test]
    fn a_cycle_is_reported_whole() {
        let g = graph(&[
            ("app", &["db"]),
            ("db", &["migrate"]),
            ("migrate", &["app"]),
            ("cache", &[]),
        ]);
        assert_eq!(levels(&g).unwrap_err(), vec!["app", "db", "migrate", "app"]);
    }

    #[test]
    fn a_self_dependency_is_a_cycle() {
        let g = graph(&[("app", &["app"])]);
        assert_eq!(levels(&g).unwrap_err(), vec!["app", "app"]);
    }

    #[test]
    fn only_what_shapes_the_container_changes_its_hash() {
        let dir = std::env::temp_dir();
        let opts = crate::config::LoadOptions {
            cwd: dir.clone(),
            ..Default::default()
        };
        let parse = |extra: &str| {
            let text = format!("[services.app]\nimage = \"x\"\nenv = {{ A = \"1\" }}\n{extra}");
            crate::config::parse(&text, "dev.toml", &dir.join("dev.toml"), &dir, &opts)
                .unwrap()
                .services["app"]
                .clone()
        };
        let base = config_hash(&parse(""), "img");
        let watched = parse("ready = { tcp = 80 }\nhooks = { after_up = [\"true\"] }\n[[services.app.watch]]\npath = \".\"\naction = \"restart\"\n");
        assert_eq!(config_hash(&watched, "img"), base);
        assert_ne!(config_hash(&parse("command = \"sh\""), "img"), base);
        assert_ne!(config_hash(&parse(""), "other-image"), base);
    }

    fn actual(service: &str, id: &str, hash: &str, running: bool) -> Actual {
        Actual {
            service: service.into(),
            id: id.into(),
            hash: hash.into(),
            running,
        }
    }

    #[test]
    fn diff_keeps_unchanged_and_recreates_changed() {
        let desired: IndexMap<String, String> = [
            ("db".to_string(), "h1".to_string()),
            ("app".to_string(), "h2".to_string()),
        ]
        .into();
        let known = vec!["db".to_string(), "app".to_string()];
        let steps = diff(
            &desired,
            &known,
            &[
                actual("db", "c1", "h1", true),
                actual("app", "c2", "old", true),
            ],
        );
        assert_eq!(
            steps,
            vec![
                Step::Keep {
                    service: "db".into(),
                    id: "c1".into()
                },
                Step::Recreate {
                    service: "app".into(),
                    id: "c2".into()
                },
            ]
        );
    }

    #[test]
    fn diff_creates_starts_and_removes_orphans() {
        let desired: IndexMap<String, String> = [
            ("db".to_string(), "h1".to_string()),
            ("cache".to_string(), "h3".to_string()),
        ]
        .into();
        let known = vec!["db".to_string(), "cache".to_string(), "app".to_string()];
        let steps = diff(
            &desired,
            &known,
            &[
                actual("db", "c1", "h1", false),
                actual("gone", "c9", "x", true),
                actual("app", "c2", "h", true),
            ],
        );
        assert_eq!(
            steps,
            vec![
                Step::Start {
                    service: "db".into(),
                    id: "c1".into()
                },
                Step::Create {
                    service: "cache".into()
                },
                Step::Remove {
                    service: "gone".into(),
                    id: "c9".into()
                },
            ]
        );
    }

    #[test]
    fn diff_removes_duplicates_left_by_an_interrupted_run() {
        let desired: IndexMap<String, String> = [("db".to_string(), "h1".to_string())].into();
        let steps = diff(
            &desired,
            &["db".to_string()],
            &[
                actual("db", "c1", "h1", true),
                actual("db", "c2", "h1", false),
            ],
        );
        assert_eq!(
            steps[1],
            Step::Remove {
                service: "db".into(),
                id: "c2".into()
            }
        );
    }
}
