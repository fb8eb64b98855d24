//! Medians, p99s and the tables the harness prints.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Measured;

/// Nearest-rank percentile (`q` in 0..=100) of unsorted samples (times or
/// counts); the default (zero) of none.
pub fn percentile<T: Ord + Copy + Default>(samples: &[T], q: f64) -> T {
    if samples.is_empty() {
        return T::default();
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median (the lower middle one of an even number).
pub fn median<T: Ord + Copy + Default>(samples: &[T]) -> T {
    percentile(samples, 50.0)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn rss(m: &Measured) -> (u64, u64) {
    (median(&m.rss_kib), percentile(&m.rss_kib, 100.0))
}

/// `value` as a multiple of `floor`; `None` without a floor.
fn times(value: Duration, floor: Option<Duration>) -> Option<f64> {
    floor
        .filter(|f| !f.is_zero())
        .map(|f| value.as_secs_f64() / f.as_secs_f64())
}

/// `value` as a multiple of `floor` ("6.7×"); "–" without a floor.
pub fn ratio(value: Duration, floor: Option<Duration>) -> String {
    times(value, floor).map_or_else(|| "–".to_owned(), |x| format!("{x:.1}×"))
}

/// Median init CPU plus median first-invoke CPU: what a cold start costs.
fn cold_cpu(m: &Measured) -> Duration {
    median(&m.init_cpu) + median(&m.first_cpu)
}

/// The empty function's medians (init CPU, init + first invoke CPU), if it
/// was measured in this run.
pub fn floor(results: &[Measured]) -> Option<(Duration, Duration)> {
    results
        .iter()
        .find(|m| m.name == crate::events::FLOOR)
        .map(|m| (median(&m.init_cpu), cold_cpu(m)))
}

pub fn markdown(results: &[Measured], runs: usize, warm: usize) -> String {
    let mut out = format!(
        "{runs} cold starts per function, {warm} warm invokes after each; times in ms (median / p99), RSS in MiB (median / max); \
         × is the ratio of medians to the empty function's, measured in the same run\n\n\
         | function | binary | init CPU | × | init + first invoke CPU | × | init | first invoke | first invoke CPU | warm invoke | warm invoke CPU | peak RSS | stub calls (first / warm) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    let floor = floor(results);
    for m in results {
        let (rss_median, rss_max) = rss(m);
        let init_cpu = median(&m.init_cpu);
        let cold = cold_cpu(m);
        out.push_str(&format!(
            "| {} | {:.1} MiB | {:.1} / {:.1} | {} | {:.1} | {} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.2} / {:.2} | {:.2} / {:.2} | {:.1} / {:.1} | {:.1} / {:.1} |\n",
            m.name,
            m.binary_bytes as f64 / (1024.0 * 1024.0),
            ms(init_cpu),
            ms(percentile(&m.init_cpu, 99.0)),
            ratio(init_cpu, floor.map(|f| f.0)),
            ms(cold),
            ratio(cold, floor.map(|f| f.1)),
            ms(median(&m.init)),
            ms(percentile(&m.init, 99.0)),
            ms(median(&m.first)),
            ms(percentile(&m.first, 99.0)),
            ms(median(&m.first_cpu)),
            ms(percentile(&m.first_cpu, 99.0)),
            ms(median(&m.warm)),
            ms(percentile(&m.warm, 99.0)),
            ms(median(&m.warm_cpu)),
            ms(percentile(&m.warm_cpu, 99.0)),
            mib(rss_median),
            mib(rss_max),
            m.calls_first,
            m.calls_warm,
        ));
    }
    out
}

pub fn json(results: &[Measured], runs: usize, warm: usize, memory: u32) -> Value {
    let stats = |s: &[Duration]| {
        json!({
            "median_ms": ms(median(s)),
            "p99_ms": ms(percentile(s, 99.0)),
            "max_ms": ms(percentile(s, 100.0)),
        })
    };
    let floor = floor(results);
    json!({
        "runs": runs,
        "warm_invokes": warm,
        "memory_mb": memory,
        "floor": crate::events::FLOOR,
        "functions": results.iter().map(|m| {
            let (rss_median, rss_max) = rss(m);
            let init_cpu = median(&m.init_cpu);
            let cold = cold_cpu(m);
            json!({
                "name": m.name,
                "init_cpu_x_floor": times(init_cpu, floor.map(|f| f.0)),
                "init_and_first_cpu_x_floor": times(cold, floor.map(|f| f.1)),
                "binary_bytes": m.binary_bytes,
                "init": stats(&m.init),
                "init_cpu": stats(&m.init_cpu),
                "first_invoke": stats(&m.first),
                "first_invoke_cpu": stats(&m.first_cpu),
                "warm_invoke": stats(&m.warm),
                "warm_invoke_cpu": stats(&m.warm_cpu),
                "minor_page_faults": {
                    "init": median(&m.init_faults),
                    "first_invoke": median(&m.first_faults),
                    "warm_invoke": median(&m.warm_faults),
                },
                "peak_rss_kib": { "median": rss_median, "max": rss_max },
                "stub_calls": { "first": m.calls_first, "warm": m.calls_warm },
            })
        }).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_list(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn ratios_are_read_against_the_floor_or_not_at_all() {
        let ms = Duration::from_millis;
        assert_eq!(ratio(ms(87), Some(ms(13))), "6.7×");
        assert_eq!(ratio(ms(13), Some(ms(13))), "1.0×");
        assert_eq!(ratio(ms(13), None), "–");
        assert_eq!(ratio(ms(13), Some(Duration::ZERO)), "–");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s = ms_list(&[5, 1, 4, 2, 3]);
        assert_eq!(median(&s), Duration::from_millis(3));
        assert_eq!(percentile(&s, 99.0), Duration::from_millis(5));
        assert_eq!(percentile(&s, 0.0), Duration::from_millis(1));
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(
            percentile(&ms_list(&hundred), 99.0),
            Duration::from_millis(99)
        );
        assert_eq!(median::<Duration>(&[]), Duration::ZERO);
        assert_eq!(median(&[9, 1, 5]), 5);
        assert_eq!(median(&[4, 1, 3, 2]), 2);
        assert_eq!(median::<u64>(&[]), 0);
    }
}
