//! A request body decoded without a target type: what the checks walk.

use crate::codec::Encoding;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A request body decoded without a target type: what the checks walk.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i128),
    /// A number with a fraction.
    Float(f64),
    /// Text.
    Str(Cow<'a, str>),
    /// A CBOR byte string.
    Bytes(Cow<'a, [u8]>),
    /// A list.
    List(Vec<Node<'a>>),
    /// A map or structure, members in the order sent.
    Map(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    /// Decode a body in `enc`; `None` when it is not JSON or CBOR at all.
    pub fn parse(enc: Encoding, body: &'a [u8]) -> Option<Node<'a>> {
        match enc {
            Encoding::Json => serde_json::from_slice(body).ok(),
            Encoding::Cbor => ciborium::from_reader::<ciborium::Value, _>(body)
                .ok()
                .and_then(from_cbor),
        }
    }

    /// The member `name` of a structure, absent when missing or `null`.
    pub(super) fn member(&self, name: &str) -> Option<&Node<'a>> {
        match self {
            Node::Map(entries) => entries
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v)
                .filter(|v| **v != Node::Null),
            _ => None,
        }
    }
}

fn from_cbor(v: ciborium::Value) -> Option<Node<'static>> {
    use ciborium::Value as V;
    Some(match v {
        V::Null => Node::Null,
        V::Bool(b) => Node::Bool(b),
        V::Integer(i) => Node::Int(i128::from(i)),
        V::Float(f) => Node::Float(f),
        V::Text(s) => Node::Str(Cow::Owned(s)),
        V::Bytes(b) => Node::Bytes(Cow::Owned(b)),
        // The Java SDK wraps timestamps in tag 1: the number underneath counts.
        V::Tag(_, inner) => from_cbor(*inner)?,
        V::Array(items) => Node::List(items.into_iter().map(from_cbor).collect::<Option<_>>()?),
        V::Map(entries) => Node::Map(
            entries
                .into_iter()
                .map(|(k, v)| match k {
                    V::Text(k) => Some((Cow::Owned(k), from_cbor(v)?)),
                    _ => None,
                })
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Int(i128::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Int(i128::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node<'de>, E> {
        Ok(Node::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<Key<'de>, Node<'de>>()? {
            entries.push((k.0, v));
        }
        Ok(Node::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}
