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
    /// when they cannot be one request (none, or more than `GetParameters`
    /// takes): the caches then read their own.
    pub fn new(ssm: aws_sdk_ssm::Client, names: &[String]) -> Option<Arc<FirstRead>> {
        let mut unique: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            if !unique.contains(name) {
                unique.push(name.clone());
            }
        }
        (!unique.is_empty() && unique.len() <= BATCH).then(|| {
            Arc::new(FirstRead {
                ssm,
                names: unique,
                answer: tokio::sync::OnceCell::new(),
            })
        })
    }
}

/// `names` (at most [`BATCH`]) decrypted, in one `GetParameters`: those
/// that exist, or why SSM could not be read. Boxed: nested in a function's
/// futures, the SDK's future takes them past rustc's layout depth limit.
pub(crate) async fn read_decrypted(
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

/// What a cache holds of a [`FirstRead`]: whether it has taken its answer.
pub(crate) struct FirstReadShare {
    read: Arc<FirstRead>,
    taken: AtomicBool,
}

/// The first read's answer, as a cache takes it: the parameters that exist
/// among the names (a name that does not exist is absent), or why SSM
/// could not be read.
pub(crate) type Answer<'a> = Result<&'a [Parameter], &'a str>;

impl FirstReadShare {
    /// `read`, unless it does not name every one of `names` (then the cache
    /// reads its own).
    pub(crate) fn new(read: Arc<FirstRead>, names: &[String]) -> Option<FirstReadShare> {
        names
            .iter()
            .all(|n| read.names.contains(n))
            .then(|| FirstReadShare {
                read,
                taken: AtomicBool::new(false),
            })
    }

    /// The answer, read now if no cache asked before: once per cache, and
    /// `None` after that or once the answer is `max_age` old. A failure is
    /// the answer only of the cache whose read it was: the others, asked
    /// later, read their own (SSM may be back).
    pub(crate) async fn take(&self, max_age: Duration) -> Option<Answer<'_>> {
        if self.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        let mut read_here = false;
        let (at, answer) = self
            .read
            .answer
            .get_or_init(|| {
                read_here = true;
                async {
                    (
                        Instant::now(),
                        read_decrypted(&self.read.ssm, &self.read.names).await,
                    )
                }
            })
            .await;
        if answer.is_err() && !read_here {
            return None;
        }
        (at.elapsed() < max_age).then(|| answer.as_deref().map_err(String::as_str))
    }
}

/// The value of `name` in a [`FirstRead`]'s answer.
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
        assert!(FirstReadShare::new(read.clone(), &names(&["/p/1", "/q"])).is_none());
        assert!(FirstReadShare::new(read, &names(&["/p/1", "/p/2"])).is_some());
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
