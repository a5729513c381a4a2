//! End-to-end live sync: `devenv watch` as a child process against the real
//! engine, syncing into the busybox web image's `/srv` (sync mode, forced);
//! the container's tree is compared with the host's by the checksum of every
//! file. Mounts inside a sync target lose nothing, in both modes.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::{repo, text, warm_images, Project};

/// A web service whose `/srv` mirrors the project's `src/`, plus `extra` TOML.
fn project(name: &str, extra: &str) -> Project {
    let web = repo().join("tests/fixtures/web");
    let p = Project::new(
        name,
        &format!(
            r#"[services.web]
build = {{ context = "{}" }}
image = "devenv-e2e-web:latest"
ports = []
user = "1000"
mount = "sync"

[[services.web.watch]]
path = "src"
action = "sync"
target = "/srv"
{extra}"#,
            web.display()
        ),
    );
    p.write("src/index.html", "hello\n");
    p.write("src/health", "ok\n");
    p
}

/// `devenv watch`, killed on drop; its stderr goes to a file the test reads.
struct Watch {
    child: Child,
    log: PathBuf,
}

impl Watch {
    fn start(p: &Project) -> Watch {
        let log = p.path().join("watch.log");
        let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("devenv"))
            .args(["--progress", "plain", "watch"])
            .current_dir(p.path())
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let w = Watch { child, log };
        w.wait_for("watching");
        w
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has `n` lines containing `needle`.
    fn wait_for_n(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.log().matches(needle).count() < n {
            assert!(
                Instant::now() < deadline,
                "no `{needle}` (x{n}) from devenv watch:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for(&self, needle: &str) {
        self.wait_for_n(needle, 1);
    }

    fn assert_running(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "devenv watch exited:\n{}",
            self.log()
        );
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sha256  ./path` per file, then every folder, sorted by name; in the form
/// the container's `find | sort | xargs sha256sum` prints.
fn host_tree(root: &Path) -> String {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            let rel = format!("./{}", path.strip_prefix(root).unwrap().display());
            // What the watch rules skip by default stays out of the comparison.
            if rel.contains("vendor") || rel.ends_with(".swp") {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                dirs.push(rel);
                todo.push(path);
            } else {
                let hash = Sha256::digest(std::fs::read(&path).unwrap());
                let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
                files.push((rel, hex));
            }
        }
    }
    files.sort();
    dirs.sort();
    let mut out: Vec<String> = files.iter().map(|(r, h)| format!("{h}  {r}")).collect();
    out.push("--".into());
    out.extend(dirs);
    out.join("\n")
}

fn container_tree(p: &Project) -> String {
    let out = p.run(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "cd /srv || exit 1; find . -type f | LC_ALL=C sort | xargs -r sha256sum; echo --; find . -mindepth 1 -type d | LC_ALL=C sort",
    ]);
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// Polls until the container's `/srv` matches the host's `src/`.
fn assert_consistent(p: &Project, w: &Watch) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (host, container) = (host_tree(&p.path().join("src")), container_tree(p));
        if host == container {
            return;
        }
        if Instant::now() > deadline {
            let host: Vec<&str> = host.lines().collect();
            let missing: Vec<&&str> = host.iter().filter(|l| !container.contains(**l)).collect();
            let extra: Vec<&str> = container.lines().filter(|l| !host.contains(l)).collect();
            panic!(
                "the container never matched the host\nmissing in the container: {missing:?}\nextra in the container: {extra:?}\nwatch log:\n{}",
                w.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_burst_of_writes_deletes_renames_and_recreates_ends_identical() {
    warm_images();
    let mut p = project("e2ewatchburst", "");
    p.write("src/old/keep.txt", "old\n");
    // The image has `/srv/health`; the host no longer does: the initial sync removes it.
    std::fs::remove_file(p.path().join("src/health")).unwrap();
    p.ok(&["up", "-d"]);
    let mut w = Watch::start(&p);
    assert_consistent(&p, &w);

    let src = p.path().join("src");
    for d in 0..10 {
        for f in 0..100 {
            p.write(&format!("src/burst/d{d}/f{f}.txt"), &format!("{d}/{f}\n"));
        }
    }
    for f in 0..100 {
        std::fs::remove_file(src.join(format!("burst/d3/f{f}.txt"))).unwrap();
    }
    std::fs::rename(src.join("burst/d1"), src.join("burst/renamed")).unwrap();
    std::fs::rename(src.join("old"), src.join("burst/d1")).unwrap();
    std::fs::remove_dir_all(src.join("burst/d2")).unwrap();
    p.write("src/burst/d2/new.txt", "recreated\n");
    std::fs::remove_file(src.join("index.html")).unwrap();
    p.write("src/index.html", "hello again\n");
    // Skipped by default: never copied.
    p.write("src/vendor/lib.php", "<?php\n");
    p.write("src/.index.html.swp", "swap");
    assert_consistent(&p, &w);

    let out = p.ok(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "test ! -e /srv/vendor && find /srv ! -user 1000 | wc -l",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "everything synced belongs to the container's user:\n{}",
        text(&out)
    );
    assert!(w.log().contains("synced"), "{}", w.log());
    w.assert_running();
}

#[test]
fn a_restarted_container_is_synced_again() {
    warm_images();
    let mut p = project("e2ewatchrestart", "");
    p.ok(&["up", "-d"]);
    let mut w = Watch::start(&p);
    assert_consistent(&p, &w);
    // Drift made in the container while it runs: the restart brings the host's tree back.
    p.ok(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "echo junk > /srv/junk && rm /srv/index.html",
    ]);
    p.ok(&["restart", "web"]);
    w.wait_for("container restarted");
    assert_consistent(&p, &w);
    w.assert_running();
}

#[test]
fn a_failed_sync_is_reported_and_watching_goes_on() {
    warm_images();
    let mut p = project("e2ewatchfail", "");
    p.ok(&["up", "-d"]);
    let mut w = Watch::start(&p);
    assert_consistent(&p, &w);
    p.ok(&["down"]);
    p.write("src/while-down.txt", "missed\n");
    w.wait_for("sync failed: service `web` is not running");
    w.assert_running();
    // A new container: the whole tree is synced again, then changes flow as before.
    p.ok(&["up", "-d"]);
    w.wait_for("new container");
    p.write("src/after.txt", "back\n");
    w.wait_for_n("synced 1 file in", 1);
    assert_consistent(&p, &w);
    w.assert_running();
}

#[test]
fn an_exec_rule_runs_its_command_after_the_sync() {
    warm_images();
    let mut p = project(
        "e2ewatchexec",
        "\n[[services.web.watch]]\npath = \"src/trigger\"\naction = \"exec\"\nrun = \"cat /srv/trigger/x > /tmp/seen\"\n",
    );
    p.write("src/trigger/x", "v1\n");
    p.ok(&["up", "-d"]);
    let w = Watch::start(&p);
    p.write("src/trigger/x", "v2\n");
    w.wait_for("ran cat /srv/trigger/x > /tmp/seen");
    let out = p.ok(&["exec", "web", "--", "cat", "/tmp/seen"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "v2",
        "the command sees the file it was fired for:\n{}",
        w.log()
    );
}

/// Issue 10: a sync rule whose target holds a bind mount of another host
/// folder and a named volume. Starting `devenv watch`, saving, removing and
/// a restart's re-sync must leave the host file and the volume's file alone.
fn mounts_inside_a_sync_target_lose_nothing(name: &str, mode: &str) {
    warm_images();
    let web = repo().join("tests/fixtures/web");
    let mut p = Project::new(
        name,
        &format!(
            r#"[services.web]
build = {{ context = "{}" }}
image = "devenv-e2e-web:latest"
ports = []
mount = "{mode}"
volumes = ["./uploads:/srv/app/uploads", "appdata:/srv/app/data"]

[[services.web.watch]]
path = "src"
action = "sync"
target = "/srv/app"
"#,
            web.display()
        ),
    );
    p.write("src/index.html", "hello\n");
    p.write("src/sub/page.html", "page\n");
    p.write("uploads/photo.jpg", "jpeg bytes\n");
    p.ok(&["up", "-d"]);
    p.ok(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "echo rows > /srv/app/data/db.sqlite",
    ]);
    let w = Watch::start(&p);
    if mode == "bind" {
        w.wait_for("nothing to copy");
    } else {
        w.wait_for("initial sync");
    }

    // Saves, a removed file, a removed folder, then a restart's whole-tree sync.
    p.write("src/new.html", "new\n");
    std::fs::remove_file(p.path().join("src/index.html")).unwrap();
    std::fs::remove_dir_all(p.path().join("src/sub")).unwrap();
    let seen = |p: &Project, path: &str| {
        p.run(&["exec", "web", "--", "test", "-e", path])
            .status
            .success()
    };
    assert!(
        support::eventually(10, || seen(&p, "/srv/app/new.html")
            && !seen(&p, "/srv/app/index.html")),
        "saves and removals still reach the container:\n{}",
        w.log()
    );
    p.ok(&["restart", "web"]);
    if mode == "sync" {
        w.wait_for("container restarted");
    }
    std::thread::sleep(Duration::from_millis(1500));

    assert_eq!(
        std::fs::read_to_string(p.path().join("uploads/photo.jpg")).unwrap(),
        "jpeg bytes\n",
        "the host file under the bind mount is untouched:\n{}",
        w.log()
    );
    let out = p.ok(&[
        "exec",
        "web",
        "--",
        "cat",
        "/srv/app/data/db.sqlite",
        "/srv/app/uploads/photo.jpg",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "rows\njpeg bytes\n",
        "the volume's file and the mounted file are still there:\n{}",
        w.log()
    );
    assert!(seen(&p, "/srv/app/new.html") && !seen(&p, "/srv/app/sub"));
}

#[test]
fn r10_bind_mode_mounts_inside_a_sync_target_lose_nothing() {
    mounts_inside_a_sync_target_lose_nothing("wtmountguardbind", "bind");
}

#[test]
fn r10_sync_mode_mounts_inside_a_sync_target_lose_nothing() {
    mounts_inside_a_sync_target_lose_nothing("wtmountguardsync", "sync");
}

#[test]
fn r10_sync_mode_copies_what_the_container_makes_back_within_two_seconds() {
    warm_images();
    let mut p = project("wtmountback", "");
    p.write("src/conflict.txt", "v1\n");
    p.ok(&["up", "-d"]);
    let w = Watch::start(&p);
    w.wait_for("initial sync");

    let started = Instant::now();
    p.ok(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "mkdir -p /srv/made && echo from-container > /srv/made/by-container.txt",
    ]);
    let made = p.path().join("src/made/by-container.txt");
    assert!(
        support::eventually(5, || made.is_file()),
        "the container's file reached the host:\n{}",
        w.log()
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "within 2 s, took {took:?}:\n{}",
        w.log()
    );
    assert_eq!(std::fs::read_to_string(&made).unwrap(), "from-container\n");

    // A re-sync (restart) keeps it on both sides.
    p.ok(&["restart", "web"]);
    w.wait_for("container restarted");
    let out = p.ok(&["exec", "web", "--", "cat", "/srv/made/by-container.txt"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-container\n");
    assert!(made.is_file());

    // With no watcher, both sides change one file: the next re-sync keeps the
    // host's and saves the container's beside it, and says so.
    drop(w);
    p.write("src/conflict.txt", "host v2\n");
    p.ok(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "echo container v2 > /srv/conflict.txt",
    ]);
    let out = p.ok(&["restart", "web"]);
    assert!(
        support::stderr(&out).contains("changed on both sides"),
        "{}",
        text(&out)
    );
    let src = p.path().join("src");
    assert_eq!(
        std::fs::read_to_string(src.join("conflict.txt")).unwrap(),
        "host v2\n"
    );
    assert_eq!(
        std::fs::read_to_string(src.join("conflict.txt.from-container")).unwrap(),
        "container v2\n"
    );
    let out = p.ok(&["exec", "web", "--", "cat", "/srv/conflict.txt"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "host v2\n");
}

/// How a watched folder leaves under a running watcher.
enum Gone {
    Renamed,
    Removed,
}

/// Issue 10: a watcher whose host folder is gone (moved away, deleted)
/// learns nothing from that about what the container should lack: the
/// container keeps every file, the host's and its own, through the batch
/// that saw the folder go, the once-a-second look for container changes,
/// and a restart's whole-tree sync.
fn a_gone_folder_deletes_nothing_in_the_container(name: &str, how: Gone) {
    warm_images();
    let mut p = project(name, "");
    p.write("src/sub/page.html", "page\n");
    p.ok(&["up", "-d"]);
    let mut w = Watch::start(&p);
    w.wait_for("initial sync");
    assert_consistent(&p, &w);
    // A file the container made, copied back: the mirror knows it too.
    p.ok(&["exec", "web", "--", "sh", "-c", "echo made > /srv/made.txt"]);
    let made = p.path().join("src/made.txt");
    assert!(
        support::eventually(10, || made.is_file()),
        "the container's file reached the host:\n{}",
        w.log()
    );
    assert_consistent(&p, &w);
    let before = container_tree(&p);
    assert!(
        before.contains("./sub/page.html") && before.contains("./made.txt"),
        "{before}"
    );

    let src = p.path().join("src");
    match how {
        Gone::Renamed => std::fs::rename(&src, p.path().join("src-away")).unwrap(),
        Gone::Removed => std::fs::remove_dir_all(&src).unwrap(),
    }
    // The batch that saw it go, then a few of the watcher's looks at the container.
    w.wait_for("synced 0 files");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        container_tree(&p),
        before,
        "the container lost files when the watched folder went:\n{}",
        w.log()
    );
    p.ok(&["restart", "web"]);
    w.wait_for("container restarted");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        container_tree(&p),
        before,
        "a restart's re-sync with the folder gone removed files:\n{}",
        w.log()
    );
    assert!(!w.log().contains("removed"), "{}", w.log());
    w.assert_running();
}

#[test]
fn r10_a_watched_folder_renamed_away_deletes_nothing_in_the_container() {
    a_gone_folder_deletes_nothing_in_the_container("syncgonerenamed", Gone::Renamed);
}

#[test]
fn r10_a_watched_folder_removed_deletes_nothing_in_the_container() {
    a_gone_folder_deletes_nothing_in_the_container("syncgoneremoved", Gone::Removed);
}

/// Saves go in through the two helper shells `devenv watch` keeps in the
/// container (one as root, one as the container's user), not a request to
/// the engine each; what they write keeps the owner and the mode, and a
/// removal reaches the container too.
#[test]
fn sync_saves_go_through_the_helper_shells_and_keep_owner_and_mode() {
    warm_images();
    let mut p = project("synchelpers", "");
    p.ok(&["up", "-d"]);
    let mut w = Watch::start(&p);
    w.wait_for("initial sync");
    // The helpers' script names `xargs -0 rm`; `r[m]` keeps this shell out;
    // one uid each, as a helper's forks (a look's subshell) look the same.
    let helpers = |p: &mut Project| {
        let out = p.ok(&[
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            "for d in /proc/[0-9]*; do cat $d/cmdline 2>/dev/null | tr '\\0' ' ' | grep -q 'xargs -0 r[m]' && awk '/^Uid/ {print $2}' $d/status 2>/dev/null; done | sort -nu | tr '\\n' ' '",
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(helpers(&mut p), "0 1000", "{}", w.log());

    p.write("src/run.sh", "#!/bin/sh\necho hi\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let perms = std::fs::Permissions::from_mode(0o750);
        std::fs::set_permissions(p.path().join("src/run.sh"), perms).unwrap();
    }
    std::fs::remove_file(p.path().join("src/index.html")).unwrap();
    let stat = |p: &Project| {
        let out = p.run(&[
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            "stat -c '%a %u' /srv/run.sh; test -e /srv/index.html && echo index",
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert!(
        support::eventually(10, || stat(&p) == "750 1000"),
        "mode, owner and removal reach the container: {:?}\n{}",
        stat(&p),
        w.log()
    );
    assert_consistent(&p, &w);
    // A synced folder moved away and another moved in under its name: only
    // the name's event comes, and the container lists that folder to lose
    // what the host's no longer has.
    p.write("src/a/one.txt", "one\n");
    p.write("src/b/two.txt", "two\n");
    assert_consistent(&p, &w);
    let src = p.path().join("src");
    std::fs::rename(src.join("a"), src.join("c")).unwrap();
    std::fs::rename(src.join("b"), src.join("a")).unwrap();
    assert_consistent(&p, &w);
    // Still both: no frame failed, none was lost.
    assert_eq!(helpers(&mut p), "0 1000", "{}", w.log());
    assert!(!w.log().contains("sync helper"), "{}", w.log());
    w.assert_running();
}

/// Issue 10, on a busybox userland (Alpine's): busybox's `find -newer`
/// compares whole seconds, so a file the container makes in the same second
/// as the last look for changes must still come back (the mark is set a
/// second back), right after the watcher starts too; one that never did
/// would later be pruned by a re-sync.
#[test]
fn r10_sync_mode_copies_back_what_a_busybox_container_makes_in_a_looks_second() {
    warm_images();
    let web = repo().join("tests/fixtures/web");
    let mut p = Project::new(
        "syncbusybox",
        &format!(
            r#"[services.web]
build = {{ context = "{}" }}
image = "devenv-e2e-web:latest"
ports = []
user = "1000"
mount = "sync"
env = {{ PATH = "/tmp/bb:/usr/bin:/bin" }}
command = ["sh", "-c", "mkdir -p /tmp/bb && for t in sh find printf touch date mv head tar xargs rm; do ln -sf /bin/busybox /tmp/bb/$$t; done && exec busybox httpd -f -p 8080 -h /srv"]

[[services.web.watch]]
path = "src"
action = "sync"
target = "/srv"
"#,
            web.display()
        ),
    );
    p.write("src/index.html", "hello\n");
    p.ok(&["up", "-d"]);
    let w = Watch::start(&p);
    w.wait_for("initial sync");
    let out = p.ok(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "find --help 2>&1 | head -1",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("BusyBox"),
        "the container's find is busybox's: {}",
        text(&out)
    );
    // Made at many points of a second, some in the second of a look.
    for i in 0..8 {
        p.ok(&[
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            &format!("echo {i} > /srv/made{i}.txt"),
        ]);
        std::thread::sleep(Duration::from_millis(130 * (i % 4)));
    }
    let src = p.path().join("src");
    let all_back = || (0..8).all(|i| src.join(format!("made{i}.txt")).is_file());
    assert!(
        support::eventually(10, all_back),
        "every file the container made came back: {:?}\n{}",
        std::fs::read_dir(&src)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect::<Vec<_>>(),
        w.log()
    );
}

/// A folder outside every checkout, with a file a container must never see.
fn outside_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "host secret\n").unwrap();
    dir
}

/// The outside folder holds exactly its secret, untouched.
fn assert_untouched(outside: &Path, w: &Watch) {
    let names: Vec<String> = std::fs::read_dir(outside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["secret.txt"],
        "devenv wrote outside the checkout:\n{}",
        w.log()
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "host secret\n"
    );
}

/// The container's `/srv/esc/secret.txt`, which the container wrote itself.
fn assert_container_kept_its_own(p: &Project, w: &Watch) {
    let out = p.run(&["exec", "web", "--", "cat", "/srv/esc/secret.txt"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "container\n",
        "a host file from outside the checkout reached the container:\n{}",
        w.log()
    );
    assert!(!w.log().contains("changed on both sides"), "{}", w.log());
}

/// The container swaps its link for a folder and writes into it, one file
/// named like one outside the checkout.
const SWAP: &str = "rm -f /srv/esc && mkdir /srv/esc && echo pwn > /srv/esc/pwn.txt && echo container > /srv/esc/secret.txt";

/// Issue 22: a link the container makes during `watch`, pointing out of the
/// checkout, is reported and not copied back; when the container then puts
/// a folder there and writes into it, the files land in the checkout, never
/// in the folder outside, and nothing of that folder reaches the container.
#[test]
fn r22_sync_mode_a_link_made_during_watch_leads_nowhere_outside() {
    warm_images();
    let outside = outside_folder();
    let mut p = project("syncescwatch", "");
    p.ok(&["up", "-d"]);
    let w = Watch::start(&p);
    w.wait_for("initial sync");
    let esc = p.path().join("src/esc");
    let link = format!("ln -s {} /srv/esc", outside.path().display());
    p.ok(&["exec", "web", "--", "sh", "-c", &link]);
    assert!(
        support::eventually(10, || {
            w.log().contains("not copied back") || std::fs::symlink_metadata(&esc).is_ok()
        }),
        "{}",
        w.log()
    );
    assert!(
        std::fs::symlink_metadata(&esc).is_err(),
        "a link out of the checkout came back to the host:\n{}",
        w.log()
    );
    assert!(w.log().contains("outside the synced folder"), "{}", w.log());

    p.ok(&["exec", "web", "--", "sh", "-c", SWAP]);
    let pwn = esc.join("pwn.txt");
    assert!(
        support::eventually(10, || pwn.is_file()
            || outside.path().join("pwn.txt").exists()),
        "{}",
        w.log()
    );
    assert_untouched(outside.path(), &w);
    assert!(
        std::fs::symlink_metadata(&esc).unwrap().is_dir(),
        "a real folder in the checkout"
    );
    assert_eq!(std::fs::read_to_string(&pwn).unwrap(), "pwn\n");
    assert_container_kept_its_own(&p, &w);
}

/// When the host's link out of the checkout is made.
enum Planted {
    BeforeUp,
    DuringWatch,
}

/// Issue 22: a link out of the checkout planted on the host (before `up`,
/// or while `watch` runs) goes into the container as a link; when the
/// container puts a folder in its place and writes into it, copy-back never
/// writes through the host's link nor takes the outside file named like the
/// container's for a conflict to upload.
fn a_planted_link_is_never_followed(name: &str, when: Planted) {
    warm_images();
    let outside = outside_folder();
    let mut p = project(name, "");
    let esc = p.path().join("src/esc");
    if let Planted::BeforeUp = when {
        std::os::unix::fs::symlink(outside.path(), &esc).unwrap();
    }
    p.ok(&["up", "-d"]);
    let w = Watch::start(&p);
    w.wait_for("initial sync");
    if let Planted::DuringWatch = when {
        std::os::unix::fs::symlink(outside.path(), &esc).unwrap();
        let is_link = |p: &Project| {
            let out = p.run(&[
                "exec",
                "web",
                "--",
                "sh",
                "-c",
                "test -L /srv/esc && echo link",
            ]);
            String::from_utf8_lossy(&out.stdout).trim() == "link"
        };
        assert!(support::eventually(10, || is_link(&p)), "{}", w.log());
    }
    p.ok(&["exec", "web", "--", "sh", "-c", SWAP]);
    // Both files are reported as not copied back (or, before the fix, went out).
    let reported = |w: &Watch| {
        let log = w.log();
        log.contains("esc/pwn.txt` not copied back")
            && log.contains("esc/secret.txt` not copied back")
    };
    support::eventually(10, || {
        reported(&w) || outside.path().join("pwn.txt").exists()
    });
    assert_untouched(outside.path(), &w);
    assert_container_kept_its_own(&p, &w);
    assert!(reported(&w), "{}", w.log());
    assert!(w.log().contains("never goes through"), "{}", w.log());
    assert!(std::fs::symlink_metadata(p.path().join("src/esc"))
        .unwrap()
        .file_type()
        .is_symlink());
    // A re-sync without a watcher (`restart` copies back too) is as careful.
    drop(w);
    p.ok(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "echo again > /srv/esc/again.txt",
    ]);
    let out = p.ok(&["restart", "web"]);
    let names: Vec<String> = std::fs::read_dir(outside.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["secret.txt"], "{}", text(&out));
    assert!(
        support::stderr(&out).contains("esc/again.txt` not copied back"),
        "{}",
        text(&out)
    );
}

#[test]
fn r22_sync_mode_a_link_planted_before_up_is_never_followed() {
    a_planted_link_is_never_followed("syncescplanted", Planted::BeforeUp);
}

#[test]
fn r22_sync_mode_a_link_planted_during_watch_is_never_followed() {
    a_planted_link_is_never_followed("syncescwatchhost", Planted::DuringWatch);
}

/// Issue 22: a watch rule whose folder is a symlink (`src` -> `real`) syncs
/// the folder it points to, and says so; the container's target never
/// becomes a dangling link.
#[test]
fn r22_sync_mode_a_symlinked_watch_root_is_resolved_once() {
    warm_images();
    let mut p = project("synclinkedroot", "");
    std::fs::rename(p.path().join("src"), p.path().join("real")).unwrap();
    std::os::unix::fs::symlink("real", p.path().join("src")).unwrap();
    let up = p.ok(&["--progress", "plain", "up", "-d"]);
    let out = p.run(&["exec", "web", "--", "cat", "/srv/index.html"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello\n",
        "{}",
        text(&up)
    );
    assert!(
        support::stderr(&up).contains("is a symlink to `real`"),
        "{}",
        text(&up)
    );
    let w = Watch::start(&p);
    w.wait_for("initial sync");
    assert!(w.log().contains("is a symlink to `real`"), "{}", w.log());
    p.write("real/new.txt", "new\n");
    assert_consistent(&p, &w);
}

/// Issue 22: one file whose name the engine cannot take (254 bytes) is
/// reported and skipped; the rest of the initial sync goes through.
#[test]
fn r22_sync_mode_one_unacceptable_name_does_not_stop_the_initial_sync() {
    warm_images();
    let mut p = project("synclongname", "");
    let long = "n".repeat(254);
    p.write(&format!("src/{long}"), "long\n");
    p.write("src/after.txt", "after\n");
    let out = p.run(&["--progress", "plain", "up", "-d"]);
    p.uses_docker = true;
    assert!(out.status.success(), "{}", text(&out));
    assert!(support::stderr(&out).contains("skipped"), "{}", text(&out));
    let out = p.ok(&[
        "exec",
        "web",
        "--",
        "cat",
        "/srv/after.txt",
        "/srv/index.html",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "after\nhello\n");
}

/// Issue 22: a file the container makes under a name that is not UTF-8
/// comes back to the host under the same bytes, once (no mangled twin on
/// either side).
#[test]
fn r22_sync_mode_a_non_utf8_name_round_trips_as_bytes() {
    use std::os::unix::ffi::OsStrExt;
    warm_images();
    let mut p = project("syncrawname", "");
    p.ok(&["up", "-d"]);
    let w = Watch::start(&p);
    w.wait_for("initial sync");
    p.ok(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "printf 'caf\\351\\n' > \"/srv/$(printf 'caf\\351').txt\"",
    ]);
    let host = p
        .path()
        .join("src")
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"));
    assert!(
        support::eventually(10, || host.is_file()),
        "{:?}\n{}",
        std::fs::read_dir(p.path().join("src"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect::<Vec<_>>(),
        w.log()
    );
    assert_eq!(std::fs::read(&host).unwrap(), b"caf\xe9\n");
    assert_consistent(&p, &w);
    let out = p.ok(&["exec", "web", "--", "sh", "-c", "ls /srv | grep -c caf"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "{}",
        w.log()
    );
    let hosts = std::fs::read_dir(p.path().join("src"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().as_bytes().starts_with(b"caf"))
        .count();
    assert_eq!(hosts, 1, "{}", w.log());
}
