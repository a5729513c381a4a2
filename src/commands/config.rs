//! `devenv config`: the fully resolved stack. Secrets are masked by their
//! own types (env, build args, test env, probe credentials) as they serialise.

use super::{Context, Outcome};
use crate::cli::ConfigArgs;

pub fn run(ctx: &Context, args: ConfigArgs) -> Outcome {
    let mut stack = ctx.stack()?;
    // Commands are plain strings: a secret interpolated into one (from any
    // service's env, a probe, a build arg or the test env) is masked here.
    let masked = stack.clone();
    for svc in stack.services.values_mut() {
        let lists = [
            &mut svc.hooks.after_up,
            &mut svc.hooks.migrate,
            &mut svc.hooks.seed,
        ];
        for command in lists.into_iter().flatten() {
            *command = masked.mask(command);
        }
        for word in svc
            .command
            .iter_mut()
            .chain(svc.entrypoint.iter_mut())
            .flatten()
        {
            *word = masked.mask(word);
        }
    }
    if let Some(test) = &mut stack.test {
        test.migrate = masked.mask(&test.migrate);
        for word in &mut test.command {
            *word = masked.mask(word);
        }
    }
    // A project command's words may hold any service's secret, or its own.
    let secrets: Vec<String> = stack
        .services
        .values()
        .flat_map(|s| s.secret_values().map(String::from).collect::<Vec<_>>())
        .collect();
    for c in stack.commands.values_mut() {
        c.mask(secrets.iter().map(String::as_str));
    }
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&stack).expect("the model serialises")
        );
    } else {
        let value = serde_json::to_value(&stack).expect("the model serialises");
        crate::outln!(
            "{}",
            toml::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
        );
    }
    Ok(0)
}
