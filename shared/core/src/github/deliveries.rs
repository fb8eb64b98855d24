//! Deliveries GitHub lost: which of a webhook's recent deliveries to ask
//! GitHub to redeliver.
//!
//! GitHub never redelivers a failed delivery by itself; it lists every
//! attempt of the last three days (`GET …/hook/deliveries`), one entry per
//! attempt, the attempts of one event sharing its `guid` (the
//! `X-GitHub-Delivery` header the webhook sees). An event whose attempts
//! all failed was lost; asking for its newest attempt again
//! (`POST …/deliveries/{id}/attempts`) sends the same body under the same
//! `guid`.
//!
//! Asking is safe even when GitHub was wrong about the failure (the webhook
//! accepted the delivery, but its answer never reached GitHub): the
//! webhook's delivery ledger (`deliveries/body-<sha256 of the body>`,
//! claimed before publishing) answers such a redelivery `duplicate` and
//! publishes nothing.
//! So the only cost of a redelivery is a request; the bound `max` is there
//! so a delivery the webhook refuses for good (a bad signature, a body too
//! large) is not sent again and again.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::time::SignedTime;

/// How long GitHub keeps a hook's deliveries (and redelivers them): three
/// days.
pub const KEPT_MS: u64 = 3 * 24 * 60 * 60 * 1000;

/// Redeliveries of one event, by default: a lost delivery is asked for
/// again at most this many times (counting the redeliveries anyone asked
/// for, on GitHub's page too).
pub const DEFAULT_MAX_REDELIVERIES: u32 = 3;

/// One attempt of one delivery, as GitHub lists it (the fields Gantry
/// reads; the rest are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Delivery {
    /// The attempt's id: what a redelivery names.
    pub id: u64,
    /// The event's id, shared by its every attempt.
    pub guid: String,
    /// When the attempt was made; `None` when GitHub's date is unreadable.
    #[serde(default)]
    pub delivered_at: SignedTime,
    /// Made by a Redeliver, not by the event.
    #[serde(default)]
    pub redelivery: bool,
    /// The webhook's answer; `None` (or 0) when there was none (timed
    /// out, could not connect).
    #[serde(default)]
    pub status_code: Option<u16>,
    /// GitHub's words for the outcome ("OK", "failed to connect").
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
}

impl Delivery {
    /// The webhook answered, and not with an error.
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|c| c != 0 && c < 400)
    }
}

/// A delivery to ask for again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redelivery<H> {
    /// Where the attempt was listed (the hook it is redelivered through).
    pub hook: H,
    pub guid: String,
    /// The newest attempt's id: the one redelivered.
    pub delivery_id: u64,
    /// Redeliveries made so far: with the guid, the claim's name, so each
    /// redelivery is asked for once whoever runs.
    pub redeliveries: u32,
    pub event: Option<String>,
    pub action: Option<String>,
    /// The newest attempt's status code (`None`: no answer).
    pub status_code: Option<u16>,
}

/// The events of `attempts` (each listed on hook `H`) that were lost and
/// may be asked for again at `now_ms`: none of their attempts succeeded,
/// the newest is within [`KEPT_MS`], and fewer than `max` of them are
/// redeliveries. Each such event once, redelivering its newest attempt
/// (on that attempt's hook); in the order of their guids. `max` 0 asks for
/// nothing. An attempt whose date is unreadable still counts (its success
/// or its being a redelivery), but is never the one redelivered.
pub fn to_redeliver<H: Clone>(
    attempts: &[(H, Delivery)],
    now_ms: u64,
    max: u32,
) -> Vec<Redelivery<H>> {
    if max == 0 {
        return Vec::new();
    }
    let mut by_guid: BTreeMap<&str, Vec<&(H, Delivery)>> = BTreeMap::new();
    for attempt in attempts {
        by_guid.entry(&attempt.1.guid).or_default().push(attempt);
    }
    let oldest = now_ms.saturating_sub(KEPT_MS);
    let mut out = Vec::new();
    for (guid, tries) in by_guid {
        if guid.is_empty() || tries.iter().any(|(_, d)| d.succeeded()) {
            continue;
        }
        let redeliveries = tries.iter().filter(|(_, d)| d.redelivery).count();
        let redeliveries = u32::try_from(redeliveries).unwrap_or(u32::MAX);
        if redeliveries >= max {
            continue;
        }
        let Some((hook, newest)) = tries
            .iter()
            .filter_map(|(h, d)| d.delivered_at.0.map(|at| (at, d.id, h, d)))
            .max_by_key(|(at, id, _, _)| (*at, *id))
            .map(|(_, _, h, d)| (h, d))
        else {
            continue;
        };
        if newest.delivered_at.0.is_none_or(|at| at < oldest) {
            continue;
        }
        out.push(Redelivery {
            hook: hook.clone(),
            guid: guid.to_owned(),
            delivery_id: newest.id,
            redeliveries,
            event: newest.event.clone(),
            action: newest.action.clone(),
            status_code: newest.status_code,
        });
    }
    out
}

/// The claim of one redelivery: `redeliveries/<hash of guid/count>`, so
/// two runs that see the same failure (the same redeliveries made) ask for
/// it once between them, and the next failure is a new claim.
pub fn claim_key(guid: &str, redeliveries: u32) -> String {
    format!(
        "redeliveries/{}",
        crate::records::hex16(&format!("{guid}/{redeliveries}"))
    )
}

/// The `rel="next"` URL of a `Link` header (GitHub's pagination):
/// `<https://…?cursor=…>; rel="next", <…>; rel="prev"`.
pub fn next_link(header: &str) -> Option<&str> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .any(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
            .then_some(target)
    })
}

/// A repository name of `gantry.yaml` that names one repository (no glob
/// characters): token mode looks for its webhook there.
pub fn is_literal_repository(name: &str) -> bool {
    !name.is_empty() && !name.contains(['*', '?', '[', '{']) && name.contains('/')
}

/// The same webhook URL, whatever trailing slash or case of scheme and
/// host each was written with (GitHub keeps what was typed; a function URL
/// ends in `/`).
pub fn same_url(a: &str, b: &str) -> bool {
    fn split(u: &str) -> (String, &str) {
        let u = u.trim().trim_end_matches('/');
        let rest_at = u
            .find("://")
            .map(|i| i + 3)
            .and_then(|start| u[start..].find('/').map(|j| start + j))
            .unwrap_or(u.len());
        (u[..rest_at].to_ascii_lowercase(), &u[rest_at..])
    }
    let (a, b) = (split(a), split(b));
    !a.0.is_empty() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_800_000_000_000;
    const MINUTE: u64 = 60_000;

    fn attempt(id: u64, guid: &str, ago_ms: u64, code: Option<u16>, redelivery: bool) -> Delivery {
        Delivery {
            id,
            guid: guid.to_owned(),
            delivered_at: SignedTime(Some(NOW - ago_ms)),
            redelivery,
            status_code: code,
            status: None,
            event: Some("push".into()),
            action: None,
        }
    }

    fn on_app(ds: Vec<Delivery>) -> Vec<((), Delivery)> {
        ds.into_iter().map(|d| ((), d)).collect()
    }

    fn picked(ds: Vec<Delivery>, max: u32) -> Vec<(String, u64, u32)> {
        to_redeliver(&on_app(ds), NOW, max)
            .into_iter()
            .map(|r| (r.guid, r.delivery_id, r.redeliveries))
            .collect()
    }

    #[test]
    fn github_s_listing_reads_and_unknown_fields_are_ignored() {
        let listed = r#"[{"id":12345678,"guid":"0b989ba4-242f-11e5-81e1-c7b6966d2516",
            "delivered_at":"2019-06-03T00:57:16Z","redelivery":false,"duration":0.27,
            "status":"failed to connect","status_code":0,"event":"push","action":null,
            "installation_id":123,"repository_id":456,"throttled_at":null},
            {"id":9,"guid":"g","delivered_at":"later"}]"#;
        let ds: Vec<Delivery> = serde_json::from_str(listed).expect("GitHub's shape");
        assert_eq!(ds[0].id, 12345678);
        assert_eq!(ds[0].delivered_at.0, Some(1_559_523_436_000));
        assert_eq!(ds[0].status_code, Some(0));
        assert!(!ds[0].succeeded(), "0 is no answer");
        assert_eq!(ds[1].delivered_at.0, None);
        assert_eq!(ds[1].status_code, None);
    }

    #[test]
    fn what_succeeded_is_an_answer_below_400() {
        for (code, ok) in [
            (None, false),
            (Some(0), false),
            (Some(200), true),
            (Some(202), true),
            (Some(302), true),
            (Some(400), false),
            (Some(401), false),
            (Some(502), false),
            (Some(503), false),
        ] {
            assert_eq!(attempt(1, "g", 0, code, false).succeeded(), ok, "{code:?}");
        }
    }

    #[test]
    fn a_lost_delivery_is_redelivered_by_its_newest_attempt() {
        let ds = vec![
            attempt(1, "a", 30 * MINUTE, Some(502), false),
            attempt(5, "a", 20 * MINUTE, None, true),
            attempt(2, "ok", 10 * MINUTE, Some(202), false),
        ];
        assert_eq!(picked(ds, 3), vec![("a".to_owned(), 5, 1)]);
    }

    #[test]
    fn an_event_that_got_through_once_is_left_alone() {
        let ds = vec![
            attempt(1, "a", 30 * MINUTE, Some(502), false),
            attempt(2, "a", 20 * MINUTE, Some(200), true),
            attempt(3, "a", 10 * MINUTE, Some(503), true),
        ];
        assert!(picked(ds, 3).is_empty());
    }

    #[test]
    fn at_most_max_redeliveries_and_zero_turns_it_off() {
        let ds = vec![
            attempt(1, "a", 40 * MINUTE, Some(502), false),
            attempt(2, "a", 30 * MINUTE, Some(502), true),
            attempt(3, "a", 20 * MINUTE, Some(502), true),
            attempt(4, "a", 10 * MINUTE, Some(502), true),
        ];
        assert!(picked(ds.clone(), 3).is_empty());
        assert_eq!(picked(ds.clone(), 4), vec![("a".to_owned(), 4, 3)]);
        assert!(picked(ds, 0).is_empty());
    }

    #[test]
    fn older_than_github_keeps_or_undated_is_not_asked_for() {
        let ds = vec![
            attempt(1, "old", KEPT_MS + MINUTE, Some(502), false),
            attempt(2, "edge", KEPT_MS - MINUTE, Some(502), false),
            Delivery {
                delivered_at: SignedTime(None),
                ..attempt(3, "undated", 0, Some(502), false)
            },
        ];
        assert_eq!(picked(ds, 3), vec![("edge".to_owned(), 2, 0)]);
    }

    #[test]
    fn an_event_listed_on_two_hooks_is_asked_for_once_on_its_newest() {
        let attempts = vec![
            ("hook-1", attempt(1, "a", 20 * MINUTE, Some(502), false)),
            ("hook-2", attempt(7, "a", 10 * MINUTE, Some(502), false)),
            ("hook-1", attempt(3, "b", 10 * MINUTE, Some(502), false)),
            ("hook-2", attempt(8, "b", 9 * MINUTE, Some(200), false)),
        ];
        let r = to_redeliver(&attempts, NOW, 3);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].hook, r[0].delivery_id), ("hook-2", 7));
    }

    #[test]
    fn claims_differ_by_guid_and_count() {
        assert_eq!(claim_key("a", 0), claim_key("a", 0));
        assert_ne!(claim_key("a", 0), claim_key("a", 1));
        assert_ne!(claim_key("a", 0), claim_key("b", 0));
        assert!(claim_key("a", 0).starts_with("redeliveries/"));
    }

    #[test]
    fn the_next_page_is_found_in_github_s_link_header() {
        let h = r#"<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_12>; rel="next", <https://api.github.com/app/hook/deliveries?per_page=100>; rel="first""#;
        assert_eq!(
            next_link(h),
            Some("https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_12")
        );
        assert_eq!(
            next_link(r#"<https://x/?cursor=1>; rel="prev""#),
            None,
            "only next"
        );
        assert_eq!(next_link(""), None);
        assert_eq!(next_link("garbage; rel=next"), None);
    }

    #[test]
    fn literal_names_and_webhook_urls() {
        assert!(is_literal_repository("octo-org/widgets"));
        for glob in [
            "octo-org/*",
            "**",
            "octo-org/w?dgets",
            "o/[ab]",
            "o/{a,b}",
            "",
        ] {
            assert!(!is_literal_repository(glob), "{glob}");
        }
        assert!(same_url(
            "https://abc.lambda-url.eu-west-1.on.aws/",
            "HTTPS://abc.lambda-url.eu-west-1.on.aws"
        ));
        assert!(same_url(
            "https://h.example/hook/",
            "https://h.example/hook"
        ));
        assert!(!same_url(
            "https://h.example/Hook",
            "https://h.example/hook"
        ));
        assert!(!same_url("https://a.example/", "https://b.example/"));
        assert!(!same_url("", ""));
    }

    fn arb_attempts() -> impl Strategy<Value = Vec<(u8, Delivery)>> {
        let one = (
            0u8..3,
            1u64..40,
            0usize..5,
            0u64..(KEPT_MS + 2 * MINUTE),
            prop_oneof![
                Just(None),
                Just(Some(0u16)),
                Just(Some(200u16)),
                Just(Some(502u16)),
                Just(Some(404u16)),
            ],
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(hook, id, guid, ago, code, redelivery, dated)| {
                let mut d = attempt(id, &format!("g{guid}"), ago, code, redelivery);
                if !dated {
                    d.delivered_at = SignedTime(None);
                }
                (hook, d)
            });
        prop::collection::vec(one, 0..30)
    }

    proptest! {
        #[test]
        fn only_lost_dated_recent_events_under_the_bound_once_each(
            attempts in arb_attempts(),
            max in 0u32..5,
        ) {
            let picked = to_redeliver(&attempts, NOW, max);
            if max == 0 {
                prop_assert!(picked.is_empty());
            }
            let mut guids: Vec<&str> = picked.iter().map(|r| r.guid.as_str()).collect();
            guids.dedup();
            prop_assert_eq!(guids.len(), picked.len(), "once per event");
            for r in &picked {
                let tries: Vec<&(u8, Delivery)> =
                    attempts.iter().filter(|(_, d)| d.guid == r.guid).collect();
                prop_assert!(tries.iter().all(|(_, d)| !d.succeeded()));
                let redeliveries = tries.iter().filter(|(_, d)| d.redelivery).count();
                prop_assert!(redeliveries < max as usize);
                prop_assert_eq!(r.redeliveries as usize, redeliveries);
                let newest = tries
                    .iter()
                    .filter_map(|(_, d)| d.delivered_at.0)
                    .max()
                    .expect("a dated attempt");
                prop_assert!(newest >= NOW - KEPT_MS);
                let is_newest = |(h, d): &&(u8, Delivery)| {
                    *h == r.hook && d.id == r.delivery_id && d.delivered_at.0 == Some(newest)
                };
                prop_assert!(tries.iter().any(is_newest), "the newest attempt");
            }
            // And every event that qualifies is picked.
            let mut all: Vec<&str> = attempts.iter().map(|(_, d)| d.guid.as_str()).collect();
            all.sort_unstable();
            all.dedup();
            for guid in all {
                let tries: Vec<&Delivery> =
                    attempts.iter().map(|(_, d)| d).filter(|d| d.guid == guid).collect();
                let qualifies = max > 0
                    && tries.iter().all(|d| !d.succeeded())
                    && tries.iter().filter(|d| d.redelivery).count() < max as usize
                    && tries
                        .iter()
                        .filter_map(|d| d.delivered_at.0)
                        .max()
                        .is_some_and(|at| at >= NOW - KEPT_MS);
                prop_assert_eq!(qualifies, picked.iter().any(|r| r.guid == guid), "{}", guid);
            }
        }
    }
}
