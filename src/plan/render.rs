//! A plan in words, one line per thing `up` would do, for `up --dry-run`.
//! Pure: the command prints the lines.

use super::{ContainerAction, ImageAction, ImageStep, Plan, PortCheck, RemoveWhy};

/// The lines `up --dry-run` prints, in the order `up` would act.
pub fn lines(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(plan.images.iter().filter_map(image_line));
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
            ContainerAction::Recreate { changes, .. } => match &s.port_taken {
                Some(t) => out.push(format!(
                    "would recreate `{name}` on a free host port: its host port {} is taken by {}",
                    t.port, t.taken_by
                )),
                None => out.push(format!(
                    "would recreate `{name}`: {} changed",
                    changes.join(", ")
                )),
            },
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
    for s in &plan.services {
        out.extend(s.moves.iter().map(|m| {
            format!(
                "host port {} of `{}` is taken by {}: would publish its port {} on {} instead",
                m.declared, s.service, m.taken_by, m.container, m.chosen
            )
        }));
    }
    out.extend(plan.port_checks.iter().map(port_line));
    out.extend(plan.notices.iter().cloned());
    out
}

/// How a service gets its image, in words; nothing when the engine has it.
fn image_line(i: &ImageStep) -> Option<String> {
    match &i.action {
        ImageAction::Present { .. } => None,
        ImageAction::Build => Some(format!(
            "would build image `{}` for `{}`",
            i.image, i.service
        )),
        ImageAction::Pull => Some(format!(
            "would pull image `{}` for `{}`",
            i.image, i.service
        )),
        ImageAction::PullOrStandin { standin } => Some(format!(
            "would pull image `{}` for `{}` (with no registry reachable: build its local stand-in `{standin}`)",
            i.image, i.service
        )),
    }
}

/// A host port check and what it found: free, held by the service's own
/// container, or taken (and whether `up` would move to a free port).
fn port_line(p: &PortCheck) -> String {
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
    format!("host port {}{kept} for `{}`: {state}", p.binding, p.service)
}
