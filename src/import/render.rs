//! Writes a [`Stack`] as `dev.toml` text that reads as if a person wrote it.
//!
//! The `toml` serializer would put every nested table in its own section, so
//! the layout is done here and only the quoting of strings and keys is left
//! to `toml`. Short tables and arrays stay on one line; a table that would
//! make a line longer than [`WIDTH`] gets its own section, an array one item
//! per line. Services and volumes keep the order of the Compose files.

use indexmap::IndexMap;

use super::compose::Words;
use super::convert::{Build, Probe, Service, Stack, Volume, Watch};
use super::Warning;
use crate::image_ref::ImageRef;

/// Beyond this a line is split, the way rustfmt or a person would.
const WIDTH: usize = 100;

#[derive(Debug)]
enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Array(Vec<Value>),
    Table(Table),
}

#[derive(Debug, Default)]
struct Table {
    comments: Vec<String>,
    entries: Vec<(String, Value)>,
}

impl Table {
    fn set(&mut self, key: &str, value: impl Into<Option<Value>>) {
        if let Some(value) = value.into() {
            self.entries.push((key.to_owned(), value));
        }
    }
}

fn string(s: impl Into<String>) -> Value {
    Value::Str(s.into())
}

fn strings(items: &[String]) -> Option<Value> {
    (!items.is_empty()).then(|| Value::Array(items.iter().map(string).collect()))
}

fn map(pairs: &IndexMap<String, impl AsRef<str>>) -> Option<Value> {
    let entries = pairs
        .iter()
        .map(|(k, v)| (k.clone(), string(v.as_ref())))
        .collect();
    (!pairs.is_empty()).then(|| {
        Value::Table(Table {
            comments: Vec::new(),
            entries,
        })
    })
}

fn words(words: &Words) -> Value {
    match words {
        Words::Line(line) => string(line),
        Words::List(list) => Value::Array(list.iter().map(string).collect()),
    }
}

/// The `stacks/` preset whose local stand-in can run this service offline,
/// if the preset adds nothing the Compose file did not say: the service
/// sets every variable the preset sets, and its command when the preset has
/// one. Ports, volumes and the probe are then always written out (empty, or
/// `"none"`), so that the preset's own never apply.
fn preset(service: &Service) -> Option<&'static str> {
    // The image from any registry or mirror: `registry.local:5000/library/postgres:16`
    // is `postgres`, `quay.io/minio/minio` is `minio/minio`.
    let image = ImageRef::parse(service.image.as_deref()?).ok()?;
    let (preset, env, command): (_, &[&str], bool) = match image.repository() {
        "postgres" => (
            "postgres",
            &["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"],
            false,
        ),
        "redis" => ("redis", &[], false),
        "mailhog/mailhog" | "axllent/mailpit" => ("mailhog", &[], false),
        "minio/minio" => ("minio", &["MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"], true),
        _ => return None,
    };
    let covered = env.iter().all(|key| service.env.contains_key(*key))
        && (!command || service.command.is_some())
        && service.build.is_none()
        && service.entrypoint.is_none();
    covered.then_some(preset)
}

pub(crate) fn render(stack: &Stack, warnings: &[Warning]) -> String {
    let mut root = Table::default();
    if let Some(name) = &stack.name {
        let mut project = Table::default();
        // Compose lower-cases the name; `devenv` wants it that way too.
        project.set("name", string(name.to_lowercase()));
        root.set("project", Value::Table(project));
    }
    let mut services = Table::default();
    for (name, service) in &stack.services {
        let mut table = service_table(service);
        table.comments = comments(warnings, Some(name), "");
        services.set(name, Value::Table(table));
    }
    root.set("services", Value::Table(services));
    if !stack.volumes.is_empty() {
        let mut volumes = Table::default();
        for (name, volume) in &stack.volumes {
            let mut table = volume_table(volume);
            // Said above the volume's own section rather than atop the file.
            table.comments = comments(warnings, None, &format!("volumes.{name}."));
            volumes.set(name, Value::Table(table));
        }
        root.set("volumes", Value::Table(volumes));
    }
    let mut out = String::new();
    let about_volumes = |line: &String| {
        stack
            .volumes
            .keys()
            .any(|name| line.starts_with(&format!("# devenv import: volumes.{name}.")))
    };
    for comment in comments(warnings, None, "") {
        if !about_volumes(&comment) {
            out.push_str(&comment);
            out.push('\n');
        }
    }
    write_section(&mut out, &[], &root);
    out
}

/// `# devenv import: …` lines for the warnings about one service (or, with
/// `None`, the top level) whose key starts with `prefix`.
fn comments(warnings: &[Warning], service: Option<&str>, prefix: &str) -> Vec<String> {
    let mut lines: Vec<String> = warnings
        .iter()
        .filter(|w| w.service.as_deref() == service && w.key.starts_with(prefix))
        .map(|w| match &w.detail {
            Some(detail) => format!("# devenv import: {} not carried over ({detail})", w.key),
            None => format!("# devenv import: {} not carried over", w.key),
        })
        .collect();
    lines.dedup();
    lines
}

fn service_table(s: &Service) -> Table {
    let mut t = Table::default();
    let preset = preset(s);
    t.set("use", preset.map(string));
    t.set("image", s.image.as_deref().map(string));
    t.set("build", s.build.as_ref().map(build));
    t.set("command", s.command.as_ref().map(words));
    t.set("entrypoint", s.entrypoint.as_ref().map(words));
    t.set("env", map(&s.env));
    t.set(
        "env_file",
        match s.env_file.as_slice() {
            [(one, true)] => Some(string(one)),
            [] => None,
            files => Some(Value::Array(files.iter().map(env_file).collect())),
        },
    );
    if !s.pass_env.is_empty() {
        t.set("pass_env", strings(&s.pass_env));
    }
    let volumes: Vec<String> = s.volumes.iter().map(|m| m.spec.clone()).collect();
    // With a preset, say "none" rather than let the preset's apply.
    let list = |items: &[String]| match preset {
        Some(_) => Some(Value::Array(items.iter().map(string).collect())),
        None => strings(items),
    };
    t.set("ports", list(&s.ports));
    t.set("volumes", list(&volumes));
    t.set("depends_on", map(&s.depends_on));
    t.set(
        "ready",
        ready(&s.ready).or_else(|| preset.map(|_| string("none"))),
    );
    t.set("ready_timeout", s.ready_timeout.as_deref().map(string));
    t.set("restart", s.restart.as_deref().map(string));
    t.set("user", s.user.as_deref().map(string));
    t.set("working_dir", s.working_dir.as_deref().map(string));
    t.set("profiles", strings(&s.profiles));
    t.set("extra_hosts", strings(&s.extra_hosts));
    let rules: Vec<Value> = s.watch.iter().map(watch).collect();
    t.set("watch", (!rules.is_empty()).then_some(Value::Array(rules)));
    t
}

fn build(b: &Build) -> Value {
    let mut t = Table::default();
    t.set("context", string(b.context.as_deref().unwrap_or(".")));
    t.set("dockerfile", b.dockerfile.as_deref().map(string));
    t.set("target", b.target.as_deref().map(string));
    t.set("args", map(&b.args));
    Value::Table(t)
}

fn ready(ready: &Option<Probe>) -> Option<Value> {
    let probe = ready.as_ref()?;
    let port = |port: &Option<u16>| port.map(|p| Value::Int(i64::from(p)));
    let text = |text: &Option<String>| text.as_deref().map(string);
    let mut t = Table::default();
    match probe {
        Probe::Redis {
            port: p,
            username,
            password,
        } => {
            let mut redis = Table::default();
            redis.set("port", port(p));
            redis.set("username", text(username));
            redis.set("password", text(password));
            t.set("redis", Value::Table(redis));
        }
        Probe::Http { port, path } => {
            let mut http = Table::default();
            http.set("port", Value::Int(i64::from(*port)));
            http.set("path", string(path));
            t.set("http", Value::Table(http));
        }
        Probe::Exec(args) => t.set("exec", strings(args)),
    }
    Some(Value::Table(t))
}

fn watch(w: &Watch) -> Value {
    let mut t = Table::default();
    t.set("path", string(&w.path));
    t.set("action", string(w.action));
    t.set("target", w.target.as_deref().map(string));
    t.set("ignore", strings(&w.ignore));
    t.set("run", w.run.as_deref().map(string));
    Value::Table(t)
}

fn volume_table(v: &Volume) -> Table {
    let mut t = Table::default();
    t.set("external", v.external.then_some(Value::Bool(true)));
    t.set("name", v.name.as_deref().map(string));
    t.set("driver", v.driver.as_deref().map(string));
    t.set("driver_opts", map(&v.driver_opts));
    t
}

fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        k.to_owned()
    } else {
        toml::Value::String(k.to_owned()).to_string()
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::Str(s) => toml::Value::String(s.clone()).to_string(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Table(t) if t.entries.is_empty() => "{}".to_owned(),
        Value::Table(t) => {
            let entries: Vec<String> = t
                .entries
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), inline(v)))
                .collect();
            format!("{{ {} }}", entries.join(", "))
        }
    }
}

/// A required env file as its path; an optional one in the long form.
fn env_file((path, required): &(String, bool)) -> Value {
    if *required {
        return string(path);
    }
    let mut t = Table::default();
    t.set("path", string(path));
    t.set("required", Value::Bool(false));
    Value::Table(t)
}

fn is_array_of_tables(value: &Value) -> bool {
    matches!(value, Value::Array(items)
        if !items.is_empty() && items.iter().all(|i| matches!(i, Value::Table(_))))
}

/// Writes the plain keys of `table`, then its sections. The top two levels
/// (`[project]`, `[services.app]`, `[volumes.data]`) are always sections.
fn write_section(out: &mut String, path: &[String], table: &Table) {
    let mut sections = Vec::new();
    for (k, value) in &table.entries {
        let line = format!("{} = {}", key(k), inline(value));
        match value {
            Value::Table(_) if path.len() < 2 || line.len() > WIDTH => sections.push((k, value)),
            // `env_file = [{ path = …, required = false }]` reads best inline.
            Value::Array(_) if is_array_of_tables(value) && k != "env_file" => {
                sections.push((k, value))
            }
            Value::Array(items) if line.len() > WIDTH => {
                out.push_str(&format!("{} = [\n", key(k)));
                for item in items {
                    out.push_str(&format!("    {},\n", inline(item)));
                }
                out.push_str("]\n");
            }
            _ => {
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    for (k, value) in sections {
        let mut path = path.to_vec();
        path.push(k.clone());
        let header: Vec<String> = path.iter().map(|p| key(p)).collect();
        let header = header.join(".");
        match value {
            Value::Table(t) => {
                // `[services]` holds nothing but sections: its header is noise.
                let container = t.entries.iter().all(|(_, v)| matches!(v, Value::Table(_)))
                    && !t.entries.is_empty()
                    && path.len() < 2;
                separate(out);
                for comment in &t.comments {
                    out.push_str(comment);
                    out.push('\n');
                }
                if !container {
                    out.push_str(&format!("[{header}]\n"));
                }
                write_section(out, &path, t);
            }
            Value::Array(items) => {
                for item in items {
                    if let Value::Table(t) = item {
                        separate(out);
                        out.push_str(&format!("[[{header}]]\n"));
                        write_section(out, &path, t);
                    }
                }
            }
            _ => unreachable!("only tables and arrays of tables become sections"),
        }
    }
}

/// One blank line between sections, none at the top of the file.
fn separate(out: &mut String) {
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
}
