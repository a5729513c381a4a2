//! Project-defined commands (`[commands.NAME]` in dev.toml): `devenv NAME
//! args…` runs one in its service's running container, like the shortcuts,
//! and `devenv --help` lists them under their own heading.
//!
//! clap knows only the built-in commands, so any other name arrives here as
//! an external subcommand. The stack file is read only when it matters: to
//! draw the top-level help, and to tell a project command from a typo (which
//! then gets clap's own "unrecognized subcommand" screen, suggestions
//! included).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser};

use super::exec::attached;
use super::{Context, Failure, Outcome};
use crate::cli::{Cli, Command};
use crate::config::commands::{ProjectCommand, Run};
use crate::config::model::Stack;
use crate::config::{ConfigError, LoadOptions};
use crate::engine::ExecAs;

/// The heading of the project commands in `devenv --help`.
pub const HEADING: &str = "Project commands (dev.toml)";

/// Parses the process's arguments as `Cli::parse` does, with the project's
/// commands in the help and in the suggestions for a mistyped name.
pub fn parse() -> Cli {
    parse_from(std::env::args_os().collect())
}

fn parse_from(args: Vec<OsString>) -> Cli {
    match Cli::try_parse_from(&args) {
        Ok(cli) => {
            if let Command::Custom(words) = &cli.command {
                if words[0] == super::completions::HIDDEN {
                    return cli;
                }
                let load = LoadOptions {
                    file: cli.file.clone(),
                    project: cli.project.clone(),
                    profiles: cli.profiles.clone(),
                    cwd: cwd(),
                };
                // A stack file that does not load is left to the command,
                // which shows why; with none at all the name is a typo.
                let stack = match crate::config::load(&load) {
                    Ok(stack) if stack.commands.contains_key(&words[0]) => return cli,
                    Ok(stack) => Some(stack),
                    Err(ConfigError::NotFound { .. }) => None,
                    Err(_) => return cli,
                };
                unknown_name(&args, &words[0], stack.as_ref());
            }
            cli
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayVersion => e.exit(),
        Err(e) => {
            // Again with the project's commands known: the top help gains
            // their section, `help NAME` finds them; other screens stay.
            let stack = crate::config::load(&LoadOptions {
                file: file_flag(&args),
                cwd: cwd(),
                ..LoadOptions::default()
            });
            if let Ok(stack) = stack {
                if let Err(e) = with_commands(&stack).try_get_matches_from(&args) {
                    e.exit();
                }
            }
            e.exit()
        }
    }
}

/// clap's screen for an unknown subcommand, the project's commands among the
/// suggestions; exits 2.
fn unknown_name(args: &[OsString], name: &str, stack: Option<&Stack>) -> ! {
    let mut cli = stack.map_or_else(Cli::command, with_commands);
    if let Some(instead) = other_tools_word(name) {
        cli.error(
            clap::error::ErrorKind::InvalidSubcommand,
            format!("`{name}` is not a devenv command; {instead}"),
        )
        .exit()
    }
    // Without the catch-all for external subcommands (which the derive
    // turns on through its value parser), clap says what it says of a typo.
    let err = match cli
        .external_subcommand_value_parser(None::<clap::builder::ValueParser>)
        .allow_external_subcommands(false)
        .try_get_matches_from(args)
    {
        Err(e) => e,
        // Cannot happen (the name is no subcommand); still end as a usage error.
        Ok(m) => Cli::from_arg_matches(&m)
            .err()
            .unwrap_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidSubcommand)),
    };
    err.exit()
}

/// Sail's and DDEV's words that have no devenv command of that name (those
/// that have one are aliases: `status`, `ssh`, `bash`, `launch`), and what
/// to type instead.
const OTHER_TOOLS: &[(&str, &str)] = &[
    (
        "build",
        "`devenv up` builds what is missing, `devenv up --build` builds again",
    ),
    ("poweroff", "`devenv down` stops and removes the stack"),
    ("import-db", "`devenv db import FILE` loads a dump"),
    ("export-db", "`devenv db export` writes one"),
    ("snapshot", "`devenv db snapshot [NAME]` takes one"),
    ("mysql", "`devenv psql` opens the stack's database"),
    ("root-shell", "`devenv shell --root` is a root shell"),
];

fn other_tools_word(word: &str) -> Option<&'static str> {
    OTHER_TOOLS
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, instead)| *instead)
}

/// The CLI with the stack's commands: hidden subcommands (so that `devenv
/// help NAME` and suggestions know them) and a section of the top help.
pub fn with_commands(stack: &Stack) -> clap::Command {
    let mut cli = Cli::command();
    if stack.commands.is_empty() {
        return cli;
    }
    let width = cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().len())
        .chain(stack.commands.keys().map(String::len))
        .max()
        .unwrap_or(0);
    let styles = cli.get_styles().clone();
    let (header, literal) = (styles.get_header(), styles.get_literal());
    let mut section = format!("{header}{HEADING}:{header:#}\n");
    for (name, c) in &stack.commands {
        let about = about(c);
        section.push_str(&format!("  {literal}{name:<width$}{literal:#}  {about}\n"));
    }
    for (name, c) in &stack.commands {
        let about = about(c);
        let service = &c.service;
        cli = cli.subcommand(
            clap::Command::new(name.clone())
                .about(about.clone())
                .long_about(format!(
                    "{about}\n\nRuns in `{service}` (`[commands.{name}]` in dev.toml); arguments are passed on"
                ))
                .hide(true)
                .disable_help_flag(true)
                .disable_version_flag(true)
                .arg(
                    clap::Arg::new("args")
                        .value_name("ARGS")
                        .help("Arguments passed on unchanged")
                        .num_args(0..)
                        .trailing_var_arg(true)
                        .allow_hyphen_values(true),
                ),
        );
    }
    // The commands' section right after the built-in ones, before the options.
    let template = format!(
        "{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n\
         {header}Commands:{header:#}\n{{subcommands}}\n\n{section}\n\
         {header}Options:{header:#}\n{{options}}{{after-help}}"
    );
    cli.help_template(template)
}

/// The command's description, else what it runs.
fn about(c: &ProjectCommand) -> String {
    c.description.clone().unwrap_or_else(|| match &c.run {
        Run::Line(line) => line.clone(),
        Run::Argv(words) => words.join(" "),
    })
}

/// `-f FILE` / `--file FILE` / `--file=FILE` among the global flags, else
/// `DEVENV_FILE`: where the help finds the project's commands.
fn file_flag(args: &[OsString]) -> Option<PathBuf> {
    let mut words = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    while let Some(w) = words.next() {
        match w.as_str() {
            "-f" | "--file" => return words.next().map(PathBuf::from),
            "-p" | "--project-name" | "--profile" | "--progress" => {
                words.next();
            }
            _ if w.starts_with("--file=") => return Some(PathBuf::from(&w[7..])),
            _ if w.starts_with("-f") => return Some(PathBuf::from(&w[2..])),
            _ if w.starts_with('-') => {}
            _ => break,
        }
    }
    std::env::var_os("DEVENV_FILE").map(PathBuf::from)
}

fn cwd() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| ".".into())
}

/// `devenv NAME args…`: the command in its service, with the terminal attached.
pub async fn run(ctx: &Context, words: Vec<String>) -> Outcome {
    let Some((name, args)) = words.split_first() else {
        return Err(unknown(&ctx.stack()?, ""));
    };
    if name == super::completions::HIDDEN {
        return super::completions::candidates(ctx, args);
    }
    let stack = ctx.stack()?;
    let Some(command) = stack.commands.get(name) else {
        return Err(unknown(&stack, name));
    };
    let who = ExecAs {
        user: command.user.clone(),
        env: command.env_pairs(),
        working_dir: command.workdir.clone(),
    };
    let argv = command.argv(name, args);
    attached(ctx, &stack, &command.service, argv, &who, true).await
}

fn unknown(stack: &Stack, name: &str) -> Failure {
    let names: Vec<String> = stack.commands.keys().map(|k| format!("`{k}`")).collect();
    Failure::new(
        UnknownCommand {
            name: name.to_string(),
            known: if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            },
        },
        2,
    )
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("`{name}` is neither a devenv command nor one of the project's")]
#[diagnostic(
    code(devenv::unknown_command),
    help("`devenv --help` lists both; the project's commands: {known}")
)]
struct UnknownCommand {
    name: String,
    known: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_file_flag_is_found_before_the_command_only() {
        assert_eq!(
            file_flag(&os(&["devenv", "-p", "x", "-f", "a.toml", "--help"])),
            Some("a.toml".into())
        );
        assert_eq!(
            file_flag(&os(&["devenv", "--file=b.toml"])),
            Some("b.toml".into())
        );
        assert_eq!(
            file_flag(&os(&["devenv", "-fc.toml"])),
            Some("c.toml".into())
        );
        if std::env::var_os("DEVENV_FILE").is_none() {
            assert_eq!(file_flag(&os(&["devenv", "exec", "-f", "x"])), None);
        }
    }

    #[test]
    fn the_help_lists_project_commands_under_their_own_heading() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("dev.toml"),
            "[services.app]\nimage = \"x\"\n[commands.fresh]\ndescription = \"Start over\"\nrun = \"php artisan migrate:fresh\"\n",
        )
        .unwrap();
        let stack = crate::config::load(&LoadOptions {
            cwd: dir.path().to_path_buf(),
            ..LoadOptions::default()
        })
        .unwrap();
        let help = with_commands(&stack).render_help().to_string();
        let commands = help.find("Commands:").unwrap();
        let project = help.find("Project commands (dev.toml):").unwrap();
        let options = help.find("Options:").unwrap();
        assert!(commands < project && project < options, "{help}");
        assert!(
            help.lines().any(
                |l| l.trim_start().starts_with("fresh") && l.trim_end().ends_with("Start over")
            ),
            "{help}"
        );
        // `devenv help fresh` knows it too.
        let mut cli = with_commands(&stack);
        let sub = cli.find_subcommand_mut("fresh").unwrap();
        assert!(sub.render_long_help().to_string().contains("Runs in `app`"));
    }
}
