//! Commands in running containers (`exec`, attached or not), attached
//! one-offs, and files in and out of containers as tar archives.

use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use futures_util::StreamExt;

use super::{is_not_found, Engine, EngineError};
use crate::plan::PathKind;

/// What an attached exec or container writes, as it comes.
#[derive(Debug)]
pub enum Chunk {
    /// Its stdout (with a TTY, everything it writes).
    Stdout(bytes::Bytes),
    Stderr(bytes::Bytes),
}

/// An attached exec or container: its output as a stream and its stdin as
/// a writer. The engine never touches the user's terminal: the command
/// that asked copies between the two ([`Engine::attached_exit_code`] once the
/// output ends).
pub struct Attached {
    pub output:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Chunk, EngineError>> + Send>>,
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    ended: Ends,
}

/// An attached exec, for [`Engine::signal_exec`].
#[derive(Debug, Clone)]
pub struct ExecTarget {
    exec: String,
    container: String,
}

impl Attached {
    /// The exec to signal; `None` for an attached container.
    pub fn exec_target(&self) -> Option<ExecTarget> {
        match &self.ended {
            Ends::Exec {
                exec, container, ..
            } => Some(ExecTarget {
                exec: exec.clone(),
                container: container.clone(),
            }),
            Ends::Container(_) => None,
        }
    }
}

/// Where an attached run's exit code is read from.
enum Ends {
    Exec {
        exec: String,
        action: String,
        container: String,
    },
    Container(String),
}

fn chunk(output: bollard::container::LogOutput) -> Chunk {
    match output {
        bollard::container::LogOutput::StdErr { message } => Chunk::Stderr(message),
        other => Chunk::Stdout(other.into_bytes()),
    }
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

    /// Runs a command in a running container with stdin attached (as
    /// another user, with extra env or in another folder: `exec -u/-e/-w`);
    /// with `tty` (rows, columns) the container allocates a terminal of
    /// that size. The caller copies the streams.
    pub async fn exec_attached(
        &self,
        id: &str,
        cmd: Vec<String>,
        tty: Option<(u16, u16)>,
        who: &ExecAs,
    ) -> Result<Attached, EngineError> {
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
        let StartExecResults::Attached { output, input } = started else {
            return Err(EngineError::Api {
                action,
                source: bollard::errors::Error::DockerResponseServerError {
                    status_code: 500,
                    message: "the engine started the exec detached".into(),
                },
            });
        };
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
        let read = action.clone();
        Ok(Attached {
            output: Box::pin(
                output.map(move |c| c.map(chunk).map_err(EngineError::api(read.clone()))),
            ),
            input,
            ended: Ends::Exec {
                exec,
                action,
                container: id.to_string(),
            },
        })
    }

    /// Starts a created container (a one-off made with `stdin`) with its
    /// streams attached, as [`Engine::exec_attached`] does for an exec;
    /// with `tty` the container's terminal gets that size. Attached before
    /// the start, so not a byte of output is lost.
    pub async fn start_attached(
        &self,
        id: &str,
        tty: Option<(u16, u16)>,
    ) -> Result<Attached, EngineError> {
        use bollard::query_parameters::{AttachContainerOptions, ResizeContainerTTYOptions};
        let action = format!("attaching to `{id}`");
        let opts = AttachContainerOptions {
            stream: true,
            stdin: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let bollard::container::AttachContainerResults { output, input } = self
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
        Ok(Attached {
            output: Box::pin(
                output.map(move |c| c.map(chunk).map_err(EngineError::api(action.clone()))),
            ),
            input,
            ended: Ends::Container(id.to_string()),
        })
    }

    /// The exit code of an attached exec or container whose output ended
    /// (a container is waited for until it stops).
    pub async fn attached_exit_code(&self, attached: &Attached) -> Result<i64, EngineError> {
        match &attached.ended {
            Ends::Exec { exec, action, .. } => {
                let info = self
                    .docker
                    .inspect_exec(exec)
                    .await
                    .map_err(EngineError::api(action.clone()))?;
                Ok(info.exit_code.unwrap_or(-1))
            }
            Ends::Container(id) => self.wait_container(id).await,
        }
    }

    /// Sends `signal` (`INT`, `TERM`, `HUP`) to the process of an attached
    /// exec, which the engine's API cannot do: its host process id (from
    /// the engine) is mapped to the container's own through the host's
    /// `/proc` (its `NSpid` line), and a `kill` runs in the container as
    /// root. `false` when that is not possible (a remote engine, a process
    /// already gone, an attached container rather than an exec).
    pub async fn signal_exec(&self, target: &ExecTarget, signal: &str) -> bool {
        let ExecTarget { exec, container } = target;
        let Ok(info) = self.docker.inspect_exec(exec).await else {
            return false;
        };
        let Some(host_pid) = info.pid.filter(|p| *p > 0) else {
            return false;
        };
        let Some(pid) = container_pid(host_pid) else {
            return false;
        };
        let cmd = vec![
            "sh".to_string(),
            "-c".to_string(),
            format!("kill -s {signal} {pid}"),
        ];
        self.exec(container, cmd, Vec::new(), Some("0".into()), |_| {})
            .await
            .is_ok_and(|code| code == 0)
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

    /// What `path` is in `image`: a folder, a file (anything else that is
    /// not a link), or `None` where the image lacks it or it is a link (its
    /// target could be either). The engine has no way to read an image's
    /// files but through a container, so one is made from it, never started,
    /// labelled with `labels` (a killed run's is found by them), read from,
    /// and removed again by its id with the anonymous volumes it made.
    pub async fn path_in_image(
        &self,
        image: &str,
        path: &str,
        labels: std::collections::HashMap<String, String>,
    ) -> Result<Option<PathKind>, EngineError> {
        use bollard::models::ContainerCreateBody;
        use bollard::query_parameters::CreateContainerOptions;
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            // Never run: a command is named only because images without
            // one could not be made into a container at all.
            cmd: Some(vec!["true".into()]),
            entrypoint: Some(vec![]),
            labels: Some(labels),
            network_disabled: Some(true),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(None::<CreateContainerOptions>, body)
            .await
            .map_err(EngineError::api(format!(
                "making a container of `{image}` to look at `{path}`"
            )))?;
        let kind = self.first_entry(&created.id, path).await;
        self.remove_container(&created.id).await?;
        kind
    }

    /// The kind of the first entry of `path`'s archive, read from the
    /// archive's first header only: a folder is not copied whole.
    async fn first_entry(&self, id: &str, path: &str) -> Result<Option<PathKind>, EngineError> {
        let opts = DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let mut stream = self.docker.download_from_container(id, Some(opts));
        let mut head = Vec::with_capacity(512);
        while head.len() < 512 {
            match stream.next().await {
                Some(Ok(bytes)) => head.extend_from_slice(&bytes),
                Some(Err(e)) if is_not_found(&e) => return Ok(None),
                Some(Err(e)) => {
                    return Err(EngineError::api(format!("looking at `{path}` in `{id}`"))(
                        e,
                    ))
                }
                None => return Ok(None),
            }
        }
        let mut block = [0u8; 512];
        block.copy_from_slice(&head[..512]);
        let header = tar::Header::from_byte_slice(&block);
        Ok(match header.entry_type() {
            tar::EntryType::Directory => Some(PathKind::Folder),
            tar::EntryType::Symlink => None,
            _ => Some(PathKind::File),
        })
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

/// The process id a host process has in its own (innermost) namespace:
/// the last field of `NSpid:` in `/proc/PID/status`.
fn container_pid(host_pid: i64) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{host_pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}
