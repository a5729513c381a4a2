//! CLI tests that need no engine: bad config and an unreachable engine each
//! give one clear screen and the documented exit code, touching nothing.

use crate::support;

use assert_cmd::cargo::CommandCargoExt;
use support::{stderr, text, Project};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn unknown_key_is_exit_2_with_file_line_and_column() {
    let p = Project::new(
        "clibad",
        "[services.db]\nimage = \"postgres\"\nimagee = \"typo\"\n",
    );
    let out = p.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("unknown field `imagee`"), "{err}");
    assert!(err.contains("dev.toml:6:1"), "points at the line:\n{err}");
}

#[test]
fn unknown_dependency_names_both_services_and_suggests() {
    let p = Project::new(
        "clidep",
        "[services.db]\nimage = \"postgres\"\n\n[services.app]\nimage = \"app\"\ndepends_on = { dbb = \"ready\" }\n",
    );
    let out = p.run(&["config"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("service `app` depends on unknown service `dbb`"),
        "{err}"
    );
    assert!(err.contains("did you mean `db`?"), "{err}");
}

#[test]
fn a_dependency_cycle_is_printed_whole() {
    let p = Project::new(
        "clicycle",
        "[services.a]\nimage = \"x\"\ndepends_on = [\"b\"]\n\n[services.b]\nimage = \"x\"\ndepends_on = [\"c\"]\n\n[services.c]\nimage = \"x\"\ndepends_on = [\"a\"]\n",
    );
    let out = p.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("dependency cycle: `a` → `b` → `c` → `a`"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_undefined_variable_without_default_is_exit_2() {
    let p = Project::new(
        "clivar",
        "[services.db]\nimage = \"postgres:${PG_TAG_UNSET_FOR_TEST}\"\n",
    );
    let out = p.run(&["config"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("variable `PG_TAG_UNSET_FOR_TEST` is not set and has no default"),
        "{}",
        text(&out)
    );
}

#[test]
fn dotenv_and_defaults_are_interpolated_and_secrets_masked() {
    let p = Project::new(
        "clienv",
        "[services.db]\nimage = \"postgres:${PG_TAG}\"\nenv = { DB_PASSWORD = \"${PW:-hunter2}\", PLAIN = \"${PLAIN:-visible}\" }\n",
    );
    p.write(".env", "PG_TAG=16-alpine\n");
    let out = p.run(&["config", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["services"]["db"]["image"], "postgres:16-alpine");
    assert_eq!(json["services"]["db"]["env"]["PLAIN"]["value"], "visible");
    assert_eq!(
        json["services"]["db"]["env"]["DB_PASSWORD"]["value"],
        "********"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
}

#[test]
fn r22_a_password_that_is_a_word_masks_values_not_the_outputs_keys() {
    // The example's default password is `secret`: it is masked where it is
    // a value (its own field, the span it filled), while `--json` keeps its
    // `"secret"` keys, `config` its TOML, the word `secret` written in a
    // value stays a word (a well-known default is not hunted through other
    // text), and a service named like a password keeps its name.
    let p = Project::new(
        "cliword",
        "[services.db]\nimage = \"postgres:16\"\n\
         env = { POSTGRES_PASSWORD = \"${DB_PASSWORD:-secret}\", NOTE = \"the secret is ${DB_PASSWORD:-secret}\" }\n\
         [services.redis]\nimage = \"redis:7\"\nenv = { REDIS_PASSWORD = \"redis\" }\n",
    );
    let out = p.run(&["config", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let env = &json["services"]["db"]["env"];
    assert_eq!(env["POSTGRES_PASSWORD"]["secret"], true, "{env}");
    assert_eq!(env["POSTGRES_PASSWORD"]["value"], "********", "{env}");
    assert_eq!(env["NOTE"]["value"], "the secret is ********", "{env}");
    assert_eq!(json["services"]["redis"]["name"], "redis");
    let out = p.run(&["config"]);
    let toml: toml::Table = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(
        toml["services"]["db"]["env"]["POSTGRES_PASSWORD"]["secret"].as_bool(),
        Some(true)
    );
}

#[test]
fn a_reader_that_went_away_ends_devenv_quietly() {
    // `devenv config --json | head -1` once panicked (exit 101) on the
    // closed pipe; `logs -f` into one wrote on forever.
    let p = Project::new("clipipe", "[services.db]\nimage = \"postgres:16\"\n");
    for args in [&["config"][..], &["config", "--json"][..]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::cargo_bin("devenv")
            .unwrap()
            .current_dir(p.dir.path())
            .args(args)
            .stdout(writer)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        assert_eq!(stderr(&out), "", "{args:?} says nothing");
    }
}

#[test]
fn r31_a_closed_stderr_ends_devenv_quietly() {
    // `devenv logs --since … 2>&1 >/dev/null | head -3` exited 101: a
    // write to a stderr whose reader had gone panicked.
    let p = Project::new(
        "clierrpipe",
        "[services.db]\nimage = \"postgres:16\"\nports = [\"1:2:3:4\"]\n",
    );
    p.write(
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    stop_signal: SIGTERM\n",
    );
    let closed_stderr = |args: &[&str]| {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        std::process::Command::cargo_bin("devenv")
            .unwrap()
            .current_dir(p.dir.path())
            .args(args)
            .stderr(writer)
            .output()
            .unwrap()
    };
    // The last word (a config error): its exit code stays.
    let out = closed_stderr(&["config"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // Warnings on the way (import's, then its summary): the job is done.
    let out = closed_stderr(&["import", "-o", "imported.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(p.dir.path().join("imported.toml").is_file());
}

#[test]
fn an_unreachable_engine_is_exit_1_naming_what_was_tried() {
    let p = Project::new("cliengine", "[services.db]\nimage = \"postgres\"\n");
    let out = p
        .cmd()
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .args(["up", "-d"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "cannot reach the Docker engine at `unix:///nonexistent.sock` (from DOCKER_HOST)"
        ),
        "{err}"
    );
    assert!(err.contains("help:"), "{err}");
}

#[test]
fn usage_errors_are_exit_2() {
    let p = Project::new("cliusage", "[services.db]\nimage = \"postgres\"\n");
    assert_eq!(p.run(&["up", "--no-such-flag"]).status.code(), Some(2));
    assert_eq!(p.run(&["logs", "nosuch"]).status.code(), Some(2));
}

/// Project-defined commands (issue 15): in `--help` under their own heading
/// when a dev.toml is found, and a mistyped one gets clap's suggestion.
const WITH_COMMANDS: &str = "[services.db]\nimage = \"postgres\"\n\n[services.app]\nimage = \"app\"\n\n\
[commands.fresh]\ndescription = \"Rebuild the database and seed it\"\nrun = \"php artisan migrate:fresh --seed\"\n\n\
[commands.db-size]\nservice = \"db\"\nrun = [\"du\", \"-sh\", \"/var/lib/postgresql/data\"]\n";

#[test]
fn project_commands_are_listed_in_help_under_their_own_heading() {
    let p = Project::new("day2clihelp", WITH_COMMANDS);
    let out = p.run(&["--help"]);
    assert!(out.status.success(), "{}", text(&out));
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let section = help
        .split("Project commands (dev.toml):\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no project section:\n{help}"));
    let section: Vec<&str> = section.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(
        section,
        [
            "  db-size      du -sh /var/lib/postgresql/data",
            "  fresh        Rebuild the database and seed it",
        ],
        "{help}"
    );
    assert!(
        help.find("Commands:") < help.find("Project commands")
            && help.find("Project commands") < help.find("Options:"),
        "{help}"
    );
    // `-h` and `devenv` alone show it too; a subcommand's help does not.
    assert!(stdout(&p.run(&["-h"])).contains("fresh        Rebuild"));
    assert!(stderr(&p.run(&[])).contains("Project commands (dev.toml):"));
    assert!(!stdout(&p.run(&["up", "--help"])).contains("Project commands"));
    let out = p.run(&["help", "fresh"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("Runs in `app`"), "{}", text(&out));

    // Elsewhere (no dev.toml), no such section.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = p
        .cmd()
        .current_dir(elsewhere.path())
        .arg("--help")
        .output()
        .unwrap();
    assert!(!stdout(&out).contains("Project commands"), "{}", text(&out));
    // `-f` points at a stack from anywhere.
    let file = p.path().join("dev.toml");
    let out = p
        .cmd()
        .current_dir(elsewhere.path())
        .args(["-f", file.to_str().unwrap(), "--help"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains("db-size"), "{}", text(&out));

    // A typo: exit 2, clap's screen, the project's command suggested.
    let out = p.run(&["frseh"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("unrecognized subcommand 'frseh'"),
        "{}",
        text(&out)
    );
    assert!(
        stderr(&out).contains("a similar subcommand exists: 'fresh'"),
        "{}",
        text(&out)
    );
    let out = p
        .cmd()
        .current_dir(elsewhere.path())
        .arg("fresh")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("unrecognized subcommand 'fresh'"),
        "{}",
        text(&out)
    );
}

#[test]
fn project_commands_are_validated_with_file_and_line() {
    let cases = [
        (
            "[commands.up]\nrun = \"php artisan up\"\n",
            "command `up` has the name of a built-in devenv command",
            "dev.toml:10:11",
            "give it another name (e.g. `my-up`)",
        ),
        (
            "[commands.tail]\nservice = \"ap\"\nrun = \"tail -f storage/logs/laravel.log\"\n",
            "command `tail` runs in unknown service `ap`",
            "dev.toml:11:11",
            "did you mean `app`?",
        ),
        (
            "[commands.tail]\nrun = []\n",
            "command `tail` has nothing to run",
            "dev.toml:11:7",
            "give `run` a command line",
        ),
    ];
    for (i, (table, message, at, help)) in cases.into_iter().enumerate() {
        let p = Project::new(
            &format!("day2clicmd{i}"),
            &format!(
                "[services.db]\nimage = \"postgres\"\n\n[services.app]\nimage = \"app\"\n\n{table}"
            ),
        );
        let out = p.run(&["config"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = stderr(&out);
        assert!(err.contains(message), "{err}");
        assert!(err.contains(at), "points at the line ({at}):\n{err}");
        assert!(err.contains(help), "{err}");
    }
    // A good one shows in `config`.
    let p = Project::new("day2clicmdok", WITH_COMMANDS);
    let out = p.run(&["config", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["commands"]["fresh"]["service"], "app");
    assert_eq!(
        json["commands"]["fresh"]["run"],
        "php artisan migrate:fresh --seed"
    );
    assert_eq!(json["commands"]["db-size"]["service"], "db");

    // A secret written into a command is masked like one in a hook.
    let p = Project::new(
        "day2clicmdsecret",
        "[services.db]\nimage = \"postgres\"\nenv = { POSTGRES_PASSWORD = \"hunter22\" }\n\n\
         [commands.dump]\nservice = \"db\"\nrun = \"PGPASSWORD=hunter22 pg_dump\"\nenv = { API_TOKEN = \"tok123\" }\n",
    );
    for args in [&["config"][..], &["config", "--json"]] {
        let out = p.run(args);
        assert!(out.status.success(), "{}", text(&out));
        let shown = stdout(&out);
        assert!(shown.contains("PGPASSWORD=******** pg_dump"), "{shown}");
        assert!(
            !shown.contains("hunter22") && !shown.contains("tok123"),
            "{shown}"
        );
    }
}

/// The bash script from `devenv completions bash`, run by a real bash the
/// way bash runs it on TAB: COMP_WORDS/COMP_CWORD set, the function called.
fn bash_complete(p: &Project, script: &std::path::Path, line: &str) -> Vec<String> {
    let bin = assert_cmd::cargo::cargo_bin("devenv");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let program = format!(
        r#"source "{script}"
COMP_WORDS=(devenv {line})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
_devenv_dynamic devenv "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        script = script.display()
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .current_dir(p.path())
        .env("PATH", path)
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "{}", text(&out));
    let mut words: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    words.sort();
    words
}

#[test]
fn bash_completion_offers_service_and_project_command_names() {
    let p = Project::new(
        "day2clicomplete",
        &format!("{WITH_COMMANDS}\n[services.cache]\nimage = \"redis\"\n"),
    );
    let out = p.run(&["completions", "bash"]);
    assert!(out.status.success(), "{}", text(&out));
    let script = p.path().join("devenv.bash");
    std::fs::write(&script, &out.stdout).unwrap();

    let services = ["app", "cache", "db"];
    for line in [
        r#"exec """#,
        r#"exec -T -u root """#,
        r#"logs -f -n 5 db """#,
        r#"restart """#,
        r#"stop """#,
        r#"shell --root """#,
        r#"open """#,
        r#"run --rm """#,
        r#"xdebug on """#,
        r#"--progress plain up -d """#,
    ] {
        assert_eq!(
            bash_complete(&p, &script, line),
            services,
            "devenv {line}<TAB>"
        );
    }
    assert_eq!(bash_complete(&p, &script, "exec ca"), ["cache"]);
    // After the service, `exec` takes a command: no service names there.
    assert!(!bash_complete(&p, &script, r#"exec app """#).contains(&"cache".to_string()));
    // Where a command goes: the built-in ones and the project's.
    let commands = bash_complete(&p, &script, r#""""#);
    for name in ["up", "exec", "artisan", "fresh", "db-size"] {
        assert!(
            commands.contains(&name.to_string()),
            "{name} in {commands:?}"
        );
    }
    assert!(
        !commands.iter().any(|c| c.starts_with("__")),
        "{commands:?}"
    );
    assert_eq!(bash_complete(&p, &script, "fr"), ["fresh"]);
    // Options still come from clap's script.
    assert!(bash_complete(&p, &script, "exec --w").contains(&"--workdir".to_string()));
}

/// The example app's `dev` image installs its packages before it copies the
/// app: an edited file must not re-run `apt-get` (a new user saw 97 s and a
/// download for one edited route, and offline that rebuild fails). Checked
/// on the Dockerfile itself: nothing the dev stage's last `apt-get` builds
/// on (its own earlier lines and its parent stages) copies the app's code.
#[test]
fn the_example_app_image_installs_its_packages_before_its_code() {
    let text = std::fs::read_to_string(support::repo().join("docker/app/Dockerfile")).unwrap();
    // stage name -> (parent, instructions)
    let mut stages: Vec<(String, String, Vec<String>)> = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"FROM") {
            let name = words.get(3).unwrap_or(&"").to_string();
            stages.push((name, words[1].to_string(), Vec::new()));
        } else if let Some(stage) = stages.last_mut() {
            stage.2.push(line.to_string());
        }
    }
    let stage = |name: &str| stages.iter().find(|s| s.0 == name);
    let (_, mut parent, dev) = stage("dev").expect("a dev stage").clone();
    let last_install = dev
        .iter()
        .rposition(|l| l.contains("apt-get install"))
        .expect("the dev stage installs packages");
    let mut before: Vec<String> = dev[..last_install].to_vec();
    while let Some((_, up, lines)) = stage(&parent) {
        before.extend(lines.iter().cloned());
        parent = up.clone();
    }
    let copies_code: Vec<&String> = before
        .iter()
        .filter(|l| {
            l.contains("COPY") && (l.contains("examples/laravel") || l.contains("--from=source"))
        })
        .collect();
    assert!(copies_code.is_empty(), "{copies_code:#?}");
    assert!(
        dev[last_install..]
            .iter()
            .any(|l| l.contains("COPY") && l.contains("examples/laravel")),
        "the dev image still carries the app: {dev:#?}"
    );
}

/// `migrate`/`seed` of a service with nothing to run says so (exit 2),
/// naming the services that have one, instead of succeeding silently.
#[test]
fn migrate_of_a_service_without_a_migrate_hook_is_an_error() {
    let p = Project::new(
        "climigratenone",
        "[services.db]\nimage = \"postgres\"\n\n[services.app]\nimage = \"app\"\n\
         hooks = { after_up = [\"php artisan migrate --force\"] }\n",
    );
    let out = p.run(&["migrate", "db"]);
    let shown = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("service `db` has no migrate command to run"),
        "{shown}"
    );
    assert!(shown.contains("services that have one: app"), "{shown}");
}
