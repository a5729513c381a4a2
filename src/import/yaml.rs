//! Compose files as plain YAML trees, merged by the Compose specification's
//! rules.
//!
//! Every scalar is kept as text, tags `!reset` and `!override` are kept as
//! nodes of their own until the merge has applied them, and a tree can be
//! read back into the typed [`super::compose`] structs through
//! [`NodeDeserializer`]. Merging follows compose-go: mappings merge by key,
//! sequences are appended, scalars replaced; `command`, `entrypoint` and
//! `healthcheck.test` are replaced whole; `environment`, `build.args`,
//! `labels` and `depends_on` merge by key whatever their form; a later
//! `!reset` removes a value and `!override` replaces it.

use std::fmt;

use indexmap::IndexMap;
use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A YAML value with every scalar kept as text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Scalar(String),
    Seq(Vec<Node>),
    Map(IndexMap<String, Node>),
    /// `!reset`: drop whatever an earlier file said.
    Reset,
    /// `!override`: replace an earlier value instead of merging with it.
    Override(Box<Node>),
}

struct Body(Node);

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let serde_saphyr::Tagged(Body(node), tag) =
            serde_saphyr::Tagged::<Body>::deserialize(deserializer)?;
        Ok(match tag.as_deref() {
            Some("!reset") => Node::Reset,
            Some("!override") => Node::Override(Box::new(node)),
            _ => node,
        })
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
                Ok(Body(Node::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<Body, E> {
                Ok(Body(Node::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Body, D::Error> {
                Node::deserialize(d).map(Body)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Body, E> {
                Ok(Body(Node::Scalar(v.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Body, E> {
                Ok(Body(Node::Scalar(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Body, E> {
                Ok(Body(Node::Scalar(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Body, E> {
                Ok(Body(Node::Scalar(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Body, E> {
                Ok(Body(Node::Scalar(v.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Body(Node::Seq(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
                let mut entries = IndexMap::new();
                while let Some((key, value)) = map.next_entry::<String, Node>()? {
                    entries.insert(key, value);
                }
                Ok(Body(Node::Map(entries)))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl Node {
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.get(key),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match self {
            Node::Map(entries) => entries.get_mut(key),
            _ => None,
        }
    }

    pub(crate) fn scalar(&self) -> Option<&str> {
        match self {
            Node::Scalar(text) => Some(text),
            _ => None,
        }
    }

    /// The entries of a mapping, without `x-` extensions.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&String, &Node)> {
        let entries = match self {
            Node::Map(entries) => Some(entries.iter()),
            _ => None,
        };
        entries
            .into_iter()
            .flatten()
            .filter(|(key, _)| !key.starts_with("x-"))
    }

    pub(crate) fn items(&self) -> &[Node] {
        match self {
            Node::Seq(items) => items,
            _ => &[],
        }
    }

    /// Applies what no later file can still act on: a `!reset` left alone
    /// removes its key, an `!override` is its value.
    pub(crate) fn strip_tags(&mut self) {
        match self {
            Node::Override(inner) => {
                let mut inner = std::mem::replace(inner.as_mut(), Node::Null);
                inner.strip_tags();
                *self = inner;
            }
            Node::Reset => *self = Node::Null,
            Node::Map(entries) => {
                entries.retain(|_, value| *value != Node::Reset);
                entries.values_mut().for_each(Node::strip_tags);
            }
            Node::Seq(items) => {
                items.retain(|item| *item != Node::Reset);
                items.iter_mut().for_each(Node::strip_tags);
            }
            Node::Null | Node::Scalar(_) => {}
        }
    }
}

/// Merges `later` over `base`; `path` is where `base` sits in the file
/// (`["services", "app", "environment"]`), which selects the special rules.
pub(crate) fn merge(base: &mut Node, later: Node, path: &[&str]) {
    let later = match later {
        Node::Override(value) => {
            *base = *value;
            return;
        }
        later => later,
    };
    let rule = match path {
        ["services", _, key] => *key,
        ["services", _, "healthcheck", "test"] => "command",
        ["services", _, "build", "args"] => "environment",
        _ => "",
    };
    match rule {
        "command" | "entrypoint" => {
            *base = later;
            return;
        }
        "environment" | "labels" | "annotations" | "sysctls" => {
            *base = key_values(std::mem::replace(base, Node::Null));
            let later = key_values(later);
            return merge_maps(base, later, path);
        }
        "depends_on" => {
            *base = depends_on(std::mem::replace(base, Node::Null));
            return merge_maps(base, depends_on(later), path);
        }
        "build" => {
            *base = build(std::mem::replace(base, Node::Null));
            return merge_maps(base, build(later), path);
        }
        "env_file" => {
            let mut items = one_or_many(std::mem::replace(base, Node::Null));
            for item in one_or_many(later) {
                if !items.contains(&item) {
                    items.push(item);
                }
            }
            *base = Node::Seq(items);
            return;
        }
        _ => {}
    }
    match (base, later) {
        (base @ Node::Map(_), later @ Node::Map(_)) => merge_maps(base, later, path),
        (Node::Seq(items), Node::Seq(more)) => items.extend(more),
        (_, Node::Null) => {}
        (base, later) => *base = later,
    }
}

fn merge_maps(base: &mut Node, later: Node, path: &[&str]) {
    let (Node::Map(entries), Node::Map(more)) = (&mut *base, later) else {
        return;
    };
    for (key, value) in more {
        if value == Node::Reset {
            entries.shift_remove(&key);
            continue;
        }
        match entries.get_mut(&key) {
            Some(existing) => {
                let mut path = path.to_vec();
                path.push(&key);
                merge(existing, value, &path);
            }
            None => {
                entries.insert(key, value);
            }
        }
    }
}

/// `["A=1", "B"]` → `{A: "1", B: null}`; a mapping stays as it is.
pub(crate) fn key_values(node: Node) -> Node {
    match node {
        Node::Seq(items) => Node::Map(
            items
                .into_iter()
                .filter_map(|item| match item {
                    Node::Scalar(text) => Some(match text.split_once('=') {
                        Some((key, value)) => (key.to_owned(), Node::Scalar(value.to_owned())),
                        None => (text, Node::Null),
                    }),
                    _ => None,
                })
                .collect(),
        ),
        other => other,
    }
}

/// `[db]` → `{db: {condition: service_started}}`.
fn depends_on(node: Node) -> Node {
    match node {
        Node::Seq(items) => Node::Map(
            items
                .into_iter()
                .filter_map(|item| match item {
                    Node::Scalar(name) => {
                        let condition = IndexMap::from([(
                            "condition".to_owned(),
                            Node::Scalar("service_started".to_owned()),
                        )]);
                        Some((name, Node::Map(condition)))
                    }
                    _ => None,
                })
                .collect(),
        ),
        other => other,
    }
}

/// `build: ./dir` → `{context: ./dir}`.
fn build(node: Node) -> Node {
    match node {
        Node::Scalar(context) => Node::Map(IndexMap::from([(
            "context".to_owned(),
            Node::Scalar(context),
        )])),
        other => other,
    }
}

fn one_or_many(node: Node) -> Vec<Node> {
    match node {
        Node::Seq(items) => items,
        Node::Null => Vec::new(),
        one => vec![one],
    }
}

/// Reads a [`Node`] into serde types, scalars parsed where a number or a
/// boolean is asked for.
pub(crate) struct NodeDeserializer<'a>(pub &'a Node);

type Error = de::value::Error;

impl<'de> IntoDeserializer<'de, Error> for NodeDeserializer<'de> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> NodeDeserializer<'de> {
    fn parse<T: std::str::FromStr>(&self, what: &str) -> Result<T, Error> {
        match self.0 {
            Node::Scalar(text) => text
                .parse()
                .map_err(|_| de::Error::custom(format!("expected {what}, found `{text}`"))),
            _ => Err(de::Error::custom(format!("expected {what}"))),
        }
    }
}

macro_rules! parsed {
    ($($method:ident => $visit:ident : $ty:ty, $what:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.$visit(self.parse::<$ty>($what)?)
        }
    )*};
}

impl<'de> Deserializer<'de> for NodeDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Node::Null | Node::Reset => visitor.visit_unit(),
            Node::Scalar(text) => visitor.visit_borrowed_str(text),
            Node::Seq(items) => {
                visitor.visit_seq(SeqDeserializer::new(items.iter().map(NodeDeserializer)))
            }
            Node::Map(entries) => visitor.visit_map(MapDeserializer::new(
                entries
                    .iter()
                    .map(|(key, value)| (key.as_str(), NodeDeserializer(value))),
            )),
            Node::Override(inner) => NodeDeserializer(inner).deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Node::Null | Node::Reset => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    parsed! {
        deserialize_bool => visit_bool: bool, "`true` or `false`";
        deserialize_u8 => visit_u8: u8, "a number";
        deserialize_u16 => visit_u16: u16, "a number";
        deserialize_u32 => visit_u32: u32, "a number";
        deserialize_u64 => visit_u64: u64, "a number";
        deserialize_i8 => visit_i8: i8, "a number";
        deserialize_i16 => visit_i16: i16, "a number";
        deserialize_i32 => visit_i32: i32, "a number";
        deserialize_i64 => visit_i64: i64, "a number";
        deserialize_f32 => visit_f32: f32, "a number";
        deserialize_f64 => visit_f64: f64, "a number";
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Node {
        serde_saphyr::from_str(text).unwrap()
    }

    #[test]
    fn tags_anchors_and_merge_keys_are_read() {
        let node = yaml(
            "x-base: &base\n  image: php\n  ports: [\"80\"]\nservices:\n  app:\n    <<: *base\n    ports: !reset []\n    command: !override [a]\n",
        );
        let app = node.get("services").unwrap().get("app").unwrap();
        assert_eq!(app.get("image"), Some(&Node::Scalar("php".into())));
        assert_eq!(app.get("ports"), Some(&Node::Reset));
        assert!(matches!(app.get("command"), Some(Node::Override(_))));
    }

    #[test]
    fn merges_follow_compose_rules() {
        let mut base = yaml(
            "services:\n  app:\n    environment: [A=1, B=2]\n    ports: [\"80:80\"]\n    command: [a, b]\n    depends_on: [db]\n    build: .\n",
        );
        let later = yaml(
            "services:\n  app:\n    environment:\n      B: 3\n    ports: !reset []\n    command: [c]\n    depends_on:\n      cache:\n        condition: service_healthy\n    build:\n      target: dev\n",
        );
        merge(&mut base, later, &[]);
        base.strip_tags();
        let app = base.get("services").unwrap().get("app").unwrap();
        let expected = yaml(
            "environment: {A: '1', B: '3'}\ncommand: [c]\ndepends_on:\n  db: {condition: service_started}\n  cache: {condition: service_healthy}\nbuild: {context: ., target: dev}\n",
        );
        for key in ["environment", "command", "depends_on", "build"] {
            assert_eq!(app.get(key), expected.get(key), "{key}");
        }
        assert_eq!(app.get("ports"), None);
    }
}
