//! The build-page Lambda: a build's page, its log's parts and raw text, and
//! a repository's recent builds, served to whoever holds a signed link
//! (`gantry_core::page::link`). It reads the build's record from S3 and
//! its log from CloudWatch Logs, and nothing else; it writes nothing.
//!
//! It has its own function URL rather than a path of the webhook's: the
//! webhook's role stays what it was (no log, no record read), a crawler or
//! a busy page never takes the webhook's concurrency, and each can be
//! throttled and alarmed on its own.
//!
//! [`serve`] answers one GET; [`function_url`] adapts Lambda's function-URL
//! event to it, and `gantry dev` serves it over plain HTTP.

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use http::HeaderValue;

use gantry_aws::build_logs::{BuildLogs, LogPart, Reading};
use gantry_aws::pages::{PageKeyError, PageKeys, PageSettings};
use gantry_aws::records::Records;
use gantry_core::page::html::{
    self, BuildLinks, BuildPage, Disclosure, HistoryRow, LogView, content_security_policy,
};
use gantry_core::page::link::{self, Expiry, PageKey, Refusal, Route, Target};
use gantry_core::page::log::LogPlace;
use gantry_core::records::BuildRecord;
use gantry_core::settings::{Env, SettingsError};

/// The latest part of a log a page shows at first, in events (lines):
/// at most about 1 MB, what CloudWatch Logs sends at once.
pub const WINDOW_EVENTS: i32 = 2_000;
/// One raw-text part: within Lambda's 6 MB response, escapes included.
pub const RAW_PART_BYTES: usize = 2 * 1024 * 1024;
/// Events per read of the raw text (CloudWatch's own most).
const RAW_EVENTS: i32 = 10_000;
/// Builds on a repository's history page.
pub const HISTORY_BUILDS: usize = 30;

/// The function's settings, from its environment (set by template.yaml).
#[derive(Debug, Clone)]
pub struct Settings {
    pub pages: PageSettings,
    pub artifact_bucket: String,
}

impl Settings {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env(var);
        Ok(Settings {
            pages: PageSettings::with_base(
                &env,
                &env.get(gantry_aws::pages::PAGE_URL_VAR).unwrap_or_default(),
            )?,
            artifact_bucket: env.required("ARTIFACT_BUCKET")?,
        })
    }

    pub fn deps(&self, sdk: &aws_config::SdkConfig) -> Deps {
        let s3 = aws_sdk_s3::Client::new(sdk);
        Deps {
            records: Records::new(s3.clone(), self.artifact_bucket.clone()),
            s3,
            // Made now: a build's page shows its log.
            logs: BuildLogs::new(aws_sdk_cloudwatchlogs::Client::new(sdk)),
            keys: PageKeys::new(
                aws_sdk_ssm::Client::new(sdk),
                self.pages.key_parameter.clone(),
            ),
            settings: self.pages.clone(),
        }
    }
}

pub struct Deps {
    pub records: Records,
    /// The bucket's artifacts, listed and linked on their build's page.
    pub s3: aws_sdk_s3::Client,
    pub logs: BuildLogs,
    pub keys: PageKeys,
    pub settings: PageSettings,
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Page {
    fn new(status: u16, content_type: &str, body: String, indexable: bool) -> Page {
        let mut headers = vec![
            ("content-type", content_type.to_owned()),
            (
                "content-security-policy",
                content_security_policy().to_owned(),
            ),
            // The link is the capability: it must not leave in a Referer.
            ("referrer-policy", "no-referrer".to_owned()),
            ("x-content-type-options", "nosniff".to_owned()),
            ("x-frame-options", "DENY".to_owned()),
            ("cache-control", "private, no-store".to_owned()),
        ];
        if !indexable {
            headers.push(("x-robots-tag", "noindex, nofollow".to_owned()));
        }
        Page {
            status,
            headers,
            body,
        }
    }

    fn html(status: u16, body: String, indexable: bool) -> Page {
        Page::new(status, "text/html; charset=utf-8", body, indexable)
    }

    fn refused(why: Refusal) -> Page {
        let status = match why {
            Refusal::Invalid => 403,
            Refusal::Expired => 410,
            Refusal::NotFound => 404,
        };
        Page::html(status, html::refused_page(&why), false)
    }

    fn unavailable(what: &str) -> Page {
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Gantry: try again</title></head><body><h1>This page is unavailable for a moment</h1><p>{}</p></body></html>",
            gantry_core::page::ansi::escape(what)
        );
        let mut page = Page::html(503, body, false);
        page.headers.push(("retry-after", "5".to_owned()));
        page
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request's query, by name.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Query {
        Query(
            form_urlencoded::parse(raw.trim_start_matches('?').as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What one link may read, once checked.
struct Allowed {
    route: Route,
    expires: Expiry,
    key: std::sync::Arc<PageKey>,
}

impl Allowed {
    /// A path under the same capability (relative, so that it works on
    /// any host that serves the page), with more query parameters.
    fn path(&self, suffix: &str, extra: &[(&str, &str)]) -> String {
        let target = self.route.target();
        let mut out = format!(
            "{}{suffix}{}",
            target.path(),
            link::query(&self.key, &target, self.expires)
        );
        for (k, v) in extra {
            out.push('&');
            out.push_str(k);
            out.push('=');
            out.extend(form_urlencoded::byte_serialize(v.as_bytes()));
        }
        out
    }
}

/// Answers one request: `method`, the URL's path and its raw query.
pub async fn serve(deps: &Deps, method: &str, path: &str, raw_query: &str, now_s: u64) -> Page {
    if method != "GET" && method != "HEAD" {
        let mut page = Page::html(405, html::refused_page(&Refusal::NotFound), false);
        page.headers.push(("allow", "GET, HEAD".to_owned()));
        return page;
    }
    let Some(route) = Route::parse(path) else {
        return Page::refused(Refusal::NotFound);
    };
    let query = Query::parse(raw_query);
    let key = match deps.keys.get().await {
        Ok(key) => key,
        // No key yet: no link was ever signed, none can be valid.
        Err(PageKeyError::Missing { .. }) => return Page::refused(Refusal::Invalid),
        Err(e) => {
            tracing::error!(error = %e, "the build page key could not be read");
            return Page::unavailable("Its key could not be read. Try again in a few seconds.");
        }
    };
    let expires = match link::check(&key, &route, query.get("expires"), query.get("sig"), now_s) {
        Ok(expires) => expires,
        Err(why) => {
            tracing::info!(path, refusal = %why, "link refused");
            return Page::refused(why);
        }
    };
    let allowed = Allowed {
        route,
        expires,
        key,
    };
    let page = match &allowed.route {
        Route::History(repo) => history(deps, &allowed, repo, now_s).await,
        Route::Build(id) | Route::Log(id) | Route::Raw(id) => {
            let record = match deps.records.build(id).await {
                Ok(Some(record)) => record,
                Ok(None) => return Page::refused(Refusal::NotFound),
                Err(e) => {
                    tracing::error!(error = %e, build_id = %id, "the build record could not be read");
                    return Page::unavailable("The build's record could not be read.");
                }
            };
            let Some(disclosure) = deps.settings.disclosure(&record.source) else {
                return Page::refused(Refusal::NotFound);
            };
            // A link that never expires is for a public fork page only,
            // whatever the settings were when it was signed.
            if expires == Expiry::Never && !deps.settings.is_public(&record.source, record.trusted)
            {
                return Page::refused(Refusal::Expired);
            }
            match &allowed.route {
                Route::Build(_) => build(deps, &allowed, &record, disclosure, now_s).await,
                _ if disclosure != Disclosure::Full => Page::refused(Refusal::NotFound),
                Route::Log(_) => log(deps, &allowed, &record, &query).await,
                _ => raw(deps, &allowed, &record, &query).await,
            }
        }
    };
    if method == "HEAD" {
        Page {
            body: String::new(),
            ..page
        }
    } else {
        page
    }
}

/// Where `record`'s log is: as its final event said, else where CodeBuild
/// puts it.
fn place(record: &BuildRecord) -> LogPlace {
    if let Some(place) = record.finished.as_ref().and_then(|f| f.log.clone()) {
        return place;
    }
    let (project, uuid) = record.build_id.parts();
    LogPlace::conventional(project.unwrap_or(&record.project), uuid, record.trusted)
}

async fn read(
    deps: &Deps,
    record: &BuildRecord,
    reading: Reading<'_>,
) -> Result<Option<LogPart>, Page> {
    read_up_to(deps, record, reading, WINDOW_EVENTS).await
}

async fn read_up_to(
    deps: &Deps,
    record: &BuildRecord,
    reading: Reading<'_>,
    limit: i32,
) -> Result<Option<LogPart>, Page> {
    deps.logs
        .part(&place(record), reading, limit)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, build_id = %record.build_id, "the build's log could not be read");
            Page::unavailable("The build's log could not be read.")
        })
}

fn missing(record: &BuildRecord) -> String {
    if record.finished.is_none() {
        "The build has not written its log yet; this page shows it as it comes.".to_owned()
    } else {
        "This build's log is not there: it was never written, or CloudWatch Logs no longer keeps it."
            .to_owned()
    }
}

async fn build(
    deps: &Deps,
    allowed: &Allowed,
    record: &BuildRecord,
    disclosure: Disclosure,
    now_s: u64,
) -> Page {
    let running = record.finished.is_none() && record.superseded_by.is_none();
    let mut view = LogView::default();
    if disclosure == Disclosure::Full {
        match read(deps, record, Reading::Latest).await {
            Err(page) => return page,
            Ok(None) => {
                view.missing = Some(missing(record));
                if running {
                    // The stream appears with the first line: follow from
                    // its start.
                    view.follow_url = Some(allowed.path("/log", &[("after", ""), ("n", "1")]));
                    view.missing = None;
                }
            }
            Ok(Some(part)) => {
                view.first_number = part.at_start.then_some(1);
                if !part.at_start
                    && let Some(back) = &part.backward
                {
                    view.older_url = Some(allowed.path("/log", &[("before", back)]));
                }
                if running && let Some(forward) = &part.forward {
                    let next = view
                        .first_number
                        .map(|first| (first + part.lines.len() as u64).to_string())
                        .unwrap_or_default();
                    view.follow_url =
                        Some(allowed.path("/log", &[("after", forward), ("n", &next)]));
                }
                view.lines = part.lines;
            }
        }
    }
    // The history link lasts no longer than this one, and never for ever:
    // a public fork page's link must not open a trusted build's list.
    let history_expiry = deps.settings.bounded(allowed.expires, now_s);
    let repo = Target::History(record.source.repository.full_name.clone());
    let links = BuildLinks {
        raw: (disclosure == Disclosure::Full).then(|| allowed.path("/raw", &[])),
        history: Some(format!(
            "{}{}",
            repo.path(),
            link::query(&allowed.key, &repo, history_expiry)
        )),
        console: Some(record.build_url.clone()),
        cloudwatch: record.logs_url.clone(),
    };
    let indexable = deps.settings.is_public(&record.source, record.trusted);
    let artifacts = match record.finished.as_ref().and_then(|f| f.artifacts.as_ref()) {
        // Only what is in Gantry's bucket: the record names the place.
        Some(place) if disclosure == Disclosure::Full && place.bucket == deps.records.bucket() => {
            match gantry_aws::build_artifacts::list(&deps.s3, place).await {
                Ok(list) => Some(list),
                Err(e) => {
                    tracing::warn!(error = %e, build_id = %record.build_id, "the build's artifacts could not be listed");
                    None
                }
            }
        }
        _ => None,
    };
    let body = html::build_page(&BuildPage {
        record,
        log: view,
        links,
        disclosure,
        indexable,
        artifacts,
    });
    Page::html(200, body, indexable)
}

/// A followed log's new lines, as JSON.
#[derive(Debug, serde::Serialize)]
pub struct Follow {
    pub html: String,
    pub next: String,
    pub done: bool,
}

async fn log(deps: &Deps, allowed: &Allowed, record: &BuildRecord, query: &Query) -> Page {
    if let Some(after) = query.get("after") {
        let reading = if after.is_empty() {
            Reading::FromStart(None)
        } else {
            Reading::After(after)
        };
        let part = match read(deps, record, reading).await {
            Err(page) => return page,
            Ok(part) => part.unwrap_or_default(),
        };
        let first: Option<u64> = query.get("n").and_then(|n| n.parse().ok());
        let next_n = first
            .map(|n| (n + part.lines.len() as u64).to_string())
            .unwrap_or_default();
        let forward = part.forward.clone().unwrap_or_else(|| after.to_owned());
        let ended = record.finished.is_some() || record.superseded_by.is_some();
        let follow = Follow {
            html: html::log_lines(&part.lines, first),
            next: allowed.path("/log", &[("after", &forward), ("n", &next_n)]),
            // Ended, and every line read.
            done: ended && (part.at_end || part.lines.is_empty()),
        };
        let body = serde_json::to_string(&follow).unwrap_or_default();
        return Page::new(200, "application/json", body, false);
    }
    let Some(before) = query.get("before") else {
        return Page::refused(Refusal::NotFound);
    };
    let part = match read(deps, record, Reading::Before(before)).await {
        Err(page) => return page,
        Ok(part) => part.unwrap_or_default(),
    };
    let view = LogView {
        first_number: part.at_start.then_some(1),
        older_url: match (&part.backward, part.at_start) {
            (Some(back), false) => Some(allowed.path("/log", &[("before", back)])),
            _ => None,
        },
        lines: part.lines,
        ..LogView::default()
    };
    Page::html(
        200,
        html::older_page(record, &view, &allowed.path("", &[])),
        false,
    )
}

async fn raw(deps: &Deps, allowed: &Allowed, record: &BuildRecord, query: &Query) -> Page {
    let mut token = query.get("from").map(str::to_owned);
    let mut body = String::new();
    let mut more = None;
    loop {
        let part = match read_up_to(
            deps,
            record,
            Reading::FromStart(token.as_deref()),
            RAW_EVENTS,
        )
        .await
        {
            Err(page) => return page,
            Ok(None) => break,
            Ok(Some(part)) => part,
        };
        for line in &part.lines {
            body.push_str(line);
            body.push('\n');
        }
        let next = part.forward.clone();
        if part.at_end || next.is_none() || next == token {
            break;
        }
        token = next;
        if body.len() >= RAW_PART_BYTES {
            more = token.clone();
            break;
        }
    }
    let (project, uuid) = record.build_id.parts();
    let mut page = Page::new(200, "text/plain; charset=utf-8", body, false);
    page.headers.push((
        "content-disposition",
        format!(
            "inline; filename=\"{}-{uuid}.log\"",
            project.unwrap_or(&record.project)
        ),
    ));
    if let Some(next) = more {
        let url = allowed.path("/raw", &[("from", &next)]);
        page.body.push_str(&format!(
            "[gantry: the log goes on in its next part: {url}]\n"
        ));
        page.headers
            .push(("link", format!("<{url}>; rel=\"next\"")));
    }
    page
}

async fn history(
    deps: &Deps,
    allowed: &Allowed,
    repo: &gantry_core::ids::RepoName,
    now_s: u64,
) -> Page {
    let records = match deps.records.recent_builds(repo, HISTORY_BUILDS).await {
        Ok(records) => records,
        Err(e) => {
            tracing::error!(error = %e, repo = %repo, "the history could not be read");
            return Page::unavailable("The repository's builds could not be read.");
        }
    };
    // One repository, one privacy: what its newest record says.
    let disclosure = match records.first() {
        Some(r) => match deps.settings.disclosure(&r.source) {
            Some(d) => d,
            None => return Page::refused(Refusal::NotFound),
        },
        None => Disclosure::Full,
    };
    let expires = deps.settings.bounded(allowed.expires, now_s);
    let rows: Vec<HistoryRow<'_>> = records
        .iter()
        .map(|r| {
            let target = Target::Build(r.build_id.clone());
            HistoryRow {
                record: r,
                url: format!(
                    "{}{}",
                    target.path(),
                    link::query(&allowed.key, &target, expires)
                ),
            }
        })
        .collect();
    Page::html(200, html::history_page(repo, &rows, disclosure), false)
}

/// Lambda function URL adapter.
pub async fn function_url(
    deps: &Deps,
    request: LambdaFunctionUrlRequest,
) -> LambdaFunctionUrlResponse {
    let method = request
        .request_context
        .http
        .method
        .clone()
        .unwrap_or_else(|| "GET".to_owned());
    let path = request.raw_path.clone().unwrap_or_default();
    let query = request.raw_query_string.clone().unwrap_or_default();
    let page = serve(
        deps,
        &method,
        &path,
        &query,
        gantry_core::events::now_ms() / 1000,
    )
    .await;
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = i64::from(page.status);
    for (name, value) in &page.headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers.insert(*name, value);
        }
    }
    response.body = Some(page.body);
    response
}
