//! A value read from SSM, kept for a TTL, and served stale while SSM is
//! unreachable: what the webhook secret and the configuration both need.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

pub(crate) struct TtlCache<T: ?Sized> {
    ttl: Duration,
    state: Mutex<Option<(Instant, Arc<T>)>>,
}

impl<T: ?Sized> TtlCache<T> {
    pub(crate) fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            state: Mutex::new(None),
        }
    }

    /// The cached value if younger than `max_age` (and the TTL), else a
    /// fresh one from `fetch`. When `fetch` fails with an error
    /// `is_transient` accepts and a value was cached, that value is served
    /// (and the failure logged); any other failure clears the cache, so a
    /// user who fixes the parameter sees it on the next request.
    pub(crate) async fn get<E, Fut>(
        &self,
        max_age: Duration,
        fetch: impl FnOnce() -> Fut,
        is_transient: impl Fn(&E) -> bool,
    ) -> Result<Arc<T>, E>
    where
        E: Display,
        Fut: Future<Output = Result<Arc<T>, E>>,
    {
        let mut state = self.state.lock().await;
        if let Some((fetched, value)) = state.as_ref()
            && fetched.elapsed() < max_age.min(self.ttl)
        {
            return Ok(value.clone());
        }
        match fetch().await {
            Ok(value) => {
                *state = Some((Instant::now(), value.clone()));
                Ok(value)
            }
            Err(e) if is_transient(&e) && state.is_some() => match state.as_ref() {
                Some((_, stale)) => {
                    tracing::warn!(error = %e, "SSM unavailable; serving the cached value");
                    Ok(stale.clone())
                }
                None => Err(e),
            },
            Err(e) => {
                *state = None;
                Err(e)
            }
        }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum E {
        Down,
        Missing,
    }

    impl Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    fn transient(e: &E) -> bool {
        *e == E::Down
    }

    #[tokio::test(flavor = "current_thread")]
    async fn fresh_values_are_served_without_fetching() {
        let cache: TtlCache<u32> = TtlCache::new(Duration::from_secs(60));
        let first = cache
            .get(
                Duration::MAX,
                || async { Ok::<_, E>(Arc::new(1)) },
                transient,
            )
            .await;
        assert_eq!(first.as_deref(), Ok(&1));
        let second = cache
            .get(
                Duration::MAX,
                || async { Ok::<_, E>(Arc::new(2)) },
                transient,
            )
            .await;
        assert_eq!(second.as_deref(), Ok(&1), "cached value within the TTL");
        let forced = cache
            .get(
                Duration::ZERO,
                || async { Ok::<_, E>(Arc::new(3)) },
                transient,
            )
            .await;
        assert_eq!(forced.as_deref(), Ok(&3), "max_age zero forces a fetch");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_transient_failure_serves_stale_and_a_permanent_one_clears() {
        let cache: TtlCache<u32> = TtlCache::new(Duration::ZERO);
        assert!(
            cache
                .get(
                    Duration::MAX,
                    || async { Err::<Arc<u32>, _>(E::Down) },
                    transient
                )
                .await
                .is_err()
        );
        let _ = cache
            .get(
                Duration::MAX,
                || async { Ok::<_, E>(Arc::new(7)) },
                transient,
            )
            .await;
        let stale = cache
            .get(
                Duration::MAX,
                || async { Err::<Arc<u32>, _>(E::Down) },
                transient,
            )
            .await;
        assert_eq!(stale.as_deref(), Ok(&7));
        let gone = cache
            .get(
                Duration::MAX,
                || async { Err::<Arc<u32>, _>(E::Missing) },
                transient,
            )
            .await;
        assert_eq!(gone.err(), Some(E::Missing));
        let after = cache
            .get(
                Duration::MAX,
                || async { Err::<Arc<u32>, _>(E::Down) },
                transient,
            )
            .await;
        assert_eq!(after.err(), Some(E::Down), "nothing stale left to serve");
    }
}
