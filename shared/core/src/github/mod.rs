//! Everything GitHub: the webhook signature, the payloads, and turning a
//! delivery into a build request.

pub mod app_manifest;
pub mod checks;
pub mod deliveries;
pub mod normalise;
pub mod payload;
pub mod permissions;
pub mod signature;
pub mod statuses;

/// Headers GitHub sends with every delivery (lower-case, as HTTP/2 and
/// function URLs deliver them).
pub mod headers {
    pub const EVENT: &str = "x-github-event";
    pub const DELIVERY: &str = "x-github-delivery";
    pub const SIGNATURE_256: &str = super::signature::SIGNATURE_HEADER;
    pub const HOOK_ID: &str = "x-github-hook-id";
    /// The numeric id of what the webhook is installed on (a repository, an
    /// organisation, an App), and its kind. Not signed: it only chooses
    /// which secret to verify with, and the verified body must then be
    /// about that target.
    pub const TARGET_ID: &str = "x-github-hook-installation-target-id";
    pub const TARGET_TYPE: &str = "x-github-hook-installation-target-type";
}
