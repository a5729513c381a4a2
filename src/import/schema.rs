//! Compose files checked against the Compose specification's JSON schema,
//! as `docker compose` checks them, before anything is read from them.
//!
//! The schema is the specification's own file (`compose-spec.json`, see
//! `compose-spec.md` beside it), compiled once with boon. Each YAML
//! document is checked as YAML typed it (`80` a number, `"80"` a string,
//! `true` a boolean), before interpolation: the schema allows a string
//! wherever a variable may stand. A refusal reads as Compose's does: the
//! most specific error (the deepest location), as `services.web.ports`
//! and `must be a array`, and points at the key in the file where it can.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use boon::{ErrorKind, InstanceToken, ValidationError};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::ImportError;

const SCHEMA: &str = include_str!("compose-spec.json");
const SCHEMA_URL: &str = "file:///devenv/compose-spec.json";

/// Marks a `!reset` value, which Compose drops before it validates.
const RESET: &str = "\u{0}devenv-reset";

struct Compiled {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let mut json: Value = serde_json::from_str(SCHEMA).expect("the vendored schema is JSON");
        // Compose drops a duplicate port or list item rather than refusing
        // the file (`ports: [80, 80]` loads), so `uniqueItems` is not applied.
        drop_unique_items(&mut json);
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler
            .add_resource(SCHEMA_URL, json)
            .expect("the schema's URL is absolute");
        let index = compiler
            .compile(SCHEMA_URL, &mut schemas)
            .expect("the vendored schema compiles");
        Compiled { schemas, index }
    })
}

/// Checks every YAML document of `text` (the file `path`).
pub(crate) fn check(path: &Path, text: &str) -> Result<(), ImportError> {
    let options = serde_saphyr::options! { with_snippet: false, legacy_octal_numbers: true };
    let docs: Vec<Typed> = serde_saphyr::from_multiple_with_options(text, options)
        .map_err(|err| ImportError::yaml(path, text, &err))?;
    let compiled = compiled();
    for Typed(mut doc) in docs {
        drop_resets(&mut doc);
        if doc.is_null() {
            continue;
        }
        if let Err(err) = compiled.schemas.validate(&doc, compiled.index) {
            let err = most_specific(&err);
            let location = location(err);
            let reason = reason(&err.kind);
            let span = key_span(text, err);
            return Err(ImportError::schema(path, text, location, reason, span));
        }
    }
    Ok(())
}

fn drop_unique_items(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("uniqueItems");
            map.values_mut().for_each(drop_unique_items);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_unique_items),
        _ => {}
    }
}

/// compose-go's choice among nested errors: the first with the deepest
/// location; at one depth an unknown key says more than the other branch's
/// type (`build: {bogus: 1}` is not refused for not being a string).
fn most_specific<'a, 's, 'v>(err: &'a ValidationError<'s, 'v>) -> &'a ValidationError<'s, 'v> {
    let mut best: Option<&ValidationError> = None;
    for cause in &err.causes {
        let cause = most_specific(cause);
        let deeper = best.is_none_or(|b| {
            let (c, b_len) = (
                cause.instance_location.tokens.len(),
                b.instance_location.tokens.len(),
            );
            c > b_len
                || (c == b_len
                    && matches!(cause.kind, ErrorKind::AdditionalProperties { .. })
                    && matches!(b.kind, ErrorKind::Type { .. }))
        });
        if deeper {
            best = Some(cause);
        }
    }
    best.unwrap_or(err)
}

/// `services.web.ports.0`, as Compose writes the place.
fn location(err: &ValidationError) -> String {
    let parts: Vec<String> = err
        .instance_location
        .tokens
        .iter()
        .map(|token| match token {
            InstanceToken::Prop(name) => name.to_string(),
            InstanceToken::Item(i) => i.to_string(),
        })
        .collect();
    parts.join(".")
}

/// The reason in Compose's words where they differ from boon's.
fn reason(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::Type { want, .. } => {
            let mut names: Vec<&str> = want
                .iter()
                .map(|t| match t.to_string().as_str() {
                    "object" => "mapping",
                    "array" => "array",
                    "string" => "string",
                    "integer" => "integer",
                    "number" => "number",
                    "boolean" => "boolean",
                    _ => "null",
                })
                .collect();
            names.sort_unstable();
            let names = match names.split_last() {
                Some((last, [])) => last.to_string(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => "value".to_owned(),
            };
            format!("must be a {names}")
        }
        ErrorKind::AdditionalProperties { got } => {
            let names: Vec<String> = got.iter().map(|name| format!("'{name}'")).collect();
            format!("additional properties {} not allowed", names.join(", "))
        }
        ErrorKind::Minimum { want, .. } => format!("must be greater than or equal to {want}"),
        ErrorKind::Maximum { want, .. } => format!("must be less than or equal to {want}"),
        other => other.to_string(),
    }
}

/// Where the error's key is in the file: each property of the location
/// found as a key in turn (the unknown key itself for an unknown key).
fn key_span(text: &str, err: &ValidationError) -> (usize, usize) {
    let mut names: Vec<Cow<str>> = err
        .instance_location
        .tokens
        .iter()
        .filter_map(|token| match token {
            InstanceToken::Prop(name) => Some(name.clone()),
            InstanceToken::Item(_) => None,
        })
        .collect();
    if let ErrorKind::AdditionalProperties { got } = &err.kind {
        names.extend(got.first().cloned());
    }
    let mut at = 0;
    let mut found = None;
    for name in &names {
        let key = format!("{name}:");
        let hit = text[at..].match_indices(key.as_str()).find(|(i, _)| {
            let start = at + i;
            text[..start]
                .chars()
                .next_back()
                .is_none_or(|c| c.is_whitespace() || c == '-' || c == '{' || c == ',')
        });
        match hit {
            Some((i, _)) => {
                found = Some((at + i, name.len()));
                at += i + key.len();
            }
            None => break,
        }
    }
    found.unwrap_or((0, 0))
}

/// Removes the keys a `!reset` names, as Compose does before validating.
fn drop_resets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| v.as_str() != Some(RESET));
            map.values_mut().for_each(drop_resets);
        }
        Value::Array(items) => {
            items.retain(|v| v.as_str() != Some(RESET));
            items.iter_mut().for_each(drop_resets);
        }
        _ => {}
    }
}

/// A YAML document as JSON, with the types YAML gave its scalars.
struct Typed(Value);

struct Body(Value);

impl<'de> Deserialize<'de> for Typed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let serde_saphyr::Tagged(Body(value), tag) =
            serde_saphyr::Tagged::<Body>::deserialize(deserializer)?;
        Ok(Typed(match tag.as_deref() {
            Some("!reset") => Value::String(RESET.to_owned()),
            _ => value,
        }))
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Body;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Body, E> {
                Ok(Body(Value::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<Body, E> {
                Ok(Body(Value::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Body, D::Error> {
                Typed::deserialize(d).map(|Typed(v)| Body(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Body, E> {
                Ok(Body(Value::String(v.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Body, E> {
                Ok(Body(Value::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Body, E> {
                Ok(Body(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Body, E> {
                Ok(Body(Value::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Body, E> {
                Ok(Body(Value::from(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
                let mut items = Vec::new();
                while let Some(Typed(item)) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Body(Value::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
                let mut entries = Map::new();
                while let Some((key, Typed(value))) = map.next_entry::<String, Typed>()? {
                    entries.insert(key, value);
                }
                Ok(Body(Value::Object(entries)))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> String {
        match check(Path::new("compose.yaml"), text) {
            Err(ImportError::Schema {
                location, reason, ..
            }) => format!("{location} {reason}"),
            other => panic!("expected a schema refusal, got {other:?}"),
        }
    }

    #[test]
    fn refusals_read_as_composes() {
        // Each as `docker compose config` (v2.40.3) words it.
        assert_eq!(
            refusal("services:\n  web:\n    image: nginx\n    foo: bar\n"),
            "services.web additional properties 'foo' not allowed"
        );
        assert_eq!(
            refusal("services:\n  web:\n    image: nginx\n    ports: 80\n"),
            "services.web.ports must be a array"
        );
        assert_eq!(
            refusal("services:\n  web:\n    image: nginx\n    environment:\n      A: [1]\n"),
            "services.web.environment.A must be a boolean, null, number or string"
        );
    }

    #[test]
    fn variables_and_resets_pass() {
        let text = "services:\n  web:\n    image: nginx\n    privileged: \"${PRIV:-true}\"\n    cpus: ${CPUS:-1}\n    ports: !reset []\n";
        check(Path::new("compose.yaml"), text).unwrap();
    }
}
