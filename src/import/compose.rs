//! The slice of the Compose specification that `devenv import` carries over,
//! as serde types read with serde-saphyr.
//!
//! Only the keys with a `dev.toml` equivalent are typed here; serde skips the
//! rest, and [`super::keys`] reports them from an untyped reading of the same
//! file. The many "string or list", "list or map" and "short or long syntax"
//! shapes of the specification get hand-written visitors rather than
//! `#[serde(untagged)]`, because untagged enums buffer the input: that loses
//! the line and column of a type error, and turns `8.10` into `8.1`.

use std::fmt;
use std::marker::PhantomData;

use indexmap::IndexMap;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer, StrDeserializer};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// One Compose file.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ComposeFile {
    pub name: Option<String>,
    pub services: Option<IndexMap<String, Option<Service>>>,
    pub volumes: Option<IndexMap<String, Option<TopVolume>>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Service {
    pub image: Option<String>,
    pub build: Option<ShortOr<Build>>,
    pub command: Option<Words>,
    pub entrypoint: Option<Words>,
    pub environment: Option<KeyValues>,
    pub env_file: Option<OneOrMany<ShortOr<EnvFile>>>,
    pub ports: Option<Vec<ShortOr<Port>>>,
    pub volumes: Option<Vec<ShortOr<Mount>>>,
    pub depends_on: Option<DependsOn>,
    pub healthcheck: Option<Healthcheck>,
    pub restart: Option<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub profiles: Option<Vec<String>>,
    pub develop: Option<Develop>,
    pub links: Option<Vec<String>>,
    pub extra_hosts: Option<ExtraHosts>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Build {
    pub context: Option<String>,
    pub dockerfile: Option<String>,
    pub target: Option<String>,
    pub args: Option<KeyValues>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct EnvFile {
    pub path: String,
    pub required: Option<bool>,
}

/// The long port syntax; numbers and strings are both read as text.
#[derive(Debug, Deserialize)]
pub(crate) struct Port {
    pub target: String,
    pub published: Option<String>,
    pub host_ip: Option<String>,
    pub protocol: Option<String>,
}

/// The long volume syntax.
#[derive(Debug, Deserialize)]
pub(crate) struct Mount {
    #[serde(rename = "type")]
    pub kind: String,
    pub source: Option<String>,
    pub target: String,
    pub read_only: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Condition {
    pub condition: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Healthcheck {
    pub test: Option<Words>,
    pub disable: Option<bool>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<String>,
    pub start_period: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Develop {
    pub watch: Option<Vec<WatchRule>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WatchRule {
    pub path: String,
    pub action: String,
    pub target: Option<String>,
    pub ignore: Option<Vec<String>>,
    pub exec: Option<WatchExec>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WatchExec {
    pub command: Words,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TopVolume {
    pub driver: Option<String>,
    pub driver_opts: Option<IndexMap<String, String>>,
    pub external: Option<ShortOr<ExternalName>>,
    /// The engine's name of the volume (kept for an external one).
    pub name: Option<String>,
}

/// The legacy `external: { name: ... }` form.
#[derive(Debug, Deserialize)]
pub(crate) struct ExternalName {
    pub name: Option<String>,
}

/// A command or entrypoint: the form is kept, since a string and a list mean
/// different things to the engine (shell words vs. exec form).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Words {
    Line(String),
    List(Vec<String>),
}

/// A scalar in short syntax, or a mapping in long syntax.
#[derive(Debug)]
pub(crate) enum ShortOr<T> {
    Short(String),
    Long(T),
}

/// Either one `T` or a list of them.
#[derive(Debug)]
pub(crate) struct OneOrMany<T>(pub Vec<T>);

/// `environment`, `build.args`: a list of `KEY=value` / `KEY`, or a mapping.
/// A missing value (`KEY` or `KEY:`) is `None`: Compose takes it from the
/// host's environment.
#[derive(Debug, Default)]
pub(crate) struct KeyValues(pub IndexMap<String, Option<String>>);

/// `extra_hosts`: a list of `name:address` (or `name=address`), or a
/// mapping of name to one address or several; kept as `name:address`.
#[derive(Debug, Default)]
pub(crate) struct ExtraHosts(pub Vec<String>);

/// `depends_on`: a list of names, or a mapping of name to condition.
#[derive(Debug)]
pub(crate) enum DependsOn {
    Names(Vec<String>),
    Conditions(IndexMap<String, Condition>),
}

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Words;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Words, E> {
                Ok(Words::Line(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Words, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(Words::List)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ShortOr<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = ShortOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a mapping")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ShortOr::Short(v.to_owned()))
            }
            // A bare `- 3000` in `ports` is a number to YAML.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ShortOr::Short(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(ShortOr::Short(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ShortOr::Short(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(ShortOr::Long)
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(StrDeserializer::<E>::new(v)).map(|one| OneOrMany(vec![one]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(OneOrMany)
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

impl<'de> Deserialize<'de> for KeyValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyValues;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of `KEY=value` strings or a mapping")
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyValues, E> {
                Ok(KeyValues::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyValues, A::Error> {
                let mut pairs = IndexMap::new();
                while let Some(item) = seq.next_element::<String>()? {
                    match item.split_once('=') {
                        Some((key, value)) => pairs.insert(key.to_owned(), Some(value.to_owned())),
                        None => pairs.insert(item, None),
                    };
                }
                Ok(KeyValues(pairs))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<KeyValues, A::Error> {
                IndexMap::deserialize(MapAccessDeserializer::new(map)).map(KeyValues)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for DependsOn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DependsOn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of service names or a mapping of conditions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<DependsOn, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(DependsOn::Names)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DependsOn, A::Error> {
                IndexMap::deserialize(MapAccessDeserializer::new(map)).map(DependsOn::Conditions)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ExtraHosts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ExtraHosts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of `name:address` strings or a mapping")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ExtraHosts, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(ExtraHosts)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ExtraHosts, A::Error> {
                let hosts: IndexMap<String, OneOrMany<String>> =
                    IndexMap::deserialize(MapAccessDeserializer::new(map))?;
                Ok(ExtraHosts(
                    hosts
                        .into_iter()
                        .flat_map(|(name, addresses)| {
                            addresses.0.into_iter().map(move |a| format!("{name}:{a}"))
                        })
                        .collect(),
                ))
            }
        }
        deserializer.deserialize_any(V)
    }
}
