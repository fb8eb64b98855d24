//! The first read of a function's SSM parameters, in one request.
//!
//! A function's parameter caches ([`SecretCache`](super::secrets::SecretCache),
//! [`ConfigSource`](super::config_source::ConfigSource)) each read their
//! own parameters when first asked: on a cold start, one SSM request per
//! cache before the first invocation can answer, each a round trip and
//! about half a million instructions of the SDK's (docs/PERFORMANCE.md).
//! Given one [`FirstRead`] naming every parameter they will ask for, the
//! first cache asked reads them all in one `GetParameters`, and the others
//! take theirs from that answer. Each cache takes the answer once, and only
//! while it is younger than the cache's TTL; every later read (a refresh, a
//! retry after a failure, a re-read after a signature mismatch) is the
//! cache's own, as without it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_ssm::types::Parameter;

use super::describe_sdk_error;
use super::parameters::BATCH;

/// One `GetParameters` (decrypted) for the first read of several caches.
pub struct FirstRead {
    ssm: aws_sdk_ssm::Client,
    names: Vec<String>,
    answer: tokio::sync::OnceCell<(Instant, Result<Vec<Parameter>, String>)>,
}

impl FirstRead {
    /// Reads `names` (each once) together when a cache first asks. `None`
    /// when there is nothing to share (fewer than two names) or they cannot
    /// be one request (more than `GetParameters` takes): the caches then
    /// read their own.
    pub fn new(ssm: aws_sdk_ssm::Client, names: &[String]) -> Option<Arc<FirstRead>> {
        let mut unique: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            if !unique.contains(name) {
                unique.push(name.clone());
            }
        }
        (2..=BATCH).contains(&unique.len()).then(|| {
            Arc::new(FirstRead {
                ssm,
                names: unique,
                answer: tokio::sync::OnceCell::new(),
            })
        })
    }
}

/// `names` decrypted, in one `GetParameters`: those that exist. Boxed, as
/// every read here is: nested in a function's futures, the SDK's future
/// takes them past rustc's layout depth limit.
async fn get_parameters(
    ssm: &aws_sdk_ssm::Client,
    names: &[String],
) -> Result<Vec<Parameter>, String> {
    let out = Box::pin(
        ssm.get_parameters()
            .set_names(Some(names.to_vec()))
            .with_decryption(true)
            .send(),
    )
    .await
    .map_err(|e| describe_sdk_error(&e))?;
    Ok(out.parameters.unwrap_or_default())
}

/// Where a parameter cache reads: its share of a [`FirstRead`] while it
/// may take it, else its own request.
pub(crate) struct Reads {
    ssm: aws_sdk_ssm::Client,
    first: Option<Share>,
}

/// A cache's share of a [`FirstRead`]: whether it has taken its answer.
struct Share {
    read: Arc<FirstRead>,
    taken: AtomicBool,
}

impl Reads {
    pub(crate) fn new(ssm: aws_sdk_ssm::Client) -> Reads {
        Reads { ssm, first: None }
    }

    pub(crate) fn ssm(&self) -> &aws_sdk_ssm::Client {
        &self.ssm
    }

    /// Takes the first read of `names` from `read`, unless it does not name
    /// every one of them.
    pub(crate) fn share(&mut self, read: &Arc<FirstRead>, names: &[String]) {
        self.first = names.iter().all(|n| read.names.contains(n)).then(|| Share {
            read: read.clone(),
            taken: AtomicBool::new(false),
        });
    }

    /// `names` decrypted: those that exist, or why SSM could not be read.
    pub(crate) async fn parameters(
        &self,
        names: &[String],
        max_age: Duration,
    ) -> Result<Vec<Parameter>, String> {
        match self.take(max_age).await {
            Some(answer) => answer,
            None => get_parameters(&self.ssm, names).await,
        }
    }

    /// `name` decrypted; `None` if there is no such parameter. Its own read
    /// is a `GetParameter` (what the roles of the functions reading one
    /// parameter allow).
    pub(crate) async fn parameter(
        &self,
        name: &str,
        max_age: Duration,
    ) -> Result<Option<String>, String> {
        if let Some(answer) = self.take(max_age).await {
            return answer.map(|params| value_of(&params, name).map(str::to_owned));
        }
        let read = Box::pin(
            self.ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send(),
        )
        .await;
        match read {
            Ok(out) => Ok(Some(
                out.parameter()
                    .and_then(|p| p.value())
                    .unwrap_or_default()
                    .to_owned(),
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(aws_sdk_ssm::operation::get_parameter::GetParameterError::is_parameter_not_found) =>
            {
                Ok(None)
            }
            Err(e) => Err(describe_sdk_error(&e)),
        }
    }

    /// The first read's answer, read now if no cache asked before: once
    /// per cache, and `None` after that or once the answer is `max_age`
    /// old. A failure is the answer only of the cache whose read it was:
    /// the others, asked later, read their own (SSM may be back).
    async fn take(&self, max_age: Duration) -> Option<Result<Vec<Parameter>, String>> {
        let share = self.first.as_ref()?;
        if share.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        let mut read_here = false;
        let (at, answer) = share
            .read
            .answer
            .get_or_init(|| {
                read_here = true;
                async {
                    let names = &share.read.names;
                    let answer = get_parameters(&share.read.ssm, names).await.map_err(|e| {
                        // Say which names: the failure may be another cache's
                        // parameter's (one the role may not read, say).
                        format!("reading {} together: {e}", names.join(", "))
                    });
                    (Instant::now(), answer)
                }
            })
            .await;
        if answer.is_err() && !read_here {
            return None;
        }
        (at.elapsed() < max_age).then(|| answer.clone())
    }
}

/// The value of `name` among `parameters`.
pub(crate) fn value_of<'a>(parameters: &'a [Parameter], name: &str) -> Option<&'a str> {
    parameters
        .iter()
        .find(|p| p.name() == Some(name))
        .and_then(Parameter::value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssm() -> aws_sdk_ssm::Client {
        let config = aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new("us-east-1"))
            .build();
        aws_sdk_ssm::Client::from_conf(config)
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn only_what_one_request_can_read_is_read_together() {
        assert!(FirstRead::new(ssm(), &[]).is_none());
        assert!(
            FirstRead::new(ssm(), &names(&["/a", "/a"])).is_none(),
            "one name: nothing to share"
        );
        let eleven: Vec<String> = (0..11).map(|i| format!("/p/{i}")).collect();
        assert!(
            FirstRead::new(ssm(), &eleven).is_none(),
            "GetParameters takes 10"
        );
        // Duplicates are one name.
        let ten_twice: Vec<String> = (0..20).map(|i| format!("/p/{}", i % 10)).collect();
        let read = FirstRead::new(ssm(), &ten_twice).expect("ten names");
        assert_eq!(read.names.len(), 10);
        // A cache whose names the read does not cover reads its own.
        let mut reads = Reads::new(ssm());
        reads.share(&read, &names(&["/p/1", "/q"]));
        assert!(reads.first.is_none());
        reads.share(&read, &names(&["/p/1", "/p/2"]));
        assert!(reads.first.is_some());
    }

    #[test]
    fn a_value_is_found_by_its_name_only() {
        let params = [
            Parameter::builder().name("/a").value("one").build(),
            Parameter::builder().name("/b").value("two").build(),
        ];
        assert_eq!(value_of(&params, "/b"), Some("two"));
        assert_eq!(value_of(&params, "/c"), None);
    }
}
