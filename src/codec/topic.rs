//! Topic names (what PUBLISH carries) versus topic filters (what SUBSCRIBE
//! carries): wildcard placement and shared subscriptions.

use super::Version;
use serde::Serialize;
use std::fmt;

/// What is wrong with a topic name or filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum TopicProblem {
    /// Zero length.
    Empty,
    /// A topic name contains `+` or `#`.
    Wildcard,
    /// `#` is not the last character, or does not follow `/`.
    MisplacedHash,
    /// `+` shares its level with other characters.
    PartialPlus,
    /// `$share/` is followed by an empty share name or one with a wildcard.
    InvalidShareName,
    /// `$share/{name}` is not followed by `/` and a topic filter.
    SharedWithoutFilter,
}

impl fmt::Display for TopicProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TopicProblem::Empty => "is empty",
            TopicProblem::Wildcard => "contains a wildcard ('+' or '#')",
            TopicProblem::MisplacedHash => "has '#' somewhere other than alone in the last level",
            TopicProblem::PartialPlus => "has '+' sharing a level with other characters",
            TopicProblem::InvalidShareName => {
                "is a shared subscription whose share name is empty or contains a wildcard"
            }
            TopicProblem::SharedWithoutFilter => {
                "is a shared subscription without a topic filter after the share name"
            }
        })
    }
}

impl TopicProblem {
    /// The normative statement broken, in `version`.
    pub fn spec(self, version: Version, in_filter: bool) -> &'static str {
        match (self, version) {
            (TopicProblem::Empty, _) => "MQTT-4.7.3-1",
            (TopicProblem::Wildcard, _) if in_filter => "MQTT-4.7.1-1",
            (TopicProblem::Wildcard, _) => "MQTT-3.3.2-2",
            (TopicProblem::MisplacedHash, Version::V311) => "MQTT-4.7.1-2",
            (TopicProblem::MisplacedHash, Version::V5) => "MQTT-4.7.1-1",
            (TopicProblem::PartialPlus, Version::V311) => "MQTT-4.7.1-3",
            (TopicProblem::PartialPlus, Version::V5) => "MQTT-4.7.1-2",
            (TopicProblem::InvalidShareName, _) => "MQTT-4.8.2-1",
            (TopicProblem::SharedWithoutFilter, _) => "MQTT-4.8.2-2",
        }
    }
}

/// The fields that hold a topic name. They share the rules (non-empty, no
/// wildcards) but a wildcard breaks a different statement in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameField {
    /// PUBLISH's Topic Name [MQTT-3.3.2-2].
    Publish,
    /// CONNECT's Will Topic: §3.1.3.3 numbers no wildcard rule of its own,
    /// so the general one for topic names applies [MQTT-4.7.0-1].
    WillTopic,
    /// The Response Topic of a PUBLISH or a Will [MQTT-3.3.2-14].
    ResponseTopic,
}

impl NameField {
    /// The statement `problem` in this field breaks, in `version`.
    pub(crate) fn spec(self, problem: TopicProblem, version: Version) -> &'static str {
        match (problem, self) {
            (TopicProblem::Wildcard, NameField::Publish) => "MQTT-3.3.2-2",
            (TopicProblem::Wildcard, NameField::WillTopic) => "MQTT-4.7.0-1",
            (TopicProblem::Wildcard, NameField::ResponseTopic) => "MQTT-3.3.2-14",
            _ => problem.spec(version, false),
        }
    }
}

/// Checks a topic name: non-empty, no wildcards.
pub fn check_topic_name(name: &str) -> Result<(), TopicProblem> {
    if name.is_empty() {
        return Err(TopicProblem::Empty);
    }
    if memchr::memchr2(b'+', b'#', name.as_bytes()).is_some() {
        return Err(TopicProblem::Wildcard);
    }
    Ok(())
}

/// The prefix that makes a filter a shared subscription (MQTT 5).
pub const SHARE_PREFIX: &str = "$share/";

/// True if `filter` is an MQTT 5 shared subscription.
pub fn is_shared(filter: &str) -> bool {
    filter.starts_with(SHARE_PREFIX)
}

/// Checks a topic filter: non-empty, `#` alone in the last level, `+` alone
/// in its level; in MQTT 5 also the `$share/{name}/{filter}` form.
pub fn check_topic_filter(filter: &str, version: Version) -> Result<(), TopicProblem> {
    let plain = match (version, filter.strip_prefix(SHARE_PREFIX)) {
        (Version::V5, Some(rest)) => {
            let (name, inner) = rest
                .split_once('/')
                .ok_or(TopicProblem::SharedWithoutFilter)?;
            if name.is_empty() || name.contains(['+', '#']) {
                return Err(TopicProblem::InvalidShareName);
            }
            if inner.is_empty() {
                return Err(TopicProblem::SharedWithoutFilter);
            }
            inner
        }
        _ => filter,
    };
    if plain.is_empty() {
        return Err(TopicProblem::Empty);
    }
    let mut levels = plain.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicProblem::MisplacedHash);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicProblem::PartialPlus);
        }
    }
    Ok(())
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        for ok in [
            "#",
            "+",
            "a/+/b",
            "a/#",
            "+/+",
            "/",
            "a//b",
            "sport/tennis/+",
            "$SYS/#",
        ] {
            assert_eq!(check_topic_filter(ok, Version::V311), Ok(()), "{ok}");
        }
        assert_eq!(
            check_topic_filter("a/#/b", Version::V5),
            Err(TopicProblem::MisplacedHash)
        );
        assert_eq!(
            check_topic_filter("a#", Version::V5),
            Err(TopicProblem::MisplacedHash)
        );
        assert_eq!(
            check_topic_filter("a+/b", Version::V5),
            Err(TopicProblem::PartialPlus)
        );
        assert_eq!(
            check_topic_filter("", Version::V5),
            Err(TopicProblem::Empty)
        );
        assert_eq!(check_topic_filter("$share/g/a/+", Version::V5), Ok(()));
        assert_eq!(
            check_topic_filter("$share//a", Version::V5),
            Err(TopicProblem::InvalidShareName)
        );
        assert_eq!(
            check_topic_filter("$share/g+/a", Version::V5),
            Err(TopicProblem::InvalidShareName)
        );
        assert_eq!(
            check_topic_filter("$share/g", Version::V5),
            Err(TopicProblem::SharedWithoutFilter)
        );
        assert_eq!(
            check_topic_filter("$share/g/", Version::V5),
            Err(TopicProblem::SharedWithoutFilter)
        );
        // 3.1.1 has no shared subscriptions: an ordinary filter.
        assert_eq!(check_topic_filter("$share/g", Version::V311), Ok(()));
    }

    #[test]
    fn names() {
        assert_eq!(check_topic_name("a/b"), Ok(()));
        assert_eq!(check_topic_name("a/+"), Err(TopicProblem::Wildcard));
        assert_eq!(check_topic_name(""), Err(TopicProblem::Empty));
    }
}
