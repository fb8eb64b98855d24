//! Trigger rules: does this commit build, and if not, why not.

use crate::config::{BuildMember, Globs, RepositoryRules};
use crate::events::{BuildSource, ChangedPaths, PathRules, SkipCode, SkipReason, Trigger};

/// The directives that skip a build, as GitHub Actions reads them.
pub const SKIP_DIRECTIVES: &[&str] = &[
    "[skip ci]",
    "[ci skip]",
    "[no ci]",
    "[skip actions]",
    "[actions skip]",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Build,
    Skip(SkipReason),
}

fn skip(code: SkipCode, message: String) -> Decision {
    Decision::Skip(SkipReason { code, message })
}

/// Decides whether `source` builds under `rules`. Checks, in order: the
/// branch or tag, draft pull requests, skip directives, changed paths.
pub fn decide(rules: &RepositoryRules, source: &BuildSource) -> Decision {
    match decide_before_paths(rules, source) {
        Decision::Build => paths_rule(rules, source),
        skip => skip,
    }
}

/// [`decide`] for the named build `member` of `rules`: the repository's
/// rules, then the member's own path filters (the repository's when it
/// has none).
pub fn decide_member(
    rules: &RepositoryRules,
    member: &BuildMember,
    source: &BuildSource,
) -> Decision {
    match decide_before_paths(rules, source) {
        Decision::Build => {
            let filter = member_filter(rules, member);
            paths_decision(filter.0, filter.1, &source.changed_paths)
        }
        skip => skip,
    }
}

fn member_filter<'r>(
    rules: &'r RepositoryRules,
    member: &'r BuildMember,
) -> (Option<&'r Globs>, &'r Globs) {
    (
        member.paths.as_ref().or(rules.paths.as_ref()),
        member.paths_ignore.as_ref().unwrap_or(&rules.paths_ignore),
    )
}

/// The path filters a build of `rules` (or of its named build `member`)
/// is held to, as the events carry them; `None` when it has none.
pub fn path_rules(rules: &RepositoryRules, member: Option<&BuildMember>) -> Option<PathRules> {
    let (paths, ignore) = match member {
        Some(m) => member_filter(rules, m),
        None => (rules.paths.as_ref(), &rules.paths_ignore),
    };
    (paths.is_some() || !ignore.is_empty()).then(|| PathRules {
        paths: paths.map(|g| g.patterns().map(str::to_owned).collect()),
        paths_ignore: ignore.patterns().map(str::to_owned).collect(),
    })
}

/// Holds a pull request's files, read from GitHub, to the rules its
/// request carried. Patterns that no longer compile (they compiled in the
/// webhook) build.
pub fn decide_paths(rules: &PathRules, changed: &ChangedPaths) -> Decision {
    let paths = match rules.paths.as_deref().map(Globs::new).transpose() {
        Ok(p) => p,
        Err(_) => return Decision::Build,
    };
    let Ok(ignore) = Globs::new(&rules.paths_ignore) else {
        return Decision::Build;
    };
    paths_decision(paths.as_ref(), &ignore, changed)
}

fn decide_before_paths(rules: &RepositoryRules, source: &BuildSource) -> Decision {
    if let Some(decision) = ref_rule(rules, source) {
        return decision;
    }
    if let Some(pr) = &source.pull_request
        && pr.draft
        && !rules.pull_request.drafts
    {
        return skip(
            SkipCode::Draft,
            "draft pull request; builds when marked ready for review".into(),
        );
    }
    if rules.skip_directives {
        // Only a push's head commit message is read. A pull request's
        // payload carries no commit message, and its title and body can be
        // edited by the author without a new commit: a `[skip ci]` there
        // would turn a commit whose build failed green without a build.
        let text = match source.trigger {
            Trigger::Push => source.head_commit.as_ref().map(|c| c.message.as_str()),
            Trigger::PullRequest | Trigger::Manual | Trigger::Schedule => None,
        };
        if let Some(directive) = text.and_then(skip_directive) {
            return skip(
                SkipCode::Directive,
                format!("{directive} in the commit message"),
            );
        }
    }
    Decision::Build
}

fn ref_rule(rules: &RepositoryRules, source: &BuildSource) -> Option<Decision> {
    match source.trigger {
        // Asked for by name: no branch rule stands between.
        Trigger::Manual | Trigger::Schedule => None,
        Trigger::Push => {
            let push = &rules.push;
            if let Some(tag) = &source.tag {
                if push.tags.is_empty() || !push.tags.is_match(tag) {
                    return Some(skip(
                        SkipCode::Tag,
                        format!("tag `{tag}` is not in push.tags"),
                    ));
                }
                if push.tags_ignore.is_match(tag) {
                    return Some(skip(
                        SkipCode::Tag,
                        format!("tag `{tag}` matches push.tags-ignore"),
                    ));
                }
                return None;
            }
            let branch = source.branch.as_deref().unwrap_or_default();
            let listed = match &push.branches {
                Some(globs) => globs.is_match(branch),
                // Only the default branch, so a pull request and a push of
                // the same commit do not build twice.
                None => source
                    .repository
                    .default_branch
                    .as_deref()
                    .is_none_or(|default| default == branch),
            };
            if !listed {
                let why = if push.branches.is_some() {
                    "is not in push.branches"
                } else {
                    "is not the default branch (push.branches is not set)"
                };
                return Some(skip(SkipCode::Branch, format!("branch `{branch}` {why}")));
            }
            if push.branches_ignore.is_match(branch) {
                return Some(skip(
                    SkipCode::Branch,
                    format!("branch `{branch}` matches push.branches-ignore"),
                ));
            }
            None
        }
        Trigger::PullRequest => {
            let pr_rules = &rules.pull_request;
            let base = source
                .pull_request
                .as_ref()
                .map(|pr| pr.base_branch.as_str())
                .unwrap_or_default();
            if pr_rules
                .branches
                .as_ref()
                .is_some_and(|g| !g.is_match(base))
            {
                return Some(skip(
                    SkipCode::Branch,
                    format!("base branch `{base}` is not in pull-request.branches"),
                ));
            }
            if pr_rules.branches_ignore.is_match(base) {
                return Some(skip(
                    SkipCode::Branch,
                    format!("base branch `{base}` matches pull-request.branches-ignore"),
                ));
            }
            None
        }
    }
}

fn paths_rule(rules: &RepositoryRules, source: &BuildSource) -> Decision {
    paths_decision(
        rules.paths.as_ref(),
        &rules.paths_ignore,
        &source.changed_paths,
    )
}

fn paths_decision(paths: Option<&Globs>, ignore: &Globs, changed: &ChangedPaths) -> Decision {
    if paths.is_none() && ignore.is_empty() {
        return Decision::Build;
    }
    if changed.truncated {
        return Decision::Build;
    }
    let matched = changed
        .paths
        .iter()
        .any(|p| !ignore.is_match(p) && paths.is_none_or(|g| g.is_match(p)));
    if matched {
        Decision::Build
    } else {
        let why = if paths.is_some() {
            "no changed path matches paths"
        } else {
            "every changed path matches paths-ignore"
        };
        skip(
            SkipCode::Paths,
            format!("{why} ({} changed)", changed.paths.len()),
        )
    }
}

/// The skip directive in a commit message, if any: one of
/// [`SKIP_DIRECTIVES`] anywhere, or a `skip-checks: true` trailer.
pub fn skip_directive(message: &str) -> Option<&'static str> {
    let lower = message.to_ascii_lowercase();
    if let Some(d) = SKIP_DIRECTIVES.iter().find(|d| lower.contains(*d)) {
        return Some(d);
    }
    // Trailers are the last paragraph of the message.
    let last_paragraph = lower.trim_end().rsplit("\n\n").next().unwrap_or_default();
    let trailer = last_paragraph.lines().any(|line| {
        line.trim()
            .strip_prefix("skip-checks:")
            .is_some_and(|v| v.trim() == "true")
    });
    trailer.then_some("skip-checks: true")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::events::{ChangedPaths, HeadCommit, PullRequestRef, RepositoryRef};

    fn source(branch: &str) -> BuildSource {
        BuildSource {
            trigger: Trigger::Push,
            repository: RepositoryRef {
                full_name: "octo/app".into(),
                owner: "octo".into(),
                name: "app".into(),
                clone_url: "https://github.com/octo/app.git".into(),
                html_url: "https://github.com/octo/app".into(),
                default_branch: Some("main".into()),
                private: false,
            },
            commit_sha: "a".repeat(40).into(),
            git_ref: format!("refs/heads/{branch}"),
            branch: Some(branch.into()),
            tag: None,
            pull_request: None,
            fork: false,
            pusher: Some("octocat".into()),
            sender: Some("octocat".into()),
            head_commit: Some(HeadCommit {
                message: "Fix the widget".into(),
                url: None,
            }),
            changed_paths: ChangedPaths {
                paths: vec!["src/lib.rs".into()],
                truncated: false,
            },
            compare_url: None,
            signed_at_ms: 0,
            received_at_ms: 0,
            installation_id: None,
            attempt: 1,
            member: None,
            run: None,
            compute: Default::default(),
        }
    }

    fn rules(yaml: &str) -> RepositoryRules {
        let text = format!("version: 1\nrepositories:\n  - name: octo/app\n    project: p\n{yaml}");
        let (config, _) = Config::parse(&text).expect("valid test config");
        config.repositories[0].clone()
    }

    fn code(d: Decision) -> Option<SkipCode> {
        match d {
            Decision::Build => None,
            Decision::Skip(r) => Some(r.code),
        }
    }

    #[test]
    fn without_push_branches_only_the_default_branch_builds() {
        let r = rules("");
        assert_eq!(decide(&r, &source("main")), Decision::Build);
        assert_eq!(code(decide(&r, &source("feature"))), Some(SkipCode::Branch));
    }

    #[test]
    fn branch_globs_and_excludes() {
        let r = rules(
            "    push:\n      branches: ['release/*', main]\n      branches-ignore: ['release/old']\n",
        );
        assert_eq!(decide(&r, &source("release/2.0")), Decision::Build);
        assert_eq!(
            code(decide(&r, &source("release/old"))),
            Some(SkipCode::Branch)
        );
        assert_eq!(
            code(decide(&r, &source("release/2.0/x"))),
            Some(SkipCode::Branch)
        );
    }

    #[test]
    fn tags_build_only_when_listed() {
        let mut s = source("main");
        s.branch = None;
        s.tag = Some("v1.2".into());
        assert_eq!(code(decide(&rules(""), &s)), Some(SkipCode::Tag));
        let r = rules("    push:\n      tags: ['v*']\n      tags-ignore: ['v0*']\n");
        assert_eq!(decide(&r, &s), Decision::Build);
        s.tag = Some("v0.1".into());
        assert_eq!(code(decide(&r, &s)), Some(SkipCode::Tag));
    }

    #[test]
    fn every_skip_directive_and_the_trailer_skip() {
        let r = rules("");
        for message in [
            "Fix [skip ci]",
            "[ci skip] docs",
            "x [no ci]",
            "[SKIP ACTIONS] typo",
            "y [actions skip]",
            "Fix typo\n\nskip-checks: true\n",
            "Fix typo\n\nSigned-off-by: a <a@b>\nskip-checks:true",
        ] {
            let mut s = source("main");
            s.head_commit = Some(HeadCommit {
                message: message.into(),
                url: None,
            });
            assert_eq!(
                code(decide(&r, &s)),
                Some(SkipCode::Directive),
                "{message:?}"
            );
        }
        let mut s = source("main");
        s.head_commit = Some(HeadCommit {
            message: "skip-checks: true\n\nnot a trailer".into(),
            url: None,
        });
        assert_eq!(decide(&r, &s), Decision::Build);
    }

    #[test]
    fn directives_can_be_turned_off() {
        let r = rules("    skip-directives: false\n");
        let mut s = source("main");
        s.head_commit = Some(HeadCommit {
            message: "[skip ci]".into(),
            url: None,
        });
        assert_eq!(decide(&r, &s), Decision::Build);
    }

    #[test]
    fn paths_and_excludes_and_truncation() {
        let r = rules("    paths: ['src/**']\n    paths-ignore: ['src/**/*.md']\n");
        let mut s = source("main");
        assert_eq!(decide(&r, &s), Decision::Build);
        s.changed_paths.paths = vec!["docs/a.md".into(), "src/x/README.md".into()];
        assert_eq!(code(decide(&r, &s)), Some(SkipCode::Paths));
        s.changed_paths.truncated = true;
        assert_eq!(
            decide(&r, &s),
            Decision::Build,
            "a truncated list counts as matching"
        );
        let r = rules("    paths-ignore: ['docs/**']\n");
        s.changed_paths = ChangedPaths {
            paths: vec!["docs/a.md".into()],
            truncated: false,
        };
        assert_eq!(code(decide(&r, &s)), Some(SkipCode::Paths));
    }

    #[test]
    fn pull_requests_filter_on_base_branch_and_drafts() {
        let mut s = source("feature");
        s.trigger = Trigger::PullRequest;
        s.head_commit = None;
        s.pull_request = Some(PullRequestRef {
            number: 7,
            title: "Add a thing".into(),
            author: "octocat".into(),
            url: "https://github.com/octo/app/pull/7".into(),
            action: "opened".into(),
            base_branch: "main".into(),
            base_sha: "b".repeat(40).into(),
            head_branch: "feature".into(),
            head_repository: Some("octo/app".into()),
            draft: false,
            approved_by: None,
            label: None,
        });
        assert_eq!(decide(&rules(""), &s), Decision::Build);
        let r = rules("    pull-request:\n      branches: [develop]\n");
        assert_eq!(code(decide(&r, &s)), Some(SkipCode::Branch));
        if let Some(pr) = s.pull_request.as_mut() {
            pr.draft = true;
        }
        assert_eq!(code(decide(&rules(""), &s)), Some(SkipCode::Draft));
        let r = rules("    pull-request:\n      drafts: true\n");
        assert_eq!(decide(&r, &s), Decision::Build);
    }

    #[test]
    fn a_pull_request_builds_whatever_its_title_or_any_message_says() {
        let mut s = source("feature");
        s.trigger = Trigger::PullRequest;
        s.pull_request = Some(PullRequestRef {
            number: 7,
            title: "[skip ci] Fix the widget".into(),
            author: "mallory".into(),
            url: "https://github.com/octo/app/pull/7".into(),
            action: "reopened".into(),
            base_branch: "main".into(),
            base_sha: "b".repeat(40).into(),
            head_branch: "feature".into(),
            head_repository: Some("mallory/app".into()),
            draft: false,
            approved_by: None,
            label: None,
        });
        s.head_commit = None;
        assert_eq!(decide(&rules(""), &s), Decision::Build, "title");
        // Even a message carried along (none is, today) does not count.
        s.head_commit = Some(HeadCommit {
            message: "[skip ci]".into(),
            url: None,
        });
        assert_eq!(decide(&rules(""), &s), Decision::Build, "message");
    }
}
