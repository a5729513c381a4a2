//! Containers' logs in the Engine API's terms: the last lines, a follow
//! from a tail or a time (`logs -n/--since/-t`), and the engine's clock
//! those times are read against. A local engine's logs are read straight
//! off its socket (`logread`); a remote one's through bollard.

use bollard::query_parameters::LogsOptions;
use futures_util::{Stream, StreamExt};

use super::{Engine, EngineError, LogsFrom};

impl Engine {
    /// The last `n` lines a container printed, stdout and stderr interleaved.
    pub async fn tail_logs(&self, id: &str, n: usize) -> Result<Vec<String>, EngineError> {
        let mut lines = Vec::new();
        let mut stream = self.follow_logs(id, Some(n), false);
        while let Some(chunk) = stream.next().await {
            lines.extend(chunk?.lines().map(str::to_string));
        }
        Ok(lines)
    }

    /// Log output as it comes, in chunks of text.
    pub fn follow_logs(
        &self,
        id: &str,
        tail: Option<usize>,
        follow: bool,
    ) -> impl Stream<Item = Result<String, EngineError>> + Send + 'static {
        let from = LogsFrom {
            tail,
            ..LogsFrom::default()
        };
        self.logs_from(id, &from, follow)
    }

    /// Log output from where `from` says (`logs -n/--since/-t`).
    pub fn logs_from(
        &self,
        id: &str,
        from: &LogsFrom,
        follow: bool,
    ) -> impl Stream<Item = Result<String, EngineError>> + Send + 'static {
        self.log_bytes(id, from, follow)
            .map(|item| item.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// [`Engine::logs_from`] as the engine's frames, undecoded: `logs`
    /// decodes each line in place, without a copy per line.
    pub fn log_bytes(
        &self,
        id: &str,
        from: &LogsFrom,
        follow: bool,
    ) -> impl Stream<Item = Result<bytes::Bytes, EngineError>> + Send + 'static {
        let opts = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: from
                .tail
                .map_or_else(|| "all".to_string(), |n| n.to_string()),
            since: from
                .since
                .map_or(0, |s| i32::try_from(s).unwrap_or(i32::MAX)),
            timestamps: from.timestamps,
            ..Default::default()
        };
        let action = format!("reading logs of `{id}`");
        // A local engine is read straight off its socket (see `logread`):
        // bollard hands over one line per item.
        if let Some(socket) = self.unix_socket() {
            let target = format!(
                "/v{}/containers/{id}/logs?follow={}&stdout=true&stderr=true&since={}&timestamps={}&tail={}",
                self.docker.client_version(),
                opts.follow,
                opts.since,
                opts.timestamps,
                opts.tail,
            );
            return super::logread::read(super::logread::Request { socket, target })
                .map(move |item| item.map_err(EngineError::api(action.clone())))
                .left_stream();
        }
        self.docker
            .logs(id, Some(opts))
            .map(move |item| {
                item.map(|out| out.into_bytes())
                    .map_err(EngineError::api(action.clone()))
            })
            .right_stream()
    }

    /// Log lines from `since` (unix seconds) on, each behind its RFC 3339
    /// timestamp, as they come: picks a restarted container up where its
    /// new run began (the caller drops the earlier lines of that second).
    pub fn follow_logs_since(
        &self,
        id: &str,
        since: i64,
    ) -> impl Stream<Item = Result<String, EngineError>> + Send + 'static {
        let from = LogsFrom {
            tail: None,
            since: Some(since),
            timestamps: true,
        };
        self.logs_from(id, &from, true)
    }

    /// The engine's clock now (RFC 3339), which its log timestamps and
    /// containers' start times are read against: the host's clock may differ
    /// (a remote engine, a VM).
    pub async fn now(&self) -> Result<String, EngineError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(EngineError::api("reading the engine's clock".to_string()))?;
        Ok(info.system_time.unwrap_or_default())
    }
}
