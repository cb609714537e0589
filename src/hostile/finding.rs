//! Findings about a peer under test: what kind, a stable signature, and the
//! evidence.
//!
//! Every way of looking at someone else's code ends in a [`Finding`]: a
//! sanitizer report on the client's or broker's stderr, a protocol rule the
//! peer broke, a client that is stuck or crashed (and, through a link-time
//! shim, a ledger violation made in C). Its [`Signature`] names the bug, not
//! the run: the same bug reached by several scenarios, repeats or builds has
//! the same signature, so reports count it once, and comparing two reports
//! says which bugs are new and which are fixed.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// What a finding is. Every kind is something a correct peer never does,
/// whatever it is sent: a finding makes the run's exit status non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FindingKind {
    /// A sanitizer (AddressSanitizer, UndefinedBehaviorSanitizer,
    /// ThreadSanitizer) or our own ledger reported an error.
    Sanitizer,
    /// LeakSanitizer reported memory that nothing references any more.
    Leak,
    /// The peer broke a normative statement of the MQTT specification.
    Protocol,
    /// The client neither recovered nor gave up within the time limit: a
    /// waiter that never wakes (the nanonng-1578 class).
    Stuck,
    /// The peer died of a signal it did not ask for, with no sanitizer
    /// report to explain it.
    Crash,
}

impl FindingKind {
    /// The label of tables and summaries.
    pub fn label(self) -> &'static str {
        match self {
            FindingKind::Sanitizer => "SANITIZER",
            FindingKind::Leak => "LEAK",
            FindingKind::Protocol => "PROTOCOL",
            FindingKind::Stuck => "STUCK",
            FindingKind::Crash => "CRASH",
        }
    }

    /// True for what memory tools report (sanitizer errors and leaks), as
    /// opposed to protocol deviations and liveness.
    pub fn is_memory(self) -> bool {
        matches!(self, FindingKind::Sanitizer | FindingKind::Leak)
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// One frame of a stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The function (`nng_mqtt_subscribe`), or `??` when unsymbolised.
    pub function: String,
    /// `file:line` (or `file:line:column`) when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The binary or library and offset when there is no source location,
    /// e.g. `libc.so.6+0x271ca`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
}

impl Frame {
    /// `function file.c:12` with the file's directories left out.
    pub fn short(&self) -> String {
        match (&self.location, &self.module) {
            (Some(loc), _) => format!("{} {}", self.function, basename(loc)),
            (None, Some(m)) => format!("{} ({})", self.function, basename(m)),
            (None, None) => self.function.clone(),
        }
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Which part of a report a stack is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum StackRole {
    /// Where the bad access (or the second free, or the undefined
    /// behaviour) happened.
    Access,
    /// Where the memory was freed before.
    Freed,
    /// Where the memory was allocated (for a leak: the leaked allocation).
    Allocated,
    /// Where a thread named in the report was created.
    Thread,
    /// Any other stack a tool prints (e.g. ThreadSanitizer's previous access).
    Other,
}

/// A stack of a report, innermost frame first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    /// What the stack is.
    pub role: StackRole,
    /// The tool's own heading, e.g. `freed by thread T7 here:`.
    pub heading: String,
    /// The frames, innermost first.
    pub frames: Vec<Frame>,
}

/// The faulting access of a memory error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// `READ` or `WRITE`.
    pub kind: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A normative statement of the MQTT specification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Its identifier, e.g. `MQTT-3.8.1-1`, or the section when the
    /// statement carries no number (`MQTT 3.1.1 §3.14`).
    pub id: String,
    /// What it says, quoted or closely paraphrased.
    pub statement: String,
}

impl Rule {
    /// A rule from its identifier and statement.
    pub fn new(id: impl Into<String>, statement: impl Into<String>) -> Self {
        Rule {
            id: id.into(),
            statement: statement.into(),
        }
    }
}

/// The name of a bug, stable across runs, scenarios and builds: the
/// finding's kind, its bug type and the significant top frames of the
/// stacks that tell one bug from another (for a use after free: where it
/// was used and where it was freed; for a leak: where it was allocated).
/// Addresses, thread numbers and line numbers are left out, so the same
/// bug keeps its signature when unrelated code moves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Signature {
    /// A short hash of `text`, for tables.
    pub id: String,
    /// The signature itself, e.g.
    /// `SANITIZER heap-use-after-free | access: nng_mqtt_subscribe > connect_cb | freed: mqtts_tcptran_pipe_send_cb > nni_taskq_thread`.
    pub text: String,
}

impl Signature {
    /// The signature of `text`.
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        Signature {
            id: format!("{:012x}", fnv1a(text.as_bytes()) >> 16),
            text,
        }
    }

    /// A signature from the kind, the bug type and, per stack role named,
    /// its significant top frames.
    pub fn from_parts(kind: FindingKind, bug_type: &str, parts: &[(&str, Vec<String>)]) -> Self {
        let mut text = format!("{} {}", kind.label(), bug_type);
        for (name, frames) in parts {
            if !frames.is_empty() {
                text.push_str(&format!(" | {name}: {}", frames.join(" > ")));
            }
        }
        Signature::new(text)
    }
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// FNV-1a, 64 bits: stable across platforms and releases (unlike std's
/// hasher), which is what a signature stored in a baseline needs.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Something a correct peer never does, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What it is.
    pub kind: FindingKind,
    /// The bug's stable name.
    pub signature: Signature,
    /// One line for humans, e.g. `heap-use-after-free (WRITE of size 4) in
    /// nng_mqtt_subscribe mqtt_public.c:986, freed in
    /// mqtts_tcptran_pipe_send_cb mqtt_tls.c:515`.
    pub title: String,
    /// The tool that reported it (`AddressSanitizer`, `LeakSanitizer`,
    /// `UndefinedBehaviorSanitizer`, ...), for sanitizer findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The bug type: `heap-use-after-free`, `double-free`, `direct-leak`,
    /// the UBSan check, a rule id, `stuck`, `SIGSEGV`...
    pub bug_type: String,
    /// The faulting access, for memory errors that name one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    /// The stacks of the report (access, freed by, allocated by, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<Stack>,
    /// The rule broken, for protocol findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    /// The evidence, whole: a sanitizer report from its first line to its
    /// `SUMMARY:` line, or what the peer did.
    pub report: String,
}

impl Finding {
    /// A finding without stacks (protocol, stuck, crash).
    pub fn plain(
        kind: FindingKind,
        bug_type: impl Into<String>,
        title: impl Into<String>,
        report: impl Into<String>,
    ) -> Self {
        let bug_type = bug_type.into();
        Finding {
            kind,
            signature: Signature::from_parts(kind, &bug_type, &[]),
            title: title.into(),
            tool: None,
            bug_type,
            access: None,
            stacks: Vec::new(),
            rule: None,
            report: report.into(),
        }
    }

    /// A protocol finding: the peer broke `rule`; `what` says how.
    pub fn protocol(rule: Rule, what: impl Into<String>, evidence: impl Into<String>) -> Self {
        let what = what.into();
        let mut f = Finding::plain(
            FindingKind::Protocol,
            rule.id.clone(),
            format!("{what} (breaks {})", rule.id),
            evidence,
        );
        f.signature = Signature::new(format!("PROTOCOL {} | {what}", rule.id));
        f.rule = Some(rule);
        f
    }

    /// The first stack with `role`.
    pub fn stack(&self, role: StackRole) -> Option<&Stack> {
        self.stacks.iter().find(|s| s.role == role)
    }
}

/// Serialises findings by their signature ids only: a report lists each
/// finding once, and its runs name them.
pub fn serialize_signature_ids<S: serde::Serializer>(
    findings: &[Finding],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(findings.iter().map(|f| &f.signature.id))
}

/// One line naming `findings` by kind and bug type, each once
/// (`SANITIZER heap-use-after-free, LEAK direct-leak`), `-` when none.
pub fn summary_line(findings: &[Finding]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for f in findings {
        let name = format!("{} {}", f.kind, f.bug_type);
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    if seen.is_empty() {
        "-".to_owned()
    } else {
        seen.join(", ")
    }
}

/// Which frames a signature skips: the sanitizer runtime, libc's thread
/// start, and allocation, free and atomic wrappers (`nni_msg_free`,
/// `nng_aio_alloc`, `nni_atomic_dec_nv`), which every message bug shares and
/// which therefore tell bugs apart no better than `free` does. What is left
/// is where the program made its mistake. More patterns can be added per
/// target (`--ignore-frame`).
#[derive(Debug, Clone)]
pub struct FrameFilter {
    patterns: Vec<Regex>,
}

/// Frames of the runtime and of allocation helpers, by function name.
const DEFAULT_IGNORED: &[&str] = &[
    r"^_{2,3}(interceptor|asan|lsan|ubsan|tsan|sanitizer|msan)_",
    r"^(__)?(libc_start_main|libc_start_call_main|start_thread|clone3?|_start)$",
    r"^(operator new|operator delete)",
    r"(^|_)(malloc|calloc|realloc|zalloc|alloc|free|strdup|strndup|strfree)$",
    r"(^|_)atomic(_|$)",
];

/// Frames of the runtime, by location or module.
static RUNTIME_LOCATION: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(/libsanitizer/|/compiler-rt/|(^|/)lib(asan|ubsan|tsan|lsan|c)\.so|(^|/)nptl/|sysdeps/)",
    )
    .ok()
});

impl Default for FrameFilter {
    fn default() -> Self {
        FrameFilter {
            patterns: DEFAULT_IGNORED
                .iter()
                .filter_map(|p| Regex::new(p).ok())
                .collect(),
        }
    }
}

impl FrameFilter {
    /// The default filter plus `extra` patterns (regular expressions on the
    /// function name); a pattern that does not compile is an error naming it.
    pub fn with_extra(extra: &[String]) -> Result<Self, String> {
        let mut f = FrameFilter::default();
        for p in extra {
            f.patterns
                .push(Regex::new(p).map_err(|e| format!("--ignore-frame `{p}`: {e}"))?);
        }
        Ok(f)
    }

    /// True when `frame` says where the program made its mistake (not the
    /// runtime, not a wrapper).
    pub fn is_significant(&self, frame: &Frame) -> bool {
        let runtime = [&frame.location, &frame.module]
            .into_iter()
            .flatten()
            .any(|l| RUNTIME_LOCATION.as_ref().is_some_and(|r| r.is_match(l)));
        !runtime
            && frame.function != "??"
            && !self.patterns.iter().any(|p| p.is_match(&frame.function))
    }

    /// The names of the first `n` significant frames of `frames` (the first
    /// `n` named frames when none is significant, so that a signature never
    /// comes out empty).
    pub fn top(&self, frames: &[Frame], n: usize) -> Vec<String> {
        let significant: Vec<String> = frames
            .iter()
            .filter(|f| self.is_significant(f))
            .take(n)
            .map(|f| f.function.clone())
            .collect();
        if !significant.is_empty() {
            return significant;
        }
        frames
            .iter()
            .filter(|f| f.function != "??")
            .take(n)
            .map(|f| f.function.clone())
            .collect()
    }

    /// The first significant frame of `frames`, for titles.
    pub fn first<'a>(&self, frames: &'a [Frame]) -> Option<&'a Frame> {
        frames
            .iter()
            .find(|f| self.is_significant(f))
            .or_else(|| frames.first())
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn frame(function: &str, location: &str) -> Frame {
        Frame {
            function: function.into(),
            location: Some(location.into()),
            module: None,
        }
    }

    #[test]
    fn signatures_are_stable_hashes_of_their_text() {
        let a = Signature::new("SANITIZER double-free | access: f");
        assert_eq!(a, Signature::new("SANITIZER double-free | access: f"));
        assert_ne!(a.id, Signature::new("SANITIZER double-free | access: g").id);
        assert_eq!(a.id.len(), 12);
        // Pinned: a signature stored in a baseline must keep its id.
        assert_eq!(
            Signature::new("x").id,
            format!("{:012x}", fnv1a(b"x") >> 16)
        );
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn wrappers_and_the_runtime_are_not_significant() {
        let f = FrameFilter::default();
        for (function, location) in [
            (
                "__interceptor_free",
                "../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:52",
            ),
            ("nni_free", "nng/src/platform/posix/posix_alloc.c:33"),
            ("nni_msg_free", "nng/src/core/message.c:465"),
            ("nng_aio_alloc", "nng/src/nng.c:1935"),
            (
                "nni_atomic_dec_nv",
                "nng/src/platform/posix/posix_atomic.c:120",
            ),
            ("start_thread", "nptl/pthread_create.c:442"),
        ] {
            assert!(!f.is_significant(&frame(function, location)), "{function}");
        }
        for function in [
            "nng_mqtt_subscribe",
            "mqtts_tcptran_pipe_send_cb",
            "free_list_walk",
        ] {
            assert!(f.is_significant(&frame(function, "x.c:1")), "{function}");
        }
        let only_wrappers = [frame("nni_free", "a.c:1"), frame("nni_msg_free", "b.c:2")];
        assert_eq!(f.top(&only_wrappers, 1), vec!["nni_free".to_owned()]);
    }

    #[test]
    fn extra_patterns_extend_the_filter_and_bad_ones_are_named() {
        let f = FrameFilter::with_extra(&["^nni_mqtt_".to_owned()]).unwrap();
        assert!(!f.is_significant(&frame("nni_mqtt_msg_encode", "m.c:1")));
        let err = FrameFilter::with_extra(&["(".to_owned()]).unwrap_err();
        assert!(err.contains("--ignore-frame `(`"), "{err}");
    }
}
