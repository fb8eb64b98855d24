//! `gantry load` against `gantry dev`: two processes on loopback, a burst of
//! genuine, resent and forged deliveries, and every publication counted on
//! the bus twice — by `gantry load`'s own rule and queue, and from the event
//! log `gantry dev` prints. Speed is measured and reported, not tested.

use std::collections::HashMap;
use std::time::Duration;

mod common;

use common::{Dev, free_port, gantry};

#[test]
fn a_burst_publishes_every_genuine_delivery_once_and_refuses_every_forged_one() {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut dev = Dev::start(&listen, &["--only-webhook"], "http://127.0.0.1:9");
    dev.read_until(
        |seen| seen.iter().any(|l| l.contains("webhook listening")),
        Duration::from_secs(120),
    );
    let endpoint = dev
        .line_with("gantry dev: AWS endpoint ")
        .and_then(|l| l.strip_prefix("gantry dev: AWS endpoint "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no endpoint printed:\n{}", dev.seen.join("\n")));
    assert!(
        dev.line_with("webhook listening").is_some(),
        "{}",
        dev.seen.join("\n")
    );

    let report_path = std::env::temp_dir().join(format!("gantry-load-{}.json", free_port()));
    let out = gantry()
        .args(["load", "--url", &format!("http://{listen}/")])
        .args(["--bus-endpoint", &endpoint])
        .args([
            "-n",
            "200",
            "-c",
            "16",
            "--duplicates",
            "0.1",
            "--forged",
            "0.1",
        ])
        .arg("--json")
        .arg(&report_path)
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("run gantry load");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&report_path).unwrap_or_else(|e| panic!("no report ({e}):\n{text}")),
    )
    .expect("the report is JSON");
    let _ = std::fs::remove_file(&report_path);
    // The measured figures, for whoever runs the test.
    println!("{text}");

    assert!(
        out.status.success(),
        "gantry load found mismatches:\n{text}"
    );
    assert_eq!(report["mismatches"], serde_json::json!([]), "{text}");
    assert_eq!(report["deliveries"], 200);
    assert_eq!(report["genuine"], 160);
    assert_eq!(report["resent"], 20);
    assert_eq!(report["forged"], 20);

    // Each answer, as gantry load recorded it.
    let sent = report["sent"].as_array().expect("sent");
    assert_eq!(sent.len(), 200);
    let mut genuine: HashMap<String, Vec<(u64, String)>> = HashMap::new();
    let mut forged = Vec::new();
    for s in sent {
        let id = s["delivery_id"].as_str().expect("id").to_owned();
        let answer = (
            s["status"].as_u64().unwrap_or(0),
            s["outcome"].as_str().unwrap_or_default().to_owned(),
        );
        match s["kind"].as_str().unwrap_or_default() {
            "genuine" | "resent" => genuine.entry(id).or_default().push(answer),
            _ => {
                assert_eq!(answer, (401, "refused".to_owned()), "{s}");
                forged.push(id);
            }
        }
    }
    assert_eq!(genuine.len(), 160);
    assert_eq!(forged.len(), 20);
    for (id, answers) in &genuine {
        let accepted = answers
            .iter()
            .filter(|a| **a == (202, "accepted".to_owned()))
            .count();
        let duplicates = answers
            .iter()
            .filter(|a| **a == (200, "duplicate".to_owned()))
            .count();
        assert_eq!(accepted, 1, "{id}: {answers:?}");
        assert_eq!(duplicates, answers.len() - 1, "{id}: {answers:?}");
    }
    assert_eq!(
        genuine.values().map(|a| a.len() - 1).sum::<usize>(),
        20,
        "every resend answered"
    );

    // On the bus, through gantry load's own rule: one event per genuine id.
    let bus = &report["bus"];
    assert_eq!(bus["events"], 160, "{bus}");
    assert_eq!(bus["genuine_published_once"], 160, "{bus}");
    assert_eq!(bus["forged_published"], 0, "{bus}");
    for id in genuine.keys() {
        assert_eq!(bus["per_id"][id], 1, "{id}");
    }
    for id in &forged {
        assert!(bus["per_id"].get(id).is_none(), "{id} was published");
    }

    // … and through the event log gantry dev prints, the same.
    let counts = |seen: &[String]| -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for line in seen {
            if line.starts_with("[EventLogRule] Build Requested")
                && let Some((_, id)) = line.rsplit_once("correlation_id=")
            {
                *counts.entry(id.trim().to_owned()).or_default() += 1;
            }
        }
        counts
    };
    dev.read_until(
        |seen| counts(seen).len() >= genuine.len(),
        Duration::from_secs(60),
    );
    // A second publication would have come with the first; give it a moment.
    dev.read_until(|_| false, Duration::from_secs(2));
    let logged = counts(&dev.seen);
    for id in genuine.keys() {
        assert_eq!(logged.get(id), Some(&1), "{id} in the event log");
    }
    for id in &forged {
        assert_eq!(logged.get(id), None, "{id} in the event log");
    }
    assert_eq!(logged.len(), genuine.len(), "{logged:?}");
}
