//! A finished build's test reports, read from CodeBuild: the counts of each
//! report (BatchGetReports) and the first failed test cases
//! (DescribeTestCases, filtered by status).

use gantry_core::test_reports::{TestResults, TestStatus};

/// BatchGetReports takes at most this many ARNs.
const REPORTS_PER_CALL: usize = 100;

/// The build's test results, summed over its TEST reports (coverage
/// reports have no test counts); `None` if it has none or CodeBuild cannot
/// be asked (best effort: the build is reported without them, and a
/// warning says why).
pub async fn results(
    codebuild: &aws_sdk_codebuild::Client,
    report_arns: &[String],
) -> Option<TestResults> {
    if report_arns.is_empty() {
        return None;
    }
    let mut out = TestResults::default();
    let mut failing: Vec<String> = Vec::new();
    for arns in report_arns.chunks(REPORTS_PER_CALL) {
        let answer = match codebuild
            .batch_get_reports()
            .set_report_arns(Some(arns.to_vec()))
            .send()
            .await
        {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(
                    reason = %crate::describe_sdk_error(&e),
                    "could not read the build's test reports"
                );
                return None;
            }
        };
        for report in answer.reports() {
            let Some(summary) = report.test_summary() else {
                continue;
            };
            let counts = summary.status_counts();
            out.add_report(counts.iter().map(|(k, v)| (k.as_str(), i64::from(*v))));
            let not_passed: i64 = TestStatus::NOT_PASSED
                .iter()
                .filter_map(|s| counts.get(s.as_str()))
                .map(|n| i64::from(*n))
                .sum();
            if let (Some(arn), true) = (report.arn(), not_passed > 0) {
                failing.push(arn.to_owned());
            }
        }
    }
    if out.reports == 0 {
        return None;
    }
    'reports: for arn in failing {
        for status in TestStatus::NOT_PASSED {
            if out.first_failed.len() >= TestResults::MAX_NAMED {
                break 'reports;
            }
            let left = TestResults::MAX_NAMED - out.first_failed.len();
            let cases = match codebuild
                .describe_test_cases()
                .report_arn(&arn)
                .filter(
                    aws_sdk_codebuild::types::TestCaseFilter::builder()
                        .status(status.as_str())
                        .build(),
                )
                .max_results(i32::try_from(left).unwrap_or(1))
                .send()
                .await
            {
                Ok(cases) => cases,
                Err(e) => {
                    tracing::warn!(
                        report_arn = %arn,
                        reason = %crate::describe_sdk_error(&e),
                        "could not read a test report's failed tests"
                    );
                    break 'reports;
                }
            };
            for case in cases.test_cases() {
                if let Some(name) = case.name() {
                    out.add_failed_name(&case_name(case.prefix(), name));
                }
            }
        }
    }
    Some(out)
}

/// `Class.test` as JUnit names a case (its `classname` is CodeBuild's
/// prefix); the bare name when there is no prefix.
fn case_name(prefix: Option<&str>, name: &str) -> String {
    match prefix.map(str::trim).filter(|p| !p.is_empty()) {
        Some(prefix) => format!("{prefix}.{name}"),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::case_name;

    #[test]
    fn a_case_is_named_with_its_class() {
        assert_eq!(
            case_name(Some("orders.TotalsTest"), "includesTax"),
            "orders.TotalsTest.includesTax"
        );
        assert_eq!(case_name(Some("  "), "t"), "t");
        assert_eq!(case_name(None, "t"), "t");
    }
}
