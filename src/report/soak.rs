//! `soak.md`: the brokers of one soak side by side (memory, drops, the
//! probe's latency, the audit) and their RSS over time.

use crate::broker::limits::DropReason;
use crate::soak::{Latency, RoleFigures, SoakReport, TargetRun};
use std::fmt::Write;

fn mib(kib: Option<u64>) -> String {
    kib.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn latency(l: &Latency) -> String {
    if l.samples == 0 {
        return "-".into();
    }
    format!(
        "{:.2} / {:.2} / {:.2} ms ({} round trips)",
        l.p50_ms, l.p99_ms, l.max_ms, l.samples
    )
}

fn received(r: &RoleFigures, n: usize) -> String {
    if n == 0 {
        return "-".into();
    }
    let mut s = format!("{}", r.messages);
    if r.reconnects > 0 {
        let _ = write!(s, ", {} reconnects", r.reconnects);
    }
    if r.closed_by_broker > 0 {
        let _ = write!(s, ", {} closed by the broker", r.closed_by_broker);
    }
    s
}

fn drops(run: &TargetRun) -> String {
    if let Some(d) = run.drops {
        let per: Vec<String> = DropReason::ALL
            .iter()
            .filter(|r| d.of(**r) > 0)
            .map(|r| format!("{} {}", r.name(), d.of(*r)))
            .collect();
        let mut s = format!("{} dropped", d.total());
        if !per.is_empty() {
            let _ = write!(s, " ({})", per.join(", "));
        }
        if d.refused_publishes > 0 {
            let _ = write!(s, "; {} publishes refused", d.refused_publishes);
        }
        if d.slow_consumers_disconnected > 0 {
            let _ = write!(
                s,
                "; {} slow consumers disconnected",
                d.slow_consumers_disconnected
            );
        }
        return s;
    }
    match run.mosquitto_dropped {
        Some(n) => format!("{n} dropped ($SYS/broker/publish/messages/dropped)"),
        None => "-".into(),
    }
}

fn audit(run: &TargetRun) -> String {
    match run.audit {
        Some(a) if a.violations == 0 => format!(
            "clean ({} messages allocated, {} freed, {} live)",
            a.allocated, a.freed, a.live
        ),
        Some(a) => format!("**{} violations** ({} live)", a.violations, a.live),
        None => "-".into(),
    }
}

/// The report as markdown.
pub fn to_markdown(r: &SoakReport) -> String {
    let m = &r.mix;
    let mut out = String::new();
    let _ = writeln!(out, "# Soak\n");
    let _ = writeln!(
        out,
        "Load: {} publisher(s) flat out at QoS {}, {} B payloads; consumers: {} stopped, {} slow \
         ({} msg/s), {} flapping ({} ms up / {} ms down), {} healthy; a latency probe at {} Hz \
         on its own topic. Flood {:.0} s, then {:.0} s settling (publishers stopped, stopped \
         consumers gone). Every broker: at most {} queued messages and {} queued bytes per \
         session (0: none), {} in flight.\n",
        m.publishers,
        m.qos as u8,
        m.payload,
        m.stopped,
        m.slow,
        m.slow_rate,
        m.flapping,
        m.flap_up_ms,
        m.flap_down_ms,
        m.healthy,
        m.probe_hz,
        r.duration_secs,
        r.settle_secs,
        r.max_queued_messages,
        r.max_queued_bytes,
        r.max_inflight,
    );
    let names: Vec<&str> = r.runs.iter().map(|t| t.target.as_str()).collect();
    let _ = writeln!(out, "| | {} |", names.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(names.len()));
    let row = |out: &mut String, label: &str, f: &dyn Fn(&TargetRun) -> String| {
        let cells: Vec<String> = r.runs.iter().map(f).collect();
        let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
    };
    row(&mut out, "peak RSS", &|t| mib(t.rss_peak_kib));
    row(&mut out, "RSS when the flood ended", &|t| {
        mib(t.rss_flood_end_kib)
    });
    row(&mut out, "RSS after settling", &|t| mib(t.rss_settled_kib));
    row(&mut out, "published (acked, refused)", &|t| {
        let p = t.publishers;
        format!("{} ({}, {})", p.messages, p.acked, p.refused)
    });
    row(&mut out, "healthy consumers received", &|t| {
        received(&t.healthy, m.healthy)
    });
    row(&mut out, "slow consumers received", &|t| {
        received(&t.slow, m.slow)
    });
    row(&mut out, "flapping consumers received", &|t| {
        received(&t.flapping, m.flapping)
    });
    row(&mut out, "probe p50 / p99 / max, before", &|t| {
        latency(&t.latency_baseline)
    });
    row(&mut out, "probe p50 / p99 / max, flood", &|t| {
        latency(&t.latency_flood)
    });
    row(&mut out, "probe lost", &|t| {
        format!(
            "{}",
            t.probe_sent
                .saturating_sub(u64::try_from(t.probe_received).unwrap_or(u64::MAX))
        )
    });
    row(&mut out, "drops", &drops);
    row(&mut out, "ledger audit", &audit);
    row(&mut out, "queue log lines", &|t| match &t.broker_log {
        Some(l) => format!(
            "{} over a limit, {} slow consumers disconnected ({} warnings in {} lines)",
            l.over_limit, l.slow_consumer, l.warnings, l.lines
        ),
        None => "-".into(),
    });
    if r.runs.iter().any(|t| !t.errors.is_empty()) {
        let _ = writeln!(out, "\nClient errors:\n");
        for t in &r.runs {
            for e in &t.errors {
                let _ = writeln!(out, "- {}: {e}", t.target);
            }
        }
    }
    for t in &r.runs {
        if let Some(l) = t.broker_log.as_ref().filter(|l| !l.examples.is_empty()) {
            let _ = writeln!(out, "\n{} logged ({}):\n", t.target, l.path.display());
            let _ = writeln!(out, "```");
            for e in &l.examples {
                let _ = writeln!(out, "{e}");
            }
            let _ = writeln!(out, "```");
        }
    }
    let _ = writeln!(out, "\n## RSS over time (MiB)\n");
    let _ = writeln!(out, "| t (s) | {} |", names.join(" | "));
    let _ = writeln!(out, "|---:|{}", "---:|".repeat(names.len()));
    let last = r
        .runs
        .iter()
        .filter_map(|t| t.rss.last().map(|s| s.t_ms))
        .max()
        .unwrap_or(0);
    let first = r
        .runs
        .iter()
        .filter_map(|t| t.rss.first().map(|s| s.t_ms))
        .min()
        .unwrap_or(0);
    let mut sec = first.div_euclid(1000);
    while sec * 1000 <= last {
        let cells: Vec<String> = r
            .runs
            .iter()
            .map(|t| {
                // The last sample up to half a second past this one.
                t.rss
                    .iter()
                    .rfind(|s| s.t_ms <= sec * 1000 + 500)
                    .map_or("-".into(), |s| format!("{:.1}", s.kib as f64 / 1024.0))
            })
            .collect();
        let _ = writeln!(out, "| {sec} | {} |", cells.join(" | "));
        sec += 1;
    }
    out
}
