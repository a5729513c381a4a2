//! `devenv config`: the fully resolved stack, secrets masked.

use super::{Context, Outcome};
use crate::cli::ConfigArgs;

pub fn run(ctx: &Context, args: ConfigArgs) -> Outcome {
    let mut stack = ctx.stack()?;
    for svc in stack.services.values_mut() {
        for v in svc.env.values_mut() {
            if v.secret {
                v.value = "********".into();
            }
        }
    }
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
