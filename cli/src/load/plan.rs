//! The burst before it is sent: which deliveries, in which order, with
//! which bodies; the same seed gives the same order.

use super::{Kind, LoadError, LoadOptions};

/// One planned request.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub(super) kind: Kind,
    pub(super) delivery_id: String,
    /// Index into the bodies.
    pub(super) body: usize,
}

/// A small deterministic generator: the burst's order needs no more.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` for `n > 0`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The bodies and the order of the burst.
pub(super) struct Plan {
    pub(super) bodies: Vec<Vec<u8>>,
    pub(super) requests: Vec<Planned>,
}

pub(super) fn plan(options: &LoadOptions) -> Result<Plan, LoadError> {
    if options.count == 0 || options.concurrency == 0 {
        return Err(LoadError::Options(
            "--count and --concurrency must be at least 1".into(),
        ));
    }
    let fraction_ok = |f: f64| (0.0..=1.0).contains(&f);
    if !fraction_ok(options.duplicates)
        || !fraction_ok(options.forged)
        || options.duplicates + options.forged > 1.0
    {
        return Err(LoadError::Options(
            "--duplicates and --forged are fractions in 0..1 whose sum is at most 1".into(),
        ));
    }
    let n = options.count;
    let forged = (n as f64 * options.forged).round() as usize;
    let mut resent = (n as f64 * options.duplicates).round() as usize;
    let mut genuine = n.saturating_sub(forged + resent);
    // A resend needs something to resend.
    if genuine == 0 && resent > 0 {
        genuine = 1;
        resent -= 1;
    }

    // A push's `after` SHA, replaced in the raw text so the rest of the
    // bytes stay as GitHub wrote them.
    let after = serde_json::from_slice::<serde_json::Value>(&options.payload)
        .ok()
        .and_then(|v| v["after"].as_str().map(str::to_owned))
        .filter(|sha| sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()));
    let text = String::from_utf8_lossy(&options.payload).into_owned();
    let mut rng = SplitMix(options.seed);
    let run = rng.next();
    let mut bodies = Vec::with_capacity(genuine + forged);
    let mut body_for = |i: usize| -> usize {
        let body = match &after {
            Some(sha) => text.replace(sha, &format!("{run:016x}{i:024x}")),
            None => text.clone(),
        };
        bodies.push(body.into_bytes());
        bodies.len() - 1
    };
    let fresh_id = || uuid::Uuid::new_v4().to_string();

    let mut requests: Vec<Planned> = Vec::with_capacity(n);
    for i in 0..genuine {
        requests.push(Planned {
            kind: Kind::Genuine,
            delivery_id: fresh_id(),
            body: body_for(i),
        });
    }
    let forged_kinds = [
        Kind::ForgedWrongSecret,
        Kind::ForgedBadSignature,
        Kind::ForgedUnsigned,
    ];
    for i in 0..forged {
        requests.push(Planned {
            kind: forged_kinds[i % forged_kinds.len()],
            delivery_id: fresh_id(),
            body: body_for(genuine + i),
        });
    }
    // Fisher–Yates.
    for i in (1..requests.len()).rev() {
        let j = rng.below(i + 1);
        requests.swap(i, j);
    }
    // Each resend goes somewhere after its original (a key between the
    // original's position and the end); with concurrency it may still
    // overtake it, and then the original is the one answered `duplicate`.
    let originals: Vec<usize> = requests
        .iter()
        .enumerate()
        .filter(|(_, p)| p.kind == Kind::Genuine)
        .map(|(i, _)| i)
        .collect();
    let end = requests.len() as f64;
    let mut keyed: Vec<(f64, Planned)> = requests
        .into_iter()
        .enumerate()
        .map(|(i, p)| (i as f64, p))
        .collect();
    for _ in 0..resent {
        let original = originals[rng.below(originals.len())];
        let step = (rng.below(1_000_000) + 1) as f64 / 1_000_001.0;
        let key = original as f64 + step * (end - original as f64);
        let resend = Planned {
            kind: Kind::Resent,
            ..keyed[original].1.clone()
        };
        keyed.push((key, resend));
    }
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    let requests = keyed.into_iter().map(|(_, p)| p).collect();
    Ok(Plan { bodies, requests })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::DEFAULT_PAYLOAD;
    use std::time::Duration;

    fn options(count: usize, duplicates: f64, forged: f64) -> LoadOptions {
        LoadOptions {
            url: "http://127.0.0.1:9/".into(),
            secret: "s".into(),
            event: "push".into(),
            payload: DEFAULT_PAYLOAD.as_bytes().to_vec(),
            count,
            concurrency: 4,
            duplicates,
            forged,
            seed: 7,
            bus_endpoint: None,
            settle: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_plan_has_the_asked_mix_and_every_resend_follows_its_original() {
        let plan = plan(&options(200, 0.1, 0.1)).expect("plan");
        let kinds = |k: fn(Kind) -> bool| plan.requests.iter().filter(|p| k(p.kind)).count();
        assert_eq!(plan.requests.len(), 200);
        assert_eq!(kinds(|k| k == Kind::Genuine), 160);
        assert_eq!(kinds(|k| k == Kind::Resent), 20);
        assert_eq!(kinds(Kind::forged), 20);
        for (i, p) in plan.requests.iter().enumerate() {
            if p.kind == Kind::Resent {
                let original = plan
                    .requests
                    .iter()
                    .position(|o| o.kind == Kind::Genuine && o.delivery_id == p.delivery_id)
                    .expect("original");
                assert!(original < i);
                assert_eq!(plan.requests[original].body, p.body);
            }
        }
        // Distinct pushes: every body differs, and each is still JSON with
        // the new SHA as `after`.
        let mut bodies = plan.bodies.clone();
        bodies.sort();
        bodies.dedup();
        assert_eq!(bodies.len(), 180);
        let v: serde_json::Value = serde_json::from_slice(&plan.bodies[0]).expect("json");
        assert_ne!(v["after"], "9f2c1e4b7a6d5c3b2a1908f7e6d5c4b3a2918070");
        assert_eq!(v["after"], v["head_commit"]["id"]);
    }

    #[test]
    fn bad_fractions_are_refused() {
        assert!(plan(&options(10, 0.6, 0.6)).is_err());
        assert!(plan(&options(10, -0.1, 0.0)).is_err());
        assert!(plan(&options(0, 0.0, 0.0)).is_err());
    }
}
