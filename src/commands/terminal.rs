//! The user's terminal during an attached `exec` or `run`: raw mode behind
//! a guard that puts it back however the command ends, stdin copied into
//! the container, its output copied out. The engine only hands over the
//! streams ([`crate::engine::Attached`]).

use std::io::Write;

use futures_util::StreamExt;
use rustix::termios::{tcgetattr, tcsetattr, OptionalActions, Termios};
use tokio::io::AsyncWriteExt;

use crate::engine::{Attached, Chunk, Engine, EngineError};

/// The terminal in raw mode for as long as it lives (keys go to the
/// container's TTY as typed, Ctrl-C included); dropped, the settings it
/// found come back, on an error or a panic too.
pub(super) struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Raw mode on stdin's terminal; `None` when stdin is not one.
    pub(super) fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// Copies the user's stdin into `input` as it comes; at its end the
/// container's stdin closes too (`echo x | devenv run … cat` ends). Reading
/// stdin blocks, so a plain thread reads and a task forwards.
fn forward_stdin(
    mut input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
) -> tokio::task::JoinHandle<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || tx.blocking_send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if input.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = input.shutdown().await;
    })
}

/// Copies between the terminal and an attached exec or container until its
/// output ends; returns its exit code.
pub(super) async fn pump(engine: &Engine, mut attached: Attached) -> Result<i64, EngineError> {
    let input = std::mem::replace(&mut attached.input, Box::pin(tokio::io::sink()));
    let forward = forward_stdin(input);
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let mut failed = None;
    while let Some(chunk) = attached.output.next().await {
        // A reader that went away (`| head`) is no reason to stop the command.
        match chunk {
            Ok(Chunk::Stdout(bytes)) => {
                let _ = out.write_all(&bytes).and_then(|()| out.flush());
            }
            Ok(Chunk::Stderr(bytes)) => {
                let _ = err.write_all(&bytes);
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    forward.abort();
    if let Some(e) = failed {
        return Err(e);
    }
    engine.attached_exit_code(&attached).await
}
