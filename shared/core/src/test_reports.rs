//! A build's test reports (a buildspec's `reports:` section), as the
//! status, the check run, the chat message and the build page show them:
//! the counts CodeBuild keeps per report, and the first failed tests.

use serde::{Deserialize, Serialize};

/// A test case's status, as CodeBuild spells it in a report's
/// `testSummary.statusCounts` and in `DescribeTestCases` filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestStatus {
    Succeeded,
    Failed,
    Error,
    Skipped,
    Unknown,
}

impl TestStatus {
    pub const ALL: [TestStatus; 5] = [
        TestStatus::Succeeded,
        TestStatus::Failed,
        TestStatus::Error,
        TestStatus::Skipped,
        TestStatus::Unknown,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            TestStatus::Succeeded => "SUCCEEDED",
            TestStatus::Failed => "FAILED",
            TestStatus::Error => "ERROR",
            TestStatus::Skipped => "SKIPPED",
            TestStatus::Unknown => "UNKNOWN",
        }
    }

    pub fn parse(s: &str) -> Option<TestStatus> {
        TestStatus::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The statuses whose test cases are named as failures, in the order
    /// they are asked for.
    pub const NOT_PASSED: [TestStatus; 2] = [TestStatus::Failed, TestStatus::Error];
}

/// The test results of one build, summed over its test reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResults {
    /// How many test reports the counts come from.
    pub reports: u32,
    pub passed: u64,
    pub failed: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errored: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unknown: u64,
    /// The first failed (or errored) tests' names, at most
    /// [`TestResults::MAX_NAMED`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first_failed: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl TestResults {
    /// How many failed tests are named.
    pub const MAX_NAMED: usize = 10;
    /// The longest name kept; longer ones are cut with "…".
    pub const MAX_NAME_CHARS: usize = 200;

    /// Adds one report's `statusCounts` (CodeBuild's status, count).
    /// Unknown statuses count as unknown; negative counts as none.
    pub fn add_report<'a>(&mut self, counts: impl IntoIterator<Item = (&'a str, i64)>) {
        self.reports += 1;
        for (status, count) in counts {
            let count = u64::try_from(count).unwrap_or(0);
            let slot = match TestStatus::parse(status) {
                Some(TestStatus::Succeeded) => &mut self.passed,
                Some(TestStatus::Failed) => &mut self.failed,
                Some(TestStatus::Error) => &mut self.errored,
                Some(TestStatus::Skipped) => &mut self.skipped,
                Some(TestStatus::Unknown) | None => &mut self.unknown,
            };
            *slot = slot.saturating_add(count);
        }
    }

    /// Keeps a failed test's name, until [`TestResults::MAX_NAMED`] are
    /// kept; blank names and repeats are dropped.
    pub fn add_failed_name(&mut self, name: &str) {
        let name = crate::notify::text::one_line(name);
        if name.is_empty()
            || self.first_failed.len() >= Self::MAX_NAMED
            || self.first_failed.contains(&name)
        {
            return;
        }
        self.first_failed
            .push(crate::notify::text::fit(&name, Self::MAX_NAME_CHARS));
    }

    pub fn total(&self) -> u64 {
        self.passed
            .saturating_add(self.failed)
            .saturating_add(self.errored)
            .saturating_add(self.skipped)
            .saturating_add(self.unknown)
    }

    pub fn not_passed(&self) -> u64 {
        self.failed.saturating_add(self.errored)
    }

    /// "2 failed, 118 passed, 3 skipped": failures first, zeros left out,
    /// "no tests" when the reports had none.
    pub fn counts(&self) -> String {
        let parts: Vec<String> = [
            (self.failed, "failed"),
            (self.errored, "errored"),
            (self.passed, "passed"),
            (self.skipped, "skipped"),
            (self.unknown, "unknown"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            "no tests".to_owned()
        } else {
            parts.join(", ")
        }
    }

    /// One line: "tests: 2 failed, 118 passed; test_a, test_b". The names
    /// come last so a short line (a commit status) loses them first.
    pub fn line(&self) -> String {
        let mut out = format!("tests: {}", self.counts());
        if !self.first_failed.is_empty() {
            out.push_str("; ");
            out.push_str(&self.first_failed.join(", "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codebuilds_counts_are_summed_over_reports() {
        let mut r = TestResults::default();
        r.add_report([("SUCCEEDED", 118), ("FAILED", 1), ("SKIPPED", 3)]);
        r.add_report([("SUCCEEDED", 2), ("FAILED", 1), ("ERROR", 1), ("NEW", 4)]);
        assert_eq!(r.reports, 2);
        assert_eq!(
            (r.passed, r.failed, r.errored, r.skipped, r.unknown),
            (120, 2, 1, 3, 4)
        );
        assert_eq!(r.total(), 130);
        assert_eq!(r.not_passed(), 3);
        assert_eq!(
            r.counts(),
            "2 failed, 1 errored, 120 passed, 3 skipped, 4 unknown"
        );
        assert_eq!(TestResults::default().counts(), "no tests");
    }

    #[test]
    fn failed_names_are_kept_once_on_one_line_up_to_the_limit() {
        let mut r = TestResults::default();
        r.add_report([("FAILED", 30)]);
        r.add_failed_name("suite.test_login\nassertion");
        r.add_failed_name("suite.test_login");
        r.add_failed_name("   ");
        for i in 0..20 {
            r.add_failed_name(&format!("t{i}"));
        }
        assert_eq!(r.first_failed.len(), TestResults::MAX_NAMED);
        assert_eq!(r.first_failed[0], "suite.test_login");
        assert!(
            r.line()
                .starts_with("tests: 30 failed; suite.test_login, t0, t1"),
            "{}",
            r.line()
        );
    }

    #[test]
    fn every_status_is_spelled_as_codebuild_spells_it() {
        for s in TestStatus::ALL {
            assert_eq!(TestStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(TestStatus::parse("failed"), None);
    }

    proptest! {
        #[test]
        fn names_stay_short_and_single_line(name in ".{0,600}") {
            let mut r = TestResults::default();
            r.add_failed_name(&name);
            for kept in &r.first_failed {
                prop_assert!(kept.chars().count() <= TestResults::MAX_NAME_CHARS);
                prop_assert!(!kept.contains('\n'));
            }
        }

        #[test]
        fn counts_never_overflow(a in any::<i64>(), b in any::<i64>()) {
            let mut r = TestResults::default();
            r.add_report([("SUCCEEDED", a), ("SUCCEEDED", b), ("FAILED", a)]);
            prop_assert!(r.total() >= r.passed);
        }
    }
}
