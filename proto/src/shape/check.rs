//! The checks Kinesis runs on a request body before the operation: member
//! types (`SerializationException`), then constraints (`ValidationException`).

use super::inputs::{Member, Shape, input_shape};
use super::node::Node;
use crate::codec::Encoding;
use crate::error::KinesisError;
use crate::model::Operation;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use std::fmt;

/// Whether a body is a JSON or CBOR map (members unread): what the service
/// needs of a body before it looks at the operation or the signature.
pub fn is_structure(enc: Encoding, body: &[u8]) -> bool {
    struct MapOnly;
    impl<'de> Visitor<'de> for MapOnly {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a structure")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while map
                .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                .is_some()
            {}
            Ok(())
        }
    }
    struct Structure;
    impl<'de> Deserialize<'de> for Structure {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(MapOnly).map(|()| Structure)
        }
    }
    match enc {
        Encoding::Json => serde_json::from_slice::<Structure>(body).is_ok(),
        Encoding::Cbor => ciborium::from_reader::<Structure, _>(body).is_ok(),
    }
}

/// At most this many violations are reported (and counted).
const MAX_VIOLATIONS: usize = 10;

/// Check a request body for `op` as the service does before running it:
/// first every member's type (`SerializationException`), then every
/// constraint (`ValidationException`).
pub fn check(op: Operation, enc: Encoding, body: &[u8]) -> Result<(), KinesisError> {
    let Some(node) = Node::parse(enc, body) else {
        return Err(KinesisError::serialization(""));
    };
    check_node(op, &node)
}

/// [`check`] on a body already decoded.
pub fn check_node(op: Operation, node: &Node<'_>) -> Result<(), KinesisError> {
    let Node::Map(_) = node else {
        return Err(KinesisError::serialization(""));
    };
    let members = input_shape(op);
    check_types(members, node).map_err(KinesisError::serialization)?;
    let mut found = Vec::new();
    validate_members(members, node, "", &mut found);
    if found.is_empty() {
        Ok(())
    } else {
        Err(KinesisError::validation(&found))
    }
}

fn check_types(members: &[Member], node: &Node<'_>) -> Result<(), String> {
    for mem in members {
        if let Some(v) = node.member(mem.name) {
            check_type(mem.shape, v)?;
        }
    }
    Ok(())
}

const NUMBER_CLASS: &str = "class com.amazon.coral.value.json.numbers.TruncatingBigNumber";

fn container_error(v: &Node<'_>) -> Option<String> {
    match v {
        Node::List(_) => Some("Start of list found where not expected".into()),
        Node::Map(_) => Some("Start of structure or map found where not expected.".into()),
        _ => None,
    }
}

fn check_type(shape: &Shape, v: &Node<'_>) -> Result<(), String> {
    if *v == Node::Null {
        return Ok(());
    }
    let scalar_class = |v: &Node<'_>| match v {
        Node::Bool(_) => Some("class java.lang.Boolean"),
        Node::Int(_) | Node::Float(_) => Some(NUMBER_CLASS),
        Node::Str(_) => Some("class java.lang.String"),
        _ => None,
    };
    match shape {
        Shape::Str { .. } => match v {
            Node::Str(_) => Ok(()),
            Node::Bool(_) | Node::Int(_) | Node::Float(_) => Err(format!(
                "{} can not be converted to an String",
                scalar_class(v).unwrap_or(NUMBER_CLASS)
            )),
            // A CBOR byte string where text belongs reads as a structure.
            _ => Err(container_error(v)
                .unwrap_or_else(|| "Start of structure or map found where not expected.".into())),
        },
        Shape::Int { .. } => match v {
            Node::Int(_) | Node::Float(_) => Ok(()),
            Node::Bool(_) | Node::Str(_) => Err(format!(
                "{} can not be converted to an Integer",
                scalar_class(v).unwrap_or(NUMBER_CLASS)
            )),
            _ => Err(container_error(v)
                .unwrap_or_else(|| "Start of structure or map found where not expected.".into())),
        },
        Shape::Bool => match v {
            Node::Bool(_) => Ok(()),
            Node::Int(_) | Node::Float(_) => {
                Err(format!("{NUMBER_CLASS} can not be converted to an Boolean"))
            }
            Node::Str(s) => Err(format!(
                "'{}' can not be converted to an Boolean",
                s.to_uppercase()
            )),
            _ => Err(container_error(v)
                .unwrap_or_else(|| "Start of structure or map found where not expected.".into())),
        },
        Shape::Blob { .. } => match v {
            Node::Bytes(_) => Ok(()),
            Node::Str(s) => base64_error(s).map_or(Ok(()), Err),
            Node::Bool(_) | Node::Int(_) | Node::Float(_) => Err(format!(
                "{} can not be converted to a Blob",
                scalar_class(v).unwrap_or(NUMBER_CLASS)
            )),
            _ => Err(container_error(v).unwrap_or_default()),
        },
        Shape::Timestamp => match v {
            Node::Int(_) | Node::Float(_) => Ok(()),
            Node::Bool(_) | Node::Str(_) => Err(format!(
                "{} can not be converted to milliseconds since epoch",
                scalar_class(v).unwrap_or(NUMBER_CLASS)
            )),
            _ => Err(container_error(v)
                .unwrap_or_else(|| "Start of structure or map found where not expected.".into())),
        },
        Shape::List { member, .. } => match v {
            Node::List(items) => items.iter().try_for_each(|i| check_type(member, i)),
            Node::Map(_) => Err("Start of structure or map found where not expected.".into()),
            _ => Err("Expected list or null".into()),
        },
        Shape::Map { value, .. } => match v {
            Node::Map(entries) => entries.iter().try_for_each(|(_, e)| check_type(value, e)),
            Node::List(_) => Err("Start of list found where not expected".into()),
            _ => Err("Expected map or null".into()),
        },
        Shape::Struct(members) => match v {
            Node::Map(_) => check_types(members, v),
            Node::List(_) => Err("Start of list found where not expected".into()),
            _ => Err("Expected null".into()),
        },
    }
}

/// Why base64 text is not a blob, in the service's words (`None`: it is one).
fn base64_error(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(4) {
        return Some(format!(
            "'{s}' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: {}",
            s.len()
        ));
    }
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let ok = b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
        let pad_ok = b == b'=' && bytes.get(i + 1).is_none_or(|&n| n == b'=');
        if !ok && !pad_ok {
            return Some(format!(
                "'{s}' can not be converted to a Blob: Invalid Base64 character: '{}'",
                char::from(b)
            ));
        }
    }
    use base64::Engine as _;
    if base64::engine::general_purpose::STANDARD.decode(s).is_err() {
        return Some(format!(
            "'{s}' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"
        ));
    }
    None
}

fn lower_first(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn validate_members(members: &[Member], node: &Node<'_>, parent: &str, found: &mut Vec<String>) {
    for mem in members {
        let path = format!("{parent}{}", lower_first(mem.name));
        validate(mem, node.member(mem.name), &path, found);
    }
}

fn push(found: &mut Vec<String>, value: Option<String>, path: &str, rule: &str) {
    if found.len() >= MAX_VIOLATIONS {
        return;
    }
    let value = value.map_or_else(|| "null".to_string(), |v| format!("'{v}'"));
    found.push(format!(
        "Value {value} at '{path}' failed to satisfy constraint: Member must {rule}"
    ));
}

/// A value as the service prints it in a violation.
fn show(shape: &Shape, v: &Node<'_>) -> String {
    match (shape, v) {
        (Shape::Blob { .. }, _) => {
            let n = blob_len(v);
            format!("java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]")
        }
        (
            Shape::List {
                member,
                member_text,
                ..
            },
            Node::List(items),
        ) => {
            let shown: Vec<String> = items
                .iter()
                .map(|i| member_text.map_or_else(|| show(member, i), str::to_string))
                .collect();
            format!("[{}]", shown.join(", "))
        }
        (Shape::Map { value, .. }, Node::Map(entries)) => {
            let shown: Vec<String> = entries
                .iter()
                .map(|(k, e)| format!("{k}={}", show(value, e)))
                .collect();
            format!("{{{}}}", shown.join(", "))
        }
        (Shape::Int { .. }, _) => int_value(v).to_string(),
        (_, Node::Str(s)) => s.to_string(),
        (_, Node::Int(i)) => i.to_string(),
        (_, Node::Float(f)) => f.to_string(),
        (_, Node::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// An integer member's value as the service reads it: fractions dropped,
/// clamped to 32 bits.
fn int_value(v: &Node<'_>) -> i64 {
    let n = match v {
        Node::Int(i) => *i,
        Node::Float(f) => f.floor() as i128,
        _ => 0,
    };
    n.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i64
}

fn blob_len(v: &Node<'_>) -> usize {
    match v {
        Node::Bytes(b) => b.len(),
        Node::Str(s) => {
            let pad = s.bytes().rev().take_while(|&b| b == b'=').count();
            (s.len() / 4 * 3).saturating_sub(pad)
        }
        _ => 0,
    }
}

fn length_rules(
    found: &mut Vec<String>,
    shown: &dyn Fn() -> String,
    path: &str,
    n: usize,
    min: Option<usize>,
    max: Option<usize>,
) {
    if let Some(min) = min
        && n < min
    {
        push(
            found,
            Some(shown()),
            path,
            &format!("have length greater than or equal to {min}"),
        );
    }
    if let Some(max) = max
        && n > max
    {
        push(
            found,
            Some(shown()),
            path,
            &format!("have length less than or equal to {max}"),
        );
    }
}

fn bounds_rule(what: &str, (min, max): (usize, usize)) -> String {
    format!(
        "{what} must satisfy constraint: [Member must have length less than or equal to {max}, Member must have length greater than or equal to {min}]"
    )
}

fn validate(mem: &Member, v: Option<&Node<'_>>, path: &str, found: &mut Vec<String>) {
    let Some(v) = v else {
        if mem.required {
            push(found, None, path, "not be null");
        }
        return;
    };
    let shown = || show(mem.shape, v);
    match mem.shape {
        Shape::Str {
            min,
            max,
            pattern,
            values,
        } => {
            let Node::Str(s) = v else { return };
            if let Some(p) = pattern
                && !p.matches(s)
            {
                push(
                    found,
                    Some(shown()),
                    path,
                    &format!("satisfy regular expression pattern: {}", p.text()),
                );
            }
            if !values.is_empty() && !values.contains(&s.as_ref()) {
                push(
                    found,
                    Some(shown()),
                    path,
                    &format!("satisfy enum value set: [{}]", values.join(", ")),
                );
            }
            length_rules(found, &shown, path, s.chars().count(), *min, *max);
        }
        Shape::Int { min, max } => {
            let n = int_value(v);
            if let Some(min) = min
                && n < *min
            {
                push(
                    found,
                    Some(shown()),
                    path,
                    &format!("have value greater than or equal to {min}"),
                );
            }
            if let Some(max) = max
                && n > *max
            {
                push(
                    found,
                    Some(shown()),
                    path,
                    &format!("have value less than or equal to {max}"),
                );
            }
        }
        Shape::Blob { max } => length_rules(found, &shown, path, blob_len(v), None, Some(*max)),
        Shape::Bool | Shape::Timestamp => {}
        Shape::List {
            member,
            min,
            max,
            member_len,
            ..
        } => {
            let Node::List(items) = v else { return };
            length_rules(found, &shown, path, items.len(), *min, *max);
            if let Some((lo, hi)) = member_len {
                let bad = items.iter().any(|i| match i {
                    Node::Str(s) => !(lo..=hi).contains(&&s.chars().count()),
                    _ => false,
                });
                if bad && found.len() < MAX_VIOLATIONS {
                    found.push(format!(
                        "Value '{}' at '{path}' failed to satisfy constraint: {}",
                        shown(),
                        bounds_rule("Member", (*lo, *hi))
                    ));
                }
            }
            if let Shape::Struct(children) = member {
                for (i, item) in items.iter().enumerate() {
                    validate_members(children, item, &format!("{path}.{}.member.", i + 1), found);
                }
            }
        }
        Shape::Map {
            min,
            max,
            key_len,
            value_len,
            ..
        } => {
            let Node::Map(entries) = v else { return };
            length_rules(found, &shown, path, entries.len(), *min, *max);
            let within = |s: &str, (lo, hi): (usize, usize)| (lo..=hi).contains(&s.chars().count());
            let rules = [
                (
                    "Map keys",
                    *key_len,
                    entries.iter().any(|(k, _)| !within(k, *key_len)),
                ),
                (
                    "Map value",
                    *value_len,
                    entries.iter().any(|(_, e)| match e {
                        Node::Str(s) => !within(s, *value_len),
                        _ => false,
                    }),
                ),
            ];
            for (what, bounds, bad) in rules {
                if bad && found.len() < MAX_VIOLATIONS {
                    found.push(format!(
                        "Value '{}' at '{path}' failed to satisfy constraint: {}",
                        shown(),
                        bounds_rule(what, bounds)
                    ));
                }
            }
        }
        Shape::Struct(children) => validate_members(children, v, &format!("{path}."), found),
    }
}
