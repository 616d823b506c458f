//! One try at putting a user record, as reported in results and failures.

use std::fmt;
use std::time::Duration;

/// One try at putting a user record (the KPL's `Attempt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Time from `put` (first attempt) or from the previous attempt's end to this attempt's start.
    pub delay: Duration,
    /// How long the PutRecords request took.
    pub duration: Duration,
    /// Whether this attempt put the record.
    pub success: bool,
    /// The error code of a failed attempt.
    pub error_code: Option<String>,
    /// The error message of a failed attempt.
    pub error_message: Option<String>,
    /// Whether a failed attempt may have stored the record anyway (timeout, reset, 5xx, wrong
    /// shard); a later successful attempt then may have made a duplicate.
    pub possibly_stored: bool,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.success {
            return write!(f, "ok after {:?} in {:?}", self.delay, self.duration);
        }
        write!(
            f,
            "{}: {} (after {:?}, took {:?}{})",
            self.error_code.as_deref().unwrap_or("error"),
            self.error_message.as_deref().unwrap_or(""),
            self.delay,
            self.duration,
            if self.possibly_stored {
                ", possibly stored"
            } else {
                ""
            }
        )
    }
}

/// Every attempt of a user record that was put, oldest first, the last one successful.
/// Derefs to a slice. Most records are put at their first attempt; that one is kept inline,
/// so a result needs no allocation of its own (one per record, freed on the caller's thread,
/// was a few per cent of the producer's CPU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempts(Repr);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    One(Attempt),
    Many(Vec<Attempt>),
}

impl Attempts {
    /// `earlier` attempts followed by `last`.
    pub(crate) fn new(earlier: Vec<Attempt>, last: Attempt) -> Self {
        if earlier.is_empty() {
            return Attempts(Repr::One(last));
        }
        let mut all = earlier;
        all.push(last);
        Attempts(Repr::Many(all))
    }

    /// The attempts as a vector.
    pub fn into_vec(self) -> Vec<Attempt> {
        match self.0 {
            Repr::One(a) => vec![a],
            Repr::Many(v) => v,
        }
    }
}

impl std::ops::Deref for Attempts {
    type Target = [Attempt];

    fn deref(&self) -> &[Attempt] {
        match &self.0 {
            Repr::One(a) => std::slice::from_ref(a),
            Repr::Many(v) => v,
        }
    }
}

impl From<Vec<Attempt>> for Attempts {
    fn from(v: Vec<Attempt>) -> Self {
        Attempts(Repr::Many(v))
    }
}

impl<'a> IntoIterator for &'a Attempts {
    type Item = &'a Attempt;
    type IntoIter = std::slice::Iter<'a, Attempt>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for Attempts {
    type Item = Attempt;
    type IntoIter = std::vec::IntoIter<Attempt>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(success: bool) -> Attempt {
        Attempt {
            delay: Duration::from_millis(1),
            duration: Duration::from_millis(2),
            success,
            error_code: (!success).then(|| "InternalFailure".to_string()),
            error_message: None,
            possibly_stored: false,
        }
    }

    #[test]
    fn earlier_attempts_come_first_and_one_alone_is_inline() {
        let one = Attempts::new(Vec::new(), attempt(true));
        assert!(matches!(one.0, Repr::One(_)));
        assert_eq!(&*one, &[attempt(true)]);
        let two = Attempts::new(vec![attempt(false)], attempt(true));
        assert_eq!(&*two, &[attempt(false), attempt(true)]);
        assert_eq!(two.iter().filter(|a| a.success).count(), 1);
        assert_eq!(two.clone().into_vec(), vec![attempt(false), attempt(true)]);
        assert_eq!(Attempts::from(vec![attempt(true)]), {
            let v: Vec<Attempt> = one.into_iter().collect();
            Attempts::from(v)
        });
    }
}
