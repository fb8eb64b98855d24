//! Structured logs: one JSON object per line, through `tracing`.
//!
//! Level from `RUST_LOG`, else Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `info`.
//! `RUST_LOG` takes a level and `target=level` pairs (`info`,
//! `warn,gantry_aws=debug`), `tracing_subscriber`'s `Targets`: not
//! `EnvFilter`'s span and field directives, whose matcher compiles regular
//! expressions into DFAs (75 KB of each binary, docs/PERFORMANCE.md).

use gantry_core::settings::Env;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// The filter `RUST_LOG` and `AWS_LAMBDA_LOG_LEVEL` ask for, from `env`.
/// Unreadable settings fall through to the next, and finally to `info`.
fn filter<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Targets {
    env.get("RUST_LOG")
        .and_then(|spec| spec.parse::<Targets>().ok())
        .or_else(|| {
            // Lambda's levels are TRACE to ERROR and FATAL, read as ERROR.
            let level = env.get("AWS_LAMBDA_LOG_LEVEL")?.to_ascii_lowercase();
            let level = if level == "fatal" { "error" } else { &level };
            let level = level.parse::<tracing::Level>().ok()?;
            Some(Targets::new().with_default(level))
        })
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

/// The JSON subscriber every function uses, writing to `writer`.
pub fn json_subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_writer(writer)
        .finish()
        .with(filter(&Env(crate::lambda::env_var)))
}

/// Installs the JSON subscriber on stdout for a function. Call once, first.
pub fn init() {
    init_with_writer(std::io::stdout);
}

/// Same, writing to `writer`.
pub fn init_with_writer<W>(writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let _ = tracing::subscriber::set_global_default(json_subscriber(writer));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::lambda_env as env;
    use tracing::Level;

    #[test]
    fn the_level_comes_from_rust_log_then_lambda_then_info() {
        let f = filter(&env(&[("RUST_LOG", "warn,gantry_aws=debug")]));
        assert!(f.would_enable("gantry_aws::ledger", &Level::DEBUG));
        assert!(!f.would_enable("gantry_webhook", &Level::INFO));
        assert!(f.would_enable("gantry_webhook", &Level::WARN));

        let f = filter(&env(&[("AWS_LAMBDA_LOG_LEVEL", "DEBUG")]));
        assert!(f.would_enable("gantry_webhook", &Level::DEBUG));
        assert!(!f.would_enable("gantry_webhook", &Level::TRACE));

        // Lambda's FATAL is no tracing level: the nearest, errors only.
        let f = filter(&env(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]));
        assert!(f.would_enable("gantry_webhook", &Level::ERROR));
        assert!(!f.would_enable("gantry_webhook", &Level::WARN));

        // Unreadable or absent: the default, not silence.
        for vars in [
            &[][..],
            &[("AWS_LAMBDA_LOG_LEVEL", "LOUD")][..],
            &[("RUST_LOG", "gantry=loud")][..],
        ] {
            let f = filter(&env(vars));
            assert!(f.would_enable("gantry_webhook", &Level::INFO), "{vars:?}");
            assert!(!f.would_enable("gantry_webhook", &Level::DEBUG), "{vars:?}");
        }
    }
}
