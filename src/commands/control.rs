//! `devenv stop|start|restart [SERVICE…]`: change running state without
//! recreating anything; `start` and `restart` return once the services are
//! ready, as `up` does (see [`crate::lifecycle::control`]).

use super::{Context, Outcome};
use crate::cli::ServicesArgs;
use crate::lifecycle::control::{control, Action};
use crate::lifecycle::UpError;

pub async fn run(ctx: &Context, action: Action, args: ServicesArgs) -> Outcome {
    let engine = ctx.engine().await?;
    let stack = ctx.stack_or_project(&engine).await?;
    super::check_services(&stack, &args.services)?;
    let reporter = ctx.reporter();
    if let Err(e) = control(&engine, &stack, action, &args.services, reporter.clone()).await {
        reporter.clear();
        if let UpError::NotReady { service, logs, .. } = &e {
            for line in logs {
                crate::ui::print_err(&crate::ui::prefixed(service, line));
            }
        }
        return Err(e.into());
    }
    Ok(0)
}
