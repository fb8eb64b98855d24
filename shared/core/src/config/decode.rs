//! Reading `gantry.yaml` into a [`Config`]: every key checked, every
//! mistake reported with its line, column and path, all at once. The
//! document is read with [`crate::yaml::read`], the reader buildspecs use
//! too; here an unknown key is an error.

use globset::GlobSetBuilder;

use super::*;
use crate::yaml::read::{Path, Reader, UnknownKeys};
use crate::yaml::{Node, Value};

/// The longest build CodeBuild runs, in minutes (`timeoutInMinutes`).
pub const MAX_TIMEOUT_MINUTES: u32 = 2160;

/// `compute-type`, `image` or `timeout` of a rule or a named build.
fn compute_key(
    r: &mut Reader,
    key: &str,
    node: &Node,
    path: &Path<'_>,
    out: &mut crate::events::Compute,
) {
    match key {
        "compute-type" => {
            if let Some(kind) = text(r, node, path) {
                if kind
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                {
                    out.compute_type = Some(kind);
                } else {
                    r.error(
                        node.pos,
                        path,
                        format!(
                            "`{kind}` is not a CodeBuild compute type (e.g. BUILD_GENERAL1_MEDIUM)"
                        ),
                    );
                }
            }
        }
        "image" => out.image = text(r, node, path),
        _ => match node.as_str().map(str::parse::<u32>) {
            Some(Ok(minutes)) if (5..=MAX_TIMEOUT_MINUTES).contains(&minutes) => {
                out.timeout_minutes = Some(minutes);
            }
            _ => r.error(
                node.pos,
                path,
                format!("expected the build's timeout in minutes, 5 to {MAX_TIMEOUT_MINUTES}"),
            ),
        },
    }
}

/// A non-empty string.
fn text(r: &mut Reader, node: &Node, path: &Path<'_>) -> Option<String> {
    let s = r.string(node, path)?;
    if s.is_empty() {
        r.error(node.pos, path, "expected a string, found an empty one");
        return None;
    }
    Some(s.to_owned())
}

fn boolean(r: &mut Reader, node: &Node, path: &Path<'_>) -> Option<bool> {
    match node.as_str() {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => {
            r.error(node.pos, path, "expected `true` or `false`");
            None
        }
    }
}

fn globs(r: &mut Reader, node: &Node, path: &Path<'_>) -> Option<Globs> {
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) => items.iter().collect(),
        Value::Scalar { .. } => vec![node],
        _ => {
            r.error(
                node.pos,
                path,
                format!("expected a list of globs, found {}", node.kind()),
            );
            return None;
        }
    };
    let mut parsed = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let item_path = path.index(i);
        let Some(p) = text(r, item, &item_path) else {
            ok = false;
            continue;
        };
        match glob(&p, false) {
            Ok(g) => parsed.push(g),
            Err(e) => {
                r.error(
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
    match Globs::of(parsed) {
        Ok(globs) => Some(globs),
        Err(e) => {
            r.error(node.pos, path, format!("invalid globs: {e}"));
            None
        }
    }
}

const TOP_KEYS: &[&str] = &["version", "defaults", "repositories", "dev", "github-app"];
const GITHUB_APP_KEYS: &[&str] = &["installations"];
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
    "builds",
    "schedules",
    "compute-type",
    "image",
    "timeout",
];
const STATUS_KEYS: &[&str] = &["context", "superseded", "aggregate"];
const MEMBER_KEYS: &[&str] = &[
    "name",
    "project",
    "buildspec",
    "compute-type",
    "image",
    "timeout",
    "environment",
    "paths",
    "paths-ignore",
    "context",
];
const SCHEDULE_KEYS: &[&str] = &["name", "cron", "time-zone", "branch", "project", "builds"];
const ROUTE_KEYS: &[&str] = &["provider", "url-parameter", "branches", "when"];
const PUSH_KEYS: &[&str] = &["branches", "branches-ignore", "tags", "tags-ignore"];
const PR_KEYS: &[&str] = &["branches", "branches-ignore", "drafts"];
const DEV_KEYS: &[&str] = &["webhook-secret"];

/// The entries' names, compiled a few at a time: one matcher per batch of
/// names instead of one per entry (a name with wildcards or a class is a
/// regex to compile), in batches of at most [`NAME_BATCH_BYTES`]: globset's
/// size limit is per compiled set, and the costliest patterns need about
/// 128 KB to reach it (see [`LAZY_LIST_BYTES`]).
#[derive(Default)]
struct NameSets {
    /// Each batch: the index of its first entry, its names, their bytes.
    batches: Vec<(usize, GlobSetBuilder, usize)>,
}

/// A batch's patterns stay under this many bytes (a longer name is a batch
/// of its own).
const NAME_BATCH_BYTES: usize = 8 * 1024;

impl NameSets {
    /// Adds the name of entry `index` (entries are added in order).
    fn add(&mut self, index: usize, glob: globset::Glob) {
        let bytes = glob.glob().len();
        match self.batches.last_mut() {
            Some((_, batch, total)) if *total + bytes <= NAME_BATCH_BYTES => {
                batch.add(glob);
                *total += bytes;
            }
            _ => {
                let mut batch = GlobSetBuilder::new();
                batch.add(glob);
                self.batches.push((index, batch, bytes));
            }
        }
    }

    fn finish(self) -> Result<Vec<(usize, globset::GlobSet)>, globset::Error> {
        self.batches
            .into_iter()
            .map(|(start, batch, _)| Ok((start, batch.build()?)))
            .collect()
    }
}

/// One `repositories` entry or `defaults`, before defaults are applied.
#[derive(Default, Clone)]
struct Partial {
    name: Option<(String, globset::Glob)>,
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
    builds: Option<Vec<(Pos, PartialMember)>>,
    schedules: Option<(Pos, Vec<crate::schedule::ScheduleRule>)>,
    compute: crate::events::Compute,
}

/// A `builds:` entry before the repository's project fills it in.
#[derive(Clone)]
struct PartialMember {
    name: String,
    project: Option<String>,
    buildspec: Option<String>,
    compute: crate::events::Compute,
    environment: Vec<(String, String)>,
    paths: Option<Globs>,
    paths_ignore: Option<Globs>,
    context: Option<String>,
}

pub(super) fn decode_config(root: &Node, diags: &mut Vec<Diagnostic>) -> Option<Config> {
    let mut r = Reader::new(UnknownKeys::Error);
    let config = decode_root(&mut r, root);
    diags.append(&mut r.diagnostics);
    config
}

fn decode_root(r: &mut Reader, root: &Node) -> Option<Config> {
    let top = Path::Root;
    let entries = r.known(root, &top, TOP_KEYS);
    let mut version_seen = false;
    let mut defaults = Partial::default();
    let mut repositories = None;
    let mut dev = DevSettings::default();
    let mut installations = None;
    for (_, key, value) in entries {
        match key {
            "version" => {
                version_seen = true;
                if value.as_str() != Some("1") {
                    r.error(
                        value.pos,
                        &top.key("version"),
                        "unsupported version; this Gantry reads `version: 1`",
                    );
                }
            }
            "defaults" => defaults = decode_rules(r, value, &top.key("defaults"), false),
            "repositories" => match &value.value {
                Value::Seq(items) => {
                    let mut list = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        list.push((
                            item.pos,
                            decode_rules(r, item, &top.key("repositories").index(i), true),
                        ));
                    }
                    repositories = Some((value.pos, list));
                }
                _ => r.error(
                    value.pos,
                    &top.key("repositories"),
                    format!(
                        "expected a list of repository entries, found {}",
                        value.kind()
                    ),
                ),
            },
            "github-app" => {
                let app_path = top.key("github-app");
                for (_, k, v) in r.known(value, &app_path, GITHUB_APP_KEYS) {
                    if k == "installations" {
                        installations = decode_ids(r, v, &app_path.key(k));
                    }
                }
            }
            "dev" => {
                let dev_path = top.key("dev");
                for (_, k, v) in r.known(value, &dev_path, DEV_KEYS) {
                    if k == "webhook-secret" {
                        dev.webhook_secret = text(r, v, &dev_path.key(k));
                    }
                }
            }
            _ => {}
        }
    }
    if !version_seen {
        r.error(root.pos, &top.key("version"), "missing `version: 1`");
    }
    let Some((list_pos, list)) = repositories else {
        if r.errors() == 0 {
            r.error(
                root.pos,
                &top.key("repositories"),
                "missing `repositories`: no repository would build",
            );
        }
        return None;
    };
    let mut resolved = Vec::with_capacity(list.len());
    let mut names = NameSets::default();
    for (i, (pos, partial)) in list.into_iter().enumerate() {
        let repositories = top.key("repositories");
        let path = repositories.index(i);
        let Some((name, name_glob)) = partial.name.clone() else {
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
        let builds: Vec<BuildMember> = partial
            .builds
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(_, m)| BuildMember {
                name: m.name,
                project: m.project.unwrap_or_else(|| project.clone()),
                buildspec: m
                    .buildspec
                    .or_else(|| partial.buildspec.clone().or(defaults.buildspec.clone())),
                compute: m.compute,
                environment: m.environment,
                paths: m.paths,
                paths_ignore: m.paths_ignore,
                context: m.context,
            })
            .collect();
        let schedules = match partial.schedules.clone() {
            Some((at, list)) => {
                if !list.is_empty() && name.contains(['*', '?', '[', '{']) {
                    r.error(
                        at,
                        &path.key("schedules"),
                        format!(
                            "`{name}` is a glob: a schedule builds one repository, so its entry must name it (owner/name)"
                        ),
                    );
                }
                for (i, s) in list.iter().enumerate() {
                    for b in &s.builds {
                        if !builds.iter().any(|m| &m.name == b) {
                            r.error(
                                at,
                                &path.key("schedules").index(i),
                                format!("`{b}` is not one of this repository's `builds`"),
                            );
                        }
                    }
                }
                list
            }
            None => Vec::new(),
        };
        names.add(resolved.len(), name_glob);
        resolved.push(RepositoryRules {
            builds,
            schedules,
            name,
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
            compute: partial.compute.or(&defaults.compute),
        });
    }
    let names = match names.finish() {
        Ok(sets) => sets,
        Err(e) => {
            r.error(
                list_pos,
                &top.key("repositories"),
                format!("invalid repository names: {e}"),
            );
            return None;
        }
    };
    Some(Config {
        repositories: resolved,
        names,
        dev,
        installations,
    })
}

/// A list of GitHub's numeric ids.
fn decode_ids(r: &mut Reader, node: &Node, path: &Path<'_>) -> Option<Vec<u64>> {
    let Value::Seq(items) = &node.value else {
        r.error(
            node.pos,
            path,
            format!("expected a list of installation ids, found {}", node.kind()),
        );
        return None;
    };
    let mut ids = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_str().and_then(|s| s.parse::<u64>().ok()) {
            Some(id) => ids.push(id),
            None => r.error(
                item.pos,
                &path.index(i),
                "expected an installation id (a number, as GitHub shows in the installation's settings URL)",
            ),
        }
    }
    Some(ids)
}

fn decode_rules(r: &mut Reader, node: &Node, path: &Path<'_>, is_entry: bool) -> Partial {
    let mut out = Partial::default();
    let known: Vec<&str> = RULE_KEYS
        .iter()
        .copied()
        .filter(|k| is_entry || *k != "name")
        .collect();
    for (_, key, value) in r.known(node, path, &known) {
        let p = path.key(key);
        match key {
            "name" => {
                if let Some(name) = text(r, value, &p) {
                    match name_glob(&name) {
                        Ok(g) => out.name = Some((name, g)),
                        Err(e) => r.error(
                            value.pos,
                            &p,
                            format!("invalid glob `{name}`: {}", e.kind()),
                        ),
                    }
                }
            }
            "project" => out.project = text(r, value, &p),
            "buildspec" => out.buildspec = text(r, value, &p),
            "compute-type" | "image" | "timeout" => {
                compute_key(r, key, value, &p, &mut out.compute)
            }
            "paths" => out.paths = globs(r, value, &p),
            "paths-ignore" => out.paths_ignore = globs(r, value, &p),
            "skip-directives" => out.skip_directives = boolean(r, value, &p),
            "cancel-superseded" => out.cancel_superseded = boolean(r, value, &p),
            "public-badge" => out.public_badge = boolean(r, value, &p),
            "approval-label" => out.approval_label = text(r, value, &p),
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
                for (_, k, v) in r.known(value, &p, STATUS_KEYS) {
                    let kp = p.key(k);
                    match k {
                        "context" => status.context = text(r, v, &kp),
                        "aggregate" => status.aggregate = text(r, v, &kp),
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
            "builds" => {
                if !is_entry {
                    r.error(
                        value.pos,
                        &p,
                        "`builds` belongs to a repository entry, not to `defaults`",
                    );
                } else {
                    out.builds = Some(decode_members(r, value, &p));
                }
            }
            "schedules" => {
                if !is_entry {
                    r.error(
                        value.pos,
                        &p,
                        "`schedules` belongs to a repository entry, not to `defaults`",
                    );
                } else {
                    out.schedules = Some((value.pos, decode_schedules(r, value, &p)));
                }
            }
            "push" => {
                let mut push = PushRules {
                    branches: None,
                    branches_ignore: Globs::empty(),
                    tags: Globs::empty(),
                    tags_ignore: Globs::empty(),
                };
                for (_, k, v) in r.known(value, &p, PUSH_KEYS) {
                    let kp = p.key(k);
                    let globs = globs(r, v, &kp);
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
                for (_, k, v) in r.known(value, &p, PR_KEYS) {
                    let kp = p.key(k);
                    match k {
                        "branches" => pr.branches = globs(r, v, &kp),
                        "branches-ignore" => {
                            pr.branches_ignore = globs(r, v, &kp).unwrap_or_else(Globs::empty)
                        }
                        "drafts" => pr.drafts = boolean(r, v, &kp).unwrap_or(false),
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

/// The items of a list, or an error naming what it should hold.
fn items<'n>(r: &mut Reader, node: &'n Node, path: &Path<'_>, what: &str) -> &'n [Node] {
    match &node.value {
        Value::Seq(items) => items,
        _ => {
            r.error(
                node.pos,
                path,
                format!("expected a list of {what}, found {}", node.kind()),
            );
            &[]
        }
    }
}

/// A `builds` list: named builds, each its own chain.
fn decode_members(r: &mut Reader, node: &Node, path: &Path<'_>) -> Vec<(Pos, PartialMember)> {
    let list = items(r, node, path, "named builds");
    if list.len() > MAX_BUILDS {
        r.error(
            node.pos,
            path,
            format!(
                "{} builds; at most {MAX_BUILDS} per repository entry",
                list.len()
            ),
        );
    }
    let mut out: Vec<(Pos, PartialMember)> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let ip = path.index(i);
        let mut m = PartialMember {
            name: String::new(),
            project: None,
            buildspec: None,
            compute: crate::events::Compute::default(),
            environment: Vec::new(),
            paths: None,
            paths_ignore: None,
            context: None,
        };
        for (_, k, v) in r.known(item, &ip, MEMBER_KEYS) {
            let kp = ip.key(k);
            match k {
                "name" => {
                    if let Some(name) = text(r, v, &kp) {
                        match check_member_name(&name) {
                            Ok(()) => m.name = name,
                            Err(why) => r.error(v.pos, &kp, why),
                        }
                    }
                }
                "project" => m.project = text(r, v, &kp),
                "buildspec" => m.buildspec = text(r, v, &kp),
                "compute-type" | "image" | "timeout" => compute_key(r, k, v, &kp, &mut m.compute),
                "context" => m.context = text(r, v, &kp),
                "paths" => m.paths = globs(r, v, &kp),
                "paths-ignore" => m.paths_ignore = globs(r, v, &kp),
                "environment" => m.environment = decode_environment(r, v, &kp),
                _ => {}
            }
        }
        if m.name.is_empty() {
            r.error(
                item.pos,
                &ip,
                "missing `name` (it names the status context `gantry/<name>`)",
            );
            continue;
        }
        if out.iter().any(|(_, o)| o.name == m.name) {
            r.error(
                item.pos,
                &ip.key("name"),
                format!("a second build named `{}`", m.name),
            );
            continue;
        }
        out.push((item.pos, m));
    }
    out
}

/// A build's `environment`: plain variables.
fn decode_environment(r: &mut Reader, node: &Node, path: &Path<'_>) -> Vec<(String, String)> {
    if !matches!(node.value, Value::Map(_)) {
        r.error(
            node.pos,
            path,
            format!(
                "expected a mapping of variable to value, found {}",
                node.kind()
            ),
        );
        return Vec::new();
    }
    let entries = r.mapping(node, path).unwrap_or_default();
    let mut out = Vec::with_capacity(entries.len());
    for (k, name, v) in entries {
        let p = path.key(name);
        if let Err(why) = check_variable_name(name) {
            r.error(k.pos, &p, why);
            continue;
        }
        match r.string(v, &p) {
            Some(value) => out.push((name.to_owned(), value.to_owned())),
            None => continue,
        }
    }
    out
}

/// A `schedules` list.
fn decode_schedules(
    r: &mut Reader,
    node: &Node,
    path: &Path<'_>,
) -> Vec<crate::schedule::ScheduleRule> {
    use crate::schedule::{CronExpr, ScheduleRule, Zone};
    let list = items(r, node, path, "schedules");
    let mut out: Vec<ScheduleRule> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let ip = path.index(i);
        let (mut name, mut cron, mut zone, mut branch, mut project, mut builds) =
            (None, None, Some(Zone::utc()), None, None, Vec::new());
        for (_, k, v) in r.known(item, &ip, SCHEDULE_KEYS) {
            let kp = ip.key(k);
            match k {
                "name" => {
                    if let Some(n) = text(r, v, &kp) {
                        match check_member_name(&n) {
                            Ok(()) => name = Some(n),
                            Err(why) => {
                                r.error(v.pos, &kp, why.replace("build name", "schedule name"))
                            }
                        }
                    }
                }
                "cron" => {
                    if let Some(t) = text(r, v, &kp) {
                        match CronExpr::parse(&t) {
                            Ok(c) => cron = Some(c),
                            Err(why) => r.error(v.pos, &kp, why),
                        }
                    }
                }
                "time-zone" => {
                    zone = text(r, v, &kp).and_then(|t| match Zone::parse(&t) {
                        Ok(z) => Some(z),
                        Err(why) => {
                            r.error(v.pos, &kp, why);
                            None
                        }
                    })
                }
                "branch" => branch = text(r, v, &kp),
                "project" => project = text(r, v, &kp),
                "builds" => {
                    for (j, b) in items(r, v, &kp, "build names").iter().enumerate() {
                        if let Some(n) = text(r, b, &kp.index(j)) {
                            builds.push(n);
                        }
                    }
                }
                _ => {}
            }
        }
        let Some(cron) = cron else {
            if r.errors() == 0 {
                r.error(
                    item.pos,
                    &ip,
                    "missing `cron` (five fields: minute hour day-of-month month day-of-week)",
                );
            }
            continue;
        };
        let Some(time_zone) = zone else { continue };
        let name = name.unwrap_or_else(|| format!("schedules[{i}]"));
        if out.iter().any(|s| s.name == name) {
            r.error(item.pos, &ip, format!("a second schedule named `{name}`"));
            continue;
        }
        out.push(ScheduleRule {
            name,
            cron,
            time_zone,
            branch,
            project,
            builds,
        });
    }
    out
}

/// A `secrets` mapping: environment variable → SSM parameter name.
fn decode_secrets(r: &mut Reader, node: &Node, path: &Path<'_>) -> Vec<(String, String)> {
    if !matches!(node.value, Value::Map(_)) {
        r.error(
            node.pos,
            path,
            format!(
                "expected a mapping of environment variable to SSM parameter name, found {}",
                node.kind()
            ),
        );
        return Vec::new();
    }
    let entries = r.mapping(node, path).unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::with_capacity(entries.len());
    for (k, variable, v) in entries {
        let p = path.key(variable);
        if let Err(why) = check_variable_name(variable) {
            r.error(k.pos, &p, why);
            continue;
        }
        let Some(parameter) = text(r, v, &p) else {
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
fn decode_routes(r: &mut Reader, node: &Node, path: &Path<'_>) -> Vec<Route> {
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
        let ip = path.index(i);
        let (mut provider, mut url_parameter, mut branches, mut when) =
            (None, None, None, When::default());
        for (_, k, v) in r.known(item, &ip, ROUTE_KEYS) {
            let kp = ip.key(k);
            match k {
                "provider" => match v.as_str().map(str::parse::<Provider>) {
                    Some(Ok(p)) => provider = Some(p),
                    _ => {
                        let names: Vec<&str> = Provider::ALL.iter().map(|p| p.as_str()).collect();
                        r.error(v.pos, &kp, format!("expected one of {}", names.join(", ")));
                    }
                },
                "url-parameter" => {
                    if let Some(name) = text(r, v, &kp) {
                        match check_parameter_name(&name) {
                            Ok(()) => url_parameter = Some(name),
                            Err(why) => r.error(v.pos, &kp, why),
                        }
                    }
                }
                "branches" => branches = globs(r, v, &kp),
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
