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
//! [`install`] starts one listener per process; commands wait on
//! [`first`] and [`second`] in their `select!`s.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::watch;

/// The exit code of an interrupted command (128 + SIGINT).
pub const EXIT_CODE: u8 = 130;

/// How long a forced command may take to kill what it started before the
/// process ends regardless.
const FORCE_GRACE: Duration = Duration::from_secs(5);

struct Shared {
    presses: watch::Sender<u8>,
    count: AtomicU8,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| Shared {
        presses: watch::channel(0).0,
        count: AtomicU8::new(0),
    })
}

/// Starts listening for Ctrl-C (call once, inside the runtime). Until it
/// runs, Ctrl-C ends the process the default way.
pub fn install() {
    let shared = shared();
    tokio::spawn(async move {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                // No handler can be installed: the default (end at once) stays.
                return;
            }
            let n = shared
                .count
                .fetch_add(1, Ordering::SeqCst)
                .saturating_add(1);
            match n {
                1 => {
                    crate::ui::clear_progress();
                    // A closed stderr must not cut the graceful stop short.
                    crate::ui::try_err(
                        &console::style("interrupted: stopping… press Ctrl-C again to force")
                            .dim()
                            .to_string(),
                    );
                }
                _ => {
                    crate::ui::clear_progress();
                    crate::ui::try_err(&console::style("forcing: killing…").dim().to_string());
                    tokio::spawn(async {
                        tokio::time::sleep(FORCE_GRACE).await;
                        std::process::exit(i32::from(EXIT_CODE));
                    });
                }
            }
            shared.presses.send_replace(n);
        }
    });
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
