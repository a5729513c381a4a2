//! The terminal side of [`Reporter`]: a spinner per task on a terminal,
//! plain prefixed lines otherwise, nothing when quiet. Also colours for
//! service prefixes and the error renderer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use console::{style, Style};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::cli::Progress;
use crate::report::Reporter;

/// A stable colour per service name, for log prefixes.
pub fn service_style(name: &str) -> Style {
    const COLOURS: [console::Color; 6] = [
        console::Color::Cyan,
        console::Color::Yellow,
        console::Color::Green,
        console::Color::Magenta,
        console::Color::Blue,
        console::Color::Red,
    ];
    let idx = name
        .bytes()
        .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
    Style::new().fg(COLOURS[idx % COLOURS.len()])
}

/// `line` behind its source's coloured `name |` prefix, as logs show it.
pub fn prefixed(source: &str, line: &str) -> String {
    format!(
        "{} {line}",
        service_style(source).apply_to(format!("{source} |"))
    )
}

pub struct TerminalReporter {
    mode: Mode,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

enum Mode {
    Bars(MultiProgress),
    Plain,
    Quiet,
}

impl TerminalReporter {
    pub fn new(progress: Progress) -> Self {
        let mode = match progress {
            Progress::Quiet => Mode::Quiet,
            Progress::Plain => Mode::Plain,
            Progress::Auto if console::Term::stderr().is_term() => Mode::Bars(MultiProgress::new()),
            Progress::Auto => Mode::Plain,
        };
        TerminalReporter {
            mode,
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, mp: &MultiProgress, key: &str) -> ProgressBar {
        let mut bars = self.bars.lock().expect("no panics while holding the lock");
        bars.entry(key.to_string())
            .or_insert_with(|| {
                let bar = mp.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner:.cyan} {prefix:.bold} {msg} {bytes:>10}/{total_bytes:10}",
                    )
                    .expect("valid template")
                    .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
                );
                bar.set_prefix(key.to_string());
                bar.enable_steady_tick(Duration::from_millis(100));
                bar
            })
            .clone()
    }

    /// Writes a line above the bars (or plainly to stderr).
    fn line(&self, text: &str) {
        match &self.mode {
            Mode::Bars(mp) => {
                let _ = mp.println(text);
            }
            Mode::Plain => eprintln!("{text}"),
            Mode::Quiet => {}
        }
    }
}

impl Reporter for TerminalReporter {
    fn task(&self, key: &str, status: &str) {
        match &self.mode {
            Mode::Bars(mp) => {
                let bar = self.bar(mp, key);
                bar.set_style(
                    ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {msg}")
                        .expect("valid template")
                        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
                );
                bar.set_message(status.to_string());
            }
            Mode::Plain => eprintln!("{} {status}", style(key).bold()),
            Mode::Quiet => {}
        }
    }

    fn progress(&self, key: &str, current: u64, total: u64) {
        if let Mode::Bars(mp) = &self.mode {
            let bar = self.bar(mp, key);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner:.cyan} {prefix:.bold} [{bar:30}] {bytes}/{total_bytes}",
                )
                .expect("valid template"),
            );
            bar.set_length(total);
            bar.set_position(current);
        }
    }

    fn done(&self, key: &str, status: &str, ok: bool) {
        let mark = if ok {
            style("✔").green()
        } else {
            style("✘").red()
        };
        match &self.mode {
            Mode::Bars(mp) => {
                let bar = self.bar(mp, key);
                bar.set_style(ProgressStyle::with_template("{msg}").expect("valid template"));
                bar.finish_with_message(format!("{mark} {} {status}", style(key).bold()));
                self.bars
                    .lock()
                    .expect("no panics while holding the lock")
                    .remove(key);
            }
            Mode::Plain => eprintln!("{mark} {} {status}", style(key).bold()),
            Mode::Quiet => {}
        }
    }

    fn notice(&self, message: &str) {
        self.line(&format!("{} {message}", style("note:").yellow().bold()));
    }

    fn output(&self, source: &str, line: &str) {
        self.line(&prefixed(source, line));
    }
}
