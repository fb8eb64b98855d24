//! The build page, its log's parts and the repository history as HTML:
//! server-rendered, one small script (following a running build's log),
//! readable on a phone, in dark mode when the system prefers it. Every
//! text that came from outside (a log line, a commit message, a title) is
//! escaped; the script and the style are allowed by their hashes, nothing
//! else runs.

use sha2::{Digest, Sha256};

use super::ansi::{escape, line_html};
use super::log::{SeenPhase, first_error, phases_seen};
use crate::badge::{self, BadgeState};
use crate::codebuild_events::BuildStatus;
use crate::events::Trigger;
use crate::notify::format_duration;
use crate::records::BuildRecord;
use crate::time::civil_from_days;

/// What the page may show of a build (the operator's choice for private
/// repositories; public repositories always show everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disclosure {
    /// Everything, the log included.
    Full,
    /// The result, the phases and their times; no log, no commit message,
    /// no pull request title.
    Summary,
}

/// The result as the page names and colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Running,
    Passed,
    Failed,
    TimedOut,
    Errored,
    Stopped,
    Superseded,
}

impl Shown {
    pub fn of(record: &BuildRecord) -> Shown {
        match &record.finished {
            None if record.superseded_by.is_some() => Shown::Superseded,
            None => Shown::Running,
            Some(f) => match f.status {
                BuildStatus::Succeeded => Shown::Passed,
                BuildStatus::Failed => Shown::Failed,
                BuildStatus::TimedOut => Shown::TimedOut,
                BuildStatus::Stopped if record.superseded_by.is_some() => Shown::Superseded,
                BuildStatus::Stopped => Shown::Stopped,
                BuildStatus::InProgress => Shown::Running,
                BuildStatus::Fault | BuildStatus::Other(_) => Shown::Errored,
            },
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Shown::Running => "running",
            Shown::Passed => "passed",
            Shown::Failed => "failed",
            Shown::TimedOut => "timed out",
            Shown::Errored => "errored",
            Shown::Stopped => "stopped",
            Shown::Superseded => "superseded",
        }
    }

    /// A sign beside the colour, so that the colour is never all there is.
    fn sign(self) -> &'static str {
        match self {
            Shown::Running => "●",
            Shown::Passed => "✓",
            Shown::Failed | Shown::TimedOut | Shown::Errored => "✗",
            Shown::Stopped | Shown::Superseded => "■",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Shown::Running => "running",
            Shown::Passed => "passed",
            Shown::Failed | Shown::TimedOut | Shown::Errored => "failed",
            Shown::Stopped | Shown::Superseded => "stopped",
        }
    }

    fn badge(self) -> BadgeState {
        match self {
            Shown::Running => BadgeState::Running,
            Shown::Passed => BadgeState::Passing,
            Shown::Failed | Shown::TimedOut => BadgeState::Failing,
            Shown::Errored => BadgeState::Error,
            Shown::Stopped | Shown::Superseded => BadgeState::Unknown,
        }
    }
}

/// The part of a log a page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogView {
    pub lines: Vec<String>,
    /// The number of the first line, when the part starts at the log's
    /// beginning or after a known line; `None` for the latest part of a log
    /// too long to count, whose lines are anchored from the end
    /// (`#E1` is the last line).
    pub first_number: Option<u64>,
    /// The page of the lines before these.
    pub older_url: Option<String>,
    /// Where a running build's page asks for new lines (JSON).
    pub follow_url: Option<String>,
    /// Why there is no log to show.
    pub missing: Option<String>,
}

/// The links a build page carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildLinks {
    pub raw: Option<String>,
    pub history: Option<String>,
    /// The CodeBuild console, for operators.
    pub console: Option<String>,
    /// The log in the CloudWatch console.
    pub cloudwatch: Option<String>,
}

pub struct BuildPage<'a> {
    pub record: &'a BuildRecord,
    pub log: LogView,
    pub links: BuildLinks,
    pub disclosure: Disclosure,
    /// Search engines may index it (a public fork page); otherwise not.
    pub indexable: bool,
    /// The build's artifacts, each with a link (none: the build uploaded
    /// none, or they are not shown).
    pub artifacts: Option<ArtifactList>,
}

/// One uploaded artifact file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    /// Its path under the build's artifacts (`dist/app.tgz`).
    pub name: String,
    /// A link that downloads it (signed, short-lived).
    pub url: String,
    pub bytes: u64,
}

/// The files of a build's artifacts, as the page lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactList {
    pub files: Vec<ArtifactFile>,
    /// There are more than the page lists.
    pub more: bool,
    /// How long each link opens its file, in minutes.
    pub link_minutes: u64,
}

/// "512 B", "1.2 KiB", "3.4 MiB", "1.0 GiB".
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn artifacts_section(out: &mut String, list: &ArtifactList) {
    out.push_str("<h2 id=\"artifacts\">Artifacts</h2>");
    if list.files.is_empty() {
        out.push_str("<p>The build uploaded no files.</p>");
        return;
    }
    out.push_str("<ul class=\"artifacts\">");
    for file in &list.files {
        out.push_str("<li>");
        link(out, &file.url, &file.name);
        out.push_str(&format!(
            " <span class=\"muted\">{}</span></li>",
            size(file.bytes)
        ));
    }
    out.push_str("</ul><p class=\"muted\">");
    if list.more {
        out.push_str(&format!(
            "The first {} files are listed. ",
            list.files.len()
        ));
    }
    out.push_str(&format!(
        "Each link downloads its file for {} minutes; reload the page for new links.</p>",
        list.link_minutes
    ));
}

/// The page's one script: scrolls to the first error when the link names
/// no line, and follows a running build's log, then reloads once it ends.
pub const SCRIPT: &str = r#"(function(){var l=document.getElementById("log-lines");if(!location.hash){var e=document.getElementById("first-error");if(e){e.scrollIntoView({block:"center"});}}var f=l&&l.getAttribute("data-follow");if(!f){return;}var s=document.getElementById("follow-state");function tail(){return window.innerHeight+window.scrollY>=document.body.scrollHeight-80;}function tick(){fetch(f,{cache:"no-store",credentials:"omit"}).then(function(r){if(!r.ok){throw new Error(r.status);}return r.json();}).then(function(d){var stick=tail();if(d.html){l.insertAdjacentHTML("beforeend",d.html);if(stick){window.scrollTo(0,document.body.scrollHeight);}}if(d.next){f=d.next;}if(d.done){if(s){s.textContent="The build ended; loading its result.";}location.reload();return;}setTimeout(tick,1500);}).catch(function(){if(s){s.textContent="Lost the log for a moment; trying again.";}setTimeout(tick,5000);});}setTimeout(tick,1500);})();"#;

pub const STYLE: &str = r#":root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--code:#f6f8fa;--pass:#1a7f37;--fail:#cf222e;--run:#9a6700;--stop:#59636e;--hl:#fff8c5;--link:#0969da}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--line:#3d444d;--code:#151b23;--pass:#3fb950;--fail:#f85149;--run:#d29922;--stop:#9198a1;--hl:#3b2e00;--link:#4493f8}}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif}
a{color:var(--link)}a:focus-visible,summary:focus-visible{outline:3px solid var(--link);outline-offset:2px}
.skip{position:absolute;left:-9999px}.skip:focus{position:static;display:inline-block;margin:.5rem}
header,main,footer{max-width:72rem;margin:0 auto;padding:0 1rem}h1{font-size:1.4rem;margin:1rem 0 .25rem;overflow-wrap:anywhere}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
.result{display:inline-block;font-weight:700;padding:.1rem .6rem;border-radius:1rem;border:2px solid currentColor}
.passed{color:var(--pass)}.failed{color:var(--fail)}.running{color:var(--run)}.stopped{color:var(--stop)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
@media (max-width:40rem){dl{grid-template-columns:1fr}dd{margin-bottom:.5rem}}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
.table{overflow-x:auto}tr.failed-phase{background:var(--hl)}
code,pre{font:14px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre.log{background:var(--code);border:1px solid var(--line);border-radius:6px;padding:.5rem 0;margin:0;white-space:pre-wrap;overflow-wrap:anywhere}
pre.log>span{display:block;padding:0 .75rem 0 4.5rem;text-indent:-3.75rem;min-height:1.45em}pre.log>span:target,pre.log>span#first-error{background:var(--hl)}
pre.log a.n{display:inline-block;width:3.25rem;margin-right:.5rem;text-indent:0;text-align:right;color:var(--muted);text-decoration:none;user-select:none}
.muted{color:var(--muted)}.f0{color:#6e7781}.f1,.f9{color:var(--fail)}.f2,.f10{color:var(--pass)}.f3,.f11{color:var(--run)}.f4,.f12{color:var(--link)}.f5,.f13{color:#a475f9}.f6,.f14{color:#1b7c83}.f7,.f15{color:var(--muted)}.b{font-weight:700}.d{opacity:.7}.i{font-style:italic}.u{text-decoration:underline}
nav.parts{margin:.5rem 0}footer{margin:2rem auto;color:var(--muted);font-size:.875rem}"#;

/// `sha256-<base64>` of a text, as a Content-Security-Policy names it.
fn csp_hash(text: &str) -> String {
    format!("'sha256-{}'", base64(&Sha256::digest(text.as_bytes())))
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The Content-Security-Policy of every page: nothing but the page's own
/// style and script, requests to itself, the badge as a data URL. Made
/// once per process.
pub fn content_security_policy() -> &'static str {
    static POLICY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| format!(
        "default-src 'none'; style-src {}; script-src {}; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    ))
}

/// Milliseconds since the epoch as `2026-12-01 10:00 UTC`.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60
    )
}

/// Whether a page reloads itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reload {
    Never,
    /// Without the script (which follows the log instead).
    WithoutScript,
    /// A running build's page with no log to follow: the result comes by
    /// reloading.
    Always,
}

fn head(out: &mut String, title: &str, indexable: bool, reload: Reload) {
    out.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    out.push_str("<meta name=\"referrer\" content=\"no-referrer\">");
    if !indexable {
        out.push_str("<meta name=\"robots\" content=\"noindex, nofollow\">");
    }
    match reload {
        Reload::Never => {}
        Reload::WithoutScript => {
            out.push_str("<noscript><meta http-equiv=\"refresh\" content=\"10\"></noscript>");
        }
        Reload::Always => out.push_str("<meta http-equiv=\"refresh\" content=\"15\">"),
    }
    out.push_str("<title>");
    out.push_str(&escape(title));
    out.push_str("</title><style>");
    out.push_str(STYLE);
    out.push_str("</style></head><body>");
}

fn foot(out: &mut String, script: bool) {
    out.push_str("<footer>Gantry: serverless CI on your own AWS account.</footer>");
    if script {
        out.push_str("<script>");
        out.push_str(SCRIPT);
        out.push_str("</script>");
    }
    out.push_str("</body></html>\n");
}

fn link(out: &mut String, href: &str, text: &str) {
    out.push_str("<a href=\"");
    out.push_str(&escape(href));
    out.push_str("\">");
    out.push_str(&escape(text));
    out.push_str("</a>");
}

fn fact(out: &mut String, name: &str, value_html: &str) {
    out.push_str("<dt>");
    out.push_str(name);
    out.push_str("</dt><dd>");
    out.push_str(value_html);
    out.push_str("</dd>");
}

fn linked(href: &str, text: &str) -> String {
    let mut s = String::new();
    link(&mut s, href, text);
    s
}

/// The page of one build.
pub fn build_page(page: &BuildPage<'_>) -> String {
    let r = page.record;
    let s = &r.source;
    let shown = Shown::of(r);
    let full = page.disclosure == Disclosure::Full;
    let repo = s.repository.full_name.as_str();
    let mut out = String::with_capacity(
        16 * 1024 + page.log.lines.iter().map(|l| l.len() + 64).sum::<usize>(),
    );
    let running = shown == Shown::Running;
    head(
        &mut out,
        &format!("{} {repo} {} — Gantry", shown.label(), s.commit_sha.short()),
        page.indexable,
        match (running, page.log.follow_url.is_some()) {
            (false, _) => Reload::Never,
            (true, true) => Reload::WithoutScript,
            (true, false) => Reload::Always,
        },
    );
    let failed_phase = r.finished.as_ref().and_then(|f| f.failed_phase.clone());
    let error_at = failed_phase
        .as_deref()
        .filter(|_| full && page.log.missing.is_none())
        .and_then(|p| first_error(&page.log.lines, p));
    out.push_str("<a class=\"skip\" href=\"#log\">Skip to the log</a>");
    if error_at.is_some() {
        out.push_str("<a class=\"skip\" href=\"#first-error\">Skip to the first error</a>");
    }
    out.push_str("<header><h1>");
    out.push_str(&escape(repo));
    out.push_str(" <span class=\"muted\">");
    out.push_str(&escape(&reference(r, full)));
    out.push_str("</span></h1>");
    out.push_str(&format!(
        "<p><span class=\"result {}\" role=\"status\"><span aria-hidden=\"true\">{}</span> {}</span>",
        shown.class(),
        shown.sign(),
        shown.label()
    ));
    if let Some(phase) = &failed_phase {
        out.push_str(" in ");
        out.push_str(&escape(phase));
    }
    if running {
        out.push_str(
            " <span id=\"follow-state\" class=\"muted\">This page follows the build.</span>",
        );
    }
    out.push_str("</p></header><main>");

    // The facts a person looks for first.
    out.push_str("<h2 id=\"about\">About this build</h2><dl>");
    fact(
        &mut out,
        "Repository",
        &linked(&s.repository.html_url, repo),
    );
    if let Some(pr) = &s.pull_request {
        let text = if full {
            format!("#{} {} (by {})", pr.number, pr.title, pr.author)
        } else {
            format!("#{} (by {})", pr.number, pr.author)
        };
        fact(&mut out, "Pull request", &linked(&pr.url, &text));
    }
    if let Some(branch) = &s.branch {
        fact(
            &mut out,
            "Branch",
            &format!("<code>{}</code>", escape(branch)),
        );
    }
    if let Some(tag) = &s.tag {
        fact(&mut out, "Tag", &format!("<code>{}</code>", escape(tag)));
    }
    let commit_url = format!("{}/commit/{}", s.repository.html_url, s.commit_sha);
    let mut commit = format!(
        "<a href=\"{}\"><code>{}</code></a>",
        escape(&commit_url),
        escape(s.commit_sha.short())
    );
    if full && let Some(head) = &s.head_commit {
        let first = head.message.lines().next().unwrap_or_default();
        commit.push(' ');
        commit.push_str(&escape(first));
    }
    fact(&mut out, "Commit", &commit);
    let trigger = match (s.trigger, s.pull_request.as_ref()) {
        (Trigger::PullRequest, Some(pr)) => format!("pull request {}", pr.action),
        (Trigger::PullRequest, None) => "pull request".to_owned(),
        (Trigger::Push, _) => match s.pusher.as_deref().or(s.sender.as_deref()) {
            Some(who) => format!("push by {who}"),
            None => "push".to_owned(),
        },
        (Trigger::Manual, _) => match &s.run {
            Some(run) => format!("manual run by {}", run.by),
            None => "manual run".to_owned(),
        },
        (Trigger::Schedule, _) => match &s.run {
            Some(run) => format!("schedule {}", run.by),
            None => "schedule".to_owned(),
        },
    };
    let mut trigger = escape(&trigger);
    if s.attempt > 1 {
        trigger.push_str(&format!(" (re-run, attempt {})", s.attempt));
    }
    if s.fork {
        trigger.push_str(" — from a fork");
    }
    fact(&mut out, "Trigger", &trigger);
    if let Some(member) = &s.member {
        fact(
            &mut out,
            "Build",
            &format!("<code>{}</code>", escape(&member.name)),
        );
    }
    // A run's variables by name: their values are the asker's.
    if let Some(run) = s.run.as_ref().filter(|r| !r.variables.is_empty()) {
        let names: Vec<String> = run
            .variables
            .iter()
            .map(|v| format!("<code>{}</code>", escape(&v.name)))
            .collect();
        fact(&mut out, "Variables", &names.join(", "));
    }
    fact(&mut out, "Started", &escape(&utc(r.started_at_ms)));
    match &r.finished {
        Some(f) => {
            fact(&mut out, "Finished", &escape(&utc(f.finished_at_ms)));
            if let Some(d) = f.duration_seconds {
                fact(&mut out, "Duration", &escape(&format_duration(d)));
            }
            if let Some(image) = &f.image_uri {
                fact(
                    &mut out,
                    "Image pushed",
                    &format!("<code>{}</code>", escape(image)),
                );
            }
            if let Some(cache) = &f.layer_cache {
                fact(&mut out, "Layer cache", &escape(&cache.describe()));
            }
            if let Some(tests) = &f.tests {
                let mut text = escape(&tests.counts());
                if !tests.first_failed.is_empty() {
                    let names: Vec<String> = tests
                        .first_failed
                        .iter()
                        .map(|n| format!("<li><code>{}</code></li>", escape(n)))
                        .collect();
                    text.push_str(&format!(
                        "<ul class=\"failed-tests\">{}</ul>",
                        names.concat()
                    ));
                }
                fact(&mut out, "Tests", &text);
            }
        }
        None => fact(&mut out, "Finished", "not yet"),
    }
    let mut spec = String::new();
    match &r.buildspec_location {
        Some(crate::events::BuildspecLocation::Repository {
            repo: at,
            path,
            commit,
        }) if at.eq_ignore_ascii_case(repo) => {
            link(
                &mut spec,
                &format!("{}/blob/{commit}/{path}", s.repository.html_url),
                path,
            );
        }
        Some(location) => spec.push_str(&format!("<code>{}</code>", escape(location.path()))),
        None => {}
    }
    if let Some(digest) = &r.buildspec_digest {
        if !spec.is_empty() {
            spec.push(' ');
        }
        spec.push_str(&format!("<code class=\"muted\">{}</code>", escape(digest)));
    }
    if !spec.is_empty() {
        fact(&mut out, "Buildspec", &spec);
    }
    if !r.trusted {
        fact(
            &mut out,
            "Secrets",
            "none: a fork's build runs without the repository's secrets",
        );
    } else if let Some(why) = &r.withheld {
        fact(&mut out, "Secrets", &escape(why));
    }
    if let Some(by) = &r.superseded_by {
        fact(
            &mut out,
            "Superseded by",
            &format!("<code>{}</code>", escape(by.commit_sha.short())),
        );
    }
    out.push_str("</dl>");

    // The phases: from the record once it ended, from the log's markers
    // while it runs.
    out.push_str("<h2 id=\"phases\">Phases</h2>");
    phases_table(&mut out, r, &page.log, failed_phase.as_deref());
    if let Some(list) = page.artifacts.as_ref().filter(|_| full) {
        artifacts_section(&mut out, list);
    }

    // The log.
    out.push_str("<h2 id=\"log\">Log</h2>");
    if !full {
        out.push_str("<p>The log of this private repository's builds is not shown here (the operator's choice). Operators can read it in the console.</p>");
    } else if let Some(why) = &page.log.missing {
        out.push_str("<p>");
        out.push_str(&escape(why));
        out.push_str("</p>");
    } else {
        out.push_str("<nav class=\"parts\" aria-label=\"Log parts\">");
        if let Some(older) = &page.log.older_url {
            link(&mut out, older, "Older lines");
            out.push_str(" · ");
        }
        if let Some(raw) = &page.links.raw {
            link(&mut out, raw, "Raw text");
        }
        if error_at.is_some() {
            out.push_str(" · <a href=\"#first-error\">First error</a>");
        }
        out.push_str("</nav>");
        log_block(&mut out, &page.log, error_at);
    }

    out.push_str("<h2 id=\"links\">Links</h2><ul>");
    if let Some(h) = &page.links.history {
        out.push_str("<li>");
        link(&mut out, h, &format!("Recent builds of {repo}"));
        out.push_str("</li>");
    }
    for (text, url) in [
        (
            "CodeBuild console (operators)",
            page.links.console.as_deref(),
        ),
        (
            "CloudWatch Logs console (operators)",
            page.links.cloudwatch.as_deref(),
        ),
    ] {
        if let Some(url) = url.filter(|u| u.starts_with("https://")) {
            out.push_str("<li>");
            link(&mut out, url, text);
            out.push_str("</li>");
        }
    }
    out.push_str("</ul></main>");
    foot(&mut out, true);
    out
}

fn reference(r: &BuildRecord, full: bool) -> String {
    let s = &r.source;
    match (&s.pull_request, &s.tag, &s.branch) {
        (Some(pr), _, _) if full => format!("#{} {}", pr.number, pr.title),
        (Some(pr), _, _) => format!("#{}", pr.number),
        (None, Some(tag), _) => tag.clone(),
        (None, None, Some(branch)) => branch.clone(),
        _ => s.commit_sha.short().to_owned(),
    }
}

fn phases_table(out: &mut String, r: &BuildRecord, log: &LogView, failed: Option<&str>) {
    let rows: Vec<(String, String, Option<u64>)> = match &r.finished {
        Some(f) if !f.phases.is_empty() => f
            .phases
            .iter()
            .map(|p| {
                (
                    p.phase.clone(),
                    p.status.clone().unwrap_or_default(),
                    p.duration_seconds,
                )
            })
            .collect(),
        _ => phases_seen(log.lines.iter().map(String::as_str))
            .into_iter()
            .map(|SeenPhase { phase, status }| {
                (
                    phase,
                    status.unwrap_or_else(|| "IN_PROGRESS".to_owned()),
                    None,
                )
            })
            .collect(),
    };
    if rows.is_empty() {
        out.push_str("<p class=\"muted\">No phase has started yet.</p>");
        return;
    }
    out.push_str("<div class=\"table\"><table><thead><tr><th scope=\"col\">Phase</th><th scope=\"col\">Status</th><th scope=\"col\">Time</th></tr></thead><tbody>");
    for (phase, status, seconds) in rows {
        let is_failed = failed == Some(phase.as_str()) || status == "FAILED";
        let class = match status.as_str() {
            "SUCCEEDED" => "passed",
            "FAILED" | "FAULT" | "TIMED_OUT" | "CLIENT_ERROR" => "failed",
            "IN_PROGRESS" => "running",
            _ => "stopped",
        };
        out.push_str(if is_failed {
            "<tr class=\"failed-phase\">"
        } else {
            "<tr>"
        });
        out.push_str("<th scope=\"row\"><code>");
        out.push_str(&escape(&phase));
        out.push_str("</code></th><td class=\"");
        out.push_str(class);
        out.push_str("\">");
        out.push_str(&escape(&status.to_ascii_lowercase().replace('_', " ")));
        if is_failed {
            out.push_str(" <strong>(the failed phase)</strong>");
        }
        out.push_str("</td><td>");
        if let Some(s) = seconds {
            out.push_str(&escape(&format_duration(s)));
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table></div>");
}

/// The id and the visible number of line `i` of `len` lines numbered
/// from `first`; with no first number, counted from the end (`E1` is the
/// last line).
fn anchor(first: Option<u64>, len: usize, i: usize) -> (String, String) {
    match first {
        Some(first) => {
            let n = first + i as u64;
            (format!("L{n}"), n.to_string())
        }
        None => {
            let from_end = len - i;
            (format!("E{from_end}"), format!("−{from_end}"))
        }
    }
}

/// One log line: its number (a link to itself), then its text. The first
/// error's span has its own id, so that line's anchor is on its number.
fn line_span(out: &mut String, line: &str, anchor: Option<&(String, String)>, first_error: bool) {
    out.push_str("<span");
    if first_error {
        out.push_str(" id=\"first-error\" class=\"error\"><a class=\"n\"");
        if let Some((id, _)) = anchor {
            out.push_str(" id=\"");
            out.push_str(id);
            out.push('"');
        }
    } else {
        if let Some((id, _)) = anchor {
            out.push_str(" id=\"");
            out.push_str(id);
            out.push('"');
        }
        out.push_str("><a class=\"n\"");
    }
    match anchor {
        Some((id, number)) => {
            out.push_str(" href=\"#");
            out.push_str(id);
            out.push_str("\" tabindex=\"-1\"");
            if first_error {
                out.push_str(" aria-label=\"line ");
                out.push_str(number);
                out.push_str(", the first error\">");
            } else {
                out.push_str(" aria-hidden=\"true\">");
            }
            out.push_str(number);
        }
        None => out.push_str(" aria-hidden=\"true\">"),
    }
    out.push_str("</a>");
    out.push_str(&line_html(line));
    out.push_str("</span>");
}

fn log_block(out: &mut String, view: &LogView, error_at: Option<usize>) {
    out.push_str("<pre class=\"log\" id=\"log-lines\" tabindex=\"0\" aria-label=\"Build log\"");
    if let Some(f) = &view.follow_url {
        out.push_str(" data-follow=\"");
        out.push_str(&escape(f));
        out.push('"');
    }
    out.push('>');
    let len = view.lines.len();
    for (i, line) in view.lines.iter().enumerate() {
        let anchor = anchor(view.first_number, len, i);
        line_span(out, line, Some(&anchor), error_at == Some(i));
    }
    out.push_str("</pre>");
}

/// New lines of a followed log, numbered from `first_number` (unnumbered
/// when it is not known): what the page's script appends.
pub fn log_lines(lines: &[String], first_number: Option<u64>) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let anchor = first_number.map(|_| anchor(first_number, lines.len(), i));
        line_span(&mut out, line, anchor.as_ref(), false);
    }
    out
}

/// A page of older lines of a build's log.
pub fn older_page(record: &BuildRecord, view: &LogView, build_url: &str) -> String {
    let mut out = String::new();
    let repo = record.source.repository.full_name.as_str();
    head(
        &mut out,
        &format!(
            "Older log lines of {repo} {}",
            record.source.commit_sha.short()
        ),
        false,
        Reload::Never,
    );
    out.push_str("<header><h1>Older log lines</h1><p>");
    link(
        &mut out,
        build_url,
        &format!(
            "Back to the build of {repo} at {}",
            record.source.commit_sha.short()
        ),
    );
    out.push_str("</p></header><main><nav class=\"parts\" aria-label=\"Log parts\">");
    if let Some(older) = &view.older_url {
        link(&mut out, older, "Older lines");
    } else {
        out.push_str("<span class=\"muted\">The start of the log.</span>");
    }
    out.push_str("</nav>");
    log_block(&mut out, view, None);
    out.push_str("</main>");
    foot(&mut out, false);
    out
}

/// One row of a repository's history.
pub struct HistoryRow<'a> {
    pub record: &'a BuildRecord,
    /// The build's page (signed).
    pub url: String,
}

/// The recent builds of a repository.
pub fn history_page(repo: &str, rows: &[HistoryRow<'_>], disclosure: Disclosure) -> String {
    let mut out = String::new();
    head(
        &mut out,
        &format!("Recent builds of {repo} — Gantry"),
        false,
        Reload::Never,
    );
    out.push_str("<header><h1>Recent builds of ");
    out.push_str(&escape(repo));
    out.push_str("</h1>");
    // The badge of the default branch's latest build.
    let default_branch = rows
        .first()
        .and_then(|r| r.record.source.repository.default_branch.clone());
    if let Some(branch) = default_branch
        && let Some(latest) = rows.iter().find(|r| {
            r.record.source.branch.as_deref() == Some(branch.as_str())
                && r.record.source.pull_request.is_none()
        })
    {
        let state = Shown::of(latest.record).badge();
        let svg = badge::svg(&branch, state);
        out.push_str(&format!(
            "<p><img src=\"data:image/svg+xml;base64,{}\" alt=\"{}: {}\"></p>",
            base64(svg.as_bytes()),
            escape(&branch),
            state.message()
        ));
    }
    out.push_str("</header><main>");
    if rows.is_empty() {
        out.push_str("<p>No builds yet.</p>");
    } else {
        out.push_str("<div class=\"table\"><table><caption class=\"muted\">Newest first</caption><thead><tr><th scope=\"col\">Result</th><th scope=\"col\">Branch or pull request</th><th scope=\"col\">Commit</th><th scope=\"col\">Started</th><th scope=\"col\">Duration</th></tr></thead><tbody>");
        for row in rows {
            let r = row.record;
            let shown = Shown::of(r);
            out.push_str(&format!(
                "<tr><td><a class=\"{}\" href=\"{}\"><span aria-hidden=\"true\">{}</span> {}</a></td><td>",
                shown.class(),
                escape(&row.url),
                shown.sign(),
                shown.label()
            ));
            out.push_str(&escape(&reference(r, disclosure == Disclosure::Full)));
            out.push_str("</td><td><code>");
            out.push_str(&escape(r.source.commit_sha.short()));
            out.push_str("</code>");
            if disclosure == Disclosure::Full
                && let Some(head) = &r.source.head_commit
            {
                out.push(' ');
                out.push_str(&escape(head.message.lines().next().unwrap_or_default()));
            }
            out.push_str("</td><td>");
            out.push_str(&escape(&utc(r.started_at_ms)));
            out.push_str("</td><td>");
            if let Some(d) = r.finished.as_ref().and_then(|f| f.duration_seconds) {
                out.push_str(&escape(&format_duration(d)));
            }
            out.push_str("</td></tr>");
        }
        out.push_str("</tbody></table></div>");
    }
    out.push_str("</main>");
    foot(&mut out, false);
    out
}

/// What a refused link shows: why, and nothing about any build.
pub fn refused_page(why: &super::link::Refusal) -> String {
    let mut out = String::new();
    head(&mut out, "Gantry: link refused", false, Reload::Never);
    out.push_str("<header><h1>");
    out.push_str(&escape(&capitalised(&why.to_string())));
    out.push_str("</h1></header><main><p>");
    out.push_str(match why {
        super::link::Refusal::Expired => {
            "Build links last a limited time. Open the build again from its pull request or commit on GitHub for a fresh link."
        }
        super::link::Refusal::Invalid => {
            "The link was changed or cut short. Open the build again from its pull request or commit on GitHub."
        }
        super::link::Refusal::NotFound => "There is nothing at this address.",
    });
    out.push_str("</p></main>");
    foot(&mut out, false);
    out
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{HeadCommit, PullRequestRef};
    use crate::records::{Finished, PhaseTiming};

    fn failed_pr_build() -> BuildRecord {
        let mut source = crate::fixtures::push_source();
        source.trigger = Trigger::PullRequest;
        source.branch = None;
        source.head_commit = Some(HeadCommit {
            message: "Fix <b>the</b> \"widgets\"\n\nlonger body".into(),
            url: None,
        });
        source.pull_request = Some(PullRequestRef {
            number: 42,
            title: "<script>alert(1)</script>".into(),
            author: "octocat".into(),
            url: "https://github.com/octo-org/widgets/pull/42".into(),
            action: "synchronize".into(),
            base_branch: "main".into(),
            base_sha: "1".repeat(40).into(),
            head_branch: "fix".into(),
            head_repository: None,
            draft: false,
            approved_by: None,
            label: None,
        });
        let mut record = crate::fixtures::build_record(&source);
        record.finished = Some(Finished {
            status: BuildStatus::Failed,
            finished_at_ms: 1_764_583_325_000,
            duration_seconds: Some(125),
            failed_phase: Some("BUILD".into()),
            phases: vec![
                PhaseTiming {
                    phase: "INSTALL".into(),
                    status: Some("SUCCEEDED".into()),
                    duration_seconds: Some(4),
                },
                PhaseTiming {
                    phase: "BUILD".into(),
                    status: Some("FAILED".into()),
                    duration_seconds: Some(121),
                },
            ],
            image_uri: None,
            layer_cache: Some(crate::exported::LayerCache {
                cached: 5,
                steps: 7,
            }),
            tests: Some({
                let mut t = crate::test_reports::TestResults::default();
                t.add_report([("SUCCEEDED", 40), ("FAILED", 1)]);
                t.add_failed_name("parses <b>bold</b>");
                t
            }),
            artifacts: None,
            log: None,
        });
        record
    }

    fn log() -> Vec<String> {
        [
            "[Container] 2026/12/01 10:00:01.000001 Entering phase BUILD",
            "compiling",
            "\u{1b}[31merror\u{1b}[0m: <mismatched> types",
            "[Container] 2026/12/01 10:00:09.000001 Phase complete: BUILD State: FAILED",
        ]
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
    }

    fn page(record: &BuildRecord, disclosure: Disclosure) -> String {
        build_page(&BuildPage {
            record,
            log: LogView {
                lines: log(),
                first_number: Some(1),
                ..LogView::default()
            },
            links: BuildLinks::default(),
            disclosure,
            indexable: false,
            artifacts: Some(ArtifactList {
                files: vec![ArtifactFile {
                    name: "dist/<app>.tgz".into(),
                    url: "https://bucket.s3.amazonaws.com/artifacts/p/u/dist/%3Capp%3E.tgz?X-Amz-Signature=ab&x=1".into(),
                    bytes: 3_565_158,
                }],
                more: true,
                link_minutes: 60,
            }),
        })
    }

    #[test]
    fn a_failed_build_shows_its_result_phase_and_first_error() {
        let html = page(&failed_pr_build(), Disclosure::Full);
        assert!(html.contains("<span class=\"result failed\" role=\"status\"><span aria-hidden=\"true\">✗</span> failed</span> in BUILD"), "{html}");
        assert!(html.contains("<tr class=\"failed-phase\"><th scope=\"row\"><code>BUILD</code>"));
        assert!(html.contains(
            "<span id=\"first-error\" class=\"error\"><a class=\"n\" id=\"L3\" href=\"#L3\""
        ));
        assert!(html.contains("<span class=\"f1\">error</span>: &lt;mismatched&gt; types"));
        assert!(
            !html.contains("http-equiv=\"refresh\""),
            "an ended build's page stays"
        );
        assert!(html.contains("<span id=\"L2\"><a class=\"n\" href=\"#L2\""));
        assert!(html.contains("href=\"#first-error\">Skip to the first error"));
        assert!(html.contains("2m 05s"));
        assert!(html.contains("<dt>Layer cache</dt><dd>partial: 5 of 7 steps from the cache</dd>"));
        assert!(html.contains(
            "<dt>Tests</dt><dd>1 failed, 40 passed<ul class=\"failed-tests\"><li><code>parses &lt;b&gt;bold&lt;/b&gt;</code></li></ul></dd>"
        ));
        assert!(html.contains(
            "<ul class=\"artifacts\"><li><a href=\"https://bucket.s3.amazonaws.com/artifacts/p/u/dist/%3Capp%3E.tgz?X-Amz-Signature=ab&amp;x=1\">dist/&lt;app&gt;.tgz</a> <span class=\"muted\">3.4 MiB</span></li></ul>"
        ), "{html}");
        assert!(html.contains("The first 1 files are listed."));
        // A summary page lists no files.
        assert!(!page(&failed_pr_build(), Disclosure::Summary).contains("id=\"artifacts\""));
    }

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(size(u64::MAX), "16777216.0 TiB");
    }

    #[test]
    fn a_manual_run_of_a_named_build_says_who_asked_which_build_and_names_its_variables_only() {
        let mut record = failed_pr_build();
        record.source.trigger = Trigger::Manual;
        record.source.pull_request = None;
        record.source.member = Some(crate::events::Member {
            name: "lint<x>".into(),
            environment: Vec::new(),
            of: Vec::new(),
        });
        record.source.run = Some(crate::events::RunRequest {
            by: "arn:aws:iam::123456789012:user/mona".into(),
            variables: vec![crate::events::Variable {
                name: "LEVEL".into(),
                value: "the-value-stays-off-the-page".into(),
            }],
            schedule: None,
        });
        let html = page(&record, Disclosure::Full);
        assert!(
            html.contains("manual run by arn:aws:iam::123456789012:user/mona"),
            "{html}"
        );
        assert!(html.contains("<code>lint&lt;x&gt;</code>"), "{html}");
        assert!(html.contains("<code>LEVEL</code>"), "{html}");
        assert!(!html.contains("the-value-stays-off-the-page"), "{html}");
    }

    #[test]
    fn what_came_from_outside_is_text_and_the_page_is_not_indexed() {
        let html = page(&failed_pr_build(), Disclosure::Full);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("Fix &lt;b&gt;the&lt;/b&gt; &quot;widgets&quot;"));
        assert!(!html.contains("longer body"));
        assert!(html.contains("<meta name=\"robots\" content=\"noindex, nofollow\">"));
        assert!(html.contains("<meta name=\"referrer\" content=\"no-referrer\">"));
        // One script, the page's own.
        assert_eq!(html.matches("<script>").count(), 1);
    }

    #[test]
    fn a_summary_page_shows_no_log_no_message_no_title() {
        let html = page(&failed_pr_build(), Disclosure::Summary);
        assert!(html.contains("failed</span> in BUILD"));
        assert!(!html.contains("mismatched"));
        assert!(!html.contains("widgets&quot;"));
        assert!(!html.contains("alert(1)"));
        assert!(html.contains("#42 (by octocat)"));
        // Running, with no log to follow: it reloads for its result.
        let mut running = failed_pr_build();
        running.finished = None;
        let html = page(&running, Disclosure::Summary);
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"15\">"));
    }

    #[test]
    fn a_running_build_follows_its_log_and_shows_phases_from_markers() {
        let mut record = failed_pr_build();
        record.finished = None;
        let html = build_page(&BuildPage {
            record: &record,
            log: LogView {
                lines: log()[..3].to_vec(),
                first_number: None,
                follow_url: Some("/builds/p/u/log?after=f/1&a=1&b=2".into()),
                ..LogView::default()
            },
            links: BuildLinks::default(),
            disclosure: Disclosure::Full,
            indexable: true,
            artifacts: None,
        });
        assert!(html.contains("data-follow=\"/builds/p/u/log?after=f/1&amp;a=1&amp;b=2\""));
        assert!(
            html.contains("<td class=\"running\">in progress</td>"),
            "{html}"
        );
        assert!(html.contains("<noscript><meta http-equiv=\"refresh\""));
        assert!(!html.contains("noindex"));
        // A part too long to count is anchored from its end.
        assert!(html.contains("<span id=\"E1\">"));
        assert!(!html.contains("id=\"first-error\""));
    }

    #[test]
    fn the_policy_allows_the_page_s_own_style_and_script_only() {
        let csp = content_security_policy();
        let hash = |t: &str| format!("'sha256-{}'", base64(&Sha256::digest(t.as_bytes())));
        assert!(
            csp.contains(&format!("script-src {}", hash(SCRIPT))),
            "{csp}"
        );
        assert!(csp.contains(&format!("style-src {}", hash(STYLE))));
        assert!(csp.starts_with("default-src 'none'"));
        assert_eq!(base64(b"ab"), "YWI=");
    }

    #[test]
    fn a_refused_link_says_why_and_nothing_else() {
        let html = refused_page(&super::super::link::Refusal::Expired);
        assert!(html.contains("<h1>This link has expired</h1>"));
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn the_history_lists_builds_newest_first_with_the_badge() {
        let mut passed = crate::fixtures::build_record(&crate::fixtures::push_source());
        passed.finished = failed_pr_build().finished;
        if let Some(f) = passed.finished.as_mut() {
            f.status = BuildStatus::Succeeded;
            f.failed_phase = None;
        }
        let failed = failed_pr_build();
        let rows = [
            HistoryRow {
                record: &failed,
                url: "/builds/a/1?x=1&y=2".into(),
            },
            HistoryRow {
                record: &passed,
                url: "/builds/a/2".into(),
            },
        ];
        let html = history_page("octo-org/widgets", &rows, Disclosure::Full);
        let first = html
            .find("href=\"/builds/a/1?x=1&amp;y=2\"")
            .expect("first row");
        let second = html.find("href=\"/builds/a/2\"").expect("second row");
        assert!(first < second);
        assert!(html.contains("alt=\"main: passing\""), "{html}");
    }
}
