//! The fast way in and out (sync mode): two long-lived shells per watched
//! container, started once with their stdin held open. One runs as root and
//! takes each batch's tar archive, or list of paths to remove; the other runs
//! as the container's user and looks for the files the container changed
//! (the copy-back's `find`). A save then costs a few writes on an open
//! connection instead of an archive upload through the engine (which spawns
//! a helper process of its own per request, ~100 ms on a busy machine), and
//! the once-a-second look for container changes no longer holds saves up
//! behind a new exec (three requests and a process the runtime starts).
//!
//! # The protocol
//!
//! A frame is a header line, `KIND SIZE`, then SIZE bytes: `x` (a tar
//! archive to extract at `/`), `r` (NUL-separated paths to `rm -rf`) or `c`
//! (no bytes: list what changed, [`super::back`]'s script). The shell
//! answers with the frame's output, then `\0done CODE\n`; the output is
//! NUL-terminated items that never start with `done`, so the answer's end is
//! unmistakable. Only one frame is in flight: the next is written after the
//! answer, so the pipe holds nothing past the frame and neither `head -c` nor
//! `tar` can read into the next one (GNU and busybox tar both read a pipe to
//! its end before they exit). The shell's `read` takes the header a byte at a
//! time, as POSIX shells do on a pipe. Nothing but `sh`, `head`, `tar` and
//! `xargs` is needed; a container without them, a frame that fails (a folder
//! replaced by a file, a read-only target) or a helper that died (the
//! container stopped or restarted) falls back to the engine's archive upload
//! and execs, which also report any failure in full.

use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::engine::{Engine, ExecPipe, Piped};

/// Checks its tools, says `ready`, then answers frames until stdin closes.
/// `{collect}` is the copy-back's script, run in a subshell with the
/// helper's own arguments (the mark, then the targets).
const SCRIPT: &str = r#"for t in head tar xargs rm; do command -v "$t" >/dev/null 2>&1 || exit 3; done
echo ready
while read -r kind size; do
  case $kind in
    x) head -c "$size" | tar -xpf - -C / 2>/dev/null ;;
    r) head -c "$size" | xargs -0 rm -rf -- 2>/dev/null ;;
    c) (
{collect}
) ;;
    *) exit 4 ;;
  esac
  printf '\000done %s\n' "$?"
done"#;

/// How long starting may take (the exec itself, on a busy engine).
const START: Duration = Duration::from_secs(10);
/// How long one frame may take before the helper counts as lost (a paused
/// container, a huge batch on a slow disk).
const FRAME: Duration = Duration::from_secs(60);

/// One helper shell in one container.
pub struct Courier {
    pipe: ExecPipe,
    /// Stdout read but not yet taken.
    out: Vec<u8>,
    lost: bool,
}

impl Courier {
    /// Starts a helper in the running container `id` as `user` (the
    /// container's own when `None`), `args` being the copy-back script's;
    /// `None` when the container cannot run it (no `sh`, `head`, `tar` or
    /// `xargs`, an exec refused).
    async fn start(
        engine: &Engine,
        id: &str,
        user: Option<&str>,
        args: &[&str],
    ) -> Option<Courier> {
        let script = SCRIPT.replace("{collect}", super::back::SCRIPT);
        let mut cmd = vec!["sh".to_string(), "-c".into(), script, "sh".into()];
        cmd.extend(args.iter().map(|a| a.to_string()));
        let started = tokio::time::timeout(START, async {
            let pipe = engine
                .exec_pipe(id, cmd, user.map(str::to_string))
                .await
                .ok()?;
            let mut c = Courier {
                pipe,
                out: Vec::new(),
                lost: false,
            };
            (c.ready().await? == "ready").then_some(c)
        })
        .await;
        started.ok().flatten()
    }

    /// False once the helper is known to be gone (its output ended, a frame
    /// failed to go through).
    fn alive(&mut self) -> bool {
        // Ended output shows at once; anything else waits for a frame.
        while !self.lost {
            match self.pipe.output.next().now_or_never() {
                None => break,
                Some(Some(Ok(Piped::Stdout(b)))) => self.out.extend_from_slice(&b),
                Some(Some(Ok(Piped::Stderr(_)))) => {}
                Some(None | Some(Err(_))) => self.lost = true,
            }
        }
        !self.lost
    }

    /// Sends one frame; its exit code and output, or `None` when the helper
    /// is lost (it then stays lost).
    async fn frame(&mut self, kind: char, payload: &[u8]) -> Option<(i64, Vec<u8>)> {
        if !self.alive() {
            return None;
        }
        let answer = tokio::time::timeout(FRAME, async {
            let header = format!("{kind} {}\n", payload.len());
            self.pipe.input.write_all(header.as_bytes()).await.ok()?;
            self.pipe.input.write_all(payload).await.ok()?;
            self.pipe.input.flush().await.ok()?;
            self.answer().await
        })
        .await;
        let answer = answer.ok().flatten();
        self.lost |= answer.is_none();
        answer
    }

    /// The first line of stdout (the greeting).
    async fn ready(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.out.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.out.drain(..=end).collect();
                return Some(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            self.read().await?;
        }
    }

    /// Output up to the `\0done CODE\n` that ends an answer.
    async fn answer(&mut self) -> Option<(i64, Vec<u8>)> {
        loop {
            if let Some((code, end, next)) = find_end(&self.out) {
                let out: Vec<u8> = self.out.drain(..next).take(end).collect();
                return Some((code, out));
            }
            self.read().await?;
        }
    }

    /// Reads more stdout; `None` when the output ended.
    async fn read(&mut self) -> Option<()> {
        loop {
            match self.pipe.output.next().await {
                Some(Ok(Piped::Stdout(b))) => {
                    self.out.extend_from_slice(&b);
                    return Some(());
                }
                Some(Ok(Piped::Stderr(_))) => {}
                None | Some(Err(_)) => {
                    self.lost = true;
                    return None;
                }
            }
        }
    }
}

/// Where an answer ends in `out`: its code, where its output ends and where
/// the next answer starts. Items are NUL-terminated and never start with
/// `done`, so only the end marker begins `done ` after a NUL (or at once).
fn find_end(out: &[u8]) -> Option<(i64, usize, usize)> {
    let mut start = 0;
    loop {
        let rest = &out[start..];
        if rest.starts_with(b"\0done ") {
            let line = &rest[1..];
            let nl = line.iter().position(|b| *b == b'\n')?;
            let code = std::str::from_utf8(&line[5..nl])
                .ok()?
                .trim()
                .parse()
                .ok()?;
            return Some((code, start, start + 1 + nl + 1));
        }
        // On to the next item: past its NUL, keeping the NUL as a marker's start.
        let nul = rest.iter().skip(1).position(|b| *b == 0)?;
        start += nul + 1;
    }
}

/// The helpers of one container: `put` (root) extracts and removes, `list`
/// (the container's user, as the copy-back always ran) looks for changes.
/// `list` may be lent out for a look that runs while saves go on.
#[derive(Default)]
pub struct Couriers {
    put: Option<Courier>,
    list: Option<Courier>,
    lent: bool,
    /// The container was seen not running (paused, stopping): unused until
    /// [`Couriers::ensure`] is called again.
    held: bool,
    /// This container cannot run them: everything goes the engine's way.
    unavailable: bool,
    /// Why saves are slower than they could be, to tell the user once.
    news: Option<&'static str>,
    /// A frame failed once already (and the user was told).
    failed: bool,
}

impl Couriers {
    /// Starts whichever helper is not running, unless the container cannot
    /// run them; `targets` are the copying rules' container paths.
    pub async fn ensure(&mut self, engine: &Engine, id: &str, targets: &[&str]) {
        self.held = false;
        if self.unavailable {
            return;
        }
        if !self.put.as_mut().is_some_and(Courier::alive) {
            self.put = Courier::start(engine, id, Some("0"), &[]).await;
        }
        if !self.lent && !self.list.as_mut().is_some_and(Courier::alive) {
            let mut args = vec![super::back::MARK];
            args.extend(targets);
            self.list = Courier::start(engine, id, None, &args).await;
        }
        self.unavailable = self.put.is_none() || (!self.lent && self.list.is_none());
        if self.unavailable {
            self.news = Some(
                "the container cannot run devenv's sync helpers (they need `sh`, `head`, `tar` and `xargs`): saves go through the engine's archive upload, ~100 ms slower",
            );
        }
    }

    /// Why saves are slower than they could be, once.
    pub fn news(&mut self) -> Option<&'static str> {
        self.news.take()
    }

    /// Notes a frame the helper answered with a failure.
    fn failed(&mut self, answer: &Option<(i64, Vec<u8>)>) {
        if matches!(answer, Some((code, _)) if *code != 0) && !self.failed {
            self.failed = true;
            self.news = Some(
                "a batch failed through devenv's sync helper and went through the engine's archive upload instead",
            );
        }
    }

    /// True while both helpers run: the container is the one they were
    /// started in, running, not restarted since (either would end them).
    pub fn alive(&mut self) -> bool {
        if self.held {
            return false;
        }
        let put = self.put.as_mut().is_some_and(Courier::alive);
        put && (self.lent || self.list.as_mut().is_some_and(Courier::alive))
    }

    /// Stops using the helpers until [`Couriers::ensure`] (the container
    /// does not run now: a frame could hang).
    pub fn hold(&mut self) {
        self.held = true;
    }

    /// True while the listing helper is out on a look.
    pub fn lent(&self) -> bool {
        self.lent
    }

    /// The listing helper, for a look that runs on its own ([`look`]);
    /// `None` when it is not running.
    pub fn lend(&mut self) -> Option<Courier> {
        if self.lent || self.held || !self.list.as_mut().is_some_and(Courier::alive) {
            return None;
        }
        self.lent = true;
        self.list.take()
    }

    /// Takes the lent helper back; false (and it is dropped) when these
    /// helpers were replaced meanwhile (a restart, a whole-tree sync).
    pub fn give_back(&mut self, c: Courier) -> bool {
        if !self.lent {
            return false;
        }
        self.lent = false;
        self.list = Some(c);
        true
    }

    /// Extracts a tar archive at `/` in the container; true when it worked.
    pub async fn extract(&mut self, tar: &[u8]) -> bool {
        let answer = frame(self.put.as_mut(), 'x', tar).await;
        self.failed(&answer);
        matches!(answer, Some((0, _)))
    }

    /// `rm -rf` of `paths` in the container; true when it worked.
    pub async fn remove(&mut self, paths: &[String]) -> bool {
        let mut list = Vec::new();
        for p in paths {
            list.extend_from_slice(&super::names::bytes(p));
            list.push(0);
        }
        let answer = frame(self.put.as_mut(), 'r', &list).await;
        self.failed(&answer);
        matches!(answer, Some((0, _)))
    }

    /// The copy-back script's exit code and output, or `None` when the
    /// helper cannot run it now.
    pub async fn changed(&mut self) -> Option<(i64, Vec<u8>)> {
        frame(self.list.as_mut(), 'c', &[]).await
    }
}

/// Lists what the container changed, on a lent helper ([`Couriers::lend`]):
/// the helper back, and the copy-back script's exit code and output (`None`
/// when the helper was lost).
pub async fn look(mut c: Courier) -> (Courier, Option<(i64, Vec<u8>)>) {
    let answer = c.frame('c', &[]).await;
    (c, answer)
}

async fn frame(c: Option<&mut Courier>, kind: char, payload: &[u8]) -> Option<(i64, Vec<u8>)> {
    c?.frame(kind, payload).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_ends_at_the_first_done_after_a_nul() {
        assert_eq!(find_end(b"\0done 0\n"), Some((0, 0, 8)));
        assert_eq!(find_end(b"\0done 2\nrest"), Some((2, 0, 8)));
        let out = b"s 3 17.5 /srv/done x\0p /srv/a\ndone 1\n\0\0done 0\n";
        let (code, end, next) = find_end(out).unwrap();
        assert_eq!(code, 0);
        assert_eq!(&out[..end], b"s 3 17.5 /srv/done x\0p /srv/a\ndone 1\n\0");
        assert_eq!(next, out.len());
        assert_eq!(
            find_end(b"s 3 17.5 /srv/x\0\0done 0"),
            None,
            "not whole yet"
        );
        assert_eq!(find_end(b"s 3 17.5 /srv/x\0"), None);
    }
}
