//! Commit statuses: the check mark, cross or dot GitHub shows beside a
//! commit (`POST /repos/{owner}/{repo}/statuses/{sha}`).
//!
//! Posting the same (sha, context, state, description) twice is harmless:
//! GitHub keeps the latest status per context, so a retried event only
//! repeats what is already shown.

use serde::{Deserialize, Serialize};

/// GitHub's limit on a status description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 140;

/// A commit status state, spelled as GitHub spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    Error,
}

impl StatusState {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }
}

/// One status to post. `description` is fitted with [`description`] and a
/// `target_url` that is not http(s) is dropped when posting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    pub state: StatusState,
    pub context: String,
    pub description: String,
    pub target_url: Option<String>,
}

/// `text` as a status description: one line (control characters and runs of
/// whitespace become one space, ends trimmed) of at most 140 characters,
/// cut with "…" when longer.
pub fn description(text: &str) -> String {
    let mut line = String::with_capacity(text.len().min(4 * MAX_DESCRIPTION_CHARS));
    for word in text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if line.chars().count() <= MAX_DESCRIPTION_CHARS {
        return line;
    }
    let mut cut: String = line.chars().take(MAX_DESCRIPTION_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_one_line_of_at_most_140_characters() {
        assert_eq!(description("  built\n\tin 3s  \r\n ok "), "built in 3s ok");
        assert_eq!(description(""), "");
        let exact = "é".repeat(140);
        assert_eq!(description(&exact), exact);
        let long = description(&"é".repeat(141));
        assert_eq!(long.chars().count(), 140);
        assert!(long.ends_with("é…"));
        let words = description(&"word ".repeat(40));
        assert!(
            words.chars().count() <= 140 && words.ends_with("word…"),
            "{words}"
        );
    }
}
