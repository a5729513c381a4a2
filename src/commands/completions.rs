//! `devenv completions SHELL`: shell completion scripts. clap_complete writes
//! the static part (commands, flags, values); a small function per shell
//! wraps it and asks `devenv __complete` for the dynamic part: the service
//! names where a command takes a service, and the project's own commands
//! where a command goes. `__complete` reads only the stack file found from
//! the current folder (no engine), so a TAB costs a few milliseconds.
//!
//! Which word wants a service is read from clap's own model of the CLI: a
//! positional argument named `service` or `services` (`exec SERVICE CMD…`,
//! `logs [SERVICES…]`, `xdebug ACTION SERVICE`, …), skipping the values of
//! options that take one.

use std::io::Write;

use clap::CommandFactory;

use super::{Context, Outcome};
use crate::cli::{Cli, CompletionsArgs};
use crate::config::LoadOptions;

pub fn run(args: CompletionsArgs) -> Outcome {
    Ok(print(&script(args.shell)))
}

/// The completion script for `shell`: clap's, wired to `__complete`.
pub fn script(shell: clap_complete::Shell) -> String {
    use clap_complete::Shell;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "devenv", &mut out);
    let generated = String::from_utf8(out).expect("clap_complete writes UTF-8");
    match shell {
        Shell::Bash => {
            generated.replace("complete -F _devenv ", "complete -F _devenv_dynamic ") + BASH
        }
        Shell::Zsh => generated.replace(ZSH_CLAP_TAIL, ZSH_TAIL),
        Shell::Fish => generated + FISH,
        // Elvish and PowerShell get clap's static script.
        _ => generated,
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn print(text: &str) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(_) => 1,
    }
}

const BASH: &str = r#"
# Service and project command names: `devenv __complete` answers from the
# dev.toml found here (first line: what it completed, then the names).
_devenv_dynamic() {
    local cur="${COMP_WORDS[COMP_CWORD]}" kind="" line
    local -a found=()
    while IFS= read -r line; do
        if [[ -z "$kind" ]]; then kind="$line"; else found+=("${line%%$'\t'*}"); fi
    done < <("${COMP_WORDS[0]}" __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
    if [[ "$kind" == services ]]; then
        COMPREPLY=()
    else
        _devenv "$@"
    fi
    if [[ -n "$kind" ]]; then
        local IFS=$'\n'
        COMPREPLY+=($(compgen -W "${found[*]}" -- "$cur"))
    fi
}
"#;

/// How clap_complete's zsh script ends (checked by a test).
const ZSH_CLAP_TAIL: &str = r#"if [ "$funcstack[1]" = "_devenv" ]; then
    _devenv "$@"
else
    compdef _devenv devenv
fi
"#;

const ZSH_TAIL: &str = r#"# Service and project command names: `devenv __complete` answers from the
# dev.toml found here (first line: what it completed, then `name<TAB>about`).
_devenv_dynamic() {
    local kind
    local -a lines found
    lines=("${(@f)$(${words[1]} __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    kind=${lines[1]}
    found=("${(@)lines[2,-1]/$'\t'/:}")
    if [[ $kind == services ]]; then
        _describe -t services 'service' found
    else
        _devenv "$@"
        [[ $kind == commands ]] && _describe -t project-commands 'project command' found
    fi
}

if [ "$funcstack[1]" = "_devenv" ]; then
    compdef _devenv_dynamic devenv
    _devenv_dynamic "$@"
else
    compdef _devenv_dynamic devenv
fi
"#;

const FISH: &str = r#"
# Service and project command names: `devenv __complete` answers from the
# dev.toml found here (first line: what it completed, then `name<TAB>about`).
function __fish_devenv_dynamic --argument-names want
    set -l words (commandline -opc)
    set -l devenv $words[1]
    set -e words[1]
    set -l out (command $devenv __complete -- $words (commandline -ct) 2>/dev/null)
    test "$out[1]" = "$want"; or return 1
    set -e out[1]
    for line in $out
        echo $line
    end
end
complete -c devenv -n "__fish_devenv_dynamic services >/dev/null" -f -a "(__fish_devenv_dynamic services)"
complete -c devenv -n "__fish_devenv_dynamic commands >/dev/null" -f -a "(__fish_devenv_dynamic commands)"
"#;

/// What the word being completed is.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    /// A command: the project's own are added to the built-in ones.
    Commands,
    /// A service of the stack.
    Services,
}

/// The command the scripts call. Not in clap's model (so in no help and no
/// completion): it arrives as an external subcommand, a name no project
/// command can have.
pub const HIDDEN: &str = "__complete";

/// `devenv __complete -- WORDS…` (the words after `devenv`, the one being
/// completed last): its kind on the first line, then one candidate a line
/// (`name<TAB>about`); nothing when the static script knows better
/// (options, files, values).
pub fn candidates(ctx: &Context, args: &[String]) -> Outcome {
    let words = args.strip_prefix(&["--".to_string()]).unwrap_or(args);
    let Some((want, globals)) = wanted(words) else {
        return Ok(0);
    };
    let load = LoadOptions {
        file: globals.file.or_else(|| ctx.load.file.clone()),
        project: None,
        profiles: if globals.profiles.is_empty() {
            ctx.load.profiles.clone()
        } else {
            globals.profiles
        },
        cwd: ctx.load.cwd.clone(),
    };
    // A stack that does not load has nothing to offer; the shell's
    // completion must stay quiet rather than print its error.
    let Ok(stack) = crate::config::load(&load) else {
        return Ok(0);
    };
    let mut out = String::new();
    match want {
        Want::Commands => {
            out.push_str("commands\n");
            for (name, c) in &stack.commands {
                out.push_str(&line(name, c.description.as_deref().unwrap_or("")));
            }
        }
        Want::Services => {
            out.push_str("services\n");
            for (name, s) in &stack.services {
                out.push_str(&line(name, &s.image));
            }
            for name in &stack.inactive {
                out.push_str(&line(name, "not in the active profiles"));
            }
        }
    }
    Ok(print(&out))
}

fn line(name: &str, about: &str) -> String {
    // One candidate a line, whatever the description holds.
    let about = about.replace(['\n', '\t'], " ");
    if about.is_empty() {
        format!("{name}\n")
    } else {
        format!("{name}\t{about}\n")
    }
}

/// Global flags among the words, for finding the stack as the command would.
#[derive(Debug, Default, PartialEq, Eq)]
struct Globals {
    file: Option<std::path::PathBuf>,
    profiles: Vec<String>,
}

/// What the last of `words` (the words after `devenv`) is, by clap's model.
fn wanted(words: &[String]) -> Option<(Want, Globals)> {
    let (cur, before) = words.split_last()?;
    if cur.starts_with('-') {
        return None;
    }
    let mut cli = Cli::command();
    cli.build();
    let mut globals = Globals::default();
    let mut i = 0;
    let sub = loop {
        let Some(w) = before.get(i) else {
            return Some((Want::Commands, globals));
        };
        i += 1;
        if !is_flag(w) {
            break w;
        }
        let (id, value) = flag_value(&cli, w, before.get(i));
        if value.is_none() && id.is_some() {
            // The word being completed is this flag's value.
            return None;
        }
        if let (Some(id), Some((v, consumed))) = (id, value) {
            i += usize::from(consumed);
            match id.as_str() {
                "file" => globals.file = Some(v.into()),
                "profiles" => globals.profiles.extend(v.split(',').map(String::from)),
                _ => {}
            }
        }
    };
    let sub = cli.find_subcommand(sub)?;
    if sub.has_subcommands() {
        return None;
    }
    let positionals: Vec<&clap::Arg> = sub.get_positionals().collect();
    let mut n = 0;
    let mut rest = false;
    while let Some(w) = before.get(i) {
        i += 1;
        if !rest && w == "--" {
            rest = true;
            continue;
        }
        if !rest && is_flag(w) {
            let (id, value) = flag_value(sub, w, before.get(i));
            match (id, value) {
                (Some(_), None) => return None,
                (Some(_), Some((_, consumed))) => i += usize::from(consumed),
                _ => {}
            }
            continue;
        }
        n += 1;
    }
    let multi = |a: &&&clap::Arg| a.get_num_args().is_some_and(|r| r.max_values() > 1);
    let arg = positionals
        .get(n)
        .or_else(|| positionals.last().filter(multi))?;
    matches!(arg.get_id().as_str(), "service" | "services").then_some((Want::Services, globals))
}

fn is_flag(w: &str) -> bool {
    w.starts_with('-') && w.len() > 1 && w != "--"
}

/// For a flag word of `cmd`: the id of the option it sets if that takes a
/// value, and the value with whether it was the next word (`None` when the
/// value is still to come: the word after is the one being completed).
fn flag_value(
    cmd: &clap::Command,
    w: &str,
    next: Option<&String>,
) -> (Option<String>, Option<(String, bool)>) {
    let takes = |a: &clap::Arg| a.get_action().takes_values();
    let found = if let Some(long) = w.strip_prefix("--") {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (long, None),
        };
        cmd.get_arguments()
            .find(|a| a.get_long() == Some(name) && takes(a))
            .map(|a| (a, inline))
    } else {
        // A cluster of short flags: the first that takes a value takes the rest.
        let shorts = &w[1..];
        shorts.char_indices().find_map(|(at, c)| {
            let a = cmd
                .get_arguments()
                .find(|a| a.get_short() == Some(c) && takes(a))?;
            let rest = &shorts[at + c.len_utf8()..];
            Some((a, (!rest.is_empty()).then(|| rest.to_string())))
        })
    };
    match found {
        None => (None, None),
        Some((a, Some(inline))) => (Some(a.get_id().to_string()), Some((inline, false))),
        Some((a, None)) => (
            Some(a.get_id().to_string()),
            next.map(|v| (v.clone(), true)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(line: &str) -> Option<Want> {
        let mut words: Vec<String> = line.split(' ').map(String::from).collect();
        if line.is_empty() {
            words = vec![String::new()];
        }
        wanted(&words).map(|(w, _)| w)
    }

    #[test]
    fn services_are_wanted_where_clap_has_a_service_argument() {
        use Want::*;
        let cases = [
            ("", Some(Commands)),
            ("ar", Some(Commands)),
            ("-f x.toml ", Some(Commands)),
            ("-f ", None),
            ("--progress plain ", Some(Commands)),
            ("exec ", Some(Services)),
            ("exec -u root -e A=1 -T ", Some(Services)),
            ("exec -uroot -w /tmp a", Some(Services)),
            ("exec -u ", None),
            ("exec app ", None),
            ("exec app -- ", None),
            ("exec -", None),
            ("logs ", Some(Services)),
            ("logs -f -n 5 db ", Some(Services)),
            ("logs --since 1h ca", Some(Services)),
            ("logs -n ", None),
            ("up -d --build ", Some(Services)),
            ("stop ", Some(Services)),
            ("restart app ", Some(Services)),
            ("shell ", Some(Services)),
            ("shell --root ", Some(Services)),
            ("shell app ", None),
            ("open ", Some(Services)),
            ("run --rm ", Some(Services)),
            ("xdebug on ", Some(Services)),
            ("xdebug ", None),
            ("migrate ", Some(Services)),
            ("ps ", None),
            ("db ", None),
            ("test ", None),
            ("artisan ", None),
            ("my-command ", None),
        ];
        for (line, expected) in cases {
            assert_eq!(want(line), expected, "`devenv {line}<TAB>`");
        }
    }

    #[test]
    fn global_flags_before_the_command_say_where_the_stack_is() {
        let words: Vec<String> = "-f other.toml --profile a,b --profile=c logs "
            .split(' ')
            .map(String::from)
            .collect();
        let (want, globals) = wanted(&words).unwrap();
        assert_eq!(want, Want::Services);
        assert_eq!(
            globals,
            Globals {
                file: Some("other.toml".into()),
                profiles: vec!["a".into(), "b".into(), "c".into()],
            }
        );
    }

    #[test]
    fn every_script_is_wired_to_the_dynamic_part() {
        use clap_complete::Shell;
        let bash = script(Shell::Bash);
        assert_eq!(bash.matches("complete -F _devenv_dynamic ").count(), 2);
        assert!(!bash.contains("complete -F _devenv "));
        let zsh = script(Shell::Zsh);
        assert!(
            zsh.ends_with(ZSH_TAIL) && !zsh.contains(ZSH_CLAP_TAIL),
            "clap_complete's zsh ending changed: update ZSH_CLAP_TAIL"
        );
        assert!(script(Shell::Fish).contains("__fish_devenv_dynamic services"));
        for s in [bash, zsh, script(Shell::Fish)] {
            assert!(
                !s.contains("-a \"__complete\"") && !s.contains("__complete)"),
                "the hidden command is not offered"
            );
        }
    }
}
