//! Creating and updating check runs (`POST /repos/{owner}/{repo}/check-runs`,
//! `PATCH …/check-runs/{id}`), as `gantry_core::github::checks` decides
//! them. GitHub takes at most 50 annotations per request: the first 50 go
//! with the run, the rest follow in updates of 50 that repeat the output's
//! title and summary (GitHub appends annotations, it does not replace
//! them).

use serde::{Deserialize, Serialize};

use super::contents::{GitHubClient, GitHubError, transport};
use super::statuses::{check_repo, is_web_url};
use crate::secrets::Secret;
use gantry_core::github::checks::{
    Action, Annotation, CheckState, CheckStatus, Conclusion, MAX_ANNOTATIONS_PER_REQUEST,
};

/// What a check run shows at one moment.
#[derive(Debug, Clone)]
pub struct CheckRun<'a> {
    /// The run's name on the pull request, e.g. `gantry/widgets`.
    pub name: &'a str,
    pub head_sha: &'a str,
    pub state: CheckState,
    /// Gantry's id for it: the build id, or the delivery's.
    pub external_id: &'a str,
    /// The build page.
    pub details_url: Option<&'a str>,
    pub title: &'a str,
    /// Markdown.
    pub summary: &'a str,
    /// Markdown: the failed phase's last lines.
    pub text: Option<&'a str>,
    pub annotations: &'a [Annotation],
    pub actions: &'a [Action],
}

#[derive(Serialize)]
struct Output<'a> {
    title: &'a str,
    summary: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    annotations: &'a [Annotation],
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head_sha: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<CheckStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conclusion: Option<Conclusion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details_url: Option<&'a str>,
    output: Output<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actions: Option<&'a [Action]>,
}

#[derive(Deserialize)]
struct Created {
    id: u64,
}

#[derive(Deserialize)]
struct Listed {
    id: u64,
    #[serde(default)]
    external_id: Option<String>,
}

#[derive(Deserialize)]
struct Runs {
    check_runs: Vec<Listed>,
}

impl<'a> CheckRun<'a> {
    /// The body of the first request: everything, and the first batch of
    /// annotations.
    fn body(&self, create: bool) -> Body<'a> {
        let first = self.annotations.len().min(MAX_ANNOTATIONS_PER_REQUEST);
        Body {
            name: Some(self.name),
            head_sha: create.then_some(self.head_sha),
            status: Some(self.state.status),
            conclusion: self.state.conclusion,
            external_id: Some(self.external_id),
            details_url: self.details_url.filter(|u| is_web_url(u)),
            output: Output {
                title: self.title,
                summary: self.summary,
                text: self.text,
                annotations: &self.annotations[..first],
            },
            // An empty list takes the buttons of an earlier moment away.
            actions: Some(self.actions),
        }
    }
}

impl GitHubClient {
    /// Creates the run on `repo` (`owner/name`); its id.
    pub async fn create_check_run(
        &self,
        repo: &str,
        run: &CheckRun<'_>,
        token: &Secret,
    ) -> Result<u64, GitHubError> {
        let (owner, name) = check_repo(repo)?;
        let what = format!("check run {:?} for {repo}@{}", run.name, run.head_sha);
        let url = self.url(&["repos", owner, name, "check-runs"])?;
        let response = self
            .send(self.http.post(url), &run.body(true), &what, token)
            .await?;
        let created: Created = response.json().await.map_err(|e| GitHubError::Transient {
            what: what.clone(),
            reason: format!("unreadable answer: {}", transport(&e)),
        })?;
        self.more_annotations(repo, created.id, run, token).await?;
        Ok(created.id)
    }

    /// The run named `name` on commit `sha` whose `external_id` is Gantry's
    /// `external_id`, if GitHub has one: a creation whose answer was lost
    /// (a timeout, a crash before it was recorded) is found, not repeated.
    pub async fn find_check_run(
        &self,
        repo: &str,
        sha: &str,
        name: &str,
        external_id: &str,
        token: &Secret,
    ) -> Result<Option<u64>, GitHubError> {
        let (owner, repo_name) = check_repo(repo)?;
        super::statuses::check_sha(sha)?;
        let what = format!("check runs {name:?} of {repo}@{sha}");
        let mut url = self.url(&["repos", owner, repo_name, "commits", sha, "check-runs"])?;
        url.query_pairs_mut()
            .append_pair("check_name", name)
            .append_pair("filter", "all")
            .append_pair("per_page", "100");
        Ok(self
            .listed_runs(url, token, &what)
            .await?
            .into_iter()
            .find(|r| r.external_id.as_deref() == Some(external_id))
            .map(|r| r.id))
    }

    /// The runs of check suite `suite_id` (Re-run all): (id, external id)
    /// of each that has one. A suite holds one App's runs, so these are
    /// Gantry's; a suite of more than 100 runs is read in its first 100.
    pub async fn suite_check_runs(
        &self,
        repo: &str,
        suite_id: u64,
        token: &Secret,
    ) -> Result<Vec<(u64, String)>, GitHubError> {
        let (owner, repo_name) = check_repo(repo)?;
        let what = format!("the runs of check suite {suite_id} of {repo}");
        let suite = suite_id.to_string();
        let mut url = self.url(&[
            "repos",
            owner,
            repo_name,
            "check-suites",
            &suite,
            "check-runs",
        ])?;
        url.query_pairs_mut()
            .append_pair("filter", "latest")
            .append_pair("per_page", "100");
        Ok(self
            .listed_runs(url, token, &what)
            .await?
            .into_iter()
            .filter_map(|r| Some((r.id, r.external_id?)))
            .collect())
    }

    /// The runs a listing at `url` answers.
    async fn listed_runs(
        &self,
        url: reqwest::Url,
        token: &Secret,
        what: &str,
    ) -> Result<Vec<Listed>, GitHubError> {
        let response = self
            .call_ok(self.http.get(url), Some(token), token, what)
            .await?;
        let runs: Runs = response.json().await.map_err(|e| GitHubError::Transient {
            what: what.to_owned(),
            reason: format!("unreadable answer: {}", transport(&e)),
        })?;
        Ok(runs.check_runs)
    }

    /// Updates run `id` on `repo` to what `run` shows.
    pub async fn update_check_run(
        &self,
        repo: &str,
        id: u64,
        run: &CheckRun<'_>,
        token: &Secret,
    ) -> Result<(), GitHubError> {
        let (owner, name) = check_repo(repo)?;
        let what = format!("check run {id} ({:?}) of {repo}", run.name);
        let id_text = id.to_string();
        let url = self.url(&["repos", owner, name, "check-runs", &id_text])?;
        self.send(self.http.patch(url), &run.body(false), &what, token)
            .await?;
        self.more_annotations(repo, id, run, token).await
    }

    /// The annotations past the first batch, 50 at a time.
    async fn more_annotations(
        &self,
        repo: &str,
        id: u64,
        run: &CheckRun<'_>,
        token: &Secret,
    ) -> Result<(), GitHubError> {
        let Some(rest) = run.annotations.get(MAX_ANNOTATIONS_PER_REQUEST..) else {
            return Ok(());
        };
        let (owner, name) = check_repo(repo)?;
        let id_text = id.to_string();
        for batch in rest.chunks(MAX_ANNOTATIONS_PER_REQUEST) {
            let what = format!("annotations of check run {id} of {repo}");
            let url = self.url(&["repos", owner, name, "check-runs", &id_text])?;
            let body = Body {
                name: None,
                head_sha: None,
                status: None,
                conclusion: None,
                external_id: None,
                details_url: None,
                output: Output {
                    title: run.title,
                    summary: run.summary,
                    text: None,
                    annotations: batch,
                },
                actions: None,
            };
            self.send(self.http.patch(url), &body, &what, token).await?;
        }
        Ok(())
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        body: &Body<'_>,
        what: &str,
        token: &Secret,
    ) -> Result<reqwest::Response, GitHubError> {
        self.call_ok(request.json(body), Some(token), token, what)
            .await
    }
}
