//! `devenv config`: the fully resolved stack. Secrets are masked by their
//! own types (env, build args, test env, probe credentials) as they
//! serialise, and whatever a secret put inside another text (a URL, a
//! command's argument, a hook) by the stack's masker.

use super::{Context, Outcome};
use crate::cli::ConfigArgs;

pub fn run(ctx: &Context, args: ConfigArgs) -> Outcome {
    let stack = ctx.stack()?;
    let value = serde_json::to_value(&stack).expect("the model serialises");
    if args.json {
        crate::ui::print_data(value, |v| {
            serde_json::to_string_pretty(v).expect("JSON values serialise")
        });
    } else {
        crate::ui::print_data(value, |v| {
            toml::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
        });
    }
    Ok(0)
}
