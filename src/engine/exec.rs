//! Commands in running containers (`exec`, attached or not), attached
//! one-offs, and files in and out of containers as tar archives.

use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use futures_util::StreamExt;

use super::{is_not_found, Engine, EngineError};

/// Copies the user's stdin into an attached container or exec as it comes;
/// at its end the container's stdin closes too (`echo x | devenv run … cat`
/// ends). Reading stdin blocks, so a plain thread reads and a task forwards.
fn forward_stdin(
    mut input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
) -> tokio::task::JoinHandle<()> {
    use tokio::io::AsyncWriteExt;
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

/// Who and where an attached exec runs: the container's defaults when unset.
#[derive(Debug, Clone, Default)]
pub struct ExecAs {
    pub user: Option<String>,
    /// `KEY=VALUE` pairs over the container's env.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
}

impl Engine {
    /// Runs a command in a running container, passing each output chunk to
    /// `on_output`, and returns its exit code.
    pub async fn exec(
        &self,
        id: &str,
        cmd: Vec<String>,
        env: Vec<String>,
        user: Option<String>,
        mut on_output: impl FnMut(&str) + Send,
    ) -> Result<i64, EngineError> {
        self.exec_bytes(id, cmd, env, user, |b| {
            on_output(&String::from_utf8_lossy(b))
        })
        .await
    }

    /// [`Engine::exec`] with the output as bytes, for output that is data
    /// (file names) rather than text a chunk boundary may cut in two.
    pub async fn exec_bytes(
        &self,
        id: &str,
        cmd: Vec<String>,
        env: Vec<String>,
        user: Option<String>,
        mut on_output: impl FnMut(&[u8]) + Send,
    ) -> Result<i64, EngineError> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let action = format!("running `{}` in `{id}`", cmd.join(" "));
        let opts = CreateExecOptions {
            cmd: Some(cmd),
            env: Some(env),
            user,
            ..Default::default()
        };
        let exec = self.create_exec(id, opts, &action).await?;
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec, None)
            .await
            .map_err(EngineError::api(action.clone()))?
        {
            while let Some(chunk) = output.next().await {
                let chunk = chunk.map_err(EngineError::api(action.clone()))?;
                on_output(&chunk.into_bytes());
            }
        }
        let info = self
            .docker
            .inspect_exec(&exec)
            .await
            .map_err(EngineError::api(action))?;
        Ok(info.exit_code.unwrap_or(-1))
    }

    /// Runs a command with the user's terminal attached: stdin goes in,
    /// output comes out as it is produced, and with `tty` the container
    /// allocates a terminal of the user's size. Returns the exit code.
    pub async fn exec_attached(
        &self,
        id: &str,
        cmd: Vec<String>,
        tty: Option<(u16, u16)>,
    ) -> Result<i64, EngineError> {
        self.exec_attached_as(id, cmd, tty, &ExecAs::default())
            .await
    }

    /// [`Engine::exec_attached`] as another user, with extra env or in
    /// another folder (`exec -u/-e/-w`).
    pub async fn exec_attached_as(
        &self,
        id: &str,
        cmd: Vec<String>,
        tty: Option<(u16, u16)>,
        who: &ExecAs,
    ) -> Result<i64, EngineError> {
        use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecResults};
        let action = format!("running `{}` in `{id}`", cmd.join(" "));
        let opts = CreateExecOptions {
            cmd: Some(cmd),
            attach_stdin: Some(true),
            tty: Some(tty.is_some()),
            user: who.user.clone(),
            env: (!who.env.is_empty()).then(|| who.env.clone()),
            working_dir: who.working_dir.clone(),
            ..Default::default()
        };
        let exec = self.create_exec(id, opts, &action).await?;
        let started = self
            .docker
            .start_exec(&exec, None)
            .await
            .map_err(EngineError::api(action.clone()))?;
        if let StartExecResults::Attached { mut output, input } = started {
            if let Some((rows, cols)) = tty {
                // Best effort: a wrong size only makes full-screen programs look odd.
                let _ = self
                    .docker
                    .resize_exec(
                        &exec,
                        ResizeExecOptions {
                            height: rows,
                            width: cols,
                        },
                    )
                    .await;
            }
            let forward = forward_stdin(input);
            let mut stdout = std::io::stdout();
            while let Some(chunk) = output.next().await {
                use std::io::Write;
                let chunk = chunk.map_err(EngineError::api(action.clone()))?;
                let _ = stdout.write_all(&chunk.into_bytes());
                let _ = stdout.flush();
            }
            forward.abort();
        }
        let info = self
            .docker
            .inspect_exec(&exec)
            .await
            .map_err(EngineError::api(action))?;
        Ok(info.exit_code.unwrap_or(-1))
    }

    /// Starts a created container (a one-off made with `stdin`) with the
    /// user's terminal attached, as [`Engine::exec_attached`] does for an
    /// exec: stdin goes in, output comes out, and with `tty` the container's
    /// terminal gets the user's size. Returns its exit code once it stops.
    pub async fn start_attached(
        &self,
        id: &str,
        tty: Option<(u16, u16)>,
    ) -> Result<i64, EngineError> {
        use bollard::query_parameters::{AttachContainerOptions, ResizeContainerTTYOptions};
        use std::io::Write;
        let action = format!("attaching to `{id}`");
        let opts = AttachContainerOptions {
            stream: true,
            stdin: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        // Attached before the start, so not a byte of output is lost.
        let bollard::container::AttachContainerResults { mut output, input } = self
            .docker
            .attach_container(id, Some(opts))
            .await
            .map_err(EngineError::api(action.clone()))?;
        self.start_container(id).await?;
        if let Some((rows, cols)) = tty {
            // Best effort: a wrong size only makes full-screen programs look odd.
            let _ = self
                .docker
                .resize_container_tty(
                    id,
                    ResizeContainerTTYOptions {
                        h: i32::from(rows),
                        w: i32::from(cols),
                    },
                )
                .await;
        }
        let forward = forward_stdin(input);
        while let Some(chunk) = output.next().await {
            let chunk = chunk.map_err(EngineError::api(action.clone()))?;
            if let bollard::container::LogOutput::StdErr { message } = chunk {
                let _ = std::io::stderr().write_all(&message);
            } else {
                let mut out = std::io::stdout();
                let _ = out.write_all(&chunk.into_bytes());
                let _ = out.flush();
            }
        }
        forward.abort();
        self.wait_container(id).await
    }

    /// Creates an exec whose output is attached; returns its id.
    pub(super) async fn create_exec(
        &self,
        id: &str,
        opts: bollard::exec::CreateExecOptions<String>,
        action: &str,
    ) -> Result<String, EngineError> {
        let opts = bollard::exec::CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..opts
        };
        let exec = self
            .docker
            .create_exec(id, opts)
            .await
            .map_err(EngineError::api(action.to_string()))?;
        Ok(exec.id)
    }

    /// A tar archive of `path` in a container (running or stopped), or
    /// `None` when it does not exist.
    pub async fn download_archive(
        &self,
        id: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let opts = DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let mut stream = self.docker.download_from_container(id, Some(opts));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => archive.extend_from_slice(&bytes),
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(e) => {
                    return Err(EngineError::api(format!("copying `{path}` out of `{id}`"))(
                        e,
                    ))
                }
            }
        }
        Ok(Some(archive))
    }

    /// The contents of one file in a container (running or stopped), or
    /// `None` when it does not exist.
    pub async fn download_file(
        &self,
        id: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        use std::io::Read;
        let Some(archive) = self.download_archive(id, path).await? else {
            return Ok(None);
        };
        let unreadable = |e: std::io::Error| EngineError::Api {
            action: format!("reading `{path}` copied out of `{id}`"),
            source: bollard::errors::Error::IOError { err: e },
        };
        let mut tar = tar::Archive::new(archive.as_slice());
        let mut entries = tar.entries().map_err(unreadable)?;
        match entries.next() {
            Some(entry) => {
                let mut entry = entry.map_err(unreadable)?;
                let mut out = Vec::new();
                entry.read_to_end(&mut out).map_err(unreadable)?;
                Ok(Some(out))
            }
            None => Ok(None),
        }
    }

    /// Unpacks a tar archive at `path` inside the container.
    pub async fn upload_archive(
        &self,
        id: &str,
        path: &str,
        tar: Vec<u8>,
    ) -> Result<(), EngineError> {
        let opts = UploadToContainerOptions {
            path: path.to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(id, Some(opts), bollard::body_full(tar.into()))
            .await
            .map_err(EngineError::api(format!("copying files into `{id}`")))
    }
}
