//! `devenv test [--parallel N] [--fresh] [-- PHPUNIT_ARGS…]`: flags to
//! options, PHPUnit's output to stdout as it comes, then a one-line summary
//! from the JUnit report; the exit code is PHPUnit's.

use std::io::Write;

use console::style;

use super::exec::exit_code;
use super::{Context, Failure, Outcome};
use crate::cli::TestArgs;
use crate::lifecycle::UpError;
use crate::testrun::{self, TestError, TestOptions, TestOutput, TestReport};
use crate::ui::prefixed;

pub async fn run(ctx: &Context, args: TestArgs) -> Outcome {
    let stack = ctx.stack()?;
    let engine = ctx.engine().await?;
    let opts = TestOptions {
        parallel: usize::from(args.parallel),
        fresh: args.fresh,
        phpunit_args: args.phpunit_args,
    };
    let cancel = crate::interrupt::first();
    match testrun::run(&engine, &stack, &opts, ctx.reporter(), &Stdout, cancel).await {
        Ok(report) => {
            print_summary(&report);
            Ok(exit_code(report.code()))
        }
        Err(e) => {
            match &e {
                TestError::Migrate { output, .. } => print_lines("migrate", output),
                TestError::Up(UpError::NotReady { service, logs, .. }) => {
                    print_lines(service, logs)
                }
                _ => {}
            }
            let code = e.exit_code();
            Err(Failure::new(e, code))
        }
    }
}

struct Stdout;

impl TestOutput for Stdout {
    fn output(&self, worker: Option<usize>, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = match worker {
            None => out.write_all(text.as_bytes()),
            Some(n) => {
                write!(out, "{}", prefixed(&format!("w{n}"), text))
            }
        };
        let _ = out.flush();
    }
}

fn print_lines(source: &str, lines: &[String]) {
    for line in lines {
        eprintln!("{}", prefixed(source, line));
    }
}

/// `✔ 9 tests, 21 assertions: 0 failures, 0 errors, 0 skipped in 0.84s`,
/// then the failed tests, one per line.
fn print_summary(report: &TestReport) {
    let workers = report.workers.len();
    let Some(s) = report.summary() else {
        println!(
            "{} no JUnit report: PHPUnit exited with code {} before writing one",
            style("✘").red(),
            report.code()
        );
        return;
    };
    let plural = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mark = if s.passed() && report.code() == 0 {
        style("✔").green()
    } else {
        style("✘").red()
    };
    let missing = report
        .workers
        .iter()
        .filter(|w| w.summary.is_none())
        .count();
    println!(
        "{mark} {}, {}: {}, {}, {} skipped in {:.2}s{}{}",
        plural(s.tests, "test"),
        plural(s.assertions, "assertion"),
        plural(s.failures, "failure"),
        plural(s.errors, "error"),
        s.skipped,
        s.time,
        if workers > 1 {
            format!(" ({workers} workers)")
        } else {
            String::new()
        },
        if missing > 0 {
            format!(", {missing} of them wrote no report")
        } else {
            String::new()
        },
    );
    for name in &s.failed {
        println!("  {} {name}", style("failed:").red());
    }
}
