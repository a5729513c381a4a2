//! A long-lived exec with its stdin held open: one process in a running
//! container that the caller feeds and reads for as long as it likes,
//! without paying for a new exec (create, start, inspect: three requests and
//! a process spawned by the runtime) per message.

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWrite;

use super::{Engine, EngineError};

/// What the process wrote, one chunk at a time, on which stream.
#[derive(Debug)]
pub enum Piped {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// The running process: write to `input`, read from `output`. Its stdin
/// closes when `input` is dropped; `output` ends when the process exits
/// (or the container stops).
pub struct ExecPipe {
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
    pub output: Pin<Box<dyn Stream<Item = Result<Piped, EngineError>> + Send>>,
}

impl Engine {
    /// Starts `cmd` in the running container `id` as `user` (the
    /// container's own when `None`) with stdin, stdout and stderr attached.
    pub async fn exec_pipe(
        &self,
        id: &str,
        cmd: Vec<String>,
        user: Option<String>,
    ) -> Result<ExecPipe, EngineError> {
        use bollard::container::LogOutput;
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let action = format!("running `{}` in `{id}`", cmd.join(" "));
        let opts = CreateExecOptions {
            cmd: Some(cmd),
            attach_stdin: Some(true),
            user,
            ..Default::default()
        };
        let exec = self.create_exec(id, opts, &action).await?;
        let started = self
            .docker
            .start_exec(&exec, None)
            .await
            .map_err(EngineError::api(action.clone()))?;
        let StartExecResults::Attached { output, input } = started else {
            let err = std::io::Error::other("the engine started it detached");
            return Err(EngineError::api(action)(bollard::errors::Error::IOError {
                err,
            }));
        };
        let output = output.filter_map(move |chunk| {
            let piped = match chunk {
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                    Some(Ok(Piped::Stdout(message.to_vec())))
                }
                Ok(LogOutput::StdErr { message }) => Some(Ok(Piped::Stderr(message.to_vec()))),
                Ok(LogOutput::StdIn { .. }) => None,
                Err(e) => Some(Err(EngineError::api(action.clone())(e))),
            };
            std::future::ready(piped)
        });
        Ok(ExecPipe {
            input,
            output: Box::pin(output),
        })
    }
}
