//! Turning a batch of changed paths into what to do, per service: which host
//! paths to mirror where, and whether to rebuild, restart or run commands.
//! Pure: whether a path is a folder is asked of the caller.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use super::filter::Filter;
use crate::config::model::{Mount, Service, WatchAction, WatchRule};

/// One watch rule, ready to match paths.
pub struct Rule {
    pub service: String,
    pub action: WatchAction,
    pub path: PathBuf,
    /// Container path (`sync`).
    pub target: Option<String>,
    /// Command (`exec`).
    pub run: Option<String>,
    /// A `sync` whose path is bind-mounted at its target: nothing to copy.
    pub mounted: bool,
    /// What of the target belongs to a mount rather than to the sync.
    pub guard: Arc<Guard>,
    pub filter: Arc<Filter>,
    /// The configured path when it is a symlink; `path` is then the folder
    /// it resolved to.
    pub linked: Option<PathBuf>,
}

/// The service's mounts as a `sync` rule must respect them: what lies under
/// a mount inside the target (a bind mount of another host folder, a named
/// volume) is the mount's, never copied over nor removed; and when a bind
/// mount holds the target itself, the copies land in host files, so the
/// sync never removes anything there.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Guard {
    /// Container paths of mounts strictly inside the target.
    pub mounts: Vec<String>,
    /// False when a bind mount is at or above the target.
    pub removes: bool,
}

impl Guard {
    pub fn new(service: &Service, target: Option<&str>) -> Guard {
        let mut guard = Guard {
            mounts: Vec::new(),
            removes: true,
        };
        let Some(target) = target.map(Path::new) else {
            return guard;
        };
        for m in &service.volumes {
            let (at, bind) = match m {
                Mount::Bind { target, .. } => (Path::new(target.as_str()), true),
                Mount::Volume { target, .. } | Mount::Anonymous { target, .. } => {
                    (Path::new(target.as_str()), false)
                }
            };
            if at != target && at.starts_with(target) {
                guard.mounts.push(at.to_string_lossy().into_owned());
            } else if bind && target.starts_with(at) {
                guard.removes = false;
            }
        }
        guard
    }

    /// True when the container path `path` is at or under a mount.
    pub fn in_mount(&self, path: &str) -> bool {
        self.mounts.iter().any(|m| Path::new(path).starts_with(m))
    }

    /// True when a mount lies at or under `path`: `rm -rf` would reach into it.
    pub fn holds_mount(&self, path: &str) -> bool {
        self.mounts.iter().any(|m| Path::new(m).starts_with(path))
    }

    /// True when the sync may `rm -rf` the container path `path`.
    pub fn may_remove(&self, path: &str) -> bool {
        self.removes && !self.holds_mount(path) && !self.in_mount(path)
    }
}

impl Rule {
    pub fn new(service: &Service, rule: &WatchRule, filter: Filter) -> Rule {
        Rule {
            service: service.name.clone(),
            action: rule.action,
            path: rule.path.clone(),
            target: rule.target.clone(),
            run: rule.run.clone(),
            mounted: rule.action == WatchAction::Sync && is_bind_mounted(service, rule),
            guard: Arc::new(Guard::new(service, rule.target.as_deref())),
            filter: Arc::new(filter),
            linked: None,
        }
    }

    /// True when a change at `path` concerns this rule.
    pub fn matches(&self, path: &Path, is_dir: bool) -> bool {
        path.starts_with(&self.path) && !self.filter.is_ignored(path, is_dir)
    }

    /// Where `path` (under the rule's path) lives in the container.
    pub fn container_path(&self, path: &Path) -> Option<String> {
        let target = self.target.as_deref()?;
        path.starts_with(&self.path)
            .then(|| container_path(target, &self.path, path))
    }

    /// True for a `sync` rule that copies files.
    pub fn copies(&self) -> bool {
        self.action == WatchAction::Sync && !self.mounted
    }
}

/// `target` plus the part of `path` below `root`, with forward slashes.
pub fn container_path(target: &str, root: &Path, path: &Path) -> String {
    let mut out = target.trim_end_matches('/').to_string();
    for part in path
        .strip_prefix(root)
        .unwrap_or(Path::new(""))
        .components()
    {
        out.push('/');
        // Bytes kept: a name that is not UTF-8 goes in under the same bytes.
        out.push_str(&super::names::text(part.as_os_str().as_encoded_bytes()));
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// True when a bind mount of the service already puts the rule's path at its target.
pub(super) fn is_bind_mounted(service: &Service, rule: &WatchRule) -> bool {
    let Some(target) = rule.target.as_deref() else {
        return false;
    };
    service.volumes.iter().any(|m| match m {
        Mount::Bind {
            source, target: at, ..
        } => Path::new(target)
            .strip_prefix(at)
            .is_ok_and(|rest| source.join(rest) == rule.path),
        Mount::Volume { .. } | Mount::Anonymous { .. } => false,
    })
}

/// A host path and where it goes in the container; `rule` indexes the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPath {
    pub rule: usize,
    pub host: PathBuf,
    pub container: String,
}

/// What one batch asks of one service, applied in this order: sync, rebuild
/// (which replaces the container, then syncs it whole) or restart, then exec.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ServicePlan {
    pub service: String,
    pub sync: Vec<SyncPath>,
    pub rebuild: bool,
    pub restart: bool,
    pub exec: Vec<String>,
}

/// Per service, in the rules' order, what `paths` call for.
pub fn plan(rules: &[Rule], paths: &[PathBuf], is_dir: &dyn Fn(&Path) -> bool) -> Vec<ServicePlan> {
    let mut plans: IndexMap<&str, ServicePlan> = IndexMap::new();
    for (i, rule) in rules.iter().enumerate() {
        let mut hits = paths
            .iter()
            .filter(|p| rule.matches(p, is_dir(p)))
            .peekable();
        if hits.peek().is_none() {
            continue;
        }
        let plan = plans.entry(&rule.service).or_insert_with(|| ServicePlan {
            service: rule.service.clone(),
            ..Default::default()
        });
        match rule.action {
            WatchAction::Sync if rule.mounted => {}
            WatchAction::Sync => plan.sync.extend(hits.filter_map(|p| {
                let container = rule.container_path(p)?;
                // Under a mount inside the target: the mount's, not the sync's.
                (!rule.guard.in_mount(&container)).then(|| SyncPath {
                    rule: i,
                    host: p.clone(),
                    container,
                })
            })),
            WatchAction::Restart => plan.restart = true,
            WatchAction::Rebuild => plan.rebuild = true,
            WatchAction::Exec => {
                let run = rule.run.clone().unwrap_or_default();
                if !plan.exec.contains(&run) {
                    plan.exec.push(run);
                }
            }
        }
    }
    plans
        .into_values()
        .filter(|p| !p.sync.is_empty() || p.rebuild || p.restart || !p.exec.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(service: &str, action: WatchAction, path: &str, extra: Option<&str>) -> Rule {
        let path = PathBuf::from(path);
        Rule {
            service: service.into(),
            action,
            filter: Arc::new(
                Filter::new(&path, Path::new("/p"), &[], &["storage/".into()]).unwrap(),
            ),
            path,
            target: (action == WatchAction::Sync).then(|| extra.unwrap().to_string()),
            run: (action == WatchAction::Exec).then(|| extra.unwrap().to_string()),
            mounted: false,
            guard: Default::default(),
            linked: None,
        }
    }

    fn laravel() -> Vec<Rule> {
        vec![
            rule("app", WatchAction::Sync, "/p/app", Some("/var/www/html")),
            rule(
                "app",
                WatchAction::Exec,
                "/p/app/database/migrations",
                Some("php artisan migrate"),
            ),
            rule("app", WatchAction::Restart, "/p/app/.env", None),
            rule("app", WatchAction::Rebuild, "/p/app/composer.lock", None),
            rule("worker", WatchAction::Restart, "/p/app/app", None),
        ]
    }

    fn files(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(PathBuf::from).collect()
    }

    fn no_dirs(_: &Path) -> bool {
        false
    }

    #[test]
    fn a_view_edit_syncs_one_file_and_fires_nothing_else() {
        let plans = plan(
            &laravel(),
            &files(&["/p/app/resources/views/welcome.blade.php"]),
            &no_dirs,
        );
        assert_eq!(
            plans,
            [ServicePlan {
                service: "app".into(),
                sync: vec![SyncPath {
                    rule: 0,
                    host: "/p/app/resources/views/welcome.blade.php".into(),
                    container: "/var/www/html/resources/views/welcome.blade.php".into(),
                }],
                ..Default::default()
            }]
        );
    }

    #[test]
    fn a_migration_syncs_then_runs_migrate_once_per_batch() {
        let plans = plan(
            &laravel(),
            &files(&[
                "/p/app/database/migrations/2024_a.php",
                "/p/app/database/migrations/2024_b.php",
            ]),
            &no_dirs,
        );
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].sync.len(), 2);
        assert_eq!(plans[0].exec, ["php artisan migrate"]);
        assert!(!plans[0].restart && !plans[0].rebuild);
    }

    #[test]
    fn ignored_paths_do_nothing_and_rule_files_fire_even_when_git_ignores_them() {
        let rules = laravel();
        assert!(plan(
            &rules,
            &files(&["/p/app/storage/logs/x.log", "/p/app/vendor/a.php"]),
            &no_dirs
        )
        .is_empty());
        let plans = plan(
            &rules,
            &files(&["/p/app/.env", "/p/app/composer.lock"]),
            &no_dirs,
        );
        assert!(plans[0].restart && plans[0].rebuild);
    }

    #[test]
    fn each_service_gets_its_own_plan_in_rule_order() {
        let plans = plan(
            &laravel(),
            &files(&["/p/app/app/Models/User.php"]),
            &no_dirs,
        );
        let services: Vec<_> = plans.iter().map(|p| p.service.as_str()).collect();
        assert_eq!(services, ["app", "worker"]);
        assert!(plans[1].restart && plans[1].sync.is_empty());
    }

    #[test]
    fn a_folder_pattern_needs_to_know_folders() {
        let rules = vec![rule("app", WatchAction::Sync, "/p/app", Some("/srv/"))];
        let is_dir = |p: &Path| p.ends_with("storage");
        assert!(plan(&rules, &files(&["/p/app/storage"]), &is_dir).is_empty());
        let plans = plan(&rules, &files(&["/p/app"]), &is_dir);
        assert_eq!(plans[0].sync[0].container, "/srv");
    }

    #[test]
    fn bind_mounted_sync_copies_nothing_but_other_rules_still_fire() {
        let mut rules = laravel();
        rules[0].mounted = true;
        let plans = plan(
            &rules,
            &files(&["/p/app/database/migrations/x.php"]),
            &no_dirs,
        );
        assert!(plans[0].sync.is_empty());
        assert_eq!(plans[0].exec, ["php artisan migrate"]);
    }

    #[test]
    fn r10_paths_under_a_mount_inside_the_target_are_never_synced() {
        let mut rules = vec![rule("app", WatchAction::Sync, "/p/src", Some("/srv/app"))];
        rules[0].guard = Arc::new(Guard {
            mounts: vec!["/srv/app/uploads".into(), "/srv/app/data".into()],
            removes: true,
        });
        let plans = plan(
            &rules,
            &files(&[
                "/p/src/uploads/photo.jpg",
                "/p/src/data",
                "/p/src/index.php",
            ]),
            &no_dirs,
        );
        let synced: Vec<&str> = plans[0].sync.iter().map(|s| s.container.as_str()).collect();
        assert_eq!(synced, ["/srv/app/index.php"]);
        let g = &rules[0].guard;
        assert!(
            !g.may_remove("/srv/app"),
            "an ancestor of a mount is never removed whole"
        );
        assert!(!g.may_remove("/srv/app/uploads"));
        assert!(!g.may_remove("/srv/app/uploads/photo.jpg"));
        assert!(g.may_remove("/srv/app/uploadsx"));
        assert!(g.may_remove("/srv/app/lib"));
    }

    use crate::config::load_toml as load;

    #[test]
    fn guards_come_from_the_services_mounts() {
        let toml = r#"
            [services.app]
            image = "x"
            volumes = ["./uploads:/srv/app/uploads", "appdata:/srv/app/data", "cache:/srv/cache", "./host:/mnt"]
            [[services.app.watch]]
            path = "src"
            action = "sync"
            target = "/srv/app"
            [[services.app.watch]]
            path = "other"
            action = "sync"
            target = "/mnt/inside"
        "#;
        let stack = load(toml);
        let app = &stack.services["app"];
        assert_eq!(
            Guard::new(app, app.watch[0].target.as_deref()),
            Guard {
                mounts: vec!["/srv/app/uploads".into(), "/srv/app/data".into()],
                removes: true
            }
        );
        assert!(
            !Guard::new(app, app.watch[1].target.as_deref()).removes,
            "a bind mount holds it: host files"
        );
    }

    #[test]
    fn bind_mounts_are_recognised_at_or_above_the_target() {
        let toml = r#"
            [services.app]
            image = "x"
            volumes = ["./src:/app", "./other:/elsewhere"]
            [[services.app.watch]]
            path = "src/public"
            action = "sync"
            target = "/app/public"
            [[services.app.watch]]
            path = "src"
            action = "sync"
            target = "/code"
        "#;
        let stack = load(toml);
        let app = &stack.services["app"];
        assert!(is_bind_mounted(app, &app.watch[0]));
        assert!(!is_bind_mounted(app, &app.watch[1]));
    }
}
