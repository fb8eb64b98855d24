//! `gantry.yaml`: which repositories build, on which CodeBuild project, and
//! when.
//!
//! ```yaml
//! version: 1
//! defaults:
//!   project: gantry-build
//! repositories:
//!   - name: octo-org/widgets        # a glob over owner/name
//!     push:
//!       branches: [main, "release/*"]
//!       tags: ["v*"]
//!     pull-request:
//!       branches: [main]            # base branches
//!       drafts: false
//!     paths-ignore: ["docs/**"]
//!     secrets:                      # variable → SSM parameter, by name only
//!       DOCKER_USERNAME: /gantry/docker/username
//!       DOCKER_PASSWORD: /gantry/docker/password
//!     forks: no-secrets             # or `approval`
//!     cancel-superseded: true
//!     status:
//!       context: gantry/widgets     # default gantry/<project>
//!       superseded: error           # error | failure | success
//!       aggregate: gantry/all       # with `builds:`, the summing context
//!     builds:                       # several named builds per commit
//!       - name: lint                # context gantry/lint
//!         buildspec: ci/lint.yml
//!         paths: ["src/**"]
//!     schedules:                    # only for a repository named outright
//!       - name: nightly
//!         cron: "0 3 * * *"
//!         time-zone: Europe/Berlin
//!     notifications:
//!       - provider: slack           # slack | teams | discord | google-chat | generic
//!         url-parameter: /gantry/notify/slack   # SSM SecureString: the webhook URL
//!         branches: [main]          # optional: the push branch or the PR's base
//!         when: changes             # always | failures | changes
//! ```
//!
//! Globs follow GitHub Actions: `*` stays within one path segment, `**`
//! crosses them. Unknown keys are errors, reported with line and column, all
//! at once.

use globset::{Glob, GlobBuilder, GlobSet};

use crate::diagnostic::{Diagnostic, has_errors};
use crate::notify::Provider;
use crate::yaml::{self, Pos};

mod decode;

use decode::decode_config;

/// A list of globs, each checked when parsed; the list is compiled into one
/// matcher on its first use, so a configuration's parse does not compile
/// the lists of entries a delivery never looks at. A list longer than
/// [`LAZY_LIST_BYTES`] is compiled at once, so that a list too large to
/// compile is refused where it is written.
#[derive(Debug, Clone)]
pub struct Globs {
    /// Shared by clones: `defaults`' lists, copied into every entry,
    /// compile once.
    list: std::sync::Arc<GlobList>,
}

/// The parsed globs (each keeps the pattern it was written as) and their
/// matcher, once compiled.
#[derive(Debug)]
struct GlobList {
    globs: Vec<Glob>,
    set: std::sync::OnceLock<GlobSet>,
}

/// The most pattern bytes one list may have to be compiled on first use.
/// globset refuses a list only past its regex size limit, reached from
/// about 128 KB of the costliest patterns (`?` after `?`, a list of
/// thousands of `*?*?`); the test `lists_compiled_on_first_use_compile`
/// holds the costliest shapes of this size to compiling, with room to
/// spare, so compiling on first use cannot fail.
pub const LAZY_LIST_BYTES: usize = 16 * 1024;

impl Globs {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, globset::Error> {
        let globs = patterns
            .iter()
            .map(|p| glob(p.as_ref(), false))
            .collect::<Result<Vec<_>, _>>()?;
        Self::of(globs)
    }

    /// The list of `globs`, compiled now if it is longer than
    /// [`LAZY_LIST_BYTES`].
    fn of(globs: Vec<Glob>) -> Result<Self, globset::Error> {
        let set = std::sync::OnceLock::new();
        if globs.iter().map(|g| g.glob().len()).sum::<usize>() > LAZY_LIST_BYTES {
            let _ = set.set(GlobSet::new(&globs)?);
        }
        Ok(Globs {
            list: std::sync::Arc::new(GlobList { globs, set }),
        })
    }

    pub fn empty() -> Self {
        Globs {
            list: std::sync::Arc::new(GlobList {
                globs: Vec::new(),
                set: std::sync::OnceLock::from(GlobSet::empty()),
            }),
        }
    }

    pub fn is_match(&self, candidate: &str) -> bool {
        let GlobList { globs, set } = &*self.list;
        set.get_or_init(|| {
            // Only lists within LAZY_LIST_BYTES get here: see its test.
            GlobSet::new(globs).unwrap_or_else(|e| {
                unreachable!("a list of at most {LAZY_LIST_BYTES} bytes compiles: {e}")
            })
        })
        .is_match(candidate)
    }

    /// Whether the list is compiled yet.
    #[cfg(test)]
    fn is_compiled(&self) -> bool {
        self.list.set.get().is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.list.globs.is_empty()
    }

    /// The patterns as written, in order.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.list.globs.iter().map(Glob::glob)
    }
}

/// A `repositories` entry's name as a glob, matched case-insensitively as
/// GitHub matches owner and repository names. globset's case-insensitive
/// globs fold ASCII letters only, so a name without a class is compiled
/// ASCII-lowercased and case-sensitive, and the candidate is lowercased to
/// meet it ([`fold_name`]): globset then matches a name without wildcards
/// by lookup instead of compiling a regex (twenty such names: 258 µs as
/// regexes, 27 µs as lookups). A name with a class (`[A-Z]`, whose range
/// lowercasing would change) compiles case-insensitive, and matches the
/// lowercased candidate as it matches the candidate itself.
fn name_glob(name: &str) -> Result<Glob, globset::Error> {
    if name.contains('[') {
        glob(name, true)
    } else {
        glob(&name.to_ascii_lowercase(), false)
    }
}

/// `name` with ASCII capitals lowercased: what globset's case-insensitive
/// matching folds (the test `folding_a_name_is_what_a_case_insensitive_glob_does`
/// checks every character).
fn fold_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

fn glob(pattern: &str, case_insensitive: bool) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .case_insensitive(case_insensitive)
        .backslash_escape(true)
        .build()
}

/// When a push builds.
#[derive(Debug, Clone)]
pub struct PushRules {
    /// `None`: only the repository's default branch.
    pub branches: Option<Globs>,
    pub branches_ignore: Globs,
    /// Tags build only when listed.
    pub tags: Globs,
    pub tags_ignore: Globs,
}

/// When a pull request builds.
#[derive(Debug, Clone)]
pub struct PullRequestRules {
    /// Base branches; `None`: every base branch.
    pub branches: Option<Globs>,
    pub branches_ignore: Globs,
    /// Build draft pull requests too.
    pub drafts: bool,
}

/// The rules for the repositories one `repositories` entry matches.
#[derive(Debug, Clone)]
pub struct RepositoryRules {
    pub name: String,
    pub project: String,
    /// Path of the buildspec in the repository; `None`: the project's own.
    pub buildspec: Option<String>,
    pub push: PushRules,
    pub pull_request: PullRequestRules,
    /// `None`: every path.
    pub paths: Option<Globs>,
    pub paths_ignore: Globs,
    /// Honour `[skip ci]` and friends.
    pub skip_directives: bool,
    /// Environment variable → SSM parameter name, in the order written.
    pub secrets: Vec<(String, String)>,
    pub forks: ForkPolicy,
    /// The label whose addition approves a fork's head commit.
    pub approval_label: String,
    /// A newer commit stops the older in-progress build of its branch or
    /// pull request.
    pub cancel_superseded: bool,
    pub status: StatusSettings,
    pub notifications: Vec<Route>,
    /// A private repository's badges are public too (with
    /// `PublicBadges=true`); by default they are not.
    pub public_badge: bool,
    /// Several named builds per commit, each its own chain and status
    /// context; empty: the one build above.
    pub builds: Vec<BuildMember>,
    /// Builds started on a clock (only for a repository named without
    /// globs: a schedule builds one repository).
    pub schedules: Vec<crate::schedule::ScheduleRule>,
    /// The compute type, image and timeout its builds override the
    /// project's with (a named build's own win).
    pub compute: crate::events::Compute,
}

/// The most named builds one repository entry may list: their requests
/// go to EventBridge in one PutEvents call.
pub const MAX_BUILDS: usize = 10;

/// The aggregate status context of a repository with `builds:`, when
/// `status.aggregate` does not name one.
pub const DEFAULT_AGGREGATE_CONTEXT: &str = "gantry/all";

/// One `builds:` entry: a build of its own per commit.
#[derive(Debug, Clone)]
pub struct BuildMember {
    /// Letters, digits, `-` and `_`: it names the status context
    /// (`gantry/<name>`), the correlation ids and the supersession group.
    pub name: String,
    pub project: String,
    pub buildspec: Option<String>,
    /// Its own compute, image and timeout (unset: the repository's).
    pub compute: crate::events::Compute,
    pub environment: Vec<(String, String)>,
    /// `None`: the repository's `paths`.
    pub paths: Option<Globs>,
    /// `None`: the repository's `paths-ignore`.
    pub paths_ignore: Option<Globs>,
    /// `None`: `gantry/<name>`.
    pub context: Option<String>,
}

impl BuildMember {
    pub fn context(&self) -> String {
        self.context
            .clone()
            .unwrap_or_else(|| format!("gantry/{}", self.name))
    }

    /// What the events carry of it, requested together with `of`.
    pub fn event_member(&self, of: &[String]) -> crate::events::Member {
        crate::events::Member {
            of: of.to_vec(),
            name: self.name.clone(),
            environment: self
                .environment
                .iter()
                .map(|(name, value)| crate::events::Variable {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        }
    }
}

/// Is `name` usable as a build's name?
pub fn check_member_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a build name (letters, digits, `-` and `_`, at most 64)"
        ))
    }
}

/// How commit statuses look.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusSettings {
    /// `None`: `gantry/<project>`.
    pub context: Option<String>,
    /// The state a superseded build's commit gets.
    pub superseded: SupersededState,
    /// With `builds:`, the context that sums them up; `None`:
    /// [`DEFAULT_AGGREGATE_CONTEXT`].
    pub aggregate: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SupersededState {
    #[default]
    Error,
    Failure,
    Success,
}

impl StatusSettings {
    pub fn context(&self, project: &str) -> String {
        self.context
            .clone()
            .unwrap_or_else(|| format!("gantry/{project}"))
    }
}

/// When a route posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum When {
    /// Every finished build.
    Always,
    /// Failed, errored, timed out and rejected builds.
    Failures,
    /// A result different from the previous build's of the same branch or
    /// pull request, "fixed" included; and every failure.
    #[default]
    Changes,
}

/// One chat destination.
#[derive(Debug, Clone)]
pub struct Route {
    pub provider: Provider,
    /// The SSM SecureString holding the webhook URL.
    pub url_parameter: String,
    /// `None`: every branch.
    pub branches: Option<Globs>,
    pub when: When,
}

/// What a pull request from a fork gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForkPolicy {
    /// It builds at once, with the base branch's buildspec, no secret
    /// references and the untrusted role.
    #[default]
    NoSecrets,
    /// It waits until a maintainer adds the approval label, then builds
    /// that head commit with the repository's secrets.
    Approval,
}

/// The label that approves a fork's pull request when none is configured.
pub const DEFAULT_APPROVAL_LABEL: &str = "gantry:approved";

/// The projects are named `<prefix><domain>` (template.yaml's
/// `ProjectPrefix`).
pub const DEFAULT_PROJECT_PREFIX: &str = "gantry-";

/// A deployment's trust domains: each CodeBuild project is one, named
/// `<project_prefix><domain>`, and its builds may read SSM parameters under
/// `<secrets_prefix><domain>/` only (template.yaml gives each domain's role
/// exactly that path). A repository is in the domain of the project
/// gantry.yaml maps it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustDomains {
    /// `/gantry/`: starts and ends with `/`.
    pub secrets_prefix: String,
    pub project_prefix: String,
}

impl TrustDomains {
    /// The domain `project` builds in; `None` for a project not named as
    /// Gantry names its projects.
    pub fn domain<'p>(&self, project: &'p str) -> Option<&'p str> {
        project
            .strip_prefix(self.project_prefix.as_str())
            .filter(|d| !d.is_empty())
    }

    /// The one path `project`'s builds may read secrets under.
    pub fn secrets_path(&self, project: &str) -> Option<String> {
        self.domain(project)
            .map(|d| format!("{}{d}/", self.secrets_prefix))
    }

    /// May a build of `project` reference `parameter`? Only below its
    /// domain's path: a path, not a string prefix (`/gantry/web/` does not
    /// hold `/gantry/website/x`).
    pub fn allows(&self, project: &str, parameter: &str) -> bool {
        self.secrets_path(project)
            .is_some_and(|path| parameter.starts_with(&path) && parameter.len() > path.len())
    }
}

impl RepositoryRules {
    /// The named build `name` of `builds:`.
    pub fn member(&self, name: &str) -> Option<&BuildMember> {
        self.builds.iter().find(|m| m.name == name)
    }

    /// The status context of a build of `project`, or of the named build
    /// `member`.
    pub fn context_of(&self, project: &str, member: Option<&str>) -> String {
        match member.and_then(|m| self.member(m)) {
            Some(m) => m.context(),
            None => self.status.context(project),
        }
    }

    /// The aggregate context, for a repository with `builds:`.
    pub fn aggregate_context(&self) -> Option<String> {
        (!self.builds.is_empty()).then(|| {
            self.status
                .aggregate
                .clone()
                .unwrap_or_else(|| DEFAULT_AGGREGATE_CONTEXT.to_owned())
        })
    }
}

/// Settings only `gantry dev` reads.
#[derive(Debug, Clone, Default)]
pub struct DevSettings {
    pub webhook_secret: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub repositories: Vec<RepositoryRules>,
    /// The entries' names (case-insensitive globs) in batches, in their
    /// order: each batch with the index of its first entry, its n-th glob
    /// that of the entry n places on.
    names: Vec<(usize, GlobSet)>,
    pub dev: DevSettings,
    /// `github-app.installations`: the App installations whose deliveries
    /// are served; `None` (unset) serves any. With a rule for every
    /// repository (`name: "**"`), this is what keeps an installation
    /// Gantry does not know out.
    pub installations: Option<Vec<u64>>,
}

/// The configuration `gantry dev` uses when given none: every repository,
/// branch, tag and pull request builds on the project `gantry-dev`, and
/// every result is told to a Slack-shaped route (`gantry dev` points its
/// URL at a local sink that prints what it receives).
pub const DEV_CONFIG: &str = "\
version: 1
repositories:
  - name: \"**\"
    project: gantry-dev
    push:
      branches: [\"**\"]
      tags: [\"**\"]
    pull-request:
      drafts: false
    notifications:
      - provider: slack
        url-parameter: /gantry/notify/dev-slack
        when: always
dev:
  webhook-secret: gantry-dev-secret
";

impl Config {
    /// Parses and checks `gantry.yaml`. Errors come back all together;
    /// warnings are returned beside a usable configuration.
    pub fn parse(text: &str) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
        let mut diags = Vec::new();
        let root = match yaml::parse(text, yaml::Limits::default()) {
            Ok(Some(root)) => root,
            Ok(None) => {
                return Err(vec![Diagnostic::error(
                    Pos { line: 1, col: 1 },
                    "",
                    "the file is empty; it needs at least `version: 1` and `repositories`",
                )]);
            }
            Err(e) => return Err(vec![Diagnostic::error(e.pos, "", e.message)]),
        };
        let config = decode_config(&root, &mut diags);
        if has_errors(&diags) {
            return Err(diags);
        }
        match config {
            Some(config) => Ok((config, diags)),
            None => Err(diags),
        }
    }

    /// The built-in development configuration.
    pub fn dev() -> Config {
        match Config::parse(DEV_CONFIG) {
            Ok((config, _)) => config,
            // DEV_CONFIG is a constant checked by a test.
            Err(_) => Config {
                repositories: Vec::new(),
                names: Vec::new(),
                dev: DevSettings::default(),
                installations: None,
            },
        }
    }

    /// Why a delivery through App installation `installation` is not
    /// served, if it is not. A delivery that names none (a repository's
    /// own webhook) is not an installation's to refuse.
    pub fn refuses_installation(&self, installation: Option<u64>) -> Option<String> {
        let (Some(allowed), Some(id)) = (&self.installations, installation) else {
            return None;
        };
        (!allowed.contains(&id)).then(|| {
            format!("App installation {id} is not in gantry.yaml's github-app.installations")
        })
    }

    /// The first entry whose name matches `full_name` (`owner/name`).
    pub fn repository(&self, full_name: &str) -> Option<&RepositoryRules> {
        let folded = fold_name(full_name);
        // The batches are in the entries' order: the first batch with a
        // match holds the first entry that matches.
        let first = self
            .names
            .iter()
            .find_map(|(start, set)| Some(start + set.matches(&*folded).into_iter().min()?))?;
        self.repositories.get(first)
    }
}

/// A shell variable's name: letters, digits and `_`, not starting with a
/// digit (reserved prefixes allowed: see [`check_variable_name`]).
pub fn check_shell_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "`{name}` is not an environment variable name (letters, digits and `_`, not starting with a digit)"
        ));
    }
    Ok(())
}

/// An environment variable name gantry.yaml or a manual run may give a
/// build: a shell name, not one of CodeBuild's or Gantry's own.
pub fn check_variable_name(name: &str) -> Result<(), String> {
    check_shell_name(name)?;
    let upper = name.to_ascii_uppercase();
    for reserved in ["CODEBUILD_", "GANTRY_"] {
        if upper.starts_with(reserved) {
            return Err(format!(
                "`{name}`: names starting with `{reserved}` are reserved"
            ));
        }
    }
    Ok(())
}

/// An SSM parameter name, as Parameter Store accepts it.
/// <https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html>
pub fn check_parameter_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/'));
    if name.is_empty() || name.len() > 1011 || !ok_chars {
        return Err(format!(
            "`{name}` is not an SSM parameter name (letters, digits and `_.-/`, at most 1011 characters)"
        ));
    }
    let lower = name.trim_start_matches('/').to_ascii_lowercase();
    if lower.starts_with("aws") || lower.starts_with("ssm") {
        return Err(format!(
            "`{name}`: names starting with `aws` or `ssm` are reserved by Parameter Store"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_projects_builds_may_reference_only_their_own_domains_secrets() {
        let domains = TrustDomains {
            secrets_prefix: "/gantry/".into(),
            project_prefix: "gantry-".into(),
        };
        assert_eq!(domains.domain("gantry-web"), Some("web"));
        assert_eq!(
            domains.secrets_path("gantry-web").as_deref(),
            Some("/gantry/web/")
        );
        assert!(domains.allows("gantry-web", "/gantry/web/docker/password"));
        for other in [
            "/gantry/api/docker/password",
            "/gantry/website/x",
            "/gantry/web/",
            "/gantry/webhook-secret",
            "/other/web/x",
        ] {
            assert!(!domains.allows("gantry-web", other), "{other}");
        }
        // A project Gantry did not create is no domain: it reads nothing.
        assert_eq!(domains.domain("someone-elses"), None);
        assert_eq!(domains.domain("gantry-"), None);
        assert!(!domains.allows("someone-elses", "/gantry/someone-elses/x"));
    }

    #[test]
    fn the_dev_configuration_parses_and_builds_everything() {
        let (config, warnings) = Config::parse(DEV_CONFIG).expect("DEV_CONFIG is valid");
        assert!(warnings.is_empty());
        let rules = config
            .repository("Codertocat/Hello-World")
            .expect("matches every repository");
        assert_eq!(rules.project, "gantry-dev");
        assert!(
            rules
                .push
                .branches
                .as_ref()
                .is_some_and(|b| b.is_match("feature/a/b"))
        );
        assert!(rules.push.tags.is_match("v1.2.3"));
        assert_eq!(
            config.dev.webhook_secret.as_deref(),
            Some("gantry-dev-secret")
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_line_column_and_a_suggestion() {
        let text = "version: 1\nrepositories:\n  - name: a/b\n    project: p\n    brnaches: [main]\n    push:\n      branch: [main]\n";
        let errs = Config::parse(text).expect_err("unknown keys");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!((errs[0].line, errs[0].col), (5, 5));
        assert_eq!(errs[0].path, "repositories[0].brnaches");
        assert_eq!((errs[1].line, errs[1].col), (7, 7));
        assert!(
            errs[1].message.contains("did you mean `branches`"),
            "{}",
            errs[1].message
        );
    }

    #[test]
    fn several_problems_are_reported_at_once() {
        let text = "version: 2\nrepositories:\n  - project: p\n  - name: x/y\n    paths: ['[']\n";
        let errs = Config::parse(text).expect_err("invalid");
        let paths: Vec<&str> = errs.iter().map(|d| d.path.as_str()).collect();
        assert!(paths.contains(&"version"), "{paths:?}");
        assert!(paths.contains(&"repositories[1].paths[0]"), "{paths:?}");
        assert!(paths.contains(&"repositories[0]"), "{paths:?}");
    }

    proptest::proptest! {
        /// The lookup through one set of every entry's name is the first
        /// entry whose name, compiled alone and case-insensitive, matches:
        /// overlapping globs, any case, characters that fold to ASCII.
        #[test]
        fn a_repository_is_the_first_entry_whose_name_matches(
            names in proptest::collection::vec(
                proptest::sample::select(vec![
                    "octo-org/widgets", "Octo-Org/*", "octo-org/w*", "*/widgets",
                    "**", "other/{a,b}", "o?her/a", "[a-o]*/b", "octo-org/**",
                    "kits/*", "KITS/Sets", "*/\u{17F}ets", "[J-l]its/**", "\\kits/s?ts", "\u{C9}t\u{C9}/*",
                ]),
                1..6,
            ),
            owner in proptest::sample::select(vec![
                "octo-org", "OCTO-org", "other", "ozher", "n", "kits", "KITS", "\u{212A}its", "_its", "\u{E9}t\u{E9}", "\u{C9}t\u{C9}",
            ]),
            repo in proptest::sample::select(vec![
                "widgets", "WIDGETS", "a", "b", "w", "x/y", "sets", "SETS", "\u{17F}ets",
            ]),
        ) {
            let mut text = String::from("version: 1\nrepositories:\n");
            for (i, name) in names.iter().enumerate() {
                text.push_str(&format!("  - name: '{name}'\n    project: p{i}\n"));
            }
            let (config, _) = Config::parse(&text).expect("valid");
            let full_name = format!("{owner}/{repo}");
            let expected = names.iter().position(|n| {
                glob(n, true).expect("a valid glob").compile_matcher().is_match(&full_name)
            });
            let found = config.repository(&full_name).map(|r| r.project.clone());
            proptest::prop_assert_eq!(found, expected.map(|i| format!("p{i}")));
        }
    }

    #[test]
    fn folding_a_name_is_what_a_case_insensitive_glob_does() {
        // No character beyond ASCII matches a case-insensitive glob of an
        // ASCII letter (searched by halving the blocks of characters that
        // would hold one) ...
        let letters = glob("*[a-z]*", true).expect("valid").compile_matcher();
        let mut found = Vec::new();
        let mut blocks: Vec<Vec<char>> = (0x80..=0x10FFFF_u32)
            .filter_map(char::from_u32)
            .collect::<Vec<_>>()
            .chunks(4096)
            .map(<[char]>::to_vec)
            .collect();
        while let Some(block) = blocks.pop() {
            if !letters.is_match(block.iter().collect::<String>()) {
                continue;
            }
            match block.as_slice() {
                [c] => found.push(*c),
                _ => {
                    let (a, b) = block.split_at(block.len() / 2);
                    blocks.extend([a.to_vec(), b.to_vec()]);
                }
            }
        }
        assert_eq!(found, [], "characters beyond ASCII that fold to a letter");
        // ... nor one of a letter beyond ASCII to its other case ...
        for (pattern, other) in [("é", "É"), ("É", "é"), ("σ", "Σ"), ("[é]", "É")] {
            assert!(
                !glob(pattern, true)
                    .expect("valid")
                    .compile_matcher()
                    .is_match(other)
            );
        }
        // ... and an ASCII letter matches exactly its two cases, which
        // folding makes one.
        for c in ('A'..='Z').chain('a'..='z') {
            for letter in 'a'..='z' {
                let alone = glob(&letter.to_string(), true)
                    .expect("valid")
                    .compile_matcher();
                let folded = fold_name(&c.to_string()).into_owned();
                assert_eq!(
                    alone.is_match(c.to_string()),
                    folded == letter.to_string(),
                    "{c:?}"
                );
            }
        }
        assert_eq!(fold_name("Octo-Org/Ünï"), "octo-org/Ünï");
        assert!(matches!(
            fold_name("octo-org/ünï"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn the_first_matching_entry_wins_across_batches_of_names() {
        // 400 names of 48 characters: more than one batch of compiled names.
        let name = |i: usize| format!("octo-org/service-{i:03}-{}", "x".repeat(27));
        let mut text = String::from("version: 1\nrepositories:\n");
        for i in 0..400 {
            let glob = if i == 5 {
                "octo-org/service-39*".to_owned()
            } else {
                name(i)
            };
            text.push_str(&format!("  - name: \"{glob}\"\n    project: p{i}\n"));
        }
        text.push_str("  - name: \"**\"\n    project: everything\n");
        let (config, _) = Config::parse(&text).expect("valid");
        let project = |full_name: &str| config.repository(full_name).map(|r| r.project.clone());
        assert_eq!(project(&name(0)).as_deref(), Some("p0"));
        assert_eq!(project(&name(250)).as_deref(), Some("p250"));
        assert_eq!(project(&name(385)).as_deref(), Some("p385"));
        assert_eq!(project(&name(250).to_uppercase()).as_deref(), Some("p250"));
        // Entry 5's glob also matches the names of entries 390 to 399, and
        // comes first.
        assert_eq!(project(&name(390)).as_deref(), Some("p5"));
        assert_eq!(project(&name(399)).as_deref(), Some("p5"));
        assert_eq!(project("someone/else").as_deref(), Some("everything"));
    }

    #[test]
    fn defaults_fill_in_what_an_entry_leaves_out() {
        let text = "version: 1\ndefaults:\n  project: shared-build\n  paths-ignore: ['docs/**']\nrepositories:\n  - name: octo-org/*\n  - name: other/*\n    project: own\n";
        let (config, _) = Config::parse(text).expect("valid");
        let a = config
            .repository("Octo-Org/widgets")
            .expect("case-insensitive names");
        assert_eq!(a.project, "shared-build");
        assert!(a.paths_ignore.is_match("docs/index.md"));
        assert_eq!(
            config.repository("other/thing").map(|r| r.project.as_str()),
            Some("own")
        );
        assert!(config.repository("nobody/else").is_none());
    }

    #[test]
    fn single_star_stays_within_a_segment() {
        let g = Globs::new(&["release/*"]).expect("valid");
        assert!(g.is_match("release/1.0"));
        assert!(!g.is_match("release/1.0/hotfix"));
        let g = Globs::new(&["release/**"]).expect("valid");
        assert!(g.is_match("release/1.0/hotfix"));
    }

    #[test]
    fn lists_compiled_on_first_use_compile() {
        // The costliest patterns per byte globset knows, each a list of
        // LAZY_LIST_BYTES: nothing within the size a list is compiled
        // lazily at may fail to compile on first use.
        let costly_list: Vec<String> = (0..)
            .map(|i| format!("*?*?{i}"))
            .scan(0, |bytes, p| {
                *bytes += p.len();
                (*bytes <= LAZY_LIST_BYTES).then_some(p)
            })
            .collect();
        let lists: [(Vec<String>, String); 4] = [
            (
                vec!["?".repeat(LAZY_LIST_BYTES)],
                "a".repeat(LAZY_LIST_BYTES),
            ),
            (
                vec!["**/?".repeat(LAZY_LIST_BYTES / 4)],
                "/a".repeat(LAZY_LIST_BYTES / 4),
            ),
            (
                vec!["[!a]".repeat(LAZY_LIST_BYTES / 4)],
                "b".repeat(LAZY_LIST_BYTES / 4),
            ),
            (costly_list, "xy7".into()),
        ];
        for (patterns, candidate) in lists {
            let bytes: usize = patterns.iter().map(String::len).sum();
            assert!(bytes <= LAZY_LIST_BYTES && bytes > LAZY_LIST_BYTES - 16);
            let g = Globs::new(&patterns).expect("valid globs");
            assert!(!g.is_compiled(), "compiled on first use only");
            assert!(g.is_match(&candidate), "{}", &patterns[0][..8]);
            assert!(g.is_compiled());
        }
    }

    #[test]
    fn a_list_too_large_to_compile_is_refused_where_it_is_written() {
        let text = format!(
            "version: 1\nrepositories:\n  - name: a/b\n    project: p\n    paths: [\"{}\"]\n",
            "?".repeat(256 * 1024)
        );
        let errs = Config::parse(&text).expect_err("too large to compile");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "repositories[0].paths");
        assert_eq!(errs[0].line, 5);
        assert!(
            errs[0].message.starts_with("invalid globs"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn a_lookup_compiles_only_the_lists_of_the_entry_it_uses() {
        let text = "version: 1\ndefaults:\n  paths-ignore: ['docs/**', '*.md']\nrepositories:\n  - name: octo-org/a\n    project: a\n    push:\n      branches: [main, 'release/*']\n    paths: ['src/**', 'Cargo.*']\n  - name: octo-org/b\n    project: b\n    push:\n      branches: ['release/*']\n    paths: ['lib/**']\n";
        let (config, _) = Config::parse(text).expect("valid");
        let a = config.repository("octo-org/a").expect("listed");
        let b = config.repository("octo-org/b").expect("listed");
        let lists = |r: &RepositoryRules| {
            [
                r.push.branches.as_ref().map(Globs::is_compiled),
                r.paths.as_ref().map(Globs::is_compiled),
                Some(r.paths_ignore.is_compiled()),
            ]
        };
        assert_eq!(lists(a), [Some(false); 3], "the parse compiles no list");
        let written = a.paths.as_ref().map(|g| g.patterns().collect::<Vec<_>>());
        assert_eq!(
            written,
            Some(vec!["src/**", "Cargo.*"]),
            "the patterns as written"
        );
        assert!(
            a.push
                .branches
                .as_ref()
                .is_some_and(|g| g.is_match("release/1"))
        );
        assert!(a.paths.as_ref().is_some_and(|g| g.is_match("Cargo.toml")));
        assert!(!a.paths_ignore.is_match("src/lib.rs"));
        assert_eq!(lists(a), [Some(true); 3]);
        // b's own lists are untouched; the list from `defaults` is one
        // list, compiled once for every entry that has it.
        assert_eq!(lists(b), [Some(false), Some(false), Some(true)]);
        assert!(b.paths_ignore.is_match("README.md"));
    }

    #[test]
    fn secrets_fork_policy_and_superseding_are_read_per_repository() {
        let text = "version: 1\ndefaults:\n  project: p\n  secrets:\n    DOCKER_USERNAME: /gantry/docker/username\nrepositories:\n  - name: octo-org/widgets\n    secrets:\n      DOCKER_PASSWORD: /gantry/docker/password\n      NPM_TOKEN: /gantry/npm\n    forks: approval\n    cancel-superseded: false\n  - name: octo-org/*\n";
        let (config, _) = Config::parse(text).expect("valid");
        let w = config.repository("octo-org/widgets").expect("listed");
        assert_eq!(
            w.secrets,
            vec![
                (
                    "DOCKER_PASSWORD".to_owned(),
                    "/gantry/docker/password".to_owned()
                ),
                ("NPM_TOKEN".to_owned(), "/gantry/npm".to_owned()),
            ]
        );
        assert_eq!(w.forks, ForkPolicy::Approval);
        assert_eq!(w.approval_label, DEFAULT_APPROVAL_LABEL);
        assert!(!w.cancel_superseded);
        let other = config.repository("octo-org/other").expect("listed");
        assert_eq!(other.secrets.len(), 1, "defaults apply");
        assert_eq!(other.forks, ForkPolicy::NoSecrets);
        assert!(other.cancel_superseded);
    }

    #[test]
    fn statuses_and_notification_routes_are_read() {
        let text = "version: 1\nrepositories:\n  - name: a/b\n    project: p\n    status:\n      context: ci/b\n      superseded: success\n    notifications:\n      - provider: slack\n        url-parameter: /gantry/notify/slack\n        branches: [main]\n        when: failures\n      - provider: discord\n        url-parameter: /gantry/notify/discord\n  - name: c/d\n    project: q\n";
        let (config, _) = Config::parse(text).expect("valid");
        let ab = config.repository("a/b").expect("listed");
        assert_eq!(ab.status.context("p"), "ci/b");
        assert_eq!(ab.status.superseded, SupersededState::Success);
        assert_eq!(ab.notifications.len(), 2);
        assert_eq!(ab.notifications[0].when, When::Failures);
        assert!(
            ab.notifications[0]
                .branches
                .as_ref()
                .is_some_and(|b| b.is_match("main"))
        );
        assert_eq!(ab.notifications[1].when, When::Changes);
        let cd = config.repository("c/d").expect("listed");
        assert_eq!(cd.status.context("q"), "gantry/q");
        assert!(cd.notifications.is_empty());

        let bad = "version: 1\nrepositories:\n  - name: a/b\n    project: p\n    notifications:\n      - provider: irc\n        url-parameter: /x\n      - provider: slack\n";
        let errs = Config::parse(bad).expect_err("invalid");
        let at: Vec<(u32, &str)> = errs.iter().map(|d| (d.line, d.path.as_str())).collect();
        assert_eq!(
            at,
            vec![
                (6, "repositories[0].notifications[0].provider"),
                (6, "repositories[0].notifications[0]"),
                (8, "repositories[0].notifications[1]")
            ],
            "{errs:?}"
        );
    }

    #[test]
    fn bad_secret_names_are_errors_at_their_line() {
        let text = "version: 1\nrepositories:\n  - name: a/b\n    project: p\n    secrets:\n      1BAD: /x\n      CODEBUILD_X: /y\n      GOOD: 'has space'\n      ALSO: /aws/reserved\n    forks: sometimes\n";
        let errs = Config::parse(text).expect_err("invalid");
        let at: Vec<(u32, &str)> = errs.iter().map(|d| (d.line, d.path.as_str())).collect();
        assert_eq!(
            at,
            vec![
                (6, "repositories[0].secrets.1BAD"),
                (7, "repositories[0].secrets.CODEBUILD_X"),
                (8, "repositories[0].secrets.GOOD"),
                (9, "repositories[0].secrets.ALSO"),
                (10, "repositories[0].forks"),
            ],
            "{errs:?}"
        );
    }

    #[test]
    fn missing_version_and_repositories_are_errors() {
        let errs = Config::parse("defaults: {project: p}\n").expect_err("invalid");
        assert!(errs.iter().any(|d| d.path == "version"), "{errs:?}");
        let errs = Config::parse("").expect_err("empty");
        assert_eq!(errs[0].line, 1);
    }

    const FAN_OUT: &str = "version: 1\nrepositories:\n  - name: octo-org/widgets\n    project: gantry-web\n    buildspec: ci/build.yml\n    paths-ignore: ['docs/**']\n    status:\n      aggregate: ci/all\n    builds:\n      - name: lint\n        buildspec: ci/lint.yml\n        compute-type: BUILD_GENERAL1_SMALL\n        environment:\n          STRICT: 'true'\n      - name: test\n        project: gantry-test\n        image: aws/codebuild/standard:7.0\n        context: ci/test\n      - name: docs\n        paths: ['docs/**']\n    schedules:\n      - name: nightly\n        cron: '0 3 * * *'\n        time-zone: Europe/Berlin\n        builds: [test]\n      - cron: '@weekly'\n        branch: release\n";

    #[test]
    fn named_builds_and_schedules_are_read_with_the_repositorys_defaults() {
        let (config, warnings) = Config::parse(FAN_OUT).expect("valid");
        assert!(warnings.is_empty(), "{warnings:?}");
        let r = config.repository("octo-org/widgets").expect("listed");
        let names: Vec<&str> = r.builds.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["lint", "test", "docs"]);
        let lint = r.member("lint").expect("lint");
        assert_eq!(lint.project, "gantry-web", "the repository's project");
        assert_eq!(lint.buildspec.as_deref(), Some("ci/lint.yml"));
        assert_eq!(lint.environment, vec![("STRICT".into(), "true".into())]);
        assert_eq!(lint.context(), "gantry/lint");
        let test = r.member("test").expect("test");
        assert_eq!(test.project, "gantry-test");
        assert_eq!(test.buildspec.as_deref(), Some("ci/build.yml"));
        assert_eq!(r.context_of("gantry-test", Some("test")), "ci/test");
        assert_eq!(r.aggregate_context().as_deref(), Some("ci/all"));
        assert_eq!(r.schedules.len(), 2);
        assert_eq!(r.schedules[0].name, "nightly");
        assert_eq!(r.schedules[0].builds, ["test"]);
        assert_eq!(r.schedules[1].name, "schedules[1]");
        assert_eq!(r.schedules[1].branch.as_deref(), Some("release"));
        // No builds: no aggregate.
        let (plain, _) = Config::parse(DEV_CONFIG).expect("valid");
        assert_eq!(plain.repositories[0].aggregate_context(), None);
    }

    #[test]
    fn compute_comes_from_the_named_build_then_the_repository_then_defaults() {
        let text = "version: 1\ndefaults:\n  timeout: 30\nrepositories:\n  - name: octo-org/*\n    project: p\n    compute-type: BUILD_GENERAL1_MEDIUM\n    image: aws/codebuild/standard:7.0\n    builds:\n      - name: big\n        compute-type: BUILD_GENERAL1_LARGE\n        timeout: 90\n      - name: plain\n";
        let (config, _) = Config::parse(text).expect("valid");
        let r = &config.repositories[0];
        assert_eq!(
            r.compute,
            crate::events::Compute {
                compute_type: Some("BUILD_GENERAL1_MEDIUM".into()),
                image: Some("aws/codebuild/standard:7.0".into()),
                timeout_minutes: Some(30),
            }
        );
        let big = r.member("big").expect("big").compute.or(&r.compute);
        assert_eq!(big.compute_type.as_deref(), Some("BUILD_GENERAL1_LARGE"));
        assert_eq!(big.image.as_deref(), Some("aws/codebuild/standard:7.0"));
        assert_eq!(big.timeout_minutes, Some(90));
        let plain = r.member("plain").expect("plain").compute.or(&r.compute);
        assert_eq!(plain, r.compute);

        let bad = "version: 1\nrepositories:\n  - name: octo-org/*\n    project: p\n    compute-type: medium\n    timeout: 3\n    builds:\n      - name: x\n        timeout: 9000\n";
        let errs = Config::parse(bad).expect_err("invalid");
        let at: Vec<(u32, &str)> = errs.iter().map(|d| (d.line, d.path.as_str())).collect();
        for expected in [
            (5, "repositories[0].compute-type"),
            (6, "repositories[0].timeout"),
            (9, "repositories[0].builds[0].timeout"),
        ] {
            assert!(at.contains(&expected), "{expected:?} not in {at:?}");
        }
    }

    #[test]
    fn bad_builds_and_schedules_are_errors_at_their_line() {
        let text = "version: 1\nrepositories:\n  - name: octo-org/*\n    project: p\n    builds:\n      - name: 'has space'\n      - name: a\n        environment:\n          GANTRY_X: y\n      - name: a\n    schedules:\n      - cron: '61 * * * *'\n      - cron: '0 * * * *'\n        time-zone: Mars/Base\n      - cron: '0 * * * *'\n        builds: [nope]\n";
        let errs = Config::parse(text).expect_err("invalid");
        let at: Vec<(u32, &str)> = errs.iter().map(|d| (d.line, d.path.as_str())).collect();
        for expected in [
            (6, "repositories[0].builds[0].name"),
            (9, "repositories[0].builds[1].environment.GANTRY_X"),
            (10, "repositories[0].builds[2].name"),
            (12, "repositories[0].schedules[0].cron"),
            (14, "repositories[0].schedules[1].time-zone"),
        ] {
            assert!(at.contains(&expected), "{expected:?} not in {at:?}");
        }
        // A glob names no one repository to schedule; `nope` is no build.
        assert!(
            errs.iter()
                .any(|d| d.path == "repositories[0].schedules" && d.message.contains("glob")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|d| d.message.contains("`nope`")),
            "{errs:?}"
        );
        let errs = Config::parse("version: 1\ndefaults:\n  builds: []\nrepositories: []\n")
            .expect_err("builds in defaults");
        assert_eq!(errs[0].path, "defaults.builds", "{errs:?}");
    }
}
