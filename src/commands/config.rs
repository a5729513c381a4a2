//! `devenv config`: the fully resolved stack. Secrets are masked by their
//! own types (env, build args, test env, probe credentials) as they
//! serialise, and whatever a secret put inside another text (a URL, a
//! command's argument, a hook) by the stack's masker.

use super::{Context, Outcome};
use crate::cli::ConfigArgs;

pub fn run(ctx: &Context, args: ConfigArgs) -> Outcome {
    let stack = ctx.stack()?;
    let mut value = serde_json::to_value(&stack).expect("the model serialises");
    stack.masker.mask_json(&mut value);
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&value).expect("JSON values serialise")
        );
    } else {
        crate::outln!(
            "{}",
            toml::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
        );
    }
    Ok(0)
}
