//! Enumerations the wire spells as strings (iterator types, statuses),
//! typed, with values this crate does not know kept as sent.

use serde::{Deserialize, Serialize};

/// A value of a wire enumeration that this crate does not know, kept as
/// sent so that it round-trips and the broker can name it in its answer
/// (as the AWS SDKs' `UnknownVariantValue`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnknownValue(String);

impl UnknownValue {
    /// The value as it was sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Defines a wire enumeration: its known values, an `Unknown` catch-all, and
/// the conversions to and from its wire string.
macro_rules! wire_enum {
    (
        $(#[$doc:meta])*
        $name:ident { $( $(#[$vdoc:meta])* $variant:ident = $wire:literal, )* }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )*
            /// A value this crate does not know, kept as sent.
            Unknown(UnknownValue),
        }

        impl $name {
            /// The known wire values, in the order the service lists them.
            pub const fn values() -> &'static [&'static str] {
                &[$( $wire, )*]
            }

            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )*
                    $name::Unknown(v) => v.as_str(),
                }
            }

            /// Whether the value is one this crate knows.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Unknown(_))
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $wire => $name::$variant, )*
                    other => $name::Unknown(UnknownValue(other.to_string())),
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $( $wire => $name::$variant, )*
                    _ => $name::Unknown(UnknownValue(s)),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok($name::from(s))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map($name::from)
            }
        }
    };
}

wire_enum! {
    /// Where a shard iterator or a subscription starts (`ShardIteratorType`,
    /// also SubscribeToShard's `StartingPosition.Type`).
    ShardIteratorType {
        /// At the given sequence number.
        AtSequenceNumber = "AT_SEQUENCE_NUMBER",
        /// Just after the given sequence number.
        AfterSequenceNumber = "AFTER_SEQUENCE_NUMBER",
        /// At the oldest record kept.
        TrimHorizon = "TRIM_HORIZON",
        /// After the newest record.
        Latest = "LATEST",
        /// At the first record at or after the given time.
        AtTimestamp = "AT_TIMESTAMP",
    }
}

/// An absent type reads as the empty string, which the broker rejects by
/// name like any unknown value.
impl Default for ShardIteratorType {
    fn default() -> Self {
        ShardIteratorType::Unknown(UnknownValue(String::new()))
    }
}

wire_enum! {
    /// An enhanced fan-out consumer's status (`ConsumerStatus`).
    ConsumerStatus {
        /// Just registered.
        Creating = "CREATING",
        /// Being deregistered.
        Deleting = "DELETING",
        /// Ready for SubscribeToShard.
        Active = "ACTIVE",
    }
}

/// Needed by the outputs' `Default`; a consumer starts out CREATING.
impl Default for ConsumerStatus {
    fn default() -> Self {
        ConsumerStatus::Creating
    }
}

wire_enum! {
    /// A stream's status (`StreamStatus`).
    StreamStatus {
        /// Just created.
        Creating = "CREATING",
        /// Being deleted.
        Deleting = "DELETING",
        /// Ready.
        Active = "ACTIVE",
        /// Resharding or changing settings.
        Updating = "UPDATING",
    }
}

/// Needed by the outputs' `Default`; a stream starts out CREATING.
impl Default for StreamStatus {
    fn default() -> Self {
        StreamStatus::Creating
    }
}
