//! `devenv migrate` and `devenv seed`: run the services' migrate or seed
//! hooks in their running containers on demand; `seed` also applies
//! `seeds/*.sql` (`--force` re-applies changed files).

use super::{service_container, Context, Outcome};
use crate::cli::HookArgs;
use crate::config::model::Service;
use crate::hooks;
use crate::lifecycle::{self, UpError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Migrate,
    Seed,
}

pub async fn run(ctx: &Context, kind: Kind, args: HookArgs) -> Outcome {
    let stack = ctx.stack()?;
    super::check_services(&stack, &args.services)?;
    let engine = ctx.engine().await?;
    let stack = ctx.named(&engine, stack, false).await?;
    // SQL seeds write to the database without a service container lookup: check first.
    lifecycle::owned_containers(&engine, &stack).await?;
    let reporter = ctx.reporter();
    let commands = |svc: &Service| match kind {
        Kind::Migrate => svc.hooks.migrate.clone(),
        Kind::Seed => svc.hooks.seed.clone(),
    };
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
