//! The workers: each runs PHPUnit in a one-off container of the app's
//! image against its own databases, through its own copy of `phpunit.xml`
//! when the suite is split, and hands back its exit code and JUnit summary.

use std::io;
use std::path::{Path, PathBuf};

use super::junit::{self, Summary};
use super::{files, Made, Run, TestError, TestOptions, WorkerReport};
use crate::config::model::{EnvValue, Mount, Service};
use crate::engine::OneOff;
use crate::lifecycle;

/// Where each container writes its JUnit report (inside it, never on the host).
const JUNIT: &str = "/tmp/devenv-junit.xml";

const PHPUNIT_HELP: &str = "build the app image with PHPUnit (the `dev` target of docker/app/Dockerfile has it), or set `[test].command`";

impl Run<'_> {
    /// Writes each worker's PHPUnit configuration (when the suite is split).
    pub(super) fn worker_configs(
        &self,
        shares: &[Option<Vec<String>>],
        made: &mut Made,
    ) -> Result<Vec<Option<(PathBuf, String)>>, TestError> {
        let (Some(source), true) = (&self.settings.source, shares.iter().any(Option::is_some))
        else {
            return Ok(shares.iter().map(|_| None).collect());
        };
        let Some(config) = files::phpunit_config(source) else {
            return Ok(shares.iter().map(|_| None).collect());
        };
        let io_error = |path: &Path, source: io::Error| TestError::Read {
            path: path.to_path_buf(),
            help: "check that the folder is readable and writable".into(),
            source,
        };
        let text = std::fs::read_to_string(&config).map_err(|e| io_error(&config, e))?;
        // A fresh private folder (see `crate::scratch`); a killed run's is swept by the next.
        let run_dir =
            crate::scratch::run_dir("test").map_err(|e| io_error(&std::env::temp_dir(), e))?;
        let dir = run_dir.path().to_path_buf();
        made.temp_dir = Some(run_dir);
        let in_container = format!(
            "{}/{}",
            self.settings.target.trim_end_matches('/'),
            config
                .file_name()
                .expect("a config file has a name")
                .to_string_lossy()
        );
        shares
            .iter()
            .enumerate()
            .map(|(i, files)| {
                let Some(files) = files else { return Ok(None) };
                let path = dir.join(format!("phpunit-{}.xml", i + 1));
                std::fs::write(&path, files::worker_config(&text, files))
                    .map_err(|e| io_error(&path, e))?;
                Ok(Some((path, in_container.clone())))
            })
            .collect()
    }

    /// Runs PHPUnit in one worker's container; returns its exit code and report.
    pub(super) async fn run_worker(
        &self,
        worker: &WorkerReport,
        config: Option<(PathBuf, String)>,
        opts: &TestOptions,
        several: bool,
    ) -> Result<(i64, Option<(Summary, String)>), TestError> {
        let name = self.container(&worker.number.to_string());
        let mut command = self.settings.command.clone();
        command.extend(
            ["--do-not-cache-result", "--log-junit", JUNIT]
                .iter()
                .map(|s| s.to_string()),
        );
        command.extend(opts.phpunit_args.iter().cloned());
        let oneoff = OneOff {
            name: name.clone(),
            command,
            tmpfs: self.tmpfs(),
            ..OneOff::default()
        };
        let svc = self.service(&worker.database, worker.redis_db, config);
        let number = worker.number;
        let mut partial = String::new();
        let result = lifecycle::run_oneoff(self.engine, self.stack, &svc, &oneoff, |chunk| {
            if !several {
                return self.out.output(None, chunk);
            }
            partial.push_str(chunk);
            while let Some(end) = partial.find('\n') {
                let line: String = partial.drain(..=end).collect();
                self.out.output(Some(number), &line);
            }
        })
        .await;
        if several && !partial.is_empty() {
            self.out.output(Some(number), &format!("{partial}\n"));
        }
        let code = match result {
            Ok((_, 127)) => {
                return Err(self.missing(&self.settings.command[0], PHPUNIT_HELP));
            }
            Ok((_, code)) => code,
            Err(e) if e.is_missing_executable() => {
                return Err(self.missing(&self.settings.command[0], PHPUNIT_HELP))
            }
            Err(e) => return Err(e.into()),
        };
        let summary = self
            .engine
            .download_file(&name, JUNIT)
            .await?
            .map(|xml| String::from_utf8_lossy(&xml).into_owned())
            .and_then(|xml| Some((junit::parse(&xml)?, xml)));
        self.engine
            .remove_project_container(&name, &self.stack.project)
            .await?;
        Ok((code, summary))
    }

    /// The app service as a test container runs it: test env, its own
    /// databases, the source mounted read-only over the image's copy.
    pub(super) fn service(
        &self,
        database: &str,
        redis_db: Option<u8>,
        config: Option<(PathBuf, String)>,
    ) -> Service {
        let s = self.settings;
        let mut svc = self.svc.clone();
        let plain = |value: String| EnvValue {
            value,
            secret: false,
        };
        svc.env
            .extend(s.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        svc.env
            .insert("DB_DATABASE".into(), plain(database.to_string()));
        if let Some(db) = redis_db {
            svc.env.insert("REDIS_DB".into(), plain(db.to_string()));
            svc.env
                .insert("REDIS_CACHE_DB".into(), plain(db.to_string()));
        }
        svc.working_dir = Some(s.target.clone());
        if let Some(source) = &s.source {
            svc.volumes.retain(|m| match m {
                Mount::Volume { target, .. }
                | Mount::Bind { target, .. }
                | Mount::Anonymous { target, .. } => target != &s.target,
            });
            svc.volumes.push(Mount::Bind {
                source: source.clone(),
                target: s.target.clone(),
                read_only: true,
            });
        }
        if let Some((file, target)) = config {
            svc.volumes.push(Mount::Bind {
                source: file,
                target,
                read_only: true,
            });
        }
        svc
    }

    /// The writable folders; over a mounted source only those that exist
    /// there (the engine cannot make a mount point in a read-only mount).
    pub(super) fn tmpfs(&self) -> Vec<String> {
        let s = self.settings;
        s.writable
            .iter()
            .filter(|w| match &s.source {
                None => true,
                Some(source) => w
                    .strip_prefix(&s.target)
                    .map(|rel| source.join(rel.trim_start_matches('/')).is_dir())
                    .unwrap_or(true),
            })
            .cloned()
            .collect()
    }

    pub(super) fn missing(&self, command: &str, help: &str) -> TestError {
        TestError::MissingCommand {
            service: self.settings.service.clone(),
            image: self.svc.image.to_string(),
            command: command.to_string(),
            help: help.to_string(),
        }
    }
}

/// The command a shell or PHP said it could not find, from its output
/// (`sh: 1: php: not found`, `Could not open input file: artisan`).
pub(super) fn missing_command(lines: &[String]) -> Option<String> {
    lines.iter().find_map(|l| {
        if let Some(file) = l.trim().strip_prefix("Could not open input file: ") {
            return Some(file.trim().to_string());
        }
        let head = l.trim().strip_suffix(": not found")?;
        head.rsplit(": ").next().map(|c| c.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_commands_are_read_from_shell_and_php_output() {
        let lines = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            missing_command(&lines("sh: 1: php: not found")),
            Some("php".into())
        );
        assert_eq!(
            missing_command(&lines("Could not open input file: artisan")),
            Some("artisan".into())
        );
        assert_eq!(
            missing_command(&lines(
                "/usr/local/bin/app-entrypoint: 10: exec: phpunit: not found"
            )),
            Some("phpunit".into())
        );
        assert_eq!(
            missing_command(&lines("SQLSTATE[42P07]: relation \"notes\" already exists")),
            None
        );
    }
}
