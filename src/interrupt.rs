//! One Ctrl-C policy for the whole program (just's interrupt handler, and
//! what Compose users expect):
//!
//! - the first Ctrl-C asks the running command to stop gracefully, and says
//!   "press Ctrl-C again to force"; a command with nothing to clean up just
//!   ends;
//! - the second Ctrl-C forces: a command that was stopping containers kills
//!   them instead, and the process ends soon after whatever it was doing;
//! - an interrupted command exits 130, whatever it was.
//!
//! SIGTERM (an IDE's stop button, `timeout`, a cancelled CI job) and SIGHUP
//! (a closed terminal) count as the first Ctrl-C: the stack stops the same
//! way, and the command exits 128 + the signal (143, 129), as a shell
//! reports a process that signal ended. After one of them, a Ctrl-C or
//! another signal forces.
//!
//! [`install`] starts one listener per process; commands wait on
//! [`first`] and [`second`] in their `select!`s, and return [`exit_code`].

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::watch;

/// The exit code of a command interrupted by Ctrl-C (128 + SIGINT).
pub const EXIT_CODE: u8 = 130;

/// 128 + the signal number: SIGHUP (1), SIGINT (2), SIGTERM (15).
const HUP_CODE: u8 = 129;
const TERM_CODE: u8 = 143;

/// How long a forced command may take to kill what it started before the
/// process ends regardless.
const FORCE_GRACE: Duration = Duration::from_secs(5);

struct Shared {
    presses: watch::Sender<u8>,
    count: AtomicU8,
    /// The exit code the first interruption calls for (0: none yet).
    code: AtomicU8,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// Whether the first interruption says "stopping… press Ctrl-C again to
/// force": only a command that stops something on the way out (`up`,
/// `down`, `test`…) has a stop to wait for. `ps`, `logs -f` or `ui` just end,
/// quietly, as any Unix tool does (and as `docker compose logs -f` does).
static SAYS_STOPPING: AtomicBool = AtomicBool::new(false);

/// Sets whether the running command has a stop to announce (see
/// [`SAYS_STOPPING`]); call before [`install`].
pub fn says_stopping(yes: bool) {
    SAYS_STOPPING.store(yes, Ordering::SeqCst);
}

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| Shared {
        presses: watch::channel(0).0,
        count: AtomicU8::new(0),
        code: AtomicU8::new(0),
    })
}

/// Starts listening for Ctrl-C, SIGTERM and SIGHUP (call once, inside the
/// runtime). Until it runs, they end the process the default way.
pub fn install() {
    tokio::spawn(async move {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                // No handler can be installed: the default (end at once) stays.
                return;
            }
            press(EXIT_CODE);
        }
    });
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        for (kind, code) in [
            (SignalKind::terminate(), TERM_CODE),
            (SignalKind::hangup(), HUP_CODE),
        ] {
            // No handler: that signal keeps its default (end at once).
            let Ok(mut sig) = signal(kind) else { continue };
            tokio::spawn(async move {
                while sig.recv().await.is_some() {
                    press(code);
                }
            });
        }
    }
}

/// One interruption: the first asks to stop, the next ones force.
fn press(code: u8) {
    let shared = shared();
    let _ = shared
        .code
        .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
    let n = shared
        .count
        .fetch_add(1, Ordering::SeqCst)
        .saturating_add(1);
    // A terminal that hung up has nobody to tell, and a closed stderr must
    // not cut the graceful stop short.
    match n {
        1 if !SAYS_STOPPING.load(Ordering::SeqCst) => {}
        1 => {
            crate::ui::clear_progress();
            let what = if code == EXIT_CODE {
                "interrupted"
            } else {
                "stopped by a signal"
            };
            crate::ui::try_err(
                &console::style(format!("{what}: stopping… press Ctrl-C again to force"))
                    .dim()
                    .to_string(),
            );
        }
        _ => {
            crate::ui::clear_progress();
            crate::ui::try_err(&console::style("forcing: killing…").dim().to_string());
            tokio::spawn(async {
                tokio::time::sleep(FORCE_GRACE).await;
                std::process::exit(i32::from(exit_code()));
            });
        }
    }
    shared.presses.send_replace(n);
}

/// The exit code of an interrupted command: 130 after Ctrl-C, 143 after
/// SIGTERM, 129 after SIGHUP (whichever came first).
pub fn exit_code() -> u8 {
    match shared().code.load(Ordering::SeqCst) {
        0 => EXIT_CODE,
        c => c,
    }
}

/// Whether Ctrl-C was pressed at least once.
pub fn happened() -> bool {
    shared().count.load(Ordering::SeqCst) > 0
}

/// Resolves once Ctrl-C has been pressed (at once if it already was).
pub async fn first() {
    presses(1).await
}

/// Resolves once Ctrl-C has been pressed twice.
pub async fn second() {
    presses(2).await
}

async fn presses(n: u8) {
    let mut rx = shared().presses.subscribe();
    // The sender lives in a static: `wait_for` only ends when the count is reached.
    let _ = rx.wait_for(|v| *v >= n).await;
}
