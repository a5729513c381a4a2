//! `devenv trust`: install devenv's local CA where HTTPS names are checked
//! (`--uninstall` removes it, `--path` prints the CA certificate's path).

use super::{Context, Failure, Outcome};
use crate::cli::TrustArgs;
use crate::trust::{self, Step, Stores};

pub async fn run(_ctx: &Context, args: TrustArgs) -> Outcome {
    if args.path {
        let ca = crate::ca::load_or_create().map_err(|e| Failure::new(e, 1))?;
        crate::outln!("{}", ca.cert_path().display());
        return Ok(0);
    }
    let ca = crate::ca::load_or_create().map_err(|e| Failure::new(e, 1))?;
    let stores = Stores::here();
    let steps = if args.uninstall {
        trust::uninstall(&ca, &stores)
    } else {
        trust::install(&ca, &stores)
    };
    let mut todo = false;
    for step in &steps {
        match step {
            Step::Done(what) => crate::outln!("✔ {what}"),
            Step::Todo(what) => {
                todo = true;
                crate::outln!("to do: {what}");
            }
        }
    }
    if steps.is_empty() {
        crate::outln!("nothing to remove: devenv's CA is in no trust store devenv knows");
    }
    if !args.uninstall {
        crate::outln!("CA certificate: {}", ca.cert_path().display());
    }
    Ok(u8::from(todo))
}
