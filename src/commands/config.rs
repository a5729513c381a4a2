//! `devenv config`: the fully resolved stack. Secrets are masked by their
//! own types (env, build args, test env, probe credentials) as they serialise.

use super::{Context, Outcome};
use crate::cli::ConfigArgs;

pub fn run(ctx: &Context, args: ConfigArgs) -> Outcome {
    let stack = ctx.stack()?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stack).expect("the model serialises")
        );
    } else {
        let value = serde_json::to_value(&stack).expect("the model serialises");
        println!(
            "{}",
            toml::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
        );
    }
    Ok(0)
}
