//! The generic webhook: a stable, versioned JSON document for people's own
//! receivers. Every [`Message`] field, snake_case, always present (`null`
//! when absent), plus `"v": 1` and `"event": "build"`. Fields are only ever
//! added within a version; nothing is cut or escaped, since the receiver is
//! a program, not a person.

use serde_json::{Value, json};

use super::Message;

/// The version of the document; a breaking change would make it 2.
pub const VERSION: u64 = 1;

pub(super) fn render(m: &Message) -> Value {
    let mut v = json!({"v": VERSION, "event": "build"});
    if let (Some(out), Ok(Value::Object(fields))) = (v.as_object_mut(), serde_json::to_value(m)) {
        out.extend(fields);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::super::tests::failed_pr;
    use super::super::{Message, Provider, render};
    use super::*;

    #[test]
    fn notify_generic_renders_every_field() {
        let got = render(Provider::Generic, &failed_pr());
        let want = json!({
            "v": 1,
            "event": "build",
            "project": "widgets",
            "repository": "octo-org/widgets",
            "repository_url": "https://github.com/octo-org/widgets",
            "branch": "feature/faster-builds",
            "tag": null,
            "pull_request": {"number": 7, "title": "Faster builds: cache <cargo> & more", "author": "mona", "url": "https://github.com/octo-org/widgets/pull/7"},
            "commit_sha": "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
            "commit_message": "Cache the cargo registry & skip <target>\n\nThe registry is 400 MB; @everyone's builds download it.",
            "commit_url": "https://github.com/octo-org/widgets/commit/1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
            "author": "mona",
            "result": "failed",
            "summary": "BUILD failed after 3m 12s",
            "duration_seconds": 192,
            "failed_phase": "BUILD",
            "build_url": "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/widgets/build/widgets%3A0f1e2d3c/?region=eu-west-1",
            "logs_url": "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Fcodebuild$252Fwidgets/log-events/0f1e2d3c",
            "correlation_id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        });
        assert_eq!(got, want);
        // A receiver can read the message back.
        let back: Message = serde_json::from_value(got).unwrap();
        assert_eq!(back, failed_pr());
    }
}
