//! Robustness and secrecy (issue 14): bad input is exit 2 with a location and
//! never a panic, abort or hang (regressions plus a bounded mutation fuzz
//! over `dev.toml`, `.env` and Compose files); secrets never show in
//! `config`, error messages, `ps`, labels or `up`'s output; a hanging exec
//! probe fails at its deadline.

use crate::support;

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use devenv::clip::ClippingHandler;
use devenv::config::{self, ConfigError, LoadOptions};
use devenv::import::import_compose;
use miette::ReportHandler;
use support::{stderr, text, Project};

/// What tests put where a password goes; it must never come back out.
const SENTINEL: &str = "Sntnl-r14-pw";

/// The binary's exit code and its stderr, with the stack file written first.
fn config_of(toml: &str, extra: &[(&str, &[u8])]) -> (Option<i32>, String, String) {
    let p = Project::new("robustcfg", toml);
    for (name, bytes) in extra {
        std::fs::write(p.path().join(name), bytes).unwrap();
    }
    let out = p.run(&["config"]);
    let json = p.run(&["config", "--json"]);
    assert_eq!(out.status.code(), json.status.code());
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&json.stdout)
        ),
        stderr(&out),
    )
}

fn assert_bad_config(code: Option<i32>, err: &str, location: &str) {
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(location), "expected `{location}` in:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn r14_a_huge_duration_is_a_config_error() {
    let (code, _, err) = config_of(
        "[services.a]\nimage = \"x\"\nready_timeout = \"99999999999999999999h\"\n",
        &[],
    );
    assert_bad_config(code, &err, "dev.toml:6:17");
    assert!(err.contains("invalid `ready_timeout`"), "{err}");
}

#[test]
fn r14_a_typo_in_k8s_fails_config_with_a_location_and_a_suggestion() {
    let (code, _, err) = config_of(
        "[services.app]\nimage = \"x\"\n\n[k8s.production]\nreplica = 2\n",
        &[],
    );
    assert_bad_config(code, &err, "dev.toml:8:1");
    assert!(err.contains("unknown field `replica`"), "{err}");
    assert!(err.contains("help: did you mean `replicas`?"), "{err}");
    let (code, _, err) = config_of(
        "[services.app]\nimage = \"registry.local:5000/library/postgres:16\"\nk8s = { replica = 2 }\n",
        &[],
    );
    assert_bad_config(code, &err, "dev.toml:6:9");
    assert!(err.contains("help: did you mean `replicas`?"), "{err}");
}

#[test]
fn r14_an_error_past_column_65535_renders() {
    let line = format!("image = \"x\", {}bogus = 1", " ".repeat(70_000));
    let (code, _, err) = config_of(&format!("[services.a]\n{line}\n"), &[]);
    assert_bad_config(code, &err, "dev.toml:5:");
    assert!(
        err.len() < 4_000,
        "the long line is clipped: {} bytes",
        err.len()
    );
}

#[test]
fn r14_an_import_error_past_column_65535_renders() {
    let p = Project::new("robustimp", "");
    p.write(
        "compose.yaml",
        &format!(
            "services:\n  web: {{image: x, {}ports: [1: 2: 3]}}\n",
            " ".repeat(70_000)
        ),
    );
    let out = p.run(&["import", "compose.yaml", "-o", "out.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("compose.yaml:2:"), "{err}");
}

#[test]
fn r14_deeply_nested_defaults_are_an_error_not_a_crash() {
    let n = 20_000;
    let value = format!("{}x{}", "${A:-".repeat(n), "}".repeat(n));
    let (code, _, err) = config_of(&format!("[services.a]\nimage = \"{value}\"\n"), &[]);
    assert_bad_config(code, &err, "dev.toml:5:9");
    assert!(
        err.contains("nest deeper"),
        "{}",
        &err[..err.len().min(500)]
    );
}

#[test]
fn r14_invalid_utf8_in_the_stack_file_has_a_location() {
    let p = Project::new("robustutf8", "");
    std::fs::write(
        p.path().join("dev.toml"),
        b"[services.a]\nimage = \"x\xff\"\n",
    )
    .unwrap();
    let out = p.run(&["config"]);
    assert_bad_config(out.status.code(), &stderr(&out), "dev.toml:2:11");
}

#[test]
fn r14_a_dotenv_error_has_line_and_column_and_hides_the_line() {
    let dotenv = format!("A=1\nDB_PASSWORD=\"{SENTINEL}\nB=2\n");
    let (code, _, err) = config_of(
        "[services.a]\nimage = \"x\"\n",
        &[(".env", dotenv.as_bytes())],
    );
    assert_bad_config(
        code,
        &err,
        "at line 2, column 13: this quote is never closed",
    );
    assert!(!err.contains(SENTINEL), "{err}");
    let (code, _, err) = config_of(
        "[services.a]\nimage = \"x\"\nenv_file = \"app.env\"\n",
        &[("app.env", format!("OK=1\nTOKEN {SENTINEL}\n").as_bytes())],
    );
    assert_bad_config(code, &err, "at line 2, column 6");
    assert!(!err.contains(SENTINEL), "{err}");
}

#[test]
fn r14_a_missing_docker_context_is_exit_1_naming_it() {
    let p = Project::new("robustctx", "[services.a]\nimage = \"x\"\n");
    let config = tempfile::tempdir().unwrap();
    let out = p
        .cmd()
        .args(["ps"])
        .env_remove("DOCKER_HOST")
        .env("DOCKER_CONTEXT", "robust-no-such-context")
        .env("DOCKER_CONFIG", config.path())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "Docker context `robust-no-such-context` (from DOCKER_CONTEXT) does not exist"
        ),
        "{err}"
    );
}

/// A stack with the sentinel as an env secret, the probe password, a build
/// arg (one secret by name, one by `secrets`), and a test env value.
fn secret_stack() -> String {
    format!(
        r#"[services.db]
image = "postgres:16"
env = {{ POSTGRES_USER = "app", POSTGRES_DB = "app", POSTGRES_PASSWORD = "${{ROBUST_PW}}" }}
ready = {{ postgres = {{ password = "${{ROBUST_PW}}" }} }}

[services.app]
build = {{ context = ".", args = {{ GITHUB_TOKEN = "{SENTINEL}", PLAIN = "{SENTINEL}", VERSION = "1" }} }}
secrets = ["PLAIN"]
env = {{ DB_PASS = "{SENTINEL}" }}
hooks = {{ after_up = ["echo {SENTINEL}"] }}

[test]
service = "app"
database = "db"
source = "."
env = {{ DB_PASS = "{SENTINEL}", EXTRA_PW = "{SENTINEL}" }}
secrets = ["EXTRA_PW"]
"#
    )
}

#[test]
fn r14_config_masks_every_secret() {
    let (code, out, err) = config_of(
        &secret_stack(),
        &[(".env", format!("ROBUST_PW={SENTINEL}\n").as_bytes())],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains(SENTINEL), "a secret is printed:\n{out}");
    assert!(out.contains("\"VERSION\""), "{out}");
    assert!(out.matches("********").count() >= 8, "{out}");
}

#[test]
fn r14_config_errors_do_not_echo_values() {
    // A password written where a number goes.
    let (code, _, err) = config_of(
        &format!(
            "[services.db]\nimage = \"x\"\nready = {{ postgres = {{ port = \"{SENTINEL}\" }} }}\n"
        ),
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    let message = err.lines().find(|l| l.contains('×')).unwrap_or_default();
    assert!(!message.contains(SENTINEL), "{err}");
    // An interpolation error in a secret value.
    let (code, _, err) = config_of(
        &format!("[services.a]\nimage = \"x\"\nenv = {{ X = \"{SENTINEL}${{\" }}\n"),
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    let message = err.lines().find(|l| l.contains('×')).unwrap_or_default();
    assert!(!message.contains(SENTINEL), "{err}");
}

#[test]
fn r14_a_changed_secret_still_changes_the_config_hash() {
    let dir = tempfile::tempdir().unwrap();
    let load = |pw: &str| {
        let text =
            format!("[services.db]\nimage = \"x\"\nenv = {{ POSTGRES_PASSWORD = \"{pw}\" }}\n");
        let stack = config::parse(
            &text,
            "dev.toml",
            &dir.path().join("dev.toml"),
            dir.path(),
            &LoadOptions {
                cwd: dir.path().to_path_buf(),
                ..LoadOptions::default()
            },
        )
        .unwrap();
        devenv::plan::config_hash(&stack.services["db"], "img")
    };
    assert_ne!(load("one"), load("two"));
    assert_eq!(load("one"), load("one"));
}

// ---- mutation fuzz ------------------------------------------------------

/// xorshift64*: deterministic, so a failure is reproduced by rerunning.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "${",
    "}",
    "${A:-",
    "$$",
    "\"",
    "'",
    "[",
    "]",
    "[[",
    "=",
    "\n",
    "#",
    "{",
    ",",
    ":",
    "-",
    "\\",
    "\t",
    "\r\n",
    "0",
    "65536",
    "-1",
    "99999999999999999999",
    "1e400",
    "\"99999999999999999999h\"",
    "ms",
    "h",
    "ready",
    "postgres",
    "exec",
    "use",
    "depends_on",
    "ports",
    "volumes",
    "services",
    "image",
    "build",
    "secrets",
    "ready_timeout",
    "export ",
    "=\"",
    "\u{e9}",
    "\u{1F600}",
];

/// One to four random edits of `seed`, sometimes with a line of another seed.
fn mutate(rng: &mut Rng, seed: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(10) {
            0 => {
                if !v.is_empty() {
                    let i = rng.below(v.len());
                    v[i] = rng.next() as u8;
                }
            }
            1..=3 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.bytes());
            }
            4 => {
                let end = (at + rng.below(32)).min(v.len());
                v.drain(at..end);
            }
            5 => {
                let end = (at + rng.below(64)).min(v.len());
                let copy = v[at..end].to_vec();
                v.splice(at..at, copy);
            }
            6 => {
                let other = &others[rng.below(others.len())];
                let lines: Vec<&[u8]> = other.split(|b| *b == b'\n').collect();
                let line = lines[rng.below(lines.len())];
                let at = v[..at]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |p| p + 1);
                v.splice(at..at, line.iter().copied().chain([b'\n']));
            }
            7 => v.truncate(at),
            8 => {
                // Rare and large: what crashed the renderer and the interpolator.
                let big: Vec<u8> = match rng.below(3) {
                    0 => vec![b' '; 66_000],
                    1 => "${A:-".repeat(300).into_bytes(),
                    _ => "[".repeat(300).into_bytes(),
                };
                v.splice(at..at, big);
            }
            _ => v.splice(at..at, [0xff, 0xfe]).for_each(drop),
        }
    }
    v
}

/// A `file:line:column` (miette's header) or an `.env` line and column.
fn has_location(rendered: &str) -> bool {
    let header = rendered.split(":").collect::<Vec<_>>().windows(3).any(|w| {
        !w[1].is_empty()
            && w[1].chars().all(|c| c.is_ascii_digit())
            && w[2].chars().take_while(|c| c.is_ascii_digit()).count() > 0
            && w[2]
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .starts_with(']')
    });
    header || (rendered.contains(" at line ") && rendered.contains(", column "))
}

fn render(err: &dyn miette::Diagnostic) -> String {
    struct Show<'a>(&'a dyn miette::Diagnostic);
    impl std::fmt::Display for Show<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            ClippingHandler(miette::GraphicalReportHandler::new_themed(
                miette::GraphicalTheme::unicode_nocolor(),
            ))
            .debug(self.0, f)
        }
    }
    Show(err).to_string()
}

/// What one input did; `Err` says what is wrong with how it was handled.
type Verdict = Result<(), String>;

fn check_stack_dir(dir: &Path) -> Verdict {
    let opts = LoadOptions {
        cwd: dir.to_path_buf(),
        ..LoadOptions::default()
    };
    match config::load(&opts) {
        Ok(stack) => {
            // What `devenv config` does with it.
            let value = serde_json::to_value(&stack).map_err(|e| e.to_string())?;
            let _ = toml::to_string_pretty(&value);
            Ok(())
        }
        Err(ConfigError::Read { .. }) => Err("an I/O error for a file that is there".into()),
        Err(e) => {
            let shown = render(&e);
            if has_location(&shown) {
                Ok(())
            } else {
                Err(format!("no location in:\n{shown}"))
            }
        }
    }
}

fn check_compose(dir: &Path, text: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(text).into_owned();
    let compose = dir.join("compose.yaml");
    match import_compose(&[(compose, text)], dir, &|_| None) {
        Ok(imported) => {
            // The import's output is a stack file: it must load or fail cleanly.
            std::fs::write(dir.join("dev.toml"), imported.toml).unwrap();
            check_stack_dir(dir).map_err(|e| format!("imported dev.toml: {e}"))
        }
        Err(e) if e.exit_code() != 2 => Err(format!("exit {} for bad input", e.exit_code())),
        Err(e) => {
            let shown = render(&e);
            let located = miette::Diagnostic::labels(&e).is_none() || has_location(&shown);
            located
                .then_some(())
                .ok_or(format!("no location in:\n{shown}"))
        }
    }
}

fn seeds(dir: &str, ext: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let root = support::repo().join(dir);
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() && !p.ends_with("snapshots") {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(ext) {
                out.push(std::fs::read(&p).unwrap());
            }
        }
    }
    out.sort();
    out
}

/// Runs `run` on inputs from `next` for `budget` on a worker thread with a
/// 2 MiB stack (smaller than the binary's main thread), failing on a panic,
/// on a wrong verdict, and on any input taking more than 10 s.
fn fuzz(
    name: &str,
    budget: Duration,
    mut next: impl FnMut(&mut Rng) -> Vec<u8>,
    run: fn(&Path, &[u8]) -> Verdict,
) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let last = dir.path().join("last-input");
    eprintln!(
        "{name}: an input that aborts the process is left in {}",
        last.display()
    );
    let (to_worker, inputs) = mpsc::channel::<Vec<u8>>();
    let (to_main, verdicts) = mpsc::channel::<Result<Verdict, String>>();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            for input in inputs {
                let verdict = std::panic::catch_unwind(|| run(&work, &input)).map_err(|p| {
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                });
                if to_main.send(verdict).is_err() {
                    break;
                }
            }
        })
        .unwrap();
    let mut rng = Rng(0x5EED_0014 ^ name.len() as u64);
    let start = Instant::now();
    let mut count = 0;
    while start.elapsed() < budget {
        let input = next(&mut rng);
        std::fs::write(&last, &input).unwrap();
        to_worker.send(input.clone()).unwrap();
        let shown = || String::from_utf8_lossy(&input[..input.len().min(2_000)]).into_owned();
        match verdicts.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(why))) => panic!("{name}: {why}\n--- input ---\n{}", shown()),
            Ok(Err(panic)) => panic!("{name}: panicked: {panic}\n--- input ---\n{}", shown()),
            Err(_) => panic!("{name}: no answer within 10 s\n--- input ---\n{}", shown()),
        }
        count += 1;
    }
    count
}

/// Seconds for each fuzz target; `DEVENV_FUZZ_SECS` makes a longer run.
fn fuzz_budget(default: u64) -> Duration {
    let secs = std::env::var("DEVENV_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    Duration::from_secs(secs)
}

#[test]
fn fuzz_mutated_stack_files_fail_cleanly() {
    let mut seeds_toml = seeds("stacks", ".toml");
    seeds_toml.push(std::fs::read(support::repo().join("dev.toml")).unwrap());
    seeds_toml.push(secret_stack().into_bytes());
    let others = seeds_toml.clone();
    let n = fuzz(
        "dev.toml",
        fuzz_budget(12),
        |rng| {
            let seed = &seeds_toml[rng.below(seeds_toml.len())];
            mutate(rng, seed, &others)
        },
        |dir, input| {
            std::fs::write(dir.join("dev.toml"), input).unwrap();
            std::fs::write(dir.join(".env"), format!("ROBUST_PW={SENTINEL}\n")).unwrap();
            check_stack_dir(dir)
        },
    );
    eprintln!("dev.toml: {n} inputs");
    assert!(n > 50, "the fuzz ran too few inputs to mean anything: {n}");
}

#[test]
fn fuzz_mutated_dotenv_files_fail_cleanly() {
    let seeds_env: Vec<Vec<u8>> = vec![
        format!("# comment\nROBUST_PW={SENTINEL}\nexport APP_KEY='base64:abc='\nMULTI=\"a\nb\"\nEMPTY=\nX=${{ROBUST_PW}}-x\n").into_bytes(),
        b"A=1\r\nB = \"two words\" # c\r\nC='single'\n".to_vec(),
    ];
    let others = seeds_env.clone();
    let n = fuzz(
        ".env",
        fuzz_budget(6),
        |rng| {
            let seed = &seeds_env[rng.below(seeds_env.len())];
            mutate(rng, seed, &others)
        },
        |dir, input| {
            std::fs::write(
                dir.join("dev.toml"),
                "[services.a]\nimage = \"x\"\nenv_file = \"app.env\"\n",
            )
            .unwrap();
            std::fs::write(dir.join(".env"), input).unwrap();
            std::fs::write(dir.join("app.env"), input).unwrap();
            check_stack_dir(dir)
        },
    );
    eprintln!(".env: {n} inputs");
    assert!(n > 50, "{n}");
}

#[test]
fn fuzz_mutated_compose_files_fail_cleanly() {
    let mut seeds_yaml = seeds("tests/fixtures/compose", ".yml");
    seeds_yaml.extend(seeds("tests/fixtures/compose", ".yaml"));
    let others = seeds_yaml.clone();
    let n = fuzz(
        "compose",
        fuzz_budget(10),
        |rng| {
            let seed = &seeds_yaml[rng.below(seeds_yaml.len())];
            mutate(rng, seed, &others)
        },
        check_compose,
    );
    eprintln!("compose: {n} inputs");
    assert!(n > 50, "{n}");
}

// ---- end to end on the real engine ---------------------------------------

#[test]
fn r14_a_hanging_exec_probe_fails_at_its_deadline_and_is_stopped() {
    support::warm_images();
    let mut p = Project::new(
        "robustexec",
        "[services.cache]\nuse = \"redis\"\nports = []\nready = { exec = [\"sleep\", \"3600\"] }\nready_timeout = \"6s\"\n",
    );
    p.uses_docker = true;
    let start = Instant::now();
    let out = p.run(&["up", "-d"]);
    let took = start.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        err.contains("service `cache` was not ready after 6s"),
        "{err}"
    );
    assert!(
        err.contains("`sleep 3600` was still running after"),
        "the probe says why:\n{err}"
    );
    assert!(
        took < Duration::from_secs(20),
        "up gave up after {took:?}, not at the 6 s deadline"
    );
    // The container is left running to look at; the probe is not in it.
    let ps = p.run(&[
        "exec",
        "cache",
        "--",
        "sh",
        "-c",
        "cat /proc/[0-9]*/cmdline | tr '\\0' ' '",
    ]);
    let procs = String::from_utf8_lossy(&ps.stdout).into_owned();
    assert!(ps.status.success(), "{}", text(&ps));
    assert!(
        !procs.contains("sleep 3600"),
        "the probe still runs: {procs}"
    );
}

/// `GET path` on the engine's unix socket, for what devenv itself does not show.
fn engine_get(path: &str) -> String {
    use std::io::{Read, Write};
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let socket = host
        .strip_prefix("unix://")
        .unwrap_or("/var/run/docker.sock")
        .to_string();
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw
}

/// `DELETE path` on the engine's unix socket: removes what a test built.
fn engine_delete(path: &str) -> String {
    use std::io::{Read, Write};
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let socket = host
        .strip_prefix("unix://")
        .unwrap_or("/var/run/docker.sock")
        .to_string();
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    write!(s, "DELETE {path} HTTP/1.0\r\nHost: docker\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw
}

/// Removes the image the sentinel stack builds, however the test ends.
struct RemoveImage(&'static str);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        engine_delete(&format!("/images/{}?force=1", self.0));
    }
}

/// devenv's private folder, as `devenv::scratch` finds it.
fn private_dir() -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => Path::new(&dir).join("devenv"),
        None => {
            let probe = tempfile::NamedTempFile::new().unwrap();
            let uid = probe.as_file().metadata().unwrap().uid();
            std::env::temp_dir().join(format!("devenv-{uid}"))
        }
    }
}

/// Every file under `dir` (not following links) that holds `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                pending.push(path);
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(path);
                }
            }
        }
    }
    found
}

/// Issue 14's sentinel, widened by issue 22: one password, from `.env`,
/// used as an env secret (three services), inside a URL's user info of an
/// env value whose name says nothing (`DATABASE_URL`), as a command
/// argument, as a build arg named just `TOKEN`, the PostgreSQL probe's
/// credential, the test env, in hooks (one echoes it, one fails on it) and
/// printed by a service itself. It must not come back out of `config`,
/// `config --json`, `up`, `up --dry-run` (and `--json`), `ps`, `ps --json`,
/// `ls --json`, `logs`, error messages, the containers' labels, devenv's
/// private folder, nor the exported manifests outside dev.
#[test]
fn r14_a_sentinel_password_never_comes_back_out() {
    support::warm_images();
    let _image = RemoveImage("typessecret-app:latest");
    let mut p = Project::new(
        "typessecret",
        r#"[services.db]
use = "postgres"
ports = []
env = { POSTGRES_PASSWORD = "${TYPES_PW}" }
ready = { postgres = { password = "${TYPES_PW}" } }
hooks = { after_up = ["echo connecting with ${TYPES_PW}"], migrate = ["test ${TYPES_PW} = nope"] }

[services.app]
build = { context = "app", args = { TOKEN = "${TYPES_PW}", VERSION = "1" } }
env = { API_TOKEN = "${TYPES_PW}", DATABASE_URL = "postgres://app:${TYPES_PW}@db:5432/app" }
command = ["sh", "-c", "echo token is $$API_TOKEN; echo url is $$DATABASE_URL; exec busybox httpd -f -p 8080 -h /srv", "app", "--requirepass", "${TYPES_PW}"]
depends_on = { db = "ready" }
ready = { http = { port = 8080, path = "/health" } }

[test]
service = "app"
database = "db"
source = "."
env = { DB_PASSWORD = "${TYPES_PW}", EXTRA = "${TYPES_PW}" }
secrets = ["EXTRA"]
"#,
    );
    p.write(".env", &format!("TYPES_PW={SENTINEL}\n"));
    // The build arg is used, so the build fails without it.
    p.write(
        "app/Dockerfile",
        "FROM devenv-e2e-web:latest\nARG TOKEN\nRUN test -n \"$TOKEN\"\n",
    );
    p.uses_docker = true;
    let clean = |what: &str, out: &str| {
        assert!(!out.contains(SENTINEL), "{what} shows the secret:\n{out}");
    };
    // The plan, before anything exists: words and JSON.
    for args in [&["up", "--dry-run"][..], &["up", "--dry-run", "--json"]] {
        let out = p.ok(args);
        clean(&format!("`{args:?}`"), &text(&out));
    }
    let plan = text(&p.ok(&["up", "--dry-run", "--json"]));
    assert!(
        plan.contains("postgres://app:********@db:5432/app") && plan.contains("\"--requirepass\""),
        "the URL and the argument are shown, masked:\n{plan}"
    );

    let up = p.run(&["--progress", "plain", "up", "-d"]);
    let shown = text(&up);
    assert!(up.status.success(), "{shown}");
    clean("`up`", &shown);
    assert!(
        shown.contains("connecting with ********"),
        "the hook and its output are shown, masked:\n{shown}"
    );

    for args in [
        &["ps"][..],
        &["ps", "--json"],
        &["ls", "--json"],
        &["config"],
        &["config", "--json"],
        &["logs"],
        &["up", "--dry-run"],
        &["up", "--dry-run", "--json"],
    ] {
        let out = p.ok(args);
        clean(&format!("`{args:?}`"), &text(&out));
    }
    let logs = text(&p.ok(&["logs", "app"]));
    assert!(
        logs.contains("token is ********"),
        "the service printed it; logs mask it:\n{logs}"
    );
    let config = text(&p.ok(&["config", "--json"]));
    assert!(
        logs.contains("url is postgres://app:********@db:5432/app"),
        "a URL's password is masked in logs:\n{logs}"
    );
    for needle in [
        "\"TOKEN\"",
        "postgres://app:********@db:5432/app",
        "--requirepass",
        "POSTGRES_PASSWORD",
        "API_TOKEN",
        "EXTRA",
        "password",
    ] {
        assert!(
            config.contains(needle),
            "`{needle}` is listed, masked:\n{config}"
        );
    }

    // Errors, on purpose: a failing hook, and a stack file with the
    // secret where a number goes and in a broken interpolation.
    let failed = p.run(&["--progress", "plain", "migrate"]);
    let shown = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{shown}");
    assert!(shown.contains("test ******** = nope"), "{shown}");
    clean("a failing hook", &shown);
    p.write(
        "bad.toml",
        &format!(
            "[services.db]\nimage = \"x\"\nready = {{ postgres = {{ port = \"{SENTINEL}\" }} }}\n"
        ),
    );
    let bad = p.run(&["-f", "bad.toml", "config"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    let message = stderr(&bad);
    let message = message
        .lines()
        .find(|l| l.contains('×'))
        .unwrap_or_default();
    clean("a config error", message);
    p.write(
        "bad.toml",
        "[services.a]\nimage = \"x\"\nenv = { X = \"${TYPES_PW}${\" }\n",
    );
    let bad = p.run(&["-f", "bad.toml", "config"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    clean("an interpolation error", &stderr(&bad));

    // What `docker ps` shows: labels and names. (A container's command
    // holds the argument it was given, as it must to run.)
    let filter = format!("{{\"label\":[\"devenv.project={}\"]}}", p.name);
    let listed = engine_get(&format!(
        "/containers/json?all=1&filters={}",
        filter
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect::<String>()
    ));
    let body = listed.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let containers: Vec<serde_json::Value> = serde_json::from_str(body).expect("a JSON list");
    assert_eq!(containers.len(), 2, "{listed}");
    for c in &containers {
        assert!(c["Labels"]["devenv.service"].is_string(), "{c}");
        clean("a container's labels", &c["Labels"].to_string());
        clean("a container's names", &c["Names"].to_string());
    }

    // devenv's own files on the host.
    let leaked = files_holding(&private_dir(), SENTINEL);
    assert!(
        leaked.is_empty(),
        "the private folder holds the secret: {leaked:?}"
    );

    // The manifests: only the dev overlay may carry local values.
    p.ok(&["export", "--k8s", "-o", "k8s", "--tag", "v1"]);
    let leaked: Vec<_> = files_holding(&p.path().join("k8s"), SENTINEL)
        .into_iter()
        .filter(|f| !f.starts_with(p.path().join("k8s/overlays/dev")))
        .collect();
    assert!(leaked.is_empty(), "exported outside dev: {leaked:?}");
}
