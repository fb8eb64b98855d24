//! Registering Gantry as a GitHub App by GitHub's manifest flow: the
//! manifest (what the App may do and which events it receives: only what
//! Gantry uses), where to post it, and where its installation starts.

use serde_json::{Value, json};

/// The events GitHub sends the App: those the webhook acts on (`ping`
/// comes unasked). `check_run` and `check_suite` carry Re-run and the
/// buttons; they also bring the App's own runs' `created` and
/// `completed`, which the webhook answers `ignored` at once.
pub const EVENTS: [&str; 4] = [
    crate::webhook::events::PUSH,
    crate::webhook::events::PULL_REQUEST,
    crate::webhook::events::CHECK_RUN,
    crate::webhook::events::CHECK_SUITE,
];

/// What the manifest describes.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// The App's name on GitHub (unique there).
    pub name: &'a str,
    /// Its homepage.
    pub url: &'a str,
    /// Gantry's webhook: the function URL of the deployed stack.
    pub webhook_url: &'a str,
    /// Where GitHub sends the browser back with the code.
    pub redirect_url: &'a str,
}

/// The manifest: a private App asking for the least Gantry uses (checks
/// and statuses to write, contents and pull requests to read, metadata as
/// every App has), with its webhook active.
pub fn manifest(spec: &Spec<'_>) -> Value {
    json!({
        "name": spec.name,
        "url": spec.url,
        "hook_attributes": {"url": spec.webhook_url, "active": true},
        "redirect_url": spec.redirect_url,
        "public": false,
        "default_permissions": {
            "checks": "write",
            "statuses": "write",
            "contents": "read",
            "pull_requests": "read",
            "metadata": "read",
        },
        "default_events": EVENTS,
    })
}

/// The page the manifest is posted to: the user's own settings, or an
/// organisation's (`org`); `state` comes back with the code.
pub fn new_app_url(github_url: &str, org: Option<&str>, state: &str) -> String {
    let base = github_url.trim_end_matches('/');
    match org {
        Some(org) => format!("{base}/organizations/{org}/settings/apps/new?state={state}"),
        None => format!("{base}/settings/apps/new?state={state}"),
    }
}

/// Where the App, once made, is installed on repositories.
pub fn install_url(github_url: &str, slug: &str) -> String {
    format!(
        "{}/apps/{slug}/installations/new",
        github_url.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_asks_for_only_what_gantry_uses() {
        let m = manifest(&Spec {
            name: "gantry-octo-org",
            url: "https://github.com/octo-org",
            webhook_url: "https://abc.lambda-url.eu-west-1.on.aws/",
            redirect_url: "http://127.0.0.1:8123/callback",
        });
        assert_eq!(m["public"], false);
        assert_eq!(
            m["hook_attributes"]["url"],
            "https://abc.lambda-url.eu-west-1.on.aws/"
        );
        assert_eq!(m["hook_attributes"]["active"], true);
        let permissions = m["default_permissions"].as_object().expect("permissions");
        let mut granted: Vec<(&str, &str)> = permissions
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
            .collect();
        granted.sort_unstable();
        assert_eq!(
            granted,
            [
                ("checks", "write"),
                ("contents", "read"),
                ("metadata", "read"),
                ("pull_requests", "read"),
                ("statuses", "write"),
            ]
        );
        assert_eq!(
            m["default_events"],
            json!(["push", "pull_request", "check_run", "check_suite"])
        );
    }

    #[test]
    fn the_manifest_goes_to_the_users_or_the_organisations_settings() {
        assert_eq!(
            new_app_url("https://github.com/", None, "s1"),
            "https://github.com/settings/apps/new?state=s1"
        );
        assert_eq!(
            new_app_url("https://github.example.com", Some("octo-org"), "s1"),
            "https://github.example.com/organizations/octo-org/settings/apps/new?state=s1"
        );
        assert_eq!(
            install_url("https://github.com", "gantry-octo-org"),
            "https://github.com/apps/gantry-octo-org/installations/new"
        );
    }
}
