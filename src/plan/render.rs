//! A plan in words, one line per thing `up` would do, for `up --dry-run`.
//! Pure: the command prints the lines.

use super::{ContainerAction, ImageAction, Plan, RemoveWhy};

/// The lines `up --dry-run` prints, in the order `up` would act.
pub fn lines(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for i in &plan.images {
        match &i.action {
            ImageAction::Present { .. } => {}
            ImageAction::Build => out.push(format!(
                "would build image `{}` for `{}`",
                i.image, i.service
            )),
            ImageAction::Pull => out.push(format!(
                "would pull image `{}` for `{}`",
                i.image, i.service
            )),
            ImageAction::PullOrStandin { standin } => out.push(format!(
                "would pull image `{}` for `{}` (with no registry reachable: build its local stand-in `{standin}`)",
                i.image, i.service
            )),
        }
    }
    let owned = |p: &super::NewPath| match p.owner {
        Some(o) => format!(" owned by {o}"),
        None => String::new(),
    };
    for f in &plan.folders {
        out.push(format!(
            "would create folder `{}`{}",
            f.path.display(),
            owned(f)
        ));
    }
    for f in &plan.files {
        out.push(format!(
            "would create empty file `{}`{}",
            f.path.display(),
            owned(f)
        ));
    }
    for r in &plan.removals {
        let why = match r.why {
            RemoveWhy::Orphan => "it is no longer in the stack file",
            RemoveWhy::Duplicate => "a second container of the service, left by an interrupted run",
        };
        out.push(format!(
            "would remove `{}` (container `{}`): {why}",
            r.service, r.name
        ));
    }
    if let Some(n) = plan.network.as_ref().filter(|n| !n.exists) {
        out.push(format!("would create network `{}`", n.spec.name));
    }
    for v in plan.volumes.iter().filter(|v| !v.exists) {
        out.push(format!("would create volume `{}`", v.spec.name));
    }
    let mut kept = Vec::new();
    for s in &plan.services {
        let name = &s.service;
        match &s.action {
            ContainerAction::Create => out.push(format!("would create and start `{name}`")),
            ContainerAction::Recreate { changes, .. } => out.push(format!(
                "would recreate `{name}`: {} changed",
                changes.join(", ")
            )),
            ContainerAction::Start { .. } => out.push(format!(
                "would start `{name}` (its container exists, not running)"
            )),
            ContainerAction::KeepUnlessImageChanges { running, .. } => out.push(format!(
                "would recreate `{name}` only if its new image differs from the one it runs{}",
                if *running { "" } else { "; else start it" }
            )),
            ContainerAction::Keep { .. } => kept.push(format!("`{name}`")),
        }
    }
    if !kept.is_empty() {
        out.push(format!(
            "would leave {} alone (running, unchanged)",
            kept.join(", ")
        ));
    }
    for p in &plan.port_checks {
        let own = p.own.is_some() && (p.holder.is_none() || p.holder == p.own);
        let state = match (p.free, &p.holder) {
            (None, _) => "not checked".to_string(),
            (Some(true), _) => "free".to_string(),
            (Some(false), _) if own => "held by its own container".to_string(),
            (Some(false), Some(h)) if p.fixed => format!("taken by `{h}`"),
            (Some(false), None) if p.fixed => "taken".to_string(),
            (Some(false), Some(h)) => {
                format!("taken by `{h}`: would publish on a free port instead")
            }
            (Some(false), None) => "taken: would publish on a free port instead".to_string(),
        };
        let kept = p
            .declared
            .map(|d| format!(" (kept where it moved from {d})"))
            .unwrap_or_default();
        out.push(format!(
            "host port {}{kept} for `{}`: {state}",
            p.binding, p.service
        ));
    }
    out.extend(plan.notices.iter().cloned());
    out
}
