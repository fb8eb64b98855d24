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

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use crate::diagnostic::{Diagnostic, has_errors, suggestion};
use crate::notify::Provider;
use crate::yaml::{self, Node, Pos, Value};

/// A list of globs, compiled once.
#[derive(Debug, Clone)]
pub struct Globs {
    patterns: Vec<String>,
    set: GlobSet,
}

impl Globs {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, globset::Error> {
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            builder.add(glob(p.as_ref(), false)?);
        }
        Ok(Globs {
            patterns: patterns.iter().map(|p| p.as_ref().to_owned()).collect(),
            set: builder.build()?,
        })
    }

    pub fn empty() -> Self {
        Globs {
            patterns: Vec::new(),
            set: GlobSet::empty(),
        }
    }

    pub fn is_match(&self, candidate: &str) -> bool {
        self.set.is_match(candidate)
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
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
    matcher: globset::GlobMatcher,
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
}

/// How commit statuses look.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusSettings {
    /// `None`: `gantry/<project>`.
    pub context: Option<String>,
    /// The state a superseded build's commit gets.
    pub superseded: SupersededState,
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
    pub fn matches(&self, full_name: &str) -> bool {
        self.matcher.is_match(full_name)
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
    pub dev: DevSettings,
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
                dev: DevSettings::default(),
            },
        }
    }

    /// The first entry whose name matches `full_name` (`owner/name`).
    pub fn repository(&self, full_name: &str) -> Option<&RepositoryRules> {
        self.repositories.iter().find(|r| r.matches(full_name))
    }
}

struct Reader<'d> {
    diags: &'d mut Vec<Diagnostic>,
}

impl Reader<'_> {
    fn error(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(pos, path, message));
    }

    /// The entries of a mapping, with every key not in `known` reported.
    fn map<'n>(&mut self, node: &'n Node, path: &str, known: &[&str]) -> Vec<(&'n str, &'n Node)> {
        let Value::Map(entries) = &node.value else {
            self.error(
                node.pos,
                path,
                format!("expected a mapping, found {}", node.kind()),
            );
            return Vec::new();
        };
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let Some(key) = k.as_str() else {
                self.error(k.pos, path, "keys must be strings");
                continue;
            };
            if !known.contains(&key) {
                let hint = suggestion(key, known)
                    .map(|s| format!(" — did you mean `{s}`?"))
                    .unwrap_or_default();
                self.error(
                    k.pos,
                    &join(path, key),
                    format!("unknown key `{key}`{hint} (known: {})", known.join(", ")),
                );
                continue;
            }
            if out.iter().any(|(seen, _)| *seen == key) {
                self.error(k.pos, &join(path, key), format!("`{key}` is given twice"));
                continue;
            }
            out.push((key, v));
        }
        out
    }

    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Scalar { text, .. } if !text.is_empty() => Some(text.clone()),
            _ => {
                self.error(
                    node.pos,
                    path,
                    format!("expected a string, found {}", node.kind()),
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.as_str() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => {
                self.error(node.pos, path, "expected `true` or `false`");
                None
            }
        }
    }

    fn globs(&mut self, node: &Node, path: &str, case_insensitive: bool) -> Option<Globs> {
        let items: Vec<&Node> = match &node.value {
            Value::Seq(items) => items.iter().collect(),
            Value::Scalar { .. } => vec![node],
            _ => {
                self.error(
                    node.pos,
                    path,
                    format!("expected a list of globs, found {}", node.kind()),
                );
                return None;
            }
        };
        let mut patterns = Vec::with_capacity(items.len());
        let mut builder = GlobSetBuilder::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let Some(p) = self.string(item, &item_path) else {
                ok = false;
                continue;
            };
            match glob(&p, case_insensitive) {
                Ok(g) => {
                    builder.add(g);
                    patterns.push(p);
                }
                Err(e) => {
                    self.error(
                        item.pos,
                        &item_path,
                        format!("invalid glob `{p}`: {}", e.kind()),
                    );
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        match builder.build() {
            Ok(set) => Some(Globs { patterns, set }),
            Err(e) => {
                self.error(node.pos, path, format!("invalid globs: {e}"));
                None
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

const TOP_KEYS: &[&str] = &["version", "defaults", "repositories", "dev"];
const RULE_KEYS: &[&str] = &[
    "name",
    "project",
    "buildspec",
    "push",
    "pull-request",
    "paths",
    "paths-ignore",
    "skip-directives",
    "secrets",
    "forks",
    "approval-label",
    "cancel-superseded",
    "status",
    "notifications",
    "public-badge",
];
const STATUS_KEYS: &[&str] = &["context", "superseded"];
const ROUTE_KEYS: &[&str] = &["provider", "url-parameter", "branches", "when"];
const PUSH_KEYS: &[&str] = &["branches", "branches-ignore", "tags", "tags-ignore"];
const PR_KEYS: &[&str] = &["branches", "branches-ignore", "drafts"];
const DEV_KEYS: &[&str] = &["webhook-secret"];

/// One `repositories` entry or `defaults`, before defaults are applied.
#[derive(Default, Clone)]
struct Partial {
    name: Option<(String, globset::GlobMatcher)>,
    project: Option<String>,
    buildspec: Option<String>,
    push: Option<PushRules>,
    pull_request: Option<PullRequestRules>,
    paths: Option<Globs>,
    paths_ignore: Option<Globs>,
    skip_directives: Option<bool>,
    secrets: Option<Vec<(String, String)>>,
    forks: Option<ForkPolicy>,
    approval_label: Option<String>,
    cancel_superseded: Option<bool>,
    status: Option<StatusSettings>,
    notifications: Option<Vec<Route>>,
    public_badge: Option<bool>,
}

fn decode_config(root: &Node, diags: &mut Vec<Diagnostic>) -> Option<Config> {
    let mut r = Reader { diags };
    let entries = r.map(root, "", TOP_KEYS);
    let mut version_seen = false;
    let mut defaults = Partial::default();
    let mut repositories = None;
    let mut dev = DevSettings::default();
    for (key, value) in entries {
        match key {
            "version" => {
                version_seen = true;
                if value.as_str() != Some("1") {
                    r.error(
                        value.pos,
                        "version",
                        "unsupported version; this Gantry reads `version: 1`",
                    );
                }
            }
            "defaults" => defaults = decode_rules(&mut r, value, "defaults", false),
            "repositories" => match &value.value {
                Value::Seq(items) => {
                    let mut list = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        list.push((
                            item.pos,
                            decode_rules(&mut r, item, &format!("repositories[{i}]"), true),
                        ));
                    }
                    repositories = Some((value.pos, list));
                }
                _ => r.error(
                    value.pos,
                    "repositories",
                    format!(
                        "expected a list of repository entries, found {}",
                        value.kind()
                    ),
                ),
            },
            "dev" => {
                for (k, v) in r.map(value, "dev", DEV_KEYS) {
                    if k == "webhook-secret" {
                        dev.webhook_secret = r.string(v, "dev.webhook-secret");
                    }
                }
            }
            _ => {}
        }
    }
    if !version_seen {
        r.error(root.pos, "version", "missing `version: 1`");
    }
    let Some((_, list)) = repositories else {
        if !has_errors(r.diags) {
            r.error(
                root.pos,
                "repositories",
                "missing `repositories`: no repository would build",
            );
        }
        return None;
    };
    let mut resolved = Vec::with_capacity(list.len());
    for (i, (pos, partial)) in list.into_iter().enumerate() {
        let path = format!("repositories[{i}]");
        let Some((name, matcher)) = partial.name.clone() else {
            r.error(
                pos,
                &path,
                "missing `name` (a glob over owner/name, e.g. `octo-org/*`)",
            );
            continue;
        };
        let Some(project) = partial.project.clone().or_else(|| defaults.project.clone()) else {
            r.error(
                pos,
                &path,
                "missing `project` (the CodeBuild project), here or in `defaults`",
            );
            continue;
        };
        resolved.push(RepositoryRules {
            name,
            matcher,
            project,
            buildspec: partial.buildspec.or(defaults.buildspec.clone()),
            push: partial.push.or(defaults.push.clone()).unwrap_or(PushRules {
                branches: None,
                branches_ignore: Globs::empty(),
                tags: Globs::empty(),
                tags_ignore: Globs::empty(),
            }),
            pull_request: partial
                .pull_request
                .or(defaults.pull_request.clone())
                .unwrap_or(PullRequestRules {
                    branches: None,
                    branches_ignore: Globs::empty(),
                    drafts: false,
                }),
            paths: partial.paths.or(defaults.paths.clone()),
            paths_ignore: partial
                .paths_ignore
                .or(defaults.paths_ignore.clone())
                .unwrap_or_else(Globs::empty),
            skip_directives: partial
                .skip_directives
                .or(defaults.skip_directives)
                .unwrap_or(true),
            secrets: partial
                .secrets
                .or(defaults.secrets.clone())
                .unwrap_or_default(),
            forks: partial.forks.or(defaults.forks).unwrap_or_default(),
            approval_label: partial
                .approval_label
                .or(defaults.approval_label.clone())
                .unwrap_or_else(|| DEFAULT_APPROVAL_LABEL.to_owned()),
            cancel_superseded: partial
                .cancel_superseded
                .or(defaults.cancel_superseded)
                .unwrap_or(true),
            status: partial
                .status
                .or(defaults.status.clone())
                .unwrap_or_default(),
            notifications: partial
                .notifications
                .or(defaults.notifications.clone())
                .unwrap_or_default(),
            public_badge: partial
                .public_badge
                .or(defaults.public_badge)
                .unwrap_or(false),
        });
    }
    Some(Config {
        repositories: resolved,
        dev,
    })
}

fn decode_rules(r: &mut Reader<'_>, node: &Node, path: &str, is_entry: bool) -> Partial {
    let mut out = Partial::default();
    let known: Vec<&str> = RULE_KEYS
        .iter()
        .copied()
        .filter(|k| is_entry || *k != "name")
        .collect();
    for (key, value) in r.map(node, path, &known) {
        let p = join(path, key);
        match key {
            "name" => {
                if let Some(name) = r.string(value, &p) {
                    match glob(&name, true) {
                        Ok(g) => out.name = Some((name, g.compile_matcher())),
                        Err(e) => r.error(
                            value.pos,
                            &p,
                            format!("invalid glob `{name}`: {}", e.kind()),
                        ),
                    }
                }
            }
            "project" => out.project = r.string(value, &p),
            "buildspec" => out.buildspec = r.string(value, &p),
            "paths" => out.paths = r.globs(value, &p, false),
            "paths-ignore" => out.paths_ignore = r.globs(value, &p, false),
            "skip-directives" => out.skip_directives = r.boolean(value, &p),
            "cancel-superseded" => out.cancel_superseded = r.boolean(value, &p),
            "public-badge" => out.public_badge = r.boolean(value, &p),
            "approval-label" => out.approval_label = r.string(value, &p),
            "forks" => {
                out.forks = match value.as_str() {
                    Some("no-secrets") => Some(ForkPolicy::NoSecrets),
                    Some("approval") => Some(ForkPolicy::Approval),
                    _ => {
                        r.error(value.pos, &p, "expected `no-secrets` or `approval`");
                        None
                    }
                }
            }
            "secrets" => out.secrets = Some(decode_secrets(r, value, &p)),
            "status" => {
                let mut status = StatusSettings::default();
                for (k, v) in r.map(value, &p, STATUS_KEYS) {
                    let kp = join(&p, k);
                    match k {
                        "context" => status.context = r.string(v, &kp),
                        "superseded" => match v.as_str() {
                            Some("error") => status.superseded = SupersededState::Error,
                            Some("failure") => status.superseded = SupersededState::Failure,
                            Some("success") => status.superseded = SupersededState::Success,
                            _ => r.error(v.pos, &kp, "expected `error`, `failure` or `success`"),
                        },
                        _ => {}
                    }
                }
                out.status = Some(status);
            }
            "notifications" => out.notifications = Some(decode_routes(r, value, &p)),
            "push" => {
                let mut push = PushRules {
                    branches: None,
                    branches_ignore: Globs::empty(),
                    tags: Globs::empty(),
                    tags_ignore: Globs::empty(),
                };
                for (k, v) in r.map(value, &p, PUSH_KEYS) {
                    let kp = join(&p, k);
                    let globs = r.globs(v, &kp, false);
                    match k {
                        "branches" => push.branches = globs,
                        "branches-ignore" => {
                            push.branches_ignore = globs.unwrap_or_else(Globs::empty)
                        }
                        "tags" => push.tags = globs.unwrap_or_else(Globs::empty),
                        "tags-ignore" => push.tags_ignore = globs.unwrap_or_else(Globs::empty),
                        _ => {}
                    }
                }
                out.push = Some(push);
            }
            "pull-request" => {
                let mut pr = PullRequestRules {
                    branches: None,
                    branches_ignore: Globs::empty(),
                    drafts: false,
                };
                for (k, v) in r.map(value, &p, PR_KEYS) {
                    let kp = join(&p, k);
                    match k {
                        "branches" => pr.branches = r.globs(v, &kp, false),
                        "branches-ignore" => {
                            pr.branches_ignore = r.globs(v, &kp, false).unwrap_or_else(Globs::empty)
                        }
                        "drafts" => pr.drafts = r.boolean(v, &kp).unwrap_or(false),
                        _ => {}
                    }
                }
                out.pull_request = Some(pr);
            }
            _ => {}
        }
    }
    out
}

/// A `secrets` mapping: environment variable → SSM parameter name.
fn decode_secrets(r: &mut Reader<'_>, node: &Node, path: &str) -> Vec<(String, String)> {
    let Value::Map(entries) = &node.value else {
        r.error(
            node.pos,
            path,
            format!(
                "expected a mapping of environment variable to SSM parameter name, found {}",
                node.kind()
            ),
        );
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let Some(variable) = k.as_str() else {
            r.error(k.pos, path, "keys must be environment variable names");
            continue;
        };
        let p = join(path, variable);
        if let Err(why) = check_variable_name(variable) {
            r.error(k.pos, &p, why);
            continue;
        }
        if out.iter().any(|(seen, _)| seen == variable) {
            r.error(k.pos, &p, format!("`{variable}` is given twice"));
            continue;
        }
        let Some(parameter) = r.string(v, &p) else {
            continue;
        };
        if let Err(why) = check_parameter_name(&parameter) {
            r.error(v.pos, &p, why);
            continue;
        }
        out.push((variable.to_owned(), parameter));
    }
    out
}

/// A `notifications` list.
fn decode_routes(r: &mut Reader<'_>, node: &Node, path: &str) -> Vec<Route> {
    let Value::Seq(items) = &node.value else {
        r.error(
            node.pos,
            path,
            format!(
                "expected a list of notification routes, found {}",
                node.kind()
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let ip = format!("{path}[{i}]");
        let (mut provider, mut url_parameter, mut branches, mut when) =
            (None, None, None, When::default());
        for (k, v) in r.map(item, &ip, ROUTE_KEYS) {
            let kp = join(&ip, k);
            match k {
                "provider" => match v.as_str().map(str::parse::<Provider>) {
                    Some(Ok(p)) => provider = Some(p),
                    _ => {
                        let names: Vec<&str> = Provider::ALL.iter().map(|p| p.as_str()).collect();
                        r.error(v.pos, &kp, format!("expected one of {}", names.join(", ")));
                    }
                },
                "url-parameter" => {
                    if let Some(name) = r.string(v, &kp) {
                        match check_parameter_name(&name) {
                            Ok(()) => url_parameter = Some(name),
                            Err(why) => r.error(v.pos, &kp, why),
                        }
                    }
                }
                "branches" => branches = r.globs(v, &kp, false),
                "when" => match v.as_str() {
                    Some("always") => when = When::Always,
                    Some("failures") => when = When::Failures,
                    Some("changes") => when = When::Changes,
                    _ => r.error(v.pos, &kp, "expected `always`, `failures` or `changes`"),
                },
                _ => {}
            }
        }
        match (provider, url_parameter) {
            (Some(provider), Some(url_parameter)) => out.push(Route {
                provider,
                url_parameter,
                branches,
                when,
            }),
            (None, _) => r.error(item.pos, &ip, "missing `provider`"),
            (_, None) => r.error(
                item.pos,
                &ip,
                "missing `url-parameter` (the SSM SecureString holding the webhook URL)",
            ),
        }
    }
    out
}

/// An environment variable name a build can be given.
pub fn check_variable_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "`{name}` is not an environment variable name (letters, digits and `_`, not starting with a digit)"
        ));
    }
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
}
