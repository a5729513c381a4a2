//! `down`: the project's containers stopped and removed, then its network,
//! and with `-v` its volumes; and what `down -v` would remove, said first.

use std::time::Duration;

use futures_util::future::join_all;

use super::{lock_for, owned_containers, settle, UpError};
use crate::config::model::Stack;
use crate::engine::{network_name, ContainerInfo, Engine, EngineError, LABEL_PROJECT};
use crate::report::Reporter;

/// Stops and removes the project's containers and network; volumes too with
/// `volumes`. Only what carries this project's labels (and is this folder's)
/// is touched: a same-named Compose stack's containers, network and volumes
/// are left alone.
pub async fn down(
    engine: &Engine,
    stack: &Stack,
    volumes: bool,
    reporter: &dyn Reporter,
) -> Result<(), UpError> {
    let project = &stack.project;
    let lock = lock_for(project, "down", reporter)?;
    settle(engine, project, &lock, reporter).await?;
    let containers = owned_containers(engine, stack).await?;
    // Dependents first (the app before its database, as Compose stops
    // them); one group at once.
    for group in
        super::schedule::stop_groups(stack, containers.iter().collect(), |c| c.service.as_str())
    {
        let jobs = group
            .into_iter()
            .map(|c| stop_and_remove(engine, c, volumes, reporter));
        for r in join_all(jobs).await {
            r?;
        }
    }
    // The router lets go of the project's network (which the engine will
    // not remove while it is attached) and serves what is left; the last
    // project's `down` removes it (issue 28). It is an extra: when it
    // fails, `down` still goes on.
    if let Err(e) = crate::router::sync(engine, reporter).await {
        reporter.notice(&format!("the HTTPS router was not updated: {e}"));
        crate::router::detach(engine, project).await?;
    }
    let network = network_name(project);
    let labels = engine.network_labels(project).await?;
    if labels
        .as_ref()
        .is_some_and(|l| l.get(LABEL_PROJECT) != Some(project))
    {
        reporter.notice(&format!(
            "left network `{network}` alone: devenv did not create it"
        ));
    } else if labels.is_some() && engine.remove_network(project).await? {
        reporter.notice(&format!("removed network `{network}`"));
    }
    if volumes {
        for v in engine.list_volumes(project).await? {
            engine.remove_volume(&v.name).await?;
            reporter.notice(&format!("removed volume `{}`", v.name));
        }
    }
    Ok(())
}

/// Stops and removes one container of the project (its volumes too with
/// `-v`, or when it is a one-off's scratch).
async fn stop_and_remove(
    engine: &Engine,
    c: &ContainerInfo,
    volumes: bool,
    reporter: &dyn Reporter,
) -> Result<(), EngineError> {
    // A leftover `run` container carries its service's label: it gets
    // its own line, so the service's stop is not told twice.
    let key = if c.oneoff {
        format!("{} (one-off `{}`)", c.service, c.name)
    } else {
        c.service.clone()
    };
    reporter.task(&key, "stopping");
    engine
        .stop_container(&c.id, Duration::from_secs(10))
        .await?;
    // A one-off's anonymous volumes are scratch; a service's hold its
    // data (containers made before devenv labelled them) until `-v`.
    if volumes || c.oneoff {
        engine.remove_container(&c.id).await?;
    } else {
        engine.remove_container_keeping_volumes(&c.id).await?;
    }
    reporter.done(&key, "removed", true);
    Ok(())
}

/// A volume `down -v` would remove, and what in it a user would miss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoomedVolume {
    pub name: String,
    /// The services that mount it.
    pub services: Vec<String>,
    /// When it holds the stack's database: its name, and how many snapshots
    /// live beside it.
    pub database: Option<(String, Snapshots)>,
}

/// How many snapshots live beside the database, or why they were not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshots {
    Counted(usize),
    /// The database's container is not running.
    NotRunning,
    /// The server runs but refused devenv's password (a volume keeps the
    /// password it was created with), so "not running" would mislead.
    NoLogin,
    /// The server runs but could not be asked (not reachable from the host).
    Unreachable,
}

impl Snapshots {
    /// The count, or why there is none, from what asking the server gave.
    fn from_listing(listed: Result<usize, crate::snapshot::SnapshotError>) -> Snapshots {
        use crate::database::DatabaseError;
        use crate::snapshot::SnapshotError;
        match listed {
            Ok(n) => Snapshots::Counted(n),
            Err(SnapshotError::Database(DatabaseError::Login { .. })) => Snapshots::NoLogin,
            Err(_) => Snapshots::Unreachable,
        }
    }
}

impl DoomedVolume {
    /// One line of `down -v`'s list.
    pub fn describe(&self) -> String {
        let mut what = Vec::new();
        if !self.services.is_empty() {
            let names: Vec<String> = self.services.iter().map(|s| format!("`{s}`")).collect();
            what.push(format!(
                "{} {}",
                if names.len() == 1 {
                    "service"
                } else {
                    "services"
                },
                names.join(", ")
            ));
        }
        if let Some((database, snapshots)) = &self.database {
            let uncounted =
                |why: &str| format!("database `{database}` and its snapshots (not counted: {why})");
            what.push(match snapshots {
                Snapshots::Counted(0) => format!("database `{database}`, no snapshots"),
                Snapshots::Counted(1) => format!("database `{database}` and 1 snapshot"),
                Snapshots::Counted(n) => format!("database `{database}` and {n} snapshots"),
                Snapshots::NotRunning => uncounted("the server is not running"),
                Snapshots::NoLogin => {
                    uncounted("devenv could not log in to the server: its password differs")
                }
                Snapshots::Unreachable => uncounted("the server could not be reached"),
            });
        }
        if what.is_empty() {
            self.name.clone()
        } else {
            format!("{} ({})", self.name, what.join(": "))
        }
    }
}

/// The project's volumes that `down -v` would remove, with the services
/// that mount them and, for the database's, how many snapshots live in it.
pub async fn doomed_volumes(engine: &Engine, stack: &Stack) -> Result<Vec<DoomedVolume>, UpError> {
    let project = &stack.project;
    let mut doomed: Vec<DoomedVolume> = engine
        .list_volumes(project)
        .await?
        .into_iter()
        .map(|v| DoomedVolume {
            services: stack
                .services
                .values()
                .filter(|s| mounts_volume(project, s, &v.name))
                .map(|s| s.name.clone())
                .collect(),
            name: v.name,
            database: None,
        })
        .collect();
    doomed.sort_by(|a, b| a.name.cmp(&b.name));
    let pg = stack.services.values().find_map(|s| match &s.ready {
        Some(crate::config::model::Probe::Postgres { database, .. }) => Some((s, database.clone())),
        _ => None,
    });
    if let Some((service, database)) = pg {
        let theirs: Vec<usize> = (0..doomed.len())
            .filter(|i| doomed[*i].services.contains(&service.name))
            .collect();
        // The data folder's volume: the one under PostgreSQL's folder, else the only one.
        let data = theirs
            .iter()
            .copied()
            .find(|i| {
                service.volumes.iter().any(|m| match m {
                    crate::config::model::Mount::Volume { name, target, .. } => {
                        crate::engine::volume_name(project, name) == doomed[*i].name
                            && target.contains("postgres")
                    }
                    _ => false,
                }) || doomed[*i].name.contains("postgresql")
            })
            .or_else(|| (theirs.len() == 1).then(|| theirs[0]));
        if let Some(i) = data {
            let snapshots = match crate::database::Database::locate(engine, stack).await {
                Ok(db) => {
                    Snapshots::from_listing(crate::snapshot::list(&db).await.map(|l| l.len()))
                }
                Err(crate::database::DatabaseError::NotRunning { .. }) => Snapshots::NotRunning,
                Err(_) => Snapshots::Unreachable,
            };
            doomed[i].database = Some((database, snapshots));
        }
    }
    Ok(doomed)
}

/// Whether `service` mounts the engine volume `name`: a named volume of its
/// config, or one devenv made for an anonymous volume of its.
fn mounts_volume(project: &str, service: &crate::config::model::Service, name: &str) -> bool {
    let anonymous = format!("{project}_{}_", service.name);
    name.starts_with(&anonymous)
        || service.volumes.iter().any(|m| match m {
            crate::config::model::Mount::Volume { name: v, .. } => {
                crate::engine::volume_name(project, v) == name
            }
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_v_names_each_volume_its_services_and_the_snapshots_in_it() {
        let v = |name: &str, services: &[&str], database| DoomedVolume {
            name: name.into(),
            services: services.iter().map(|s| s.to_string()).collect(),
            database,
        };
        assert_eq!(
            v(
                "shop_pgdata",
                &["db"],
                Some(("app".into(), Snapshots::Counted(3)))
            )
            .describe(),
            "shop_pgdata (service `db`: database `app` and 3 snapshots)"
        );
        assert_eq!(
            v(
                "shop_pgdata",
                &["db"],
                Some(("app".into(), Snapshots::Counted(1)))
            )
            .describe(),
            "shop_pgdata (service `db`: database `app` and 1 snapshot)"
        );
        assert_eq!(
            v(
                "shop_pgdata",
                &["db"],
                Some(("app".into(), Snapshots::Counted(0)))
            )
            .describe(),
            "shop_pgdata (service `db`: database `app`, no snapshots)"
        );
        assert_eq!(
            v("shop_pgdata", &["db"], Some(("app".into(), Snapshots::NotRunning))).describe(),
            "shop_pgdata (service `db`: database `app` and its snapshots (not counted: the server is not running))"
        );
        // A running server that refused the password is not "not running".
        assert_eq!(
            v("shop_pgdata", &["db"], Some(("app".into(), Snapshots::NoLogin))).describe(),
            "shop_pgdata (service `db`: database `app` and its snapshots (not counted: devenv could not log in to the server: its password differs))"
        );
        assert_eq!(
            v("shop_pgdata", &["db"], Some(("app".into(), Snapshots::Unreachable))).describe(),
            "shop_pgdata (service `db`: database `app` and its snapshots (not counted: the server could not be reached))"
        );
        assert_eq!(
            v("shop_shared", &["app", "worker"], None).describe(),
            "shop_shared (services `app`, `worker`)"
        );
        assert_eq!(v("shop_old", &[], None).describe(), "shop_old");
    }
}
