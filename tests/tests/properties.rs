//! Property tests over the webhook's pure handler: arbitrary bodies and
//! arbitrary JSON never panic and never publish without a valid shape.

use gantry_core::config::Config;
use gantry_core::webhook::{Assessment, DEFAULT_MAX_BODY_BYTES, Summary, process};
use gantry_e2e::{SECRET, corpus_file, github_headers};
use proptest::prelude::*;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z0-9/._ -]{0,12}".prop_map(serde_json::Value::from),
        "[0-9a-f]{40}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("refs/heads/main")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("ref".to_owned()),
                    Just("after".to_owned()),
                    Just("repository".to_owned()),
                    Just("pull_request".to_owned()),
                    Just("head".to_owned()),
                    Just("commits".to_owned()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn outcome_is_sane(a: &Assessment) -> bool {
    match a {
        Assessment::Reply(r) => matches!(r.status, 200 | 202 | 400),
        Assessment::Publish { .. } => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics(value in json_value(), event in prop_oneof![Just("push"), Just("pull_request"), Just("ping")]) {
        let body = value.to_string().into_bytes();
        let headers = github_headers(event, "a1b2c3", &body, SECRET);
        let a = process(&[SECRET], &Config::dev(), &headers, &body, DEFAULT_MAX_BODY_BYTES, &mut Summary::default());
        prop_assert!(outcome_is_sane(&a), "{a:?}");
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let headers = github_headers("push", "a1b2c3", &body, SECRET);
        let a = process(&[SECRET], &Config::dev(), &headers, &body, DEFAULT_MAX_BODY_BYTES, &mut Summary::default());
        prop_assert!(outcome_is_sane(&a), "{a:?}");
    }

    /// A real payload with one field replaced by anything at all.
    #[test]
    fn corrupted_real_payloads_never_panic(
        field in prop_oneof![
            Just(vec!["ref"]), Just(vec!["after"]), Just(vec!["repository"]),
            Just(vec!["repository", "owner"]), Just(vec!["commits"]), Just(vec!["head_commit"]),
            Just(vec!["pull_request", "head"]), Just(vec!["pull_request", "base", "sha"]),
            Just(vec!["number"]), Just(vec!["pull_request", "draft"]),
        ],
        replacement in json_value(),
        file in prop_oneof![Just("07_push__with-new-branch.payload.json"), Just("10_pull_request__opened.payload.json")],
    ) {
        let mut payload: serde_json::Value = serde_json::from_slice(&corpus_file(file)).expect("JSON");
        let mut slot = &mut payload;
        for key in &field {
            slot = &mut slot[*key];
        }
        *slot = replacement;
        let event = if file.contains("push") { "push" } else { "pull_request" };
        let body = payload.to_string().into_bytes();
        let headers = github_headers(event, "a1b2c3", &body, SECRET);
        let a = process(&[SECRET], &Config::dev(), &headers, &body, DEFAULT_MAX_BODY_BYTES, &mut Summary::default());
        prop_assert!(outcome_is_sane(&a), "{a:?}");
    }
}
