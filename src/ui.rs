//! The terminal side of [`Reporter`]: a spinner per task on a terminal,
//! plain prefixed lines otherwise, nothing when quiet. Also colours for
//! service prefixes and the error renderer.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use console::{style, Style};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::cli::Progress;
use crate::config::secret::scrub;
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
    Style::new().fg(COLOURS[colour_index(name)])
}

/// Which of the six log colours service `name` has (`devenv ui` uses the same).
pub fn colour_index(name: &str) -> usize {
    name.bytes()
        .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize))
        % 6
}

/// `line` behind its source's coloured `name |` prefix, as logs show it.
pub fn prefixed(source: &str, line: &str) -> String {
    format!(
        "{} {line}",
        service_style(source).apply_to(format!("{source} |"))
    )
}

/// The one set of progress bars of the process: every reporter draws into
/// it, so two reporters never fight over the same screen lines, and every
/// other line printed while bars are up goes through [`print_out`] /
/// [`print_err`], which lift the bars first (a bar redraw moves the cursor up
/// over its own lines; a line printed behind its back would be erased).
static BARS: OnceLock<Bars> = OnceLock::new();

struct Bars {
    multi: MultiProgress,
    by_key: Mutex<HashMap<String, ProgressBar>>,
}

fn bars() -> &'static Bars {
    BARS.get_or_init(|| Bars {
        multi: MultiProgress::new(),
        by_key: Mutex::new(HashMap::new()),
    })
}

/// Runs `write` (output of any shape) with the progress display lifted.
pub fn suspended<R>(write: impl FnOnce() -> R) -> R {
    match BARS.get() {
        Some(b) => b.multi.suspend(write),
        None => write(),
    }
}

/// Prints a line on stdout without breaking the progress display.
pub fn print_out(line: &str) {
    match BARS.get() {
        Some(b) => b.multi.suspend(|| write_out(line)),
        None => write_out(line),
    }
}

/// Writes a line on stdout, every secret of the loaded stacks masked in it.
pub fn write_out(line: &str) {
    write_raw(&scrub(line));
}

/// Writes a line on stdout unmasked: only for what the user asked to see
/// (`describe --reveal`), never for a service's output or an error.
pub fn print_revealed(line: &str) {
    suspended(|| write_raw(line));
}

/// Writes text on stdout as it is (masked by the caller). A reader that
/// went away (`devenv ps --json | head -1`, `logs -f | grep -m1`) ends
/// devenv quietly with exit 0, as a closed pipe ends any Unix tool, rather
/// than a panic (Rust ignores SIGPIPE, so the write fails instead) or a
/// `logs -f` writing on forever.
fn write_raw(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = writeln!(out, "{line}").and_then(|()| out.flush());
    said_written(written);
}

/// What [`write_raw`] does with a write's result.
fn said_written(written: std::io::Result<()>) {
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| try_err(&format!("devenv: cannot write to standard output: {e}")));
        }
    }
}

/// The lines of a log frame, as `str::lines` splits text: no empty last
/// line after a final newline, a carriage return before it dropped.
pub fn frame_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let lines = (!bytes.is_empty()).then(|| body.split(|b| *b == b'\n'));
    lines
        .into_iter()
        .flatten()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// How much of a service's log [`LogBlock`] gathers before it writes,
/// when more is already there: few writes, and memory bounded however
/// fast a service prints.
pub const LOG_BLOCK: usize = 256 * 1024;

/// A service's log lines gathered into one write: the prefix made once,
/// each line decoded in place (a copy only for invalid UTF-8) and masked
/// (a copy only where a secret is), then one locked write and flush per
/// block instead of per line (`logs` reads thousands of lines a second).
pub struct LogBlock {
    prefix: String,
    buf: Vec<u8>,
}

/// What a chunk of log text needs: [`Scan::of`] looks at the whole chunk
/// once, so that its lines need neither decoding nor masking one by one
/// when it is valid UTF-8 with nothing to mask anywhere in it.
#[derive(Debug, Clone, Copy)]
pub struct Scan {
    clean: bool,
}

impl Scan {
    pub fn of(chunk: &[u8]) -> Scan {
        let clean = std::str::from_utf8(chunk).is_ok_and(crate::config::secret::leaves_alone);
        Scan { clean }
    }
}

impl LogBlock {
    pub fn new(service: &str) -> LogBlock {
        LogBlock {
            prefix: format!(
                "{} ",
                service_style(service).apply_to(format!("{service} |"))
            ),
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    /// Adds one line (without its newline).
    pub fn line(&mut self, line: &str) {
        self.buf.extend_from_slice(self.prefix.as_bytes());
        self.buf.extend_from_slice(scrub(line).as_bytes());
        self.buf.push(b'\n');
    }

    /// Adds one line of a chunk that `scan` looked at: as it is when the
    /// chunk is clean, else decoded and masked as [`LogBlock::line`] does.
    pub fn line_of(&mut self, line: &[u8], scan: Scan) {
        if scan.clean {
            self.buf.extend_from_slice(self.prefix.as_bytes());
            self.buf.extend_from_slice(line);
            self.buf.push(b'\n');
        } else {
            self.line(&String::from_utf8_lossy(line));
        }
    }

    /// Adds every line of a chunk of bytes.
    pub fn lines(&mut self, bytes: &[u8]) {
        let scan = Scan::of(bytes);
        for line in frame_lines(bytes) {
            self.line_of(line, scan);
        }
    }

    /// How many bytes wait to be written.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// What was gathered and not written yet.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Writes what was gathered, with the progress display lifted.
    pub fn flush(&mut self) {
        use std::io::Write;
        if self.buf.is_empty() {
            return;
        }
        suspended(|| {
            let mut out = std::io::stdout().lock();
            said_written(out.write_all(&self.buf).and_then(|()| out.flush()));
        });
        self.buf.clear();
    }
}

/// Prints a `--json` (or `config`'s TOML) output: every string in `value`
/// masked by the loaded stacks' maskers, then rendered by `render`. Its
/// keys are left alone: masking the printed text as a whole would hit them
/// too (`"secret": true` under the password `secret`).
pub fn print_data(mut value: serde_json::Value, render: impl FnOnce(&serde_json::Value) -> String) {
    crate::config::secret::scrub_json(&mut value);
    let text = render(&value);
    match BARS.get() {
        Some(b) => b.multi.suspend(|| write_raw(&text)),
        None => write_raw(&text),
    }
}

/// Writes a line on stderr; a reader that went away (`devenv logs 2>&1
/// >/dev/null | head -3`) ends devenv quietly, as [`write_out`] does for
/// stdout (`eprintln!` would panic: exit 101).
pub fn write_err(line: &str) {
    // Any other failure: there is nowhere left to say it.
    let _ = quit_if_gone(write_err_line(&scrub(line)));
}

/// Writes a line on stderr and goes on whatever happens to it: for what
/// must not end devenv (the Ctrl-C handler's notes, the last error).
pub fn try_err(line: &str) {
    let _ = write_err_line(&scrub(line));
}

fn write_err_line(line: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    writeln!(err, "{line}").and_then(|()| err.flush())
}

/// Standard output or error as a writer (for code that takes `dyn Write`):
/// a reader that went away ends devenv quietly, as in [`write_out`].
pub enum Stream {
    Out,
    Err,
}

impl std::io::Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        quit_if_gone(match self {
            Stream::Out => std::io::stdout().write(buf),
            Stream::Err => std::io::stderr().write(buf),
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        quit_if_gone(match self {
            Stream::Out => std::io::stdout().flush(),
            Stream::Err => std::io::stderr().flush(),
        })
    }
}

fn quit_if_gone<T>(written: std::io::Result<T>) -> std::io::Result<T> {
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => other,
    }
}

/// Prints a line on stderr without breaking the progress display.
pub fn print_err(line: &str) {
    // `write_err` scrubs secrets.
    match BARS.get() {
        Some(b) => b.multi.suspend(|| write_err(line)),
        None => write_err(line),
    }
}

/// Ends every spinner still turning: a task that never said it was done
/// leaves no stale `⠙` behind (called before following logs, before a
/// summary, on Ctrl-C and at exit).
pub fn clear_progress() {
    let Some(b) = BARS.get() else { return };
    let bars: Vec<ProgressBar> = b
        .by_key
        .lock()
        .expect("no panics while holding the lock")
        .drain()
        .map(|(_, bar)| bar)
        .collect();
    for bar in bars {
        bar.finish_and_clear();
        b.multi.remove(&bar);
    }
    let _ = b.multi.clear();
}

pub struct TerminalReporter {
    mode: Mode,
}

#[derive(Clone, Copy)]
enum Mode {
    Bars,
    Plain,
    Quiet,
}

impl TerminalReporter {
    pub fn new(progress: Progress) -> Self {
        let mode = match progress {
            Progress::Quiet => Mode::Quiet,
            Progress::Plain => Mode::Plain,
            Progress::Auto if console::Term::stderr().is_term() => Mode::Bars,
            Progress::Auto => Mode::Plain,
        };
        TerminalReporter { mode }
    }

    fn bar(&self, key: &str) -> ProgressBar {
        let b = bars();
        let mut by_key = b.by_key.lock().expect("no panics while holding the lock");
        by_key
            .entry(key.to_string())
            .or_insert_with(|| {
                let bar = b.multi.add(ProgressBar::new_spinner());
                bar.set_style(spinner_style());
                bar.set_prefix(key.to_string());
                bar.enable_steady_tick(Duration::from_millis(100));
                bar
            })
            .clone()
    }

    /// Writes a line above the bars (or plainly to stderr).
    fn line(&self, text: &str) {
        match self.mode {
            Mode::Bars => print_err(text),
            Mode::Plain => write_err(text),
            Mode::Quiet => {}
        }
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {msg}")
        .expect("valid template")
        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
}

impl Reporter for TerminalReporter {
    fn task(&self, key: &str, status: &str) {
        let status = scrub(status);
        match self.mode {
            Mode::Bars => {
                let bar = self.bar(key);
                bar.set_style(spinner_style());
                bar.set_message(status.to_string());
            }
            Mode::Plain => write_err(&format!("{} {status}", style(key).bold())),
            Mode::Quiet => {}
        }
    }

    fn progress(&self, key: &str, current: u64, total: u64) {
        if let Mode::Bars = self.mode {
            let bar = self.bar(key);
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
        let text = format!("{mark} {} {}", style(key).bold(), scrub(status));
        match self.mode {
            Mode::Bars => {
                // The finished line goes above the bars as an ordinary line,
                // so finished tasks scroll away instead of filling the screen.
                let b = bars();
                let bar = b
                    .by_key
                    .lock()
                    .expect("no panics while holding the lock")
                    .remove(key);
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                    b.multi.remove(&bar);
                }
                print_err(&text);
            }
            Mode::Plain => write_err(&text),
            Mode::Quiet => {}
        }
    }

    fn notice(&self, message: &str) {
        self.line(&format!("{} {message}", style("note:").yellow().bold()));
    }

    fn output(&self, source: &str, line: &str) {
        self.line(&prefixed(source, line));
    }

    fn clear(&self) {
        clear_progress();
    }

    fn restarting(&self, service: &str, why: &str) {
        let mut notes = RESTART_NOTES
            .lock()
            .expect("no panics while holding the lock");
        notes.retain(|(s, _)| s != service);
        notes.push((service.to_string(), why.to_string()));
    }
}

/// Why devenv itself restarted a service (told through
/// [`Reporter::restarting`]), kept until the log follower of the same
/// process says so on the service's restart line.
static RESTART_NOTES: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// The reason reported for `service`'s restart, once.
pub fn take_restart_note(service: &str) -> Option<String> {
    let mut notes = RESTART_NOTES
        .lock()
        .expect("no panics while holding the lock");
    let pos = notes.iter().position(|(s, _)| s == service)?;
    Some(notes.remove(pos).1)
}

/// `println!` through [`write_out`]: a closed stdout ends devenv quietly.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::ui::write_out(&format!($($arg)*))
    };
}

/// `eprintln!` through [`write_err`]: a closed stderr ends devenv quietly.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::ui::write_err(&format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each line as [`LogBlock::line`] adds it on its own: decoded, masked.
    fn line_by_line(chunk: &[u8]) -> Vec<u8> {
        let mut block = LogBlock::new("s");
        for line in frame_lines(chunk) {
            block.line(&String::from_utf8_lossy(line));
        }
        block.pending().to_vec()
    }

    #[test]
    fn a_chunk_reads_as_its_lines_one_by_one_masked_or_clean() {
        crate::config::secret::register(&crate::config::secret::Masker::of(["logblock-s3cr3t"]));
        let chunks: [&[u8]; 5] = [
            b"plain one\r\nplain two\n\nlast without newline",
            b"a line\nthe logblock-s3cr3t in a line\nafter it\n",
            b"db at postgres://app:pw@db:5432/app\nplain\n",
            b"bad \xff utf-8\nplain\n",
            b"",
        ];
        for chunk in chunks {
            let mut block = LogBlock::new("s");
            block.lines(chunk);
            assert_eq!(
                String::from_utf8_lossy(block.pending()),
                String::from_utf8_lossy(&line_by_line(chunk)),
            );
        }
        let mut block = LogBlock::new("s");
        block.lines(chunks[1]);
        let shown = String::from_utf8_lossy(block.pending()).into_owned();
        assert!(!shown.contains("logblock-s3cr3t"), "{shown}");
        assert!(shown.contains("after it"), "{shown}");
    }
}
