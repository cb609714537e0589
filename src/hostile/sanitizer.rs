//! Sanitizer reports in a peer's output, quoted whole and parsed into
//! [`Finding`]s.
//!
//! AddressSanitizer, LeakSanitizer, ThreadSanitizer and
//! UndefinedBehaviorSanitizer print a report per error: a first line that
//! names the tool and the bug, the stacks that explain it (for a use after
//! free: the use, where it was freed, where it was allocated), and a
//! `SUMMARY:` line. The part that says *which* bug it is sits in the
//! stacks, so a report is always quoted from its first line to its
//! `SUMMARY:` line (the shadow-byte map after it is left out), and its
//! stacks are parsed frame by frame to build the finding's signature. Our
//! own client's ledger plays the sanitizer's part for it (`mqtls: ledger
//! violation:` lines).

use super::finding::{
    Access, Finding, FindingKind, Frame, FrameFilter, Signature, Stack, StackRole,
};

/// How many significant frames of each stack go into a signature: the
/// function that made the mistake and its caller.
pub const SIGNATURE_FRAMES: usize = 2;

/// Longest report kept, in lines (a report never seen to end is cut here).
const MAX_REPORT_LINES: usize = 2000;

/// Report openers of the tools whose reports end with a `SUMMARY:` line.
const OPENERS: [(&str, &str); 6] = [
    ("ERROR: AddressSanitizer:", "AddressSanitizer"),
    ("ERROR: LeakSanitizer:", "LeakSanitizer"),
    ("ERROR: HWAddressSanitizer:", "HWAddressSanitizer"),
    ("ERROR: MemorySanitizer:", "MemorySanitizer"),
    ("WARNING: ThreadSanitizer:", "ThreadSanitizer"),
    ("WARNING: MemorySanitizer:", "MemorySanitizer"),
];

/// UndefinedBehaviorSanitizer's marker: `file:line:col: runtime error: ...`.
const UBSAN: &str = ": runtime error: ";

/// Our own client's ledger, printed by `mqtls sub` and `mqtls pub`.
const LEDGER: &str = "mqtls: ledger violation:";

/// Every report in `text`, in order, each as one or more findings (a
/// LeakSanitizer report holds one finding per leaked allocation).
pub fn findings(text: &str, filter: &FrameFilter) -> Vec<Finding> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(line) = lines.get(i).copied() {
        if let Some((_, tool)) = OPENERS.iter().find(|(m, _)| line.contains(m)) {
            let end = block_end(&lines, i);
            let block = lines.get(i..end).unwrap_or_default();
            if *tool == "LeakSanitizer" {
                out.extend(leaks(block, filter));
            } else {
                out.push(error_report(tool, block, filter));
            }
            i = end;
        } else if line.contains(UBSAN) {
            let end = ubsan_end(&lines, i);
            out.push(ubsan(lines.get(i..end).unwrap_or_default(), filter));
            i = end;
        } else if let Some(at) = line.find(LEDGER) {
            out.push(ledger(line.get(at..).unwrap_or(line)));
            i += 1;
        } else {
            i += 1;
        }
    }
    out
}

/// True when `text` holds a report the tools above would print.
pub fn has_report(text: &str) -> bool {
    text.lines().any(|l| {
        OPENERS.iter().any(|(m, _)| l.contains(m)) || l.contains(UBSAN) || l.contains(LEDGER)
    })
}

/// One past the `SUMMARY:` line that ends the report starting at `start`.
fn block_end(lines: &[&str], start: usize) -> usize {
    let last = (start + MAX_REPORT_LINES).min(lines.len());
    (start + 1..last)
        .find(|&j| {
            lines
                .get(j)
                .is_some_and(|l| strip_pid(l).starts_with("SUMMARY: "))
        })
        .map_or(last, |j| j + 1)
}

/// A UBSan report: its line, the stack under it (with `print_stacktrace=1`)
/// and the `SUMMARY:` line right after, if any.
fn ubsan_end(lines: &[&str], start: usize) -> usize {
    let mut j = start + 1;
    while let Some(l) = lines.get(j) {
        if parse_frame(l).is_some() || l.trim().is_empty() && j < start + MAX_REPORT_LINES {
            j += 1;
            continue;
        }
        if strip_pid(l).starts_with("SUMMARY: UndefinedBehaviorSanitizer") {
            return j + 1;
        }
        break;
    }
    // Trailing blank lines belong to whatever comes next.
    while j > start + 1 && lines.get(j - 1).is_some_and(|l| l.trim().is_empty()) {
        j -= 1;
    }
    j
}

/// `==123==SUMMARY: ...` and `SUMMARY: ...` alike.
fn strip_pid(line: &str) -> &str {
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix("==")
        && let Some(end) = rest.find("==")
    {
        return rest.get(end + 2..).unwrap_or(rest);
    }
    t
}

/// Parses a stack frame line: `#3 0x55f5a914e12d in nng_mqtt_subscribe
/// /src/mqtt_public.c:986`, `#2 0x7f.. in __libc_start_main
/// (/lib/libc.so.6+0x271ca) (BuildId: ..)` or `#0 0x4a2 (/bin/x+0x4a2)`.
pub fn parse_frame(line: &str) -> Option<Frame> {
    let t = line.trim_start();
    let rest = t.strip_prefix('#')?;
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    if digits == 0 {
        return None;
    }
    let rest = rest.get(digits..)?.trim_start();
    let rest = rest.strip_prefix("0x")?;
    let hex = rest
        .find(|c: char| !c.is_ascii_hexdigit())
        .unwrap_or(rest.len());
    let mut rest = rest.get(hex..)?.trim();
    if let Some(b) = rest.find(" (BuildId:") {
        rest = rest.get(..b)?.trim_end();
    }
    let Some(body) = rest.strip_prefix("in ") else {
        return Some(Frame {
            function: "??".into(),
            location: None,
            module: Some(rest.trim_matches(|c| c == '(' || c == ')').to_owned())
                .filter(|m| !m.is_empty()),
        });
    };
    if body.ends_with(')')
        && let Some(open) = body.rfind(" (")
    {
        return Some(Frame {
            function: body.get(..open)?.trim().to_owned(),
            location: None,
            module: Some(body.get(open + 2..body.len() - 1)?.to_owned()),
        });
    }
    match body.rsplit_once(' ') {
        Some((function, loc)) if loc.contains(':') || loc.contains('/') => Some(Frame {
            function: function.trim().to_owned(),
            location: Some(loc.to_owned()),
            module: None,
        }),
        _ => Some(Frame {
            function: body.to_owned(),
            location: None,
            module: None,
        }),
    }
}

/// The stacks of a report: each run of frame lines, headed by the last
/// non-empty line above it. The first stack is the access unless its
/// heading says otherwise.
fn stacks(block: &[&str]) -> Vec<Stack> {
    let mut out: Vec<Stack> = Vec::new();
    let mut heading = String::new();
    let mut current: Option<Stack> = None;
    for line in block {
        match parse_frame(line) {
            Some(frame) => {
                let stack = current.get_or_insert_with(|| Stack {
                    role: role_of(&heading, out.is_empty()),
                    heading: heading.clone(),
                    frames: Vec::new(),
                });
                stack.frames.push(frame);
            }
            None => {
                if let Some(done) = current.take() {
                    out.push(done);
                }
                if !line.trim().is_empty() {
                    heading = strip_pid(line).trim().to_owned();
                }
            }
        }
    }
    out.extend(current);
    out
}

fn role_of(heading: &str, first: bool) -> StackRole {
    let h = heading.to_ascii_lowercase();
    if h.contains("freed by") {
        StackRole::Freed
    } else if h.contains("allocated by") || h.contains("allocated from") || h.contains("heap block")
    {
        StackRole::Allocated
    } else if h.contains("created by") {
        StackRole::Thread
    } else if first {
        StackRole::Access
    } else {
        StackRole::Other
    }
}

/// The bug type of a `SUMMARY: Tool: bug-type /path:1 in f` line: the
/// words before the first path or location, joined by `-`.
fn summary_bug_type(summary: &str) -> Option<String> {
    let rest = strip_pid(summary).strip_prefix("SUMMARY: ")?;
    let rest = rest.split_once(": ").map_or(rest, |(_, r)| r);
    let words: Vec<&str> = rest
        .split_whitespace()
        .take_while(|w| !w.contains('/') && !w.contains(':') && !w.starts_with('(') && *w != "in")
        .collect();
    (!words.is_empty()).then(|| words.join("-"))
}

/// The access line `WRITE of size 4 at 0x.. thread T9`.
fn access(block: &[&str]) -> Option<Access> {
    block.iter().find_map(|l| {
        let t = strip_pid(l).trim();
        let (kind, rest) = t.split_once(" of size ")?;
        if kind != "READ" && kind != "WRITE" {
            return None;
        }
        let size = rest.split_whitespace().next()?.parse().ok()?;
        Some(Access {
            kind: kind.to_owned(),
            size,
        })
    })
}

/// An AddressSanitizer (or ThreadSanitizer, MemorySanitizer) error report.
fn error_report(tool: &str, block: &[&str], filter: &FrameFilter) -> Finding {
    let first = block.first().copied().unwrap_or_default();
    let description = first
        .split_once(&format!("{tool}: "))
        .map_or(first, |(_, d)| d)
        .trim();
    let bug_type = block
        .last()
        .and_then(|l| summary_bug_type(l))
        .unwrap_or_else(|| {
            description
                .trim_start_matches("attempting ")
                .split_whitespace()
                .next()
                .unwrap_or("error")
                .to_owned()
        });
    let stacks = stacks(block.get(1..).unwrap_or_default());
    let access = access(block);
    let top = |role| {
        stacks
            .iter()
            .find(|s| s.role == role)
            .map(|s| filter.top(&s.frames, SIGNATURE_FRAMES))
            .unwrap_or_default()
    };
    let signature = Signature::from_parts(
        FindingKind::Sanitizer,
        &bug_type,
        &[
            ("access", top(StackRole::Access)),
            ("freed", top(StackRole::Freed)),
        ],
    );
    let place = |role, verb: &str| {
        stacks
            .iter()
            .find(|s| s.role == role)
            .and_then(|s| filter.first(&s.frames))
            .map(|f| format!("{verb} {}", f.short()))
    };
    let mut title = bug_type.clone();
    if let Some(a) = &access {
        title.push_str(&format!(" ({} of size {})", a.kind, a.size));
    }
    let places: Vec<String> = [
        place(StackRole::Access, "in"),
        place(StackRole::Freed, "freed in"),
        place(StackRole::Allocated, "allocated in"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !places.is_empty() {
        title.push(' ');
        title.push_str(&places.join(", "));
    }
    Finding {
        kind: FindingKind::Sanitizer,
        signature,
        title,
        tool: Some(tool.to_owned()),
        bug_type,
        access,
        stacks,
        rule: None,
        report: block.join("\n"),
    }
}

/// A LeakSanitizer report: one finding per direct leak (indirect leaks
/// only when there is no direct one: they are what a direct leak holds).
fn leaks(block: &[&str], filter: &FrameFilter) -> Vec<Finding> {
    let first = block.first().copied().unwrap_or_default();
    let summary = block
        .last()
        .copied()
        .filter(|l| strip_pid(l).starts_with("SUMMARY: "))
        .unwrap_or_default();
    let all: Vec<(String, Stack)> = stacks(block.get(1..).unwrap_or_default())
        .into_iter()
        .filter(|s| s.heading.contains(" leak of "))
        .map(|mut s| {
            s.role = StackRole::Allocated;
            let direct = if s.heading.starts_with("Direct") {
                "direct-leak"
            } else {
                "indirect-leak"
            };
            (direct.to_owned(), s)
        })
        .collect();
    let any_direct = all.iter().any(|(t, _)| t == "direct-leak");
    all.into_iter()
        .filter(|(t, _)| !any_direct || t == "direct-leak")
        .map(|(bug_type, stack)| {
            let top = filter.top(&stack.frames, SIGNATURE_FRAMES);
            let signature =
                Signature::from_parts(FindingKind::Leak, &bug_type, &[("allocated", top)]);
            let what = stack
                .heading
                .trim_end_matches(':')
                .trim_end_matches(" allocated from")
                .to_owned();
            let title = match filter.first(&stack.frames) {
                Some(f) => format!("{what}, allocated in {}", f.short()),
                None => what,
            };
            let mut quote = vec![first.to_owned(), String::new(), stack.heading.clone()];
            quote.extend(frame_lines(block, &stack.heading));
            if !summary.is_empty() {
                quote.push(String::new());
                quote.push(summary.to_owned());
            }
            Finding {
                kind: FindingKind::Leak,
                signature,
                title,
                tool: Some("LeakSanitizer".to_owned()),
                bug_type,
                access: None,
                stacks: vec![stack],
                rule: None,
                report: quote.join("\n"),
            }
        })
        .collect()
}

/// The frame lines under the line `heading` of `block`, as printed.
fn frame_lines(block: &[&str], heading: &str) -> Vec<String> {
    block
        .iter()
        .skip_while(|l| strip_pid(l).trim() != heading)
        .skip(1)
        .take_while(|l| parse_frame(l).is_some())
        .map(|l| (*l).to_owned())
        .collect()
}

/// The UBSan check named by a `runtime error:` message.
fn ubsan_check(message: &str) -> String {
    const CHECKS: [(&str, &str); 14] = [
        ("passed as argument", "nonnull-attribute"),
        ("misaligned address", "alignment"),
        ("signed integer overflow", "signed-integer-overflow"),
        ("unsigned integer overflow", "unsigned-integer-overflow"),
        ("shift exponent", "shift"),
        ("left shift of", "shift"),
        ("out of bounds for type", "bounds"),
        ("null pointer", "null"),
        ("division by zero", "integer-divide-by-zero"),
        ("not a valid value for type", "invalid-value"),
        ("applying non-zero offset", "pointer-overflow"),
        ("pointer index expression", "pointer-overflow"),
        ("incorrect function type", "function"),
        (
            "is outside the range of representable values",
            "float-cast-overflow",
        ),
    ];
    CHECKS
        .iter()
        .find(|(m, _)| message.contains(m))
        .map_or_else(
            || {
                message
                    .split_whitespace()
                    .take(4)
                    .collect::<Vec<_>>()
                    .join("-")
            },
            |(_, c)| (*c).to_owned(),
        )
}

/// An UndefinedBehaviorSanitizer report.
fn ubsan(block: &[&str], filter: &FrameFilter) -> Finding {
    let first = block.first().copied().unwrap_or_default();
    let (location, message) = first
        .split_once(UBSAN)
        .map_or(("", first), |(l, m)| (l.trim(), m.trim()));
    let check = ubsan_check(message);
    let stacks: Vec<Stack> = stacks(block.get(1..).unwrap_or_default())
        .into_iter()
        .map(|mut s| {
            s.role = StackRole::Access;
            s.heading = first.trim().to_owned();
            s
        })
        .take(1)
        .collect();
    let at = match stacks.first() {
        Some(s) => filter.top(&s.frames, SIGNATURE_FRAMES),
        // Without print_stacktrace=1 the file is all there is.
        None => vec![
            location
                .rsplit('/')
                .next()
                .unwrap_or(location)
                .split(':')
                .next()
                .unwrap_or_default()
                .to_owned(),
        ],
    };
    let signature = Signature::from_parts(FindingKind::Sanitizer, &check, &[("at", at)]);
    let place = stacks
        .first()
        .and_then(|s| filter.first(&s.frames))
        .map_or_else(
            || location.rsplit('/').next().unwrap_or(location).to_owned(),
            Frame::short,
        );
    Finding {
        kind: FindingKind::Sanitizer,
        signature,
        title: format!("undefined behaviour ({check}) in {place}: {message}"),
        tool: Some("UndefinedBehaviorSanitizer".to_owned()),
        bug_type: check,
        access: None,
        stacks,
        rule: None,
        report: block.join("\n"),
    }
}

/// A violation our own client's ledger reported.
fn ledger(line: &str) -> Finding {
    let diagnosis = line.trim_start_matches(LEDGER).trim();
    let kind = diagnosis
        .split(|c: char| c == ':' || c.is_whitespace())
        .next()
        .unwrap_or("violation")
        .to_owned();
    // Handle numbers (`msg #5`) change from run to run; the rest is the bug.
    let stable: String = diagnosis
        .split_whitespace()
        .filter(|w| !w.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    let mut f = Finding::plain(FindingKind::Sanitizer, kind, diagnosis, line.trim());
    f.tool = Some("mqtls ledger".to_owned());
    f.signature = Signature::new(format!("SANITIZER ledger | {stable}"));
    f
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    /// The report of NanoMQ issue 1766 as the buggy nanomq_cli prints it
    /// (NanoNNG 87253717b, close-before-suback; paths shortened).
    pub(crate) const ASAN_1766: &str = "\
/src/nng/src/core/strs.c:43:15: runtime error: null pointer passed as argument 1, which is declared to never be null
=================================================================
==19835==ERROR: AddressSanitizer: heap-use-after-free on address 0x60f00001073c at pc 0x55f5a90ea415 bp 0x7fc100df6860 sp 0x7fc100df6858
WRITE of size 4 at 0x60f00001073c thread T9
    #0 0x55f5a90ea414 in nni_atomic_dec_nv /src/nng/src/platform/posix/posix_atomic.c:120
    #1 0x55f5a90ba736 in nni_msg_free /src/nng/src/core/message.c:457
    #2 0x55f5a9094250 in nng_msg_free /src/nng/src/nng.c:1522
    #3 0x55f5a914e12d in nng_mqtt_subscribe /src/nng/src/supplemental/mqtt/mqtt_public.c:986
    #4 0x55f5a906b787 in connect_cb /src/nanomq_cli/client.c:1433
    #5 0x55f5a90dcd82 in nni_taskq_thread /src/nng/src/core/taskq.c:50
    #6 0x7fc106ea71f4 in start_thread nptl/pthread_create.c:442

0x60f00001073c is located 124 bytes inside of 168-byte region [0x60f0000106c0,0x60f000010768)
freed by thread T7 here:
    #0 0x7fc1078b76a8 in __interceptor_free ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:52
    #1 0x55f5a90e9103 in nni_free /src/nng/src/platform/posix/posix_alloc.c:33
    #2 0x55f5a90ba9ec in nni_msg_free /src/nng/src/core/message.c:465
    #3 0x55f5a92944cf in mqtts_tcptran_pipe_send_cb /src/nng/src/mqtt/transport/tls/mqtt_tls.c:515
    #4 0x55f5a90dcd82 in nni_taskq_thread /src/nng/src/core/taskq.c:50

previously allocated by thread T9 here:
    #0 0x7fc1078b83b7 in __interceptor_calloc ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:77
    #1 0x55f5a90e90de in nni_zalloc /src/nng/src/platform/posix/posix_alloc.c:26
    #2 0x55f5a90b9afe in nni_msg_alloc /src/nng/src/core/message.c:387
    #3 0x55f5a917aedd in nni_mqtt_msg_alloc /src/nng/src/supplemental/mqtt/mqtt_msg.c:60
    #4 0x55f5a914df14 in nng_mqtt_subscribe /src/nng/src/supplemental/mqtt/mqtt_public.c:966

Thread T9 created by T0 here:
    #0 0x7fc107849726 in __interceptor_pthread_create ../../../../src/libsanitizer/asan/asan_interceptors.cpp:207
    #1 0x55f5a90ef1c6 in nni_plat_thr_init /src/nng/src/platform/posix/posix_thread.c:279

SUMMARY: AddressSanitizer: heap-use-after-free /src/nng/src/platform/posix/posix_atomic.c:120 in nni_atomic_dec_nv
Shadow bytes around the buggy address:
  0x0c1e7fffa090: fd fd fd fa fa fa fa fa fa fa fa fa fd fd fd fd
==19835==ABORTING
";

    /// The aio leak of the first fix (NanoNNG c3b043d84), reported on SIGTERM.
    const LSAN_AIO: &str = "\
mqtls lsan_on_signal: signal 15: running LeakSanitizer

=================================================================
==13747==ERROR: LeakSanitizer: detected memory leaks

Direct leak of 456 byte(s) in 1 object(s) allocated from:
    #0 0x7faa994b83b7 in __interceptor_calloc ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:77
    #1 0x56368c96b0de in nni_zalloc /src/nng/src/platform/posix/posix_alloc.c:26
    #2 0x56368c91cbbc in nni_aio_alloc /src/nng/src/core/aio.c:149
    #3 0x56368c91a7b5 in nng_aio_alloc /src/nng/src/nng.c:1935
    #4 0x56368c9cfff5 in nng_mqtt_subscribe /src/nng/src/supplemental/mqtt/mqtt_public.c:977
    #5 0x56368c8ed787 in connect_cb /src/nanomq_cli/client.c:1433

Indirect leak of 24 byte(s) in 1 object(s) allocated from:
    #0 0x7faa994b83b7 in __interceptor_calloc ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:77
    #1 0x56368c96b0de in nni_zalloc /src/nng/src/platform/posix/posix_alloc.c:26
    #2 0x56368c91cbbc in nni_thing_init /src/nng/src/core/aio.c:150

SUMMARY: AddressSanitizer: 480 byte(s) leaked in 2 allocation(s).
";

    fn one(text: &str) -> Finding {
        let all = findings(text, &FrameFilter::default());
        assert_eq!(all.len(), 1, "{all:#?}");
        all.into_iter().next().unwrap()
    }

    #[test]
    fn the_1766_report_is_quoted_whole_and_parsed() {
        let all = findings(ASAN_1766, &FrameFilter::default());
        assert_eq!(all.len(), 2, "{all:#?}");
        let f = &all[1];
        assert_eq!(f.kind, FindingKind::Sanitizer);
        assert_eq!(f.tool.as_deref(), Some("AddressSanitizer"));
        assert_eq!(f.bug_type, "heap-use-after-free");
        assert_eq!(
            f.access,
            Some(Access {
                kind: "WRITE".into(),
                size: 4
            })
        );
        assert!(f.report.starts_with("==19835==ERROR: AddressSanitizer"));
        assert!(f.report.ends_with("in nni_atomic_dec_nv"), "{}", f.report);
        assert!(f.report.contains("previously allocated by thread T9 here:"));
        assert!(!f.report.contains("Shadow bytes"));
        let roles: Vec<StackRole> = f.stacks.iter().map(|s| s.role).collect();
        assert_eq!(
            roles,
            [
                StackRole::Access,
                StackRole::Freed,
                StackRole::Allocated,
                StackRole::Thread
            ]
        );
        assert_eq!(
            f.signature.text,
            "SANITIZER heap-use-after-free | access: nng_mqtt_subscribe > connect_cb | freed: mqtts_tcptran_pipe_send_cb > nni_taskq_thread"
        );
        assert_eq!(
            f.title,
            "heap-use-after-free (WRITE of size 4) in nng_mqtt_subscribe mqtt_public.c:986, freed in mqtts_tcptran_pipe_send_cb mqtt_tls.c:515, allocated in nng_mqtt_subscribe mqtt_public.c:966"
        );
        assert_eq!(all[0].tool.as_deref(), Some("UndefinedBehaviorSanitizer"));
        assert_eq!(all[0].bug_type, "nonnull-attribute");
    }

    #[test]
    fn the_same_bug_keeps_its_signature_when_addresses_and_lines_move() {
        let moved = ASAN_1766
            .replace("0x55f5a9", "0x5600aa")
            .replace("mqtt_public.c:986", "mqtt_public.c:990")
            .replace("thread T9", "thread T4")
            .replace("==19835==", "==4242==");
        let a = findings(ASAN_1766, &FrameFilter::default());
        let b = findings(&moved, &FrameFilter::default());
        assert_eq!(a[1].signature, b[1].signature);
    }

    #[test]
    fn each_direct_leak_is_a_finding_with_its_allocation_stack() {
        let f = one(LSAN_AIO);
        assert_eq!(f.kind, FindingKind::Leak);
        assert_eq!(f.bug_type, "direct-leak");
        assert_eq!(
            f.signature.text,
            "LEAK direct-leak | allocated: nng_mqtt_subscribe > connect_cb"
        );
        assert_eq!(
            f.title,
            "Direct leak of 456 byte(s) in 1 object(s), allocated in nng_mqtt_subscribe mqtt_public.c:977"
        );
        assert!(
            f.report.contains("#5 0x56368c8ed787 in connect_cb"),
            "{}",
            f.report
        );
        assert!(!f.report.contains("Indirect"), "{}", f.report);
        assert!(
            f.report.ends_with("leaked in 2 allocation(s)."),
            "{}",
            f.report
        );
    }

    #[test]
    fn frames_of_every_shape_parse() {
        let f = parse_frame("    #2 0x7f0 in __libc_start_main (/lib/x86_64-linux-gnu/libc.so.6+0x271ca) (BuildId: ab12)").unwrap();
        assert_eq!(f.function, "__libc_start_main");
        assert_eq!(
            f.module.as_deref(),
            Some("/lib/x86_64-linux-gnu/libc.so.6+0x271ca")
        );
        let f = parse_frame("#0 0x4a2 (/bin/x+0x4a2)").unwrap();
        assert_eq!(f.function, "??");
        let f = parse_frame("    #1 0x5 in operator delete(void*) /src/x.cc:3:7").unwrap();
        assert_eq!(f.function, "operator delete(void*)");
        assert_eq!(f.location.as_deref(), Some("/src/x.cc:3:7"));
        assert!(parse_frame("#include <x.h>").is_none());
        assert!(parse_frame("    # 0x12 in f a.c:1").is_none());
    }

    #[test]
    fn double_free_and_ubsan_and_tsan_and_the_ledger() {
        let df = one(
            "==1==ERROR: AddressSanitizer: attempting double-free on 0x602 in thread T1:\n    #0 0x1 in free x.c:1\n    #1 0x2 in nni_mqtt_msg_decode_subscribe /n/mqtt_codec.c:3100\n    #2 0x3 in decode_cb /n/a.c:9\nfreed by thread T1 here:\n    #0 0x1 in free x.c:1\n    #1 0x4 in nni_msg_free /n/m.c:4\n    #2 0x5 in nni_mqtt_msg_decode_subscribe /n/mqtt_codec.c:3090\nSUMMARY: AddressSanitizer: double-free x.c:1 in free\n",
        );
        assert_eq!(df.bug_type, "double-free");
        assert_eq!(
            df.signature.text,
            "SANITIZER double-free | access: nni_mqtt_msg_decode_subscribe > decode_cb | freed: nni_mqtt_msg_decode_subscribe"
        );
        let ub = one(
            "/a/b/strs.c:43:15: runtime error: null pointer passed as argument 1, which is declared to never be null\n    #0 0x1 in nni_strndup /a/b/strs.c:43\n    #1 0x2 in nng_url_parse /a/b/url.c:7\n    #2 0x3 in main /a/m.c:1\nSUMMARY: UndefinedBehaviorSanitizer: undefined-behavior /a/b/strs.c:43:15 in \nafter\n",
        );
        assert_eq!(
            ub.signature.text,
            "SANITIZER nonnull-attribute | at: nng_url_parse > main"
        );
        assert!(ub.report.ends_with("strs.c:43:15 in "), "{}", ub.report);
        let bare =
            one("x.c:9:1: runtime error: signed integer overflow: 2147483647 + 1\nnext line\n");
        assert_eq!(
            bare.signature.text,
            "SANITIZER signed-integer-overflow | at: x.c"
        );
        let tsan = one(
            "WARNING: ThreadSanitizer: data race (pid=9)\n  Write of size 4 at 0x7b by thread T1:\n    #0 0x1 in bump /t/r.c:5\n  Previous read of size 4 at 0x7b by main thread:\n    #0 0x2 in peek /t/r.c:9\nSUMMARY: ThreadSanitizer: data race /t/r.c:5 in bump\n",
        );
        assert_eq!(tsan.bug_type, "data-race");
        assert_eq!(tsan.signature.text, "SANITIZER data-race | access: bump");
        let l = one("mqtls: ledger violation: DoubleRelease: msg #5 SUBSCRIBE, freed by `w`\n");
        assert_eq!(l.bug_type, "DoubleRelease");
        assert_eq!(
            l.signature.text,
            "SANITIZER ledger | DoubleRelease: msg SUBSCRIBE, freed by `w`"
        );
        assert!(findings("no report here\n", &FrameFilter::default()).is_empty());
        assert!(has_report(ASAN_1766) && !has_report("fine"));
    }
}
