//! A moment of a build carried out as a check run (App mode): the run of
//! one delivery's build of one project is created once (claimed, and looked
//! for on GitHub before it is created again after a lost answer), then
//! updated, never backwards; its record (`gantry_core::records::
//! CheckRunRecord`) says what it was last set to and serves a re-run.

use gantry_core::events::BuildSource;
use gantry_core::github::checks::{self, CheckState, Links};
use gantry_core::ids::BuildId;
use gantry_core::records::{BuildRecord, CheckRunRecord, Effect, Holder, check_run_key};
use gantry_core::status::Verdict;

use crate::github::app::Permissions;
use crate::github::checks::CheckRun;
use crate::records::Acquired;
use crate::report::{ReportError, Reporter};

/// A moment to set on the run.
pub struct Moment<'a> {
    pub correlation_id: &'a str,
    pub project: &'a str,
    /// The build, once one started.
    pub build_id: Option<&'a BuildId>,
    /// The buildspec it runs, once validated.
    pub buildspec_digest: Option<&'a str>,
    pub source: &'a BuildSource,
    /// The run's name: the status context (`gantry/<project>` by default).
    pub name: &'a str,
    /// The claim key of this moment, so its retry sets it again.
    pub moment: String,
    pub verdict: &'a Verdict,
    pub record: Option<&'a BuildRecord>,
    /// The failed phase's last lines, in Markdown (`output.text`).
    pub text: Option<&'a str>,
    /// Annotations beyond the verdict's (the log's).
    pub log_annotations: &'a [checks::Annotation],
    /// Only create the run (the moment a delivery is accepted): a later
    /// moment that got there first is never replaced by "queued".
    pub only_create: bool,
}

/// What became of a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created(u64),
    Updated(u64),
    /// Not set, and why.
    Kept(&'static str),
}

impl Moment<'_> {
    fn state(&self) -> CheckState {
        checks::state(
            self.verdict.result,
            self.record
                .and_then(|r| r.finished.as_ref())
                .map(|f| &f.status),
            self.verdict.awaiting_approval,
        )
    }
}

/// Sets `moment` on its check run.
pub async fn report(
    reporter: &Reporter,
    holder: &Holder,
    moment: &Moment<'_>,
) -> Result<Outcome, ReportError> {
    let repo = &moment.source.repository.full_name;
    let state = moment.state();
    let key = check_run_key(moment.correlation_id, moment.project);
    let external_id = checks::external_id(moment.correlation_id, moment.project);
    // The build's page, when the moment links to it (see report's
    // page_link).
    let build_page = reporter.pages.as_ref().and_then(|pages| {
        moment
            .verdict
            .target_url
            .as_deref()
            .filter(|url| url.starts_with(&format!("{}/builds/", pages.settings.base_url)))
    });
    let links = Links {
        build_page,
        console: moment.record.map(|r| r.build_url.as_str()),
        log: moment.record.and_then(|r| r.logs_url.as_deref()),
    };
    let summary = checks::summary(
        &moment.verdict.description,
        moment.record,
        moment.buildspec_digest,
        &links,
    );
    let annotations: Vec<_> = moment
        .verdict
        .annotations
        .iter()
        .chain(moment.log_annotations)
        .cloned()
        .collect();
    let actions = checks::buttons(state);
    let run = CheckRun {
        name: moment.name,
        head_sha: moment.source.commit_sha.as_str(),
        state,
        external_id: &external_id,
        details_url: moment
            .verdict
            .target_url
            .as_deref()
            .or(links.console)
            .or(Some(moment.source.repository.html_url.as_str())),
        title: &summary.title,
        summary: &summary.summary,
        text: moment.text,
        annotations: &annotations,
        actions: &actions,
    };
    let token = reporter
        .credentials
        .required(
            moment.source.installation_id,
            repo,
            Permissions::WRITE_CHECKS,
        )
        .await?;
    // Three looks, as a claim's: a record changed between our read and
    // our write is read again and decided anew.
    for _ in 0..3 {
        let Some((mut record, etag)) = reporter
            .records
            .get_json_tagged::<CheckRunRecord>(&key)
            .await?
        else {
            let effect = Effect::CheckRun {
                correlation_id: moment.correlation_id,
                project: moment.project,
            };
            let lease = match reporter.records.acquire(&effect, holder).await? {
                Acquired::Won(lease) => lease,
                // Created meanwhile: its record is there now.
                Acquired::Done => continue,
                Acquired::Busy { holder: other, .. } => {
                    return Err(ReportError::Busy {
                        effect: "the check run's creation",
                        holder: other,
                    });
                }
            };
            let created = async {
                // An earlier attempt may have created it and lost the
                // answer, or stopped before recording it.
                let found = reporter
                    .github
                    .find_check_run(
                        repo,
                        moment.source.commit_sha.as_str(),
                        moment.name,
                        &external_id,
                        &token,
                    )
                    .await?;
                let id = match found {
                    Some(id) => {
                        reporter
                            .github
                            .update_check_run(repo, id, &run, &token)
                            .await?;
                        id
                    }
                    None => reporter.github.create_check_run(repo, &run, &token).await?,
                };
                let record = CheckRunRecord {
                    id,
                    name: moment.name.to_owned(),
                    correlation_id: moment.correlation_id.into(),
                    project: moment.project.to_owned(),
                    source: moment.source.clone(),
                    build_id: moment.build_id.cloned(),
                    state,
                    moment: moment.moment.clone(),
                };
                reporter.records.put_json(&key, &record).await?;
                Ok::<_, ReportError>(id)
            }
            .await;
            return match created {
                Ok(id) => {
                    reporter.records.complete(lease, holder).await?;
                    Ok(Outcome::Created(id))
                }
                Err(e) => {
                    reporter.records.release(lease).await?;
                    Err(e)
                }
            };
        };
        let retry = record.moment == moment.moment;
        if !retry {
            if moment.only_create {
                return Ok(Outcome::Kept("the check run is further along"));
            }
            if !record.state.may_become(state) {
                return Ok(Outcome::Kept("never backwards"));
            }
            record.state = state;
            record.moment = moment.moment.clone();
            if let Some(build_id) = moment.build_id {
                record.build_id = Some(build_id.clone());
            }
            if !reporter.records.replace_json(&key, &record, &etag).await? {
                continue;
            }
        }
        reporter
            .github
            .update_check_run(repo, record.id, &run, &token)
            .await?;
        return Ok(Outcome::Updated(record.id));
    }
    Err(ReportError::Busy {
        effect: "the check run",
        holder: "other moments changing it".into(),
    })
}
