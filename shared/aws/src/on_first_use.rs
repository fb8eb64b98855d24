//! SDK clients made when an invocation first needs them.

use std::ops::Deref;
use std::sync::LazyLock;

use aws_config::SdkConfig;

/// An SDK client made the first time it is used, then kept.
///
/// Making a client is the largest part of a function's init: the first
/// client of each service parses that service crate's own copy of the
/// partition table and compiles its regexes, about half a million
/// instructions, whatever the client is for (docs/PERFORMANCE.md, fifth
/// round). A function makes at init the clients every invocation uses; the
/// ones only a rarer path needs (a failed build's log, a pipeline's
/// execution, a re-run request, a Secrets Manager reference) wait for the
/// invocation that takes that path, and no other invocation pays for them.
pub struct OnFirstUse<C>(LazyLock<C, Box<dyn FnOnce() -> C + Send>>);

impl<C: 'static> OnFirstUse<C> {
    /// Made from `sdk` by `make` (`aws_sdk_cloudwatchlogs::Client::new`) on
    /// first use.
    pub fn new(sdk: &SdkConfig, make: fn(&SdkConfig) -> C) -> Self {
        let sdk = sdk.clone();
        OnFirstUse(LazyLock::new(Box::new(move || make(&sdk))))
    }
}

impl<C: Send + 'static> From<C> for OnFirstUse<C> {
    /// A client made already (one shared with another user, or a test's).
    fn from(client: C) -> Self {
        OnFirstUse(LazyLock::new(Box::new(move || client)))
    }
}

impl<C> Deref for OnFirstUse<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::OnFirstUse;
    use aws_config::SdkConfig;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static MADE: AtomicUsize = AtomicUsize::new(0);

    struct Client(&'static str);

    fn make(_: &SdkConfig) -> Client {
        MADE.fetch_add(1, Ordering::SeqCst);
        Client("made")
    }

    #[test]
    fn a_client_is_made_once_and_only_when_used() {
        let sdk = SdkConfig::builder().build();
        let lazy = OnFirstUse::new(&sdk, make);
        assert_eq!(MADE.load(Ordering::SeqCst), 0, "made before any use");
        let first: &Client = &lazy;
        let again: &Client = &lazy;
        assert_eq!((first.0, again.0), ("made", "made"));
        assert_eq!(MADE.load(Ordering::SeqCst), 1, "made once, then kept");
        let ready = OnFirstUse::from(Client("shared"));
        let shared: &Client = &ready;
        assert_eq!(shared.0, "shared");
        assert_eq!(MADE.load(Ordering::SeqCst), 1);
    }
}
