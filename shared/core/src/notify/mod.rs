//! Chat notifications for build results: one provider-neutral [`Message`],
//! a renderer per chat service ([`render`]), and a [`Notifier`] that posts
//! the rendered JSON to the service's incoming webhook, with retries.
//!
//! The renderers are plain functions over plain types: the same message
//! always renders to the same JSON, which the tests pin and
//! `docs/notifications.md` shows. Everything a person or a pull request
//! controls (titles, commit messages, branch names) is cut to the service's
//! limits and escaped for the service's markup, so a message can neither be
//! refused for its size nor ping a channel.

mod discord;
mod generic;
mod google_chat;
pub mod limits;
pub mod picture;
mod slack;
mod teams;
pub mod text;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What happened to a build, as a notification tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildResult {
    Started,
    Queued,
    /// `passed`: how records written before results were typed say it.
    #[serde(alias = "passed")]
    Succeeded,
    /// Succeeded after the previous build of the same branch failed.
    Fixed,
    Failed,
    Errored,
    Stopped,
    Superseded,
    Skipped,
    Rejected,
}

impl BuildResult {
    pub const ALL: [BuildResult; 10] = [
        BuildResult::Started,
        BuildResult::Queued,
        BuildResult::Succeeded,
        BuildResult::Fixed,
        BuildResult::Failed,
        BuildResult::Errored,
        BuildResult::Stopped,
        BuildResult::Superseded,
        BuildResult::Skipped,
        BuildResult::Rejected,
    ];

    /// The colour chat services draw beside the message, `#rrggbb`: green
    /// for a good result, red for a failure, dark red for a build that could
    /// not run, amber while it runs, grey when it did not matter.
    pub fn colour(self) -> &'static str {
        match self {
            BuildResult::Succeeded | BuildResult::Fixed => "#2EA043",
            BuildResult::Failed => "#CF222E",
            BuildResult::Errored | BuildResult::Rejected => "#82071E",
            BuildResult::Started | BuildResult::Queued => "#D29922",
            BuildResult::Stopped | BuildResult::Superseded | BuildResult::Skipped => "#8C959F",
        }
    }

    /// The colour as the integer Discord wants.
    pub fn colour_rgb(self) -> u32 {
        u32::from_str_radix(&self.colour()[1..], 16).unwrap_or(0)
    }

    /// The word a headline ends with: "passed", "fixed", "failed", …
    pub fn label(self) -> &'static str {
        match self {
            BuildResult::Started => "started",
            BuildResult::Queued => "queued",
            BuildResult::Succeeded => "passed",
            BuildResult::Fixed => "fixed",
            BuildResult::Failed => "failed",
            BuildResult::Errored => "errored",
            BuildResult::Stopped => "stopped",
            BuildResult::Superseded => "superseded",
            BuildResult::Skipped => "skipped",
            BuildResult::Rejected => "rejected",
        }
    }

    /// The emoji a headline starts with.
    pub fn emoji(self) -> &'static str {
        match self {
            BuildResult::Started => "🔨",
            BuildResult::Queued => "⏳",
            BuildResult::Succeeded => "✅",
            BuildResult::Fixed => "💚",
            BuildResult::Failed => "❌",
            BuildResult::Errored => "💥",
            BuildResult::Stopped => "⏹️",
            BuildResult::Superseded => "⏭️",
            BuildResult::Skipped => "⏩",
            BuildResult::Rejected => "⛔",
        }
    }

    /// Whether the build is over (as opposed to started or queued).
    pub fn is_final(self) -> bool {
        !matches!(self, BuildResult::Started | BuildResult::Queued)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestInfo {
    pub number: u64,
    pub title: String,
    pub author: String,
    pub url: String,
}

/// One notification, before it is dressed for a chat service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub project: String,
    /// `owner/name`.
    pub repository: String,
    /// `https://github.com/owner/name`.
    pub repository_url: String,
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub pull_request: Option<PullRequestInfo>,
    /// The full SHA; messages show the first 7 characters.
    pub commit_sha: String,
    /// The full message; messages show its first line only.
    pub commit_message: Option<String>,
    pub commit_url: Option<String>,
    /// Who pushed, or opened the pull request.
    pub author: Option<String>,
    pub result: BuildResult,
    /// One line for a person: "BUILD failed after 3m 12s", "superseded by 1a2b3c4".
    pub summary: String,
    pub duration_seconds: Option<u64>,
    /// The CodeBuild phase that failed, e.g. "BUILD".
    pub failed_phase: Option<String>,
    /// The build in the CodeBuild console.
    pub build_url: Option<String>,
    /// The build's logs in CloudWatch.
    pub logs_url: Option<String>,
    pub correlation_id: String,
}

impl Message {
    /// "✅ octo-org/widgets main passed", "❌ octo-org/widgets #7 failed".
    pub fn headline(&self) -> String {
        format!(
            "{} {} {} {}",
            self.result.emoji(),
            self.repository,
            self.reference(),
            self.result.label()
        )
    }

    /// What was built, for a person: `#7` for a pull request, else the tag,
    /// else the branch, else the short commit.
    pub fn reference(&self) -> String {
        if let Some(pr) = &self.pull_request {
            format!("#{}", pr.number)
        } else if let Some(tag) = &self.tag {
            tag.clone()
        } else if let Some(branch) = &self.branch {
            branch.clone()
        } else {
            self.short_sha().to_owned()
        }
    }

    /// The first 7 characters of the commit SHA.
    pub fn short_sha(&self) -> &str {
        match self.commit_sha.char_indices().nth(7) {
            Some((i, _)) => &self.commit_sha[..i],
            None => &self.commit_sha,
        }
    }

    /// The first line of the commit message, trimmed, if there is one.
    pub fn commit_title(&self) -> Option<String> {
        self.commit_message
            .as_deref()
            .map(text::one_line)
            .filter(|s| !s.is_empty())
    }

    /// The duration as a person reads it ("3m 12s"), if known.
    pub fn duration(&self) -> Option<String> {
        self.duration_seconds.map(format_duration)
    }
}

/// "45s", "3m 12s", "1h 02m": two units at most, the smaller zero-padded.
pub fn format_duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// The chat services Gantry can post to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Slack,
    Teams,
    Discord,
    #[serde(alias = "google-chat")]
    GoogleChat,
    Generic,
}

impl Provider {
    pub const ALL: [Provider; 5] = [
        Provider::Slack,
        Provider::Teams,
        Provider::Discord,
        Provider::GoogleChat,
        Provider::Generic,
    ];

    /// The name configuration uses: `slack`, `teams`, `discord`,
    /// `google-chat`, `generic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Slack => "slack",
            Provider::Teams => "teams",
            Provider::Discord => "discord",
            Provider::GoogleChat => "google-chat",
            Provider::Generic => "generic",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown chat provider {0:?}: expected one of slack, teams, discord, google-chat, generic")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "slack" => Ok(Provider::Slack),
            "teams" => Ok(Provider::Teams),
            "discord" => Ok(Provider::Discord),
            // The serde name too, so a value round-trips either way.
            "google-chat" | "google_chat" => Ok(Provider::GoogleChat),
            "generic" => Ok(Provider::Generic),
            _ => Err(UnknownProvider(s.to_owned())),
        }
    }
}

/// The JSON body to POST to `provider`'s webhook for `message`.
pub fn render(provider: Provider, message: &Message) -> serde_json::Value {
    match provider {
        Provider::Slack => slack::render(message),
        Provider::Teams => teams::render(message),
        Provider::Discord => discord::render(message),
        Provider::GoogleChat => google_chat::render(message),
        Provider::Generic => generic::render(message),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A failed pull-request build, with text that needs escaping.
    pub(crate) fn failed_pr() -> Message {
        picture::example()
    }

    /// A message whose every user-controlled string is `n` copies of `unit`.
    pub(crate) fn enormous(unit: &str, n: usize, result: BuildResult) -> Message {
        let big = unit.repeat(n);
        Message {
            project: big.clone(),
            repository: big.clone(),
            repository_url: format!("https://github.com/{}", "x".repeat(n)),
            branch: Some(big.clone()),
            tag: Some(big.clone()),
            pull_request: Some(PullRequestInfo {
                number: u64::MAX,
                title: big.clone(),
                author: big.clone(),
                url: format!("https://github.com/o/n/pull/{}", "9".repeat(n)),
            }),
            commit_sha: big.clone(),
            commit_message: Some(big.clone()),
            commit_url: Some(format!("https://github.com/o/n/commit/{}", "a".repeat(n))),
            author: Some(big.clone()),
            result,
            summary: big.clone(),
            duration_seconds: Some(u64::MAX),
            failed_phase: Some(big.clone()),
            build_url: Some(format!("https://console.aws.amazon.com/{}", "b".repeat(n))),
            logs_url: Some(format!("https://console.aws.amazon.com/{}", "c".repeat(n))),
            correlation_id: big,
        }
    }

    #[test]
    fn notify_durations_read_like_a_person_wrote_them() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(45), "45s");
        assert_eq!(format_duration(60), "1m 00s");
        assert_eq!(format_duration(192), "3m 12s");
        assert_eq!(format_duration(3599), "59m 59s");
        assert_eq!(format_duration(3720), "1h 02m");
        assert_eq!(format_duration(90_000), "25h 00m");
    }

    #[test]
    fn notify_headlines_name_the_repository_what_was_built_and_the_result() {
        let mut m = failed_pr();
        assert_eq!(m.headline(), "❌ octo-org/widgets #7 failed");
        m.pull_request = None;
        m.branch = Some("main".into());
        m.result = BuildResult::Succeeded;
        assert_eq!(m.headline(), "✅ octo-org/widgets main passed");
        m.tag = Some("v1.2.0".into());
        m.result = BuildResult::Fixed;
        assert_eq!(m.headline(), "💚 octo-org/widgets v1.2.0 fixed");
        m.tag = None;
        m.branch = None;
        assert_eq!(m.reference(), "1a2b3c4");
    }

    #[test]
    fn notify_colours_and_labels() {
        assert_eq!(BuildResult::Succeeded.colour(), BuildResult::Fixed.colour());
        assert_eq!(BuildResult::Failed.colour(), "#CF222E");
        assert_eq!(
            BuildResult::Errored.colour(),
            BuildResult::Rejected.colour()
        );
        assert_eq!(BuildResult::Stopped.colour(), BuildResult::Skipped.colour());
        assert_eq!(BuildResult::Started.colour(), BuildResult::Queued.colour());
        assert_eq!(BuildResult::Failed.colour_rgb(), 0xCF222E);
        for r in BuildResult::ALL {
            assert!(r.colour().len() == 7 && r.colour().starts_with('#'));
            assert!(!r.label().is_empty());
        }
        assert_eq!(BuildResult::Succeeded.label(), "passed");
        assert_eq!(
            serde_json::to_value(BuildResult::Superseded).unwrap(),
            "superseded"
        );
    }

    #[test]
    fn notify_providers_parse_from_their_configuration_names() {
        for p in Provider::ALL {
            assert_eq!(p.as_str().parse::<Provider>(), Ok(p));
            let json = serde_json::to_value(p).unwrap();
            assert_eq!(serde_json::from_value::<Provider>(json).unwrap(), p);
        }
        assert_eq!("Google-Chat".parse::<Provider>(), Ok(Provider::GoogleChat));
        assert_eq!(
            serde_json::from_str::<Provider>("\"google-chat\"").unwrap(),
            Provider::GoogleChat
        );
        let e = "mattermost".parse::<Provider>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown chat provider \"mattermost\": expected one of slack, teams, discord, google-chat, generic"
        );
    }

    #[test]
    fn notify_commit_titles_are_the_first_line() {
        let mut m = failed_pr();
        m.commit_message = Some("\n  Fix the cache\r\n\nbody".into());
        assert_eq!(m.commit_title().as_deref(), Some("Fix the cache"));
        m.commit_message = Some("   ".into());
        assert_eq!(m.commit_title(), None);
        m.commit_sha = "abc".into();
        assert_eq!(m.short_sha(), "abc");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,40}",
            "[<>&\"*_@#()\\[\\]`|\\\\\n\t😀中a]{0,3000}",
            any::<String>(),
        ]
    }

    fn url() -> impl Strategy<Value = String> {
        prop_oneof![
            "https://[a-z]{1,20}\\.example/[a-zA-Z0-9/%?=&#$|()]{0,4000}",
            text(),
        ]
    }

    prop_compose! {
        fn message()(
            strings in proptest::collection::vec(text(), 12),
            urls in proptest::collection::vec(url(), 5),
            opts in proptest::collection::vec(any::<bool>(), 10),
            number in any::<u64>(),
            duration in proptest::option::of(any::<u64>()),
            result in proptest::sample::select(BuildResult::ALL.to_vec()),
        ) -> Message {
            let some = |i: usize, s: &String| opts[i].then(|| s.clone());
            Message {
                project: strings[0].clone(),
                repository: strings[1].clone(),
                repository_url: urls[0].clone(),
                branch: some(0, &strings[2]),
                tag: some(1, &strings[3]),
                pull_request: opts[2].then(|| PullRequestInfo {
                    number,
                    title: strings[4].clone(),
                    author: strings[5].clone(),
                    url: urls[1].clone(),
                }),
                commit_sha: strings[6].clone(),
                commit_message: some(3, &strings[7]),
                commit_url: some(4, &urls[2]),
                author: some(5, &strings[8]),
                result,
                summary: strings[9].clone(),
                duration_seconds: duration,
                failed_phase: some(6, &strings[10]),
                build_url: some(7, &urls[3]),
                logs_url: some(8, &urls[4]),
                correlation_id: strings[11].clone(),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// For any message, every payload is valid JSON within every limit
        /// its service documents.
        #[test]
        fn notify_every_payload_respects_its_limits(m in message()) {
            for provider in Provider::ALL {
                let v = render(provider, &m);
                let bytes = serde_json::to_vec(&v).unwrap();
                let back: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                prop_assert_eq!(&back, &v);
            }
            slack::tests::check_limits(&render(Provider::Slack, &m));
            teams::tests::check_limits(&render(Provider::Teams, &m));
            discord::tests::check_limits(&render(Provider::Discord, &m));
            google_chat::tests::check_limits(&render(Provider::GoogleChat, &m));
            let generic: Message = serde_json::from_value(render(Provider::Generic, &m)).unwrap();
            prop_assert_eq!(generic, m);
        }
    }
}
