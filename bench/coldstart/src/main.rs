//! The cold-start harness.
//!
//! For every Gantry function, in the chain's order, after the empty function
//! (`bench/empty`, the floor every figure is read against), it spawns the
//! release binary (`bootstrap`) fresh under a loopback Lambda Runtime API
//! and times:
//! - **init**: from spawn to the function's first `next` request (the part
//!   of a cold start Lambda bills as Init Duration);
//! - **first invoke**: from the event handed over to the response, in the
//!   fresh process (SSM reads, client set-up, first connections);
//! - **warm invokes**: the same, for the invocations after it;
//! - **peak RSS**: the process's high-water mark (`VmHWM`).
//!
//! AWS, GitHub and chat answer from a loopback stub, so the figures are
//! Gantry's own work. The events are the chain's own: the webhook gets a
//! signed corpus push per invocation, and each later function gets the
//! events the one before it published (CodeBuild's state change, from the
//! corpus, for build-events).
//!
//! cargo build --release -p gantry-webhook … (see docs/PERFORMANCE.md)
//! cargo run -p gantry-coldstart -- --bin-dir "$CARGO_TARGET_DIR/release"

mod events;
mod loopback;
mod report;
mod runtime_api;
mod stub;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use runtime_api::{Invocation, Outcome, RuntimeApi};
use stub::Stub;

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}")]
    Input(String),
    #[error("the runtime API closed")]
    RuntimeClosed,
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("the function failed to initialise: {0}")]
    InitError(String),
    #[error("unexpected: {0}")]
    Unexpected(String),
    #[error("{function}: invocation {index} failed: {message}")]
    Invocation {
        function: &'static str,
        index: usize,
        message: String,
    },
    #[error("{function}: {message}")]
    Check {
        function: &'static str,
        message: String,
    },
}

#[derive(Parser, Debug)]
#[command(
    name = "gantry-coldstart",
    about = "Times each Gantry function's release binary: init, first invoke, warm invokes, peak RSS"
)]
struct Args {
    /// Where the binaries are: `<dir>/<name>` (cargo build --release) or
    /// `<dir>/<name>/bootstrap` (cargo lambda build).
    #[arg(long)]
    bin_dir: PathBuf,
    /// Fresh processes (cold starts) per function.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Warm invocations after the first, per process.
    #[arg(long, default_value_t = 20)]
    warm: usize,
    /// Memory size the function is told it has (MB), as the template sets.
    #[arg(long, default_value_t = 128)]
    memory: u32,
    /// Write the figures as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The functions' own log lines go here, one file per function.
    #[arg(long, default_value = "target/coldstart-logs")]
    logs: PathBuf,
    /// An extra environment variable for every function, NAME=VALUE
    /// (repeat): for A/B runs such as `SSL_CERT_FILE=…`.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = name_value)]
    env: Vec<(String, String)>,
    /// The shared corpus of real payloads (default: `$GANTRY_CORPUS`, else
    /// `../shared/corpus`).
    #[arg(long)]
    corpus: Option<PathBuf>,
}

/// One function: its binary name and its settings, as template.yaml sets them.
pub struct Function {
    pub name: &'static str,
    pub env: Vec<(&'static str, String)>,
    /// Its `Timeout` in template.yaml.
    pub timeout: Duration,
}

/// What one function measured.
#[derive(Debug, Default)]
pub struct Measured {
    pub name: &'static str,
    pub binary_bytes: u64,
    pub init: Vec<Duration>,
    /// CPU time the process used until it was ready (all its threads).
    pub init_cpu: Vec<Duration>,
    pub first: Vec<Duration>,
    /// CPU time of the first invoke.
    pub first_cpu: Vec<Duration>,
    pub warm: Vec<Duration>,
    /// CPU time of each warm invoke: the invoke targets are CPU, as init's.
    pub warm_cpu: Vec<Duration>,
    /// Minor page faults until ready, in the first invoke and in each warm
    /// one: where a cold process's CPU goes that its instructions do not
    /// explain (mapping the binary's pages as they are first touched).
    pub init_faults: Vec<u64>,
    pub first_faults: Vec<u64>,
    pub warm_faults: Vec<u64>,
    pub rss_kib: Vec<u64>,
    /// Stub requests per first invoke and per warm invoke (means).
    pub calls_first: f64,
    pub calls_warm: f64,
}

fn name_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("takes NAME=VALUE, not `{text}`")),
    }
}

fn binary(dir: &Path, name: &str) -> Result<PathBuf, HarnessError> {
    for candidate in [dir.join(name), dir.join(name).join("bootstrap")] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(HarnessError::Input(format!(
        "no binary for {name} in {} (build it with `cargo build --release -p gantry-{name}` or `cargo lambda build --release`)",
        dir.display()
    )))
}

/// CPU time a live process has used so far, over all its threads
/// (`/proc/<pid>/task/*/schedstat`, nanoseconds on CPU). Unlike wall time,
/// it does not grow when other work on the machine takes the cores.
fn cpu_time(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    let ns: u64 = tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

/// Minor page faults of a live process so far, over all its threads
/// (`/proc/<pid>/stat`, the tenth field).
fn minor_faults(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The command name, in parentheses, may hold spaces: count from after it.
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or_default()
}

/// `VmHWM` of a live process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// SIGTERM, then SIGKILL if the process is still there after a second: a
/// profiler wrapped around the binary (`perf record`, valgrind) writes its
/// data on SIGTERM.
async fn stop(child: &mut tokio::process::Child, pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

const TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `function` `runs` times, fresh each time, on `inputs` (one per
/// invocation, `runs * (1 + warm)` of them, in order).
async fn measure(
    args: &Args,
    stub: &Stub,
    runtime: &RuntimeApi,
    function: &Function,
    inputs: &[Vec<u8>],
) -> Result<Measured, HarnessError> {
    let path = binary(&args.bin_dir, function.name)?;
    let binary_bytes = std::fs::metadata(&path)
        .map_err(|e| HarnessError::Io(path.display().to_string(), e))?
        .len();
    std::fs::create_dir_all(&args.logs)
        .map_err(|e| HarnessError::Io(args.logs.display().to_string(), e))?;
    let log_path = args.logs.join(format!("{}.log", function.name));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| HarnessError::Io(log_path.display().to_string(), e))?;
    let mut m = Measured {
        name: function.name,
        binary_bytes,
        ..Measured::default()
    };
    let per_run = 1 + args.warm;
    let (mut calls_first, mut calls_warm) = (0u64, 0u64);
    for run in 0..args.runs {
        runtime.reset().await;
        let mut command = tokio::process::Command::new(&path);
        command
            .env_clear()
            .envs(events::lambda_env(
                function.name,
                args.memory,
                &runtime.address(),
                &stub.url(),
            ))
            .envs(function.env.iter().map(|(k, v)| (*k, v.as_str())))
            .envs(args.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|e| HarnessError::Io("log".into(), e))?,
            )
            .stderr(
                log.try_clone()
                    .map_err(|e| HarnessError::Io("log".into(), e))?,
            )
            .kill_on_drop(true);
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| HarnessError::Io(path.display().to_string(), e))?;
        let pid = child.id().unwrap_or_default();
        let ready = runtime.ready(TIMEOUT).await?;
        m.init.push(ready - spawned);
        let mut cpu_before = cpu_time(pid);
        m.init_cpu.push(cpu_before);
        let mut faults_before = minor_faults(pid);
        m.init_faults.push(faults_before);
        for i in 0..per_run {
            let index = run * per_run + i;
            let body = inputs.get(index).cloned().ok_or_else(|| {
                HarnessError::Input(format!("{}: no input {index}", function.name))
            })?;
            let before = stub.state().requests;
            let (handed, answer) = runtime
                .invoke(
                    Invocation {
                        request_id: format!("{}-{index}", function.name),
                        body,
                        timeout: function.timeout,
                    },
                    TIMEOUT,
                )
                .await?;
            let calls = stub.state().requests - before;
            let took = answer.at - handed;
            match answer.outcome {
                Outcome::Response(body) => {
                    events::check_response(function.name, &body).map_err(|message| {
                        HarnessError::Invocation {
                            function: function.name,
                            index,
                            message,
                        }
                    })?
                }
                Outcome::Error(body) | Outcome::InitError(body) => {
                    return Err(HarnessError::Invocation {
                        function: function.name,
                        index,
                        message: String::from_utf8_lossy(&body).into_owned(),
                    });
                }
            }
            let cpu_after = cpu_time(pid);
            let cpu = cpu_after.saturating_sub(cpu_before);
            cpu_before = cpu_after;
            let faults_after = minor_faults(pid);
            let faults = faults_after.saturating_sub(faults_before);
            faults_before = faults_after;
            if i == 0 {
                m.first.push(took);
                m.first_cpu.push(cpu);
                m.first_faults.push(faults);
                calls_first += calls;
            } else {
                m.warm.push(took);
                m.warm_cpu.push(cpu);
                m.warm_faults.push(faults);
                calls_warm += calls;
            }
        }
        if let Some(kib) = peak_rss_kib(pid) {
            m.rss_kib.push(kib);
        }
        stop(&mut child, pid).await;
    }
    m.calls_first = calls_first as f64 / args.runs.max(1) as f64;
    m.calls_warm = calls_warm as f64 / (args.runs * args.warm).max(1) as f64;
    Ok(m)
}

async fn run(args: Args) -> Result<Vec<Measured>, HarnessError> {
    let corpus = args
        .corpus
        .clone()
        .or_else(|| std::env::var_os("GANTRY_CORPUS").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("../shared/corpus"));
    let fixtures = events::Fixtures::load(&corpus)?;
    let stub = Stub::start(fixtures.stub_state()).await?;
    let total = args.runs * (1 + args.warm);
    let mut results = Vec::new();
    for function in events::functions(&stub.url()) {
        let inputs = fixtures.inputs(function.name, total, &stub)?;
        let runtime = RuntimeApi::start(format!(
            "arn:aws:lambda:{}:{}:function:gantry-{}",
            stub::REGION,
            stub::ACCOUNT,
            function.name
        ))
        .await?;
        let measured = measure(&args, &stub, &runtime, &function, &inputs).await?;
        events::check_effects(function.name, total, &stub).map_err(|message| {
            HarnessError::Check {
                function: function.name,
                message,
            }
        })?;
        results.push(measured);
        let floor = report::floor(&results);
        let Some(measured) = results.last() else {
            continue;
        };
        eprintln!(
            "{:<20} init cpu {:>5.1} ms ({:>5} the empty function's)  init {:>6.1} ms  first {:>6.1} ms (cpu {:>5.1})  warm {:>6.2} ms (cpu {:>5.2})  page faults {}/{}/{}  (median)",
            function.name,
            report::ms(report::median(&measured.init_cpu)),
            report::ratio(report::median(&measured.init_cpu), floor.map(|f| f.0)),
            report::ms(report::median(&measured.init)),
            report::ms(report::median(&measured.first)),
            report::ms(report::median(&measured.first_cpu)),
            report::ms(report::median(&measured.warm)),
            report::ms(report::median(&measured.warm_cpu)),
            report::median(&measured.init_faults),
            report::median(&measured.first_faults),
            report::median(&measured.warm_faults),
        );
    }
    Ok(results)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let json = args.json.clone();
    let (runs, warm, memory) = (args.runs, args.warm, args.memory);
    match run(args).await {
        Ok(results) => {
            println!("{}", report::markdown(&results, runs, warm));
            if let Some(path) = json {
                let text = report::json(&results, runs, warm, memory).to_string();
                if let Err(e) = std::fs::write(&path, text) {
                    eprintln!("gantry-coldstart: {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gantry-coldstart: {e}");
            ExitCode::FAILURE
        }
    }
}
