//! `devenv migrate` and `devenv seed`: run the services' migrate or seed
//! hooks in their running containers on demand; `seed` also applies
//! `seeds/*.sql` (`--force` re-applies changed files).

use super::{service_container, Context, Failure, Outcome};
use crate::cli::HookArgs;
use crate::config::model::Service;
use crate::hooks;
use crate::lifecycle::{self, UpError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Migrate,
    Seed,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Migrate => "migrate",
            Kind::Seed => "seed",
        }
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("service `{service}` has no {kind} command to run")]
#[diagnostic(
    code(devenv::no_hook),
    help("its `hooks` (`after_up`, `{kind}`) in dev.toml name none; services that have one: {}", if with.is_empty() { "none" } else { with.as_str() })
)]
pub struct NoHook {
    service: String,
    kind: &'static str,
    with: String,
}

pub async fn run(ctx: &Context, kind: Kind, args: HookArgs) -> Outcome {
    let stack = ctx.stack()?;
    super::check_services(&stack, &args.services)?;
    let commands = |svc: &Service| match kind {
        Kind::Migrate => svc.hooks.migrate.clone(),
        Kind::Seed => svc.hooks.seed.clone(),
    };
    // A service named on purpose that has nothing to run is a mistake worth
    // saying (`migrate db`), not a silent success.
    if let Some(none) = args
        .services
        .iter()
        .find(|n| commands(&stack.services[n.as_str()]).is_empty())
    {
        let with: Vec<&str> = stack
            .services
            .values()
            .filter(|s| !commands(s).is_empty())
            .map(|s| s.name.as_str())
            .collect();
        return Err(Failure::new(
            NoHook {
                service: none.clone(),
                kind: kind.word(),
                with: with.join(", "),
            },
            2,
        ));
    }
    let engine = ctx.engine().await?;
    let stack = ctx.named(&engine, stack, false).await?;
    // SQL seeds write to the database without a service container lookup: check first.
    lifecycle::owned_containers(&engine, &stack).await?;
    let reporter = ctx.reporter();
    let chosen = stack
        .services
        .values()
        .filter(|s| args.services.is_empty() || args.services.contains(&s.name))
        .filter(|s| !commands(s).is_empty());
    for svc in chosen {
        let id = service_container(&engine, &stack, &svc.name).await?;
        lifecycle::run_hooks(&engine, svc, &id, &commands(svc), reporter.as_ref()).await?;
        reporter.done(&svc.name, "done", true);
    }
    if kind == Kind::Seed && args.services.is_empty() {
        hooks::apply_sql_seeds(&engine, &stack, args.force, reporter.as_ref())
            .await
            .map_err(UpError::from)?;
    }
    Ok(0)
}
