//! The short ids people type: `E-12` for experiments and `P-7` for pledges, numbered per workspace.

use std::fmt;
use std::str::FromStr;

/// Why a typed id was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not {what} id; {what_plural} ids look like {example}")]
pub struct IdError {
    text: String,
    what: &'static str,
    what_plural: &'static str,
    example: &'static str,
}

macro_rules! short_id {
    ($name:ident, $prefix:literal, $what:literal, $what_plural:literal, $example:literal) => {
        #[doc = concat!("A per-workspace number shown as `", $prefix, "-n`.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "-{}"), self.0)
            }
        }

        // Short ids travel as the text people see ("E-3"), so stored messages stay readable.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            /// Accepts `E-12`, `e-12`, `E12` and `#E-12`: people type ids from memory.
            fn from_str(text: &str) -> Result<Self, IdError> {
                let error = || IdError {
                    text: text.chars().take(40).collect(),
                    what: $what,
                    what_plural: $what_plural,
                    example: $example,
                };
                let rest = text.trim_start_matches('#');
                let mut chars = rest.chars();
                match chars.next() {
                    Some(c) if c.eq_ignore_ascii_case(&$prefix.chars().next().unwrap()) => {}
                    _ => return Err(error()),
                }
                let digits = chars.as_str();
                let digits = digits.strip_prefix('-').unwrap_or(digits);
                if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(error());
                }
                match digits.parse::<i64>() {
                    Ok(n) if n > 0 => Ok($name(n)),
                    _ => Err(error()),
                }
            }
        }
    };
}

short_id!(ExperimentRef, "E", "an experiment", "experiment", "E-12");
short_id!(PledgeRef, "P", "a pledge", "pledge", "P-7");

macro_rules! row_id {
    ($($name:ident),+) => {$(
        /// A database row id: internal, never shown to people (they see short ids).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub i64);
    )+};
}
row_id!(WorkspaceId, ChannelId, MemberId, ExperimentId, PledgeId, OutboundId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_in_every_form_people_type() {
        assert_eq!(ExperimentRef(12).to_string(), "E-12");
        for text in ["E-12", "e-12", "E12", "#E-12"] {
            assert_eq!(text.parse::<ExperimentRef>(), Ok(ExperimentRef(12)), "{text}");
        }
        assert_eq!("p-7".parse::<PledgeRef>(), Ok(PledgeRef(7)));
    }

    #[test]
    fn wrong_ids_are_refused_with_the_expected_form() {
        for text in ["", "E-", "E-0", "E--1", "P-3", "E-1x", "E-99999999999999", "Ē-1"] {
            let err = text.parse::<ExperimentRef>().unwrap_err();
            assert!(err.to_string().contains("E-12"), "{text}: {err}");
        }
        assert!("E-4".parse::<PledgeRef>().unwrap_err().to_string().contains("P-7"));
    }
}
