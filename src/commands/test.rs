//! `devenv test [--parallel N] [--fresh] [--junit PATH] [-- PHPUNIT_ARGS…]`:
//! flags to options, PHPUnit's output to stdout as it comes, then a one-line
//! summary from the JUnit report (written to PATH, merged, with `--junit`);
//! the exit code is PHPUnit's, 3 when the tests could not run.

use std::io::Write;

use console::style;

use super::exec::exit_code;
use super::{Context, Failure, Outcome};
use crate::cli::TestArgs;
use crate::lifecycle::UpError;
use crate::testrun::{self, files, TestError, TestOptions, TestOutput, TestReport};
use crate::ui::prefixed;

pub async fn run(ctx: &Context, args: TestArgs) -> Outcome {
    let stack = ctx.stack()?;
    let engine = ctx.engine().await?;
    if let Some(test) = &stack.test {
        let wanted: Vec<String> = [&test.service, &test.database]
            .into_iter()
            .chain(&test.redis)
            .filter(|s| stack.services.contains_key(*s))
            .cloned()
            .collect();
        if !wanted.is_empty() {
            crate::lifecycle::check_external_volumes(&engine, &stack, &wanted)
                .await
                .map_err(Failure::from)?;
        }
    }
    let stack = ctx.named(&engine, stack, true).await?;
    // A database per branch: the checkout's branch's (when the database
    // runs; else once the run has started it, below). The tests' own
    // databases come from the migrations, so a switch that fails is said
    // and the tests still run.
    let follow = async || {
        if let Err(e) = super::dbbranch::follow_at_up(ctx, &engine, &stack).await {
            ctx.reporter().notice(&format!(
                "the branch's database was not switched: {}",
                e.report
            ));
        }
    };
    follow().await;
    let mut phpunit_args = args.phpunit_args;
    if let Some(source) = stack.test.as_ref().and_then(|t| t.source.as_deref()) {
        phpunit_args = files::container_args(&phpunit_args, &ctx.load.cwd, &stack.root, source);
        // PHPUnit sees a pipe in the container: ask for the colours the
        // app's configuration wants when the user's terminal can show them.
        let colors = files::phpunit_config(source)
            .and_then(|c| std::fs::read_to_string(c).ok())
            .is_some_and(|c| files::wants_colors(&c));
        let terminal = console::Term::stdout().is_term() && console::colors_enabled();
        if colors && terminal && !phpunit_args.iter().any(|a| a.starts_with("--colors")) {
            phpunit_args.insert(0, "--colors=always".into());
        }
    }
    let opts = TestOptions {
        parallel: usize::from(args.parallel),
        fresh: args.fresh,
        phpunit_args,
    };
    let cancel = crate::interrupt::first();
    let result = testrun::run(&engine, &stack, &opts, ctx.reporter(), &Stdout, cancel).await;
    if !crate::interrupt::happened() {
        follow().await;
    }
    match result {
        Ok(report) => {
            if let Some(path) = &args.junit {
                let path = ctx.load.cwd.join(path);
                let written = testrun::write_junit(&report, &path).map_err(|e| {
                    let code = e.exit_code();
                    Failure::new(e, code)
                })?;
                if written {
                    crate::outln!("JUnit report: {}", path.display());
                }
            }
            Ok(print_summary(&report))
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
        // PHPUnit's output may print the test env's password.
        let text = crate::config::secret::scrub(text);
        let text = text.as_ref();
        crate::ui::suspended(|| {
            let mut out = std::io::stdout().lock();
            let _ = match worker {
                None => out.write_all(text.as_bytes()),
                Some(n) => {
                    write!(out, "{}", prefixed(&format!("w{n}"), text))
                }
            };
            let _ = out.flush();
        })
    }
}

fn print_lines(source: &str, lines: &[String]) {
    for line in lines {
        crate::ui::print_err(&prefixed(source, line));
    }
}

/// `✔ 9 tests, 21 assertions: 0 failures, 0 errors, 0 skipped in 0.84s`,
/// then the failed tests, one per line; returns the exit code: PHPUnit's,
/// and 1 when it ran no test at all (a filter or path that matched nothing).
fn print_summary(report: &TestReport) -> u8 {
    let workers = report.workers.len();
    let code = exit_code(report.code());
    let none_ran = report.summary().is_none_or(|s| s.tests == 0);
    if none_ran && (code == 0 || report.summary().is_some()) {
        crate::outln!(
            "{} no tests executed: the arguments or the configuration matched no test",
            style("✘").red()
        );
        return code.max(1);
    }
    let Some(s) = report.summary() else {
        crate::outln!(
            "{} no JUnit report: PHPUnit exited with code {} before writing one",
            style("✘").red(),
            report.code()
        );
        return testrun::ERRORED;
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
    crate::outln!(
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
        crate::outln!("  {} {name}", style("failed:").red());
    }
    code
}
