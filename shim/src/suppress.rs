//! Suppressions: findings explained once, with their reason, and kept out
//! of the verdict.
//!
//! A suppressions file (`MQTLS_SHIM_SUPPRESSIONS`) has one rule a line:
//!
//! ```text
//! # kind    role=function ...          # reason (required)
//! OpNeverFinished origin=nano_ctx_send # nmq_mqtt.c: the broker's fire-and-forget send never finishes its aio
//! ```
//!
//! A rule matches a finding of its kind (`*`: any kind) when every
//! `role=function` names one of the finding's sites in that role: `origin`
//! (allocated or begun), `aliased`, `released` (freed or finished before),
//! `at` (the offending step), or `any`. A rule without a reason is refused:
//! a suppression nobody can explain is noise hidden, not noise explained.
//! Suppressed findings stay in the report (`suppressed`), with the rule and
//! its reason.

use mqtls_harness::report::shim::{ShimFinding, ShimSites};

/// One rule of a suppressions file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The violation kind, or `*`.
    pub kind: String,
    /// `(role, function)` pairs that must all match.
    pub sites: Vec<(Role, String)>,
    /// Why the finding is not a defect (or not one to act on).
    pub reason: String,
    /// The rule as written, for the report.
    pub text: String,
}

/// Which sites of a finding a rule's function is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Where it was allocated or begun.
    Origin,
    /// Where it was put in a slot without a reference.
    Aliased,
    /// Where it was freed or finished before the offending step.
    Released,
    /// The offending step.
    At,
    /// Any of them.
    Any,
}

/// The rules of one file.
#[derive(Debug, Clone, Default)]
pub struct Suppressions {
    /// In file order; the first match wins.
    pub rules: Vec<Rule>,
}

impl Suppressions {
    /// Parses a suppressions file. Errors name the line and what is wrong.
    pub fn parse(text: &str) -> Result<Suppressions, String> {
        let mut rules = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (rule, reason) = match line.split_once('#') {
                Some((r, why)) if !why.trim().is_empty() => (r.trim(), why.trim()),
                _ => {
                    return Err(format!(
                        "line {}: `{line}` has no reason (write `# why` after the rule)",
                        n + 1
                    ));
                }
            };
            let mut words = rule.split_whitespace();
            let Some(kind) = words.next() else {
                return Err(format!(
                    "line {}: no violation kind before the reason",
                    n + 1
                ));
            };
            let mut sites = Vec::new();
            for w in words {
                let Some((role, function)) = w.split_once('=') else {
                    return Err(format!(
                        "line {}: `{w}` is not role=function (roles: origin, aliased, released, at, any)",
                        n + 1
                    ));
                };
                let role = match role {
                    "origin" => Role::Origin,
                    "aliased" => Role::Aliased,
                    "released" => Role::Released,
                    "at" => Role::At,
                    "any" => Role::Any,
                    other => {
                        return Err(format!(
                            "line {}: unknown role `{other}` (roles: origin, aliased, released, at, any)",
                            n + 1
                        ));
                    }
                };
                sites.push((role, function.to_string()));
            }
            rules.push(Rule {
                kind: kind.to_string(),
                sites,
                reason: reason.to_string(),
                text: rule.to_string(),
            });
        }
        Ok(Suppressions { rules })
    }

    /// The first rule that matches `f`.
    pub fn matching(&self, f: &ShimFinding) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(f))
    }
}

impl Rule {
    fn matches(&self, f: &ShimFinding) -> bool {
        (self.kind == "*" || self.kind == f.kind)
            && self
                .sites
                .iter()
                .all(|(role, function)| functions(&f.sites, *role).any(|g| g == function))
    }
}

/// The functions of `sites` in `role`.
fn functions(sites: &ShimSites, role: Role) -> Box<dyn Iterator<Item = &str> + '_> {
    let origin = sites.origin.iter().map(|s| s.function.as_str());
    let aliased = sites.aliased.iter().map(|s| s.function.as_str());
    let released = sites.released.iter().map(|s| s.function.as_str());
    let at = sites.at.iter().map(|s| s.function.as_str());
    match role {
        Role::Origin => Box::new(origin),
        Role::Aliased => Box::new(aliased),
        Role::Released => Box::new(released),
        Role::At => Box::new(at),
        Role::Any => Box::new(origin.chain(aliased).chain(released).chain(at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtls_harness::report::shim::ShimSite;

    fn site(function: &str) -> ShimSite {
        ShimSite {
            label: format!("{function} (x.c:1)"),
            function: function.into(),
            frames: Vec::new(),
        }
    }

    fn finding(kind: &str, origin: &str, at: &str) -> ShimFinding {
        ShimFinding {
            kind: kind.into(),
            subject: "op #1 PUBLISH".into(),
            diagnosis: String::new(),
            timeline: String::new(),
            signature: String::new(),
            sites: ShimSites {
                origin: Some(site(origin)),
                aliased: Vec::new(),
                released: vec![site("nano_pipe_recv_cb")],
                at: Some(site(at)),
                armed: Vec::new(),
                waited: Vec::new(),
            },
            violation: serde_json::Value::Null,
        }
    }

    #[test]
    fn rules_match_by_kind_and_every_named_site() {
        let s = Suppressions::parse(
            "# the broker's own idioms\n\
             OpNeverFinished origin=nano_ctx_send  # fire-and-forget send\n\
             \n\
             OpFinishedTwice at=server_cb released=nano_pipe_recv_cb # trampoline\n\
             * any=only_here # anything there\n",
        )
        .unwrap();
        assert_eq!(s.rules.len(), 3);
        let never = finding("OpNeverFinished", "nano_ctx_send", "audit");
        assert_eq!(
            s.matching(&never).map(|r| r.reason.as_str()),
            Some("fire-and-forget send")
        );
        let twice = finding("OpFinishedTwice", "nano_ctx_recv", "server_cb");
        assert_eq!(
            s.matching(&twice).map(|r| r.reason.as_str()),
            Some("trampoline")
        );
        let elsewhere = finding("OpFinishedTwice", "nano_ctx_recv", "other_cb");
        assert!(s.matching(&elsewhere).is_none());
        let wrong_kind = finding("DoubleRelease", "nano_ctx_send", "audit");
        assert!(s.matching(&wrong_kind).is_none());
        assert!(s.matching(&finding("Leak", "only_here", "x")).is_some());
    }

    #[test]
    fn a_rule_without_a_reason_or_with_a_bad_role_is_refused() {
        let e = Suppressions::parse("OpNeverFinished origin=f\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("no reason"), "{e}");
        let e = Suppressions::parse("\nOpNeverFinished where=f # x\n").unwrap_err();
        assert!(
            e.contains("line 2") && e.contains("unknown role `where`"),
            "{e}"
        );
        let e = Suppressions::parse("OpNeverFinished f # x\n").unwrap_err();
        assert!(e.contains("not role=function"), "{e}");
    }
}
