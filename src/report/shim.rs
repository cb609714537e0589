//! The report `mqtls-shim` writes from inside a C target (the ledger linked
//! into NanoNNG with `-Wl,--wrap`, see `docs/shim.md`), and the hostile
//! peers read back to turn its violations into findings.
//!
//! The writer is the `mqtls-shim` crate, the readers are `mqtls
//! hostile-broker` and `mqtls probe`: one format, defined here, for both.
//! Each finding carries the ledger's own JSON of its violation (the same as
//! the Rust side's), its diagnosis and timeline, and the call sites that
//! tell one mistake from another, resolved to `function (file:line)`.

use crate::ledger::Stats;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The tool name a shim report carries.
pub const TOOL: &str = "mqtls-shim";

/// Everything one target process's shim found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimReport {
    /// [`TOOL`].
    pub tool: String,
    /// The shim's version.
    pub version: String,
    /// The target program (its `argv[0]`).
    pub program: String,
    /// Its process id.
    pub pid: u32,
    /// What made the report be written: `exit`, `signal 15`, `sanitizer
    /// report`.
    pub trigger: String,
    /// The ledger's mode: `full` (histories) or `counting`.
    pub mode: String,
    /// The ledger's counts when the report was written.
    pub stats: Stats,
    /// How well the mirror kept up with the target, and what it forgave.
    pub counters: ShimCounters,
    /// Violations: each a defect in the target.
    pub findings: Vec<ShimFinding>,
    /// Violations a suppressions file explains (`MQTLS_SHIM_SUPPRESSIONS`),
    /// with its rule and reason: not part of the verdict.
    #[serde(default)]
    pub suppressed: Vec<ShimSuppressed>,
    /// Problems with the shim's own settings (a suppressions file it could
    /// not read, ...).
    #[serde(default)]
    pub notes: Vec<String>,
    /// References still held when the report was written, by allocation
    /// site: what a running program holds, listed, not judged.
    pub held_at_stop: Vec<ShimGroup>,
    /// Operations still open when the report was written (none of them a
    /// hang), by the site that began them.
    pub open_at_stop: Vec<ShimGroup>,
    /// Distinct call stacks the shim saw.
    pub call_sites: usize,
}

/// One violation found in the target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimFinding {
    /// The ledger's violation kind (`FreedWhileInSlot`, `DoubleRelease`...).
    pub kind: String,
    /// The message or operation (`msg #4 SUBSCRIBE`, `op #19 SUBSCRIBE`).
    pub subject: String,
    /// The diagnosis paragraph, as the Rust side writes it.
    pub diagnosis: String,
    /// The subject's history, one step a line.
    pub timeline: String,
    /// Stable across runs and builds: the kind and the functions involved,
    /// without line numbers.
    pub signature: String,
    /// The call sites behind the signature.
    pub sites: ShimSites,
    /// The violation as the ledger serialises it (kind, subject, at,
    /// detail, history).
    pub violation: serde_json::Value,
}

/// A finding a suppression rule explains.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimSuppressed {
    /// The finding.
    pub finding: ShimFinding,
    /// The rule that matched, as written.
    pub rule: String,
    /// Its reason.
    pub reason: String,
}

/// The call sites of a finding, by role.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShimSites {
    /// Where the message was allocated or the operation begun.
    pub origin: Option<ShimSite>,
    /// Where it was put in a slot without a reference of its own.
    pub aliased: Vec<ShimSite>,
    /// Where it was freed, or the operation finished, before the offending
    /// step.
    pub released: Vec<ShimSite>,
    /// The offending step.
    pub at: Option<ShimSite>,
    /// Where the operation was armed (`nni_aio_schedule`: its timeout and
    /// cancel function).
    #[serde(default)]
    pub armed: Vec<ShimSite>,
    /// Where a waiter blocked on the operation (`nni_aio_wait`).
    #[serde(default)]
    pub waited: Vec<ShimSite>,
}

/// One call site: the label reports show and the frames behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimSite {
    /// `function (file:line)`, with `via nng_msg_free` when the call went
    /// through a thin API wrapper.
    pub label: String,
    /// The function the label names.
    pub function: String,
    /// The return addresses' frames, innermost first.
    pub frames: Vec<ShimFrame>,
}

/// One frame of a call site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimFrame {
    /// Function name, when the symbol table or debug info has it.
    pub function: Option<String>,
    /// Source file (base name), from the debug info.
    pub file: Option<String>,
    /// Source line.
    pub line: Option<u32>,
    /// The return address, as the process saw it.
    pub address: String,
}

/// Subjects sharing one site.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimGroup {
    /// Allocation site (references) or begin site (operations).
    pub site: String,
    /// How many.
    pub count: usize,
    /// How many of each kind.
    pub kinds: BTreeMap<String, usize>,
    /// The subjects (`msg #12 PUBLISH`), at most ten.
    pub examples: Vec<String>,
}

/// How the shim's mirror kept up with the target: counted, not judged.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShimCounters {
    /// Messages allocated while the shim watched.
    pub messages: u64,
    /// Aios allocated or initialised while the shim watched.
    pub aios: u64,
    /// Calls on a message pointer the shim never saw allocated.
    pub unknown_messages: u64,
    /// Calls on an aio the shim never saw initialised.
    pub unknown_aios: u64,
    /// Messages freed out of the shim's sight (their address was allocated
    /// again while the mirror still counted references).
    pub freed_out_of_sight: u64,
    /// Slots found holding another pointer than the mirror's (set out of
    /// sight), re-read.
    pub slots_resynced: u64,
    /// Slots of an aio in use left pointing at a freed message and cleared
    /// at once by their owner (free then clear, hand over then clear): no
    /// violations.
    pub dangling_forgiven: u64,
    /// Finishes of an aio with no operation begun, by site.
    pub finished_unbegun: BTreeMap<String, u64>,
    /// Schedules of an aio with no operation begun, by site.
    pub scheduled_unbegun: BTreeMap<String, u64>,
}

impl ShimReport {
    /// Reads a report; the error says what is wrong with the file.
    pub fn parse(json: &str) -> Result<ShimReport, String> {
        let r: ShimReport =
            serde_json::from_str(json).map_err(|e| format!("not a mqtls-shim report: {e}"))?;
        if r.tool != TOOL {
            return Err(format!("not a mqtls-shim report: its tool is `{}`", r.tool));
        }
        Ok(r)
    }

    /// One line for people.
    pub fn summary(&self) -> String {
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for f in &self.findings {
            *kinds.entry(&f.kind).or_insert(0) += 1;
        }
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let held: usize = self.held_at_stop.iter().map(|g| g.count).sum();
        let open: usize = self.open_at_stop.iter().map(|g| g.count).sum();
        format!(
            "mqtls-shim ({}): {} finding(s){}{}; {} message(s) still referenced, {} operation(s) open; {} message(s), {} aio(s) seen",
            self.trigger,
            self.findings.len(),
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            },
            if self.suppressed.is_empty() {
                String::new()
            } else {
                format!(", {} suppressed", self.suppressed.len())
            },
            held,
            open,
            self.counters.messages,
            self.counters.aios,
        )
    }
}
