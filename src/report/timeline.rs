//! A violation's history as a timeline page: one column per actor, one row
//! per step, in the order the ledger saw them.

use crate::ledger::{Action, Violation};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn describe(a: &Action) -> String {
    match a {
        Action::Alloc => "alloc (count 1)".into(),
        Action::Retain { count } => format!("retain → {count}"),
        Action::Release { count } => format!("release → {count}"),
        Action::Free => "release → 0: <b>freed</b>".into(),
        Action::Alias => "<b>alias</b> (copy without a reference)".into(),
        Action::BorrowStart => "write starts reading".into(),
        Action::BorrowEnd => "write done reading".into(),
        Action::Mutate => "mutate".into(),
        Action::DroppedWithoutRelease => "dropped without release".into(),
        Action::OpBegin => "op begun".into(),
        Action::OpSetMsg => "message attached".into(),
        Action::OpFinish { outcome } => format!("finished: {}", esc(outcome)),
        Action::OpTouch => "touched".into(),
        Action::OpWait => "waiter blocks".into(),
        Action::OpCancel => "cancel requested".into(),
        Action::Elided { count } => format!("… {count} steps not kept …"),
        Action::Violation { kind } => format!("<b class=\"v\">VIOLATION: {}</b>", esc(kind)),
    }
}

/// An HTML page with one swimlane timeline per violation.
pub fn html(title: &str, violations: &[(String, Violation)]) -> String {
    let mut s = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title><style>\
         body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin-bottom:2em}} \
         td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px;vertical-align:top}} \
         th{{background:#f0f0f0}} td.seq{{color:#888}} .v{{color:#b00}} .site{{color:#555;font-size:11px}}\
         </style></head><body><h1>{t}</h1>\n",
        t = esc(title)
    );
    if violations.is_empty() {
        s.push_str("<p>No violation.</p>");
    }
    for (name, v) in violations {
        let mut actors: Vec<&str> = Vec::new();
        for e in &v.history {
            if !actors.contains(&&*e.actor) {
                actors.push(&e.actor);
            }
        }
        s.push_str(&format!(
            "<h2>{}</h2>\n<p>{}</p>\n<table><tr><th>#</th>",
            esc(name),
            esc(&v.diagnosis())
        ));
        for a in &actors {
            s.push_str(&format!("<th>{}</th>", esc(a)));
        }
        s.push_str("</tr>\n");
        for e in &v.history {
            s.push_str(&format!("<tr><td class=\"seq\">{}</td>", e.seq));
            for a in &actors {
                if *a == &*e.actor {
                    s.push_str(&format!(
                        "<td>{}<div class=\"site\">{}</div></td>",
                        describe(&e.action),
                        esc(e.site)
                    ));
                } else {
                    s.push_str("<td></td>");
                }
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</table>\n");
    }
    s.push_str("</body></html>\n");
    s
}
