//! Call sites: return addresses while the target runs, `function (file:line)`
//! in the report.
//!
//! Symbolising on every call would cost far more than the bookkeeping it
//! labels, so a call stack is only interned: each distinct stack gets a
//! placeholder label (`@17@`) that the ledger records as the event's site.
//! At report time every placeholder is resolved once, with the target's own
//! debug information (the `backtrace` crate reads it from the running
//! executable, PIE load address included), and the report's sites are
//! rewritten.

use crate::sync::{Mutex, lock};
use std::collections::HashMap;

/// Return addresses of one wrapped call, innermost first: the wrapper's
/// caller, its caller, ... (0 where the frame-pointer walk stopped). The
/// same layout as `mqtls_stack` in `c/wraps.c`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stack {
    /// Return addresses.
    pub pc: [usize; DEPTH],
}

/// Frames kept per call (`MQTLS_DEPTH` in `c/wraps.c`).
pub const DEPTH: usize = 4;

impl Stack {
    /// A stack of one frame (tests, and callers without a walk).
    pub fn at(pc: usize) -> Stack {
        let mut s = Stack { pc: [0; DEPTH] };
        s.pc[0] = pc;
        s
    }
}

/// Interned call stacks.
#[derive(Default)]
pub struct Sites {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    by_stack: HashMap<Stack, &'static str>,
    stacks: Vec<Stack>,
    /// Resolved labels by placeholder, kept for the next report: the
    /// ledger's sites are `&'static str`, and a label the process still
    /// points at is no leak to LeakSanitizer.
    labels: HashMap<&'static str, &'static str>,
}

/// One frame of a resolved call site (the report's format).
pub use mqtls_harness::report::shim::ShimFrame as Frame;

/// A resolved call site: its label and the frames behind it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The placeholder the ledger recorded.
    pub placeholder: &'static str,
    /// What the report shows instead: `function (file:line)`, with
    /// `via nng_msg_free` when the call went through a thin API wrapper.
    pub label: &'static str,
    /// The function the label names (for signatures: stable across builds,
    /// unlike line numbers).
    pub function: String,
    /// Every frame of the stack, innermost first.
    pub frames: Vec<Frame>,
}

/// How a placeholder is spelt: never a prefix of another one.
fn placeholder(index: usize) -> &'static str {
    Box::leak(format!("@{index}@").into_boxed_str())
}

impl Sites {
    /// The label for `stack`: the same `&'static str` for the same stack.
    pub fn intern(&self, stack: &Stack) -> &'static str {
        let mut t = lock(&self.table);
        if let Some(s) = t.by_stack.get(stack) {
            return s;
        }
        let label = placeholder(t.stacks.len());
        t.stacks.push(*stack);
        t.by_stack.insert(*stack, label);
        label
    }

    /// How many distinct call stacks were seen.
    pub fn len(&self) -> usize {
        lock(&self.table).stacks.len()
    }

    /// True before the first call was seen.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves the interned stacks whose placeholders appear in `texts`
    /// (sites, or details that name sites) with `resolve` (one frame's
    /// function, file and line from a return address). Resolving costs a
    /// pass over the target's debug information per new frame: only what
    /// the report shows is resolved.
    pub fn resolve_in<'t>(
        &self,
        texts: impl IntoIterator<Item = &'t str>,
        resolve: &dyn Fn(usize) -> Frame,
    ) -> Vec<Resolved> {
        let mut wanted: Vec<usize> = texts.into_iter().flat_map(placeholders_in).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let stacks: Vec<(Stack, &'static str)> = {
            let t = lock(&self.table);
            wanted
                .iter()
                .filter_map(|i| {
                    let s = t.stacks.get(*i)?;
                    Some((*s, t.by_stack.get(s).copied().unwrap_or("?")))
                })
                .collect()
        };
        let mut cache: HashMap<usize, Frame> = HashMap::new();
        let resolved: Vec<(Resolved, String)> = stacks
            .into_iter()
            .map(|(stack, placeholder)| {
                let frames: Vec<Frame> = stack
                    .pc
                    .iter()
                    .take_while(|pc| **pc != 0)
                    .map(|pc| cache.entry(*pc).or_insert_with(|| resolve(*pc)).clone())
                    .collect();
                let (label, function) = label_of(&frames);
                let r = Resolved {
                    placeholder,
                    label: "",
                    function,
                    frames,
                };
                (r, label)
            })
            .collect();
        let mut t = lock(&self.table);
        resolved
            .into_iter()
            .map(|(mut r, label)| {
                r.label = t
                    .labels
                    .entry(r.placeholder)
                    .or_insert_with(|| Box::leak(label.into_boxed_str()));
                r
            })
            .collect()
    }
}

/// True for a thin layer over a wrapped call, which says less about the
/// call site than its caller does: NanoNNG's public wrappers (`nng_msg_free`
/// is `nni_msg_free`) and the MQTT helpers that only allocate or free.
pub fn is_pass_through(f: &Frame) -> bool {
    if f.file.as_deref() == Some("nng.c") {
        return true;
    }
    let Some(name) = f.function.as_deref() else {
        return false;
    };
    let Some(rest) = name
        .strip_prefix("nng_")
        .or_else(|| name.strip_prefix("nni_"))
    else {
        return false;
    };
    let rest = rest
        .strip_prefix("mqttv5_")
        .or_else(|| rest.strip_prefix("mqtt_"))
        .unwrap_or(rest);
    matches!(
        rest,
        "msg_alloc" | "msg_free" | "msg_dup" | "msg_clone" | "msg_unique" | "msg_proto_data_alloc"
    ) || rest.starts_with("aio_")
}

fn frame_text(f: &Frame) -> String {
    let name = f.function.clone().unwrap_or_else(|| f.address.clone());
    match (&f.file, f.line) {
        (Some(file), Some(line)) => format!("{name} ({file}:{line})"),
        _ => name,
    }
}

/// The label of a stack: the first frame that is not a pass-through, and
/// the API it went through.
fn label_of(frames: &[Frame]) -> (String, String) {
    let Some(first) = frames.first() else {
        return ("unknown site".into(), "unknown".into());
    };
    let chosen = frames.iter().find(|f| !is_pass_through(f)).unwrap_or(first);
    let function = chosen
        .function
        .clone()
        .unwrap_or_else(|| chosen.address.clone());
    let mut label = frame_text(chosen);
    if !std::ptr::eq(chosen, first)
        && let Some(api) = &first.function
    {
        label.push_str(&format!(" via {api}"));
    }
    (label, function)
}

/// Resolves a return address in this process with its debug information.
/// The address is the instruction after the call; the line is the call's.
pub fn resolve_here(pc: usize) -> Frame {
    let mut frame = Frame {
        function: None,
        file: None,
        line: None,
        address: format!("{pc:#x}"),
    };
    let lookup = pc.saturating_sub(1);
    // Inlined frames come innermost first; the first is the code at the
    // address.
    backtrace::resolve(lookup as *mut std::ffi::c_void, |sym| {
        if frame.function.is_some() {
            return;
        }
        frame.function = sym.name().map(|n| n.to_string());
        frame.file = sym
            .filename()
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()));
        frame.line = sym.lineno();
    });
    frame
}

/// The indices of the placeholders (`@17@`) in `text`.
fn placeholders_in(text: &str) -> impl Iterator<Item = usize> + '_ {
    text.split('@')
        .enumerate()
        // Between two `@`: the odd pieces.
        .filter(|(i, _)| i % 2 == 1)
        .filter_map(|(_, piece)| {
            (!piece.is_empty() && piece.bytes().all(|b| b.is_ascii_digit()))
                .then(|| piece.parse().ok())
                .flatten()
        })
}

/// Rewrites every placeholder in `text` with its label.
pub fn relabel_text(text: &str, labels: &HashMap<&'static str, &'static str>) -> String {
    if !text.contains('@') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('@') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('@') {
            Some(end)
                if end > 0
                    && after[..end].bytes().all(|b| b.is_ascii_digit())
                    && labels.contains_key(&rest[start..start + end + 2]) =>
            {
                let key = &rest[start..start + end + 2];
                out.push_str(labels.get(key).copied().unwrap_or(key));
                rest = &after[end + 1..];
            }
            _ => {
                out.push('@');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, file: &str, line: u32) -> Frame {
        Frame {
            function: Some(function.into()),
            file: Some(file.into()),
            line: Some(line),
            address: "0x1".into(),
        }
    }

    #[test]
    fn the_same_stack_gets_the_same_label_and_another_one_another() {
        let sites = Sites::default();
        let a = sites.intern(&Stack::at(0x10));
        let b = sites.intern(&Stack::at(0x20));
        assert_eq!(a, sites.intern(&Stack::at(0x10)));
        assert_ne!(a, b);
        assert_eq!(sites.len(), 2);
    }

    /// The SUBSCRIBE's allocation goes through two helpers; the label names
    /// the function that asked for it, and how.
    #[test]
    fn labels_skip_thin_wrappers_to_the_caller() {
        let frames = vec![
            frame("nni_mqtt_msg_alloc", "mqtt_msg.c", 30),
            frame("nng_mqtt_msg_alloc", "mqtt_public.c", 20),
            frame("nng_mqtt_subscribe", "mqtt_public.c", 966),
        ];
        let (label, function) = label_of(&frames);
        assert_eq!(
            label,
            "nng_mqtt_subscribe (mqtt_public.c:966) via nni_mqtt_msg_alloc"
        );
        assert_eq!(function, "nng_mqtt_subscribe");
        let direct = vec![frame("mqtts_tcptran_pipe_send_cb", "mqtt_tls.c", 515)];
        assert_eq!(
            label_of(&direct).0,
            "mqtts_tcptran_pipe_send_cb (mqtt_tls.c:515)"
        );
        let public = vec![
            frame("nng_msg_free", "nng.c", 1200),
            frame("nng_mqtt_subscribe", "mqtt_public.c", 986),
        ];
        assert_eq!(
            label_of(&public).0,
            "nng_mqtt_subscribe (mqtt_public.c:986) via nng_msg_free"
        );
    }

    #[test]
    fn only_the_sites_a_report_names_are_resolved() {
        let sites = Sites::default();
        let a = sites.intern(&Stack::at(0x10));
        let _b = sites.intern(&Stack::at(0x20));
        let c = sites.intern(&Stack::at(0x30));
        let detail = format!("then overwritten at `{c}`");
        let asked = std::cell::RefCell::new(Vec::new());
        let resolve = |pc: usize| {
            asked.borrow_mut().push(pc);
            Frame {
                function: Some(format!("f{pc:x}")),
                file: None,
                line: None,
                address: format!("{pc:#x}"),
            }
        };
        let r = sites.resolve_in([a, detail.as_str(), a], &resolve);
        assert_eq!(r.len(), 2);
        assert_eq!(*asked.borrow(), vec![0x10, 0x30]);
        assert_eq!(r[1].label, "f30");
    }

    #[test]
    fn relabelling_replaces_whole_placeholders_only() {
        let labels: HashMap<&'static str, &'static str> =
            [("@1@", "f (a.c:1)"), ("@12@", "g (b.c:2)")]
                .into_iter()
                .collect();
        assert_eq!(
            relabel_text("at @1@ then @12@, mail a@b, @3@ unknown", &labels),
            "at f (a.c:1) then g (b.c:2), mail a@b, @3@ unknown"
        );
    }

    /// An address inside a function of this test binary resolves to that
    /// function, with its file.
    #[test]
    fn resolving_finds_this_process_functions() {
        let inside = resolve_here as *const () as usize + 16;
        let f = resolve_here(inside);
        let name = f.function.unwrap_or_default();
        assert!(name.contains("resolve_here"), "{name}");
        assert_eq!(f.file.as_deref(), Some("sites.rs"));
    }
}
