//! What a probe found: named checks, each required or advisory, with what
//! was seen.

use std::fmt;

use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Outcome {
    /// As go-plugin hosts expect.
    Pass,
    /// Not as hosts expect; for a required check the plugin fails the probe.
    Fail,
    /// Worth knowing, but hosts cope (e.g. no `GRPCStdio`, which go-plugin
    /// before 1.2 lacks).
    Warn,
    /// Not checked, because an earlier step failed.
    Skipped,
    /// A fact, not a judgement (e.g. the negotiated version).
    Info,
}

/// One check of a [`ProbeReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProbeCheck {
    /// What was checked, e.g. `"handshake line"`.
    pub name: String,
    /// Whether a failure fails the probe.
    pub required: bool,
    /// How it came out.
    pub outcome: Outcome,
    /// What was seen, for a person.
    pub detail: String,
}

/// The result of [`Probe::run`](crate::probe::Probe::run): every check, in the order run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProbeReport {
    /// The plugin as launched.
    pub command: String,
    /// The checks.
    pub checks: Vec<ProbeCheck>,
}

impl ProbeReport {
    /// Whether every required check passed.
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The required checks that did not pass.
    pub fn failures(&self) -> impl Iterator<Item = &ProbeCheck> {
        self.checks
            .iter()
            .filter(|c| c.required && matches!(c.outcome, Outcome::Fail | Outcome::Skipped))
    }

    /// The report as JSON: `{"command", "passed", "checks": [{"name",
    /// "required", "outcome", "detail"}]}`.
    pub fn to_json(&self) -> String {
        let mut value = serde_json::to_value(self).expect("a report serializes");
        value["passed"] = self.passed().into();
        value.to_string()
    }

    pub(crate) fn add(
        &mut self,
        name: impl Into<String>,
        required: bool,
        outcome: Outcome,
        detail: impl Into<String>,
    ) {
        self.checks.push(ProbeCheck {
            name: name.into(),
            required,
            outcome,
            // Plugin output and addresses: never raw on a terminal.
            detail: crate::client::pipe::printable(&detail.into()).into_owned(),
        });
    }

    /// A required check: pass or fail.
    pub(crate) fn require(&mut self, name: &str, ok: bool, detail: impl Into<String>) -> bool {
        let outcome = if ok { Outcome::Pass } else { Outcome::Fail };
        self.add(name, true, outcome, detail);
        ok
    }

    /// An advisory check: pass or warn.
    pub(crate) fn advise(&mut self, name: &str, ok: bool, detail: impl Into<String>) {
        let outcome = if ok { Outcome::Pass } else { Outcome::Warn };
        self.add(name, false, outcome, detail);
    }

    pub(crate) fn info(&mut self, name: &str, detail: impl Into<String>) {
        self.add(name, false, Outcome::Info, detail);
    }

    /// Required checks that could not run.
    pub(crate) fn skip(&mut self, names: &[&str], why: &str) {
        for name in names {
            self.add(*name, true, Outcome::Skipped, why);
        }
    }
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "probe: {}", self.command)?;
        for check in &self.checks {
            let tag = match check.outcome {
                Outcome::Pass => "ok",
                Outcome::Fail if check.required => "FAIL",
                Outcome::Fail | Outcome::Warn => "warn",
                Outcome::Skipped => "skip",
                Outcome::Info => "info",
            };
            writeln!(f, "  {tag:<5} {}: {}", check.name, check.detail)?;
        }
        let failed = self.failures().count();
        if failed == 0 {
            write!(f, "RESULT: PASS")
        } else {
            let s = if failed == 1 { "" } else { "s" };
            write!(f, "RESULT: FAIL ({failed} required check{s} did not pass)")
        }
    }
}
