//! The AWS shared config and credentials files (`~/.aws/config`,
//! `~/.aws/credentials`): an INI dialect of `[section]` headers and
//! `key = value` properties.
//!
//! The client's profile provider reads profiles from both files; the broker's
//! `--auth FILE` lists the keys it accepts in the credentials-file format.
//!
//! ```
//! use kinesis_proto::shared_config::{parse, FileKind};
//! let file = parse(
//!     "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s3cret\n",
//!     FileKind::Credentials,
//! )
//! .unwrap();
//! assert_eq!(file.profile("default").unwrap().get("aws_access_key_id"), Some("AKIA1"));
//! ```
//!
//! Rules (those of the AWS SDKs): blank lines and lines starting with `#` or
//! `;` are comments; a section header may carry a trailing comment; property
//! names are case-insensitive and values are trimmed (an inline `#` belongs to
//! the value); an indented line after `key =` is a sub-property of `key` and
//! is kept as part of its value; a repeated section merges into the first and
//! a repeated property keeps the last value.

use std::collections::BTreeMap;
use std::fmt;

/// Which of the two files a text comes from; they name profiles differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// `~/.aws/credentials`: `[name]` is profile `name`.
    Credentials,
    /// `~/.aws/config`: `[default]` and `[profile name]` are profiles; other
    /// sections (`[sso-session x]`, `[services x]`) are not.
    Config,
}

/// One profile's properties, names lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    properties: BTreeMap<String, String>,
}

impl Profile {
    /// A property's value, looked up case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.properties
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Whether the profile has no properties.
    pub fn is_empty(&self) -> bool {
        self.properties.is_empty()
    }

    /// All properties, sorted by name.
    pub fn properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The profiles of one file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileFile {
    profiles: Vec<(String, Profile)>,
}

impl ProfileFile {
    /// The profile with this name.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p)
    }

    /// All profiles with their names, in file order.
    pub fn profiles(&self) -> impl Iterator<Item = (&str, &Profile)> {
        self.profiles.iter().map(|(n, p)| (n.as_str(), p))
    }

    fn entry(&mut self, name: &str) -> &mut Profile {
        let i = match self.profiles.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.profiles.push((name.to_string(), Profile::default()));
                self.profiles.len() - 1
            }
        };
        &mut self.profiles[i].1
    }
}

/// A line the parser could not make sense of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parse the text of a config or credentials file.
pub fn parse(text: &str, kind: FileKind) -> Result<ProfileFile, ParseError> {
    let mut file = ProfileFile::default();
    // The profile properties go to: None before any header, Some(None) inside
    // a section that is not a profile (skipped), Some(Some(name)) otherwise.
    let mut current: Option<Option<String>> = None;
    let mut last_key: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let err = |message: &str| ParseError {
            line: line_no,
            message: message.to_string(),
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = raw.starts_with([' ', '\t']);
        if indented && !trimmed.starts_with('[') {
            // A sub-property (`s3 =\n  max_concurrent_requests = 10`): part of the
            // previous property's value.
            let Some(key) = &last_key else {
                return Err(err(
                    "expected a property definition, found an indented line",
                ));
            };
            if let Some(Some(name)) = &current {
                let profile = file.entry(name);
                if let Some(value) = profile.properties.get_mut(key) {
                    value.push('\n');
                    value.push_str(trimmed);
                }
            }
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some(end) = rest.find(']') else {
                return Err(err("section header without a closing ']'"));
            };
            let after = rest[end + 1..].trim();
            if !(after.is_empty() || after.starts_with('#') || after.starts_with(';')) {
                return Err(err("unexpected text after a section header"));
            }
            let section = rest[..end].trim();
            if section.is_empty() {
                return Err(err("empty section name"));
            }
            let name = profile_name(section, kind);
            if let Some(name) = &name {
                file.entry(name);
            }
            current = Some(name);
            last_key = None;
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(err("expected 'name = value'"));
        };
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err(err("property without a name"));
        }
        match &current {
            None => return Err(err("property before any [section] header")),
            Some(None) => {}
            Some(Some(name)) => {
                file.entry(name)
                    .properties
                    .insert(key.clone(), value.trim().to_string());
            }
        }
        last_key = Some(key);
    }
    Ok(file)
}

/// The profile a section header names, if it names one.
fn profile_name(section: &str, kind: FileKind) -> Option<String> {
    match kind {
        FileKind::Credentials => Some(section.to_string()),
        FileKind::Config => {
            if section == "default" {
                return Some("default".to_string());
            }
            let rest = section.strip_prefix("profile")?;
            // `profile` must be followed by whitespace: `[profilefoo]` is no profile.
            if !rest.starts_with([' ', '\t']) {
                return None;
            }
            let name = rest.trim();
            (!name.is_empty()).then(|| name.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn credentials_file() {
        let f = parse(
            "# comment\n; other comment\n\n[default]\naws_access_key_id = AKIA1\n\
             AWS_Secret_Access_Key=s3cret/+x#y \n[ci] # trailing\naws_access_key_id=AKIA2\n",
            FileKind::Credentials,
        )
        .unwrap();
        let d = f.profile("default").unwrap();
        assert_eq!(d.get("aws_access_key_id"), Some("AKIA1"));
        assert_eq!(d.get("aws_secret_access_key"), Some("s3cret/+x#y"));
        assert_eq!(
            f.profile("ci").unwrap().get("AWS_ACCESS_KEY_ID"),
            Some("AKIA2")
        );
        let names: Vec<_> = f.profiles().map(|(n, _)| n).collect();
        assert_eq!(names, ["default", "ci"]);
    }

    #[test]
    fn config_file_profile_prefixes() {
        let f = parse(
            "[default]\nregion=us-east-1\n[profile dev]\nregion = eu-west-1\n\
             s3 =\n  max_concurrent_requests = 10\n[sso-session x]\nsso_region=us-east-1\n\
             [profilefoo]\nregion=x\n[profile  spaced ]\nregion=y\n",
            FileKind::Config,
        )
        .unwrap();
        assert_eq!(
            f.profile("default").unwrap().get("region"),
            Some("us-east-1")
        );
        let dev = f.profile("dev").unwrap();
        assert_eq!(dev.get("region"), Some("eu-west-1"));
        assert_eq!(dev.get("s3"), Some("\nmax_concurrent_requests = 10"));
        assert!(f.profile("sso-session x").is_none());
        assert!(f.profile("profilefoo").is_none());
        assert!(f.profile("foo").is_none());
        assert_eq!(f.profile("spaced").unwrap().get("region"), Some("y"));
    }

    #[test]
    fn repeated_sections_merge_and_last_value_wins() {
        let f = parse("[a]\nk=1\n[b]\nk=2\n[a]\nk=3\nj=4\n", FileKind::Credentials).unwrap();
        let a = f.profile("a").unwrap();
        assert_eq!(a.get("k"), Some("3"));
        assert_eq!(a.get("j"), Some("4"));
        assert_eq!(f.profiles().count(), 2);
    }

    #[test]
    fn malformed_lines_are_errors_with_line_numbers() {
        for (text, line) in [
            ("k=v\n", 1),
            ("[a]\nno equals sign\n", 2),
            ("[a\n", 1),
            ("[]\n", 1),
            ("[a] junk\n", 1),
            ("[a]\n=v\n", 2),
            ("  k = v\n", 1),
        ] {
            let e = parse(text, FileKind::Credentials).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
    }

    proptest! {
        // Whatever the text, parsing returns and never panics; printing a
        // parsed file and parsing it again gives the same profiles.
        #[test]
        fn parse_never_panics(text in "[\\[\\]a-z=#; \t\n]{0,200}") {
            let _ = parse(&text, FileKind::Config);
            let _ = parse(&text, FileKind::Credentials);
        }

        #[test]
        fn round_trip(
            profiles in proptest::collection::btree_map(
                "[a-z][a-z0-9_-]{0,8}",
                proptest::collection::btree_map("[a-z_]{1,10}", "[A-Za-z0-9/+=#]{0,20}", 0..4),
                0..4,
            )
        ) {
            let mut text = String::new();
            for (name, props) in &profiles {
                text.push_str(&format!("[{name}]\n"));
                for (k, v) in props {
                    text.push_str(&format!("{k} = {v}\n"));
                }
            }
            let f = parse(&text, FileKind::Credentials).unwrap();
            for (name, props) in &profiles {
                let p = f.profile(name).unwrap();
                for (k, v) in props {
                    prop_assert_eq!(p.get(k), Some(v.as_str()));
                }
            }
        }
    }
}
