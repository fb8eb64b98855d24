//! `gantry`: run Gantry locally and talk to it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use gantry_cli::app;
use gantry_cli::build;
use gantry_cli::dev::{self, DevOptions};
use gantry_cli::lint;
use gantry_cli::load::{self, LoadOptions};
use gantry_cli::send::{self, Delivery};

#[derive(Parser)]
#[command(
    name = "gantry",
    version,
    about = "Serverless CI for GitHub on AWS: local stack and tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole chain locally against the moto server and print each
    /// event on the bus.
    Dev(DevOptions),
    /// Gantry as a GitHub App.
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Run one build of a commit on this machine as CodeBuild would: a
    /// clean checkout of the commit, the buildspec checked, then its
    /// phases in a shell (the commands run as you) or a container. Exit 0
    /// when it succeeds, 1 when it fails, 2 when it cannot run.
    Build {
        /// The git repository.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// The branch, tag or commit to build.
        #[arg(long = "ref", default_value = "HEAD")]
        git_ref: String,
        /// A buildspec file to run instead of the commit's buildspec.yml
        /// (to try an edit before committing it).
        #[arg(long)]
        buildspec: Option<PathBuf>,
        /// An `env.parameter-store` value: `/ssm/name=value` (repeat).
        #[arg(long = "parameter", value_name = "NAME=VALUE", value_parser = build::name_value)]
        parameters: Vec<(String, String)>,
        /// The project name in the build id.
        #[arg(long, default_value = "gantry-dev")]
        project: String,
        /// The build timeout, in minutes (CodeBuild's default is 60).
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Keep the checkout after the build.
        #[arg(long)]
        keep: bool,
        #[command(flatten)]
        executor: build::ExecutorOptions,
    },
    /// Start a build of a commit now (trigger `manual`): publishes a Build
    /// Requested on the bus with the environment's AWS credentials and
    /// endpoint; the chain validates, checks secrets and reports it as any
    /// other. Exit 0 once requested, 1 if refused, 2 if it cannot ask.
    Run(gantry_cli::run::RunOptions),
    /// Run the schedule function of a `gantry dev` stack once, as its
    /// every-minute rule does when deployed: AWS_ENDPOINT_URL is the
    /// stack's moto, GITHUB_API_URL its GitHub (stand-in). Prints what
    /// fired.
    Tick {
        /// The minute to evaluate (RFC 3339), instead of now: fires the
        /// schedules due then.
        #[arg(long)]
        at: Option<String>,
    },
    /// Check buildspecs and gantry.yaml: `path:line:col: error|warning: …`.
    /// Exit 0 without errors, 1 with errors, 2 if a file cannot be read.
    Lint {
        #[arg(long, value_enum, default_value = "text")]
        format: lint::Format,
        /// What the files are (default: gantry.yaml/gantry.yml by name,
        /// the rest buildspecs).
        #[arg(long, value_enum, default_value = "auto")]
        kind: lint::Kind,
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Sign a payload file exactly as GitHub does and POST it; or, with
    /// --push, the push GitHub would send for a local repository's commit.
    Send {
        #[arg(long)]
        url: String,
        #[arg(long)]
        secret: String,
        /// The X-GitHub-Event header: push, pull_request, ping, … (with
        /// --push: push).
        #[arg(long, required_unless_present = "push")]
        event: Option<String>,
        /// The X-GitHub-Delivery header; a fresh one when not given.
        #[arg(long)]
        delivery: Option<String>,
        /// Send as application/x-www-form-urlencoded (payload=…).
        #[arg(long)]
        form: bool,
        /// Make the payload: a push of --ref in --repo, with its real
        /// before/after, commits and changed paths.
        #[arg(long, conflicts_with = "file")]
        push: bool,
        /// With --push: the git repository.
        #[arg(long, default_value = ".", requires = "push")]
        repo: PathBuf,
        /// With --push: the branch (or HEAD) pushed.
        #[arg(long = "ref", default_value = "HEAD", requires = "push")]
        git_ref: String,
        /// The payload file (JSON).
        #[arg(required_unless_present = "push")]
        file: Option<String>,
    },
    /// Send a burst of signed deliveries — genuine, resent and forged — with
    /// some concurrency, then report the rate, the latencies, the answers,
    /// and (with a bus endpoint) how often each was published. Exit 0 when
    /// everything was as expected, 1 otherwise, 2 if it could not run.
    Load {
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "gantry-dev-secret")]
        secret: String,
        /// The X-GitHub-Event header.
        #[arg(long, default_value = "push")]
        event: String,
        /// How many requests in all.
        #[arg(short = 'n', long, default_value_t = 200)]
        count: usize,
        /// How many requests in flight at once.
        #[arg(short = 'c', long, default_value_t = 16)]
        concurrency: usize,
        /// Fraction of the requests that resend an id already sent.
        #[arg(long, default_value_t = 0.1)]
        duplicates: f64,
        /// Fraction of the requests that are forged (wrong secret, altered
        /// signature, or none).
        #[arg(long, default_value_t = 0.1)]
        forged: f64,
        /// Seed for the order of the burst.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The AWS endpoint (as `gantry dev` prints it) whose bus `gantry`
        /// to tap, to count the events per delivery; default
        /// $AWS_ENDPOINT_URL; without either the bus is not checked.
        #[arg(long)]
        bus_endpoint: Option<String>,
        /// Seconds to keep reading the bus after the burst, at most (it
        /// stops as soon as every genuine delivery was seen).
        #[arg(long, default_value_t = 120)]
        settle: u64,
        /// Seconds before a request counts as unanswered.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Also write the report, with every request, as JSON to this file
        /// (`-` for stdout, instead of the text).
        #[arg(long)]
        json: Option<PathBuf>,
        /// The payload file (default: the example push built in). A push's
        /// `after` SHA is made distinct per delivery.
        file: Option<String>,
    },
}

#[derive(Subcommand)]
enum AppCommand {
    /// Register the App by GitHub's manifest flow (a page on loopback posts
    /// the manifest; GitHub sends the browser back), store its id, private
    /// key and webhook secret in SSM, and print the install link.
    Create(app::CreateOptions),
}

#[tokio::main]
async fn main() -> ExitCode {
    // A developer's machine: the platform's roots (a proxy's CA may be
    // among them), not the functions' compiled-in ones.
    gantry_aws::tls::trust(gantry_aws::tls::RootSource::System);
    let cli = Cli::parse();
    match cli.command {
        Command::App {
            command: AppCommand::Create(options),
        } => match app::create(&options, &|line| println!("{line}")).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gantry app create: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Dev(options) => {
            gantry_aws::logging::init_with_writer(std::io::stderr);
            match dev::run(options).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("gantry dev: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Build {
            repo,
            git_ref,
            buildspec,
            parameters,
            project,
            timeout,
            keep,
            executor,
        } => {
            let options = build::BuildOptions {
                repo,
                git_ref,
                buildspec,
                parameters,
                project,
                timeout: std::time::Duration::from_secs(timeout.saturating_mul(60)),
                keep,
                place: executor.place(),
                env: executor.env,
            };
            match build::run(&options, &mut std::io::stdout()).await {
                Ok(ended) => ExitCode::from(ended.exit_code()),
                Err(e) => {
                    eprintln!("gantry build: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Run(options) => {
            let sdk = gantry_aws::sdk_loader().load().await;
            let token = std::env::var("GITHUB_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
                .map(gantry_aws::secrets::Secret::new);
            match gantry_cli::run::run(&options, &sdk, token.as_ref()).await {
                Ok(requested) => {
                    for (correlation_id, project, build, attempt) in &requested.builds {
                        println!(
                            "gantry run: requested {}{} of {}@{} on {project} (attempt {attempt}, by {}): {correlation_id}",
                            options.repository,
                            build
                                .as_ref()
                                .map(|b| format!(" build {b}"))
                                .unwrap_or_default(),
                            options.repository,
                            &requested.commit[..requested.commit.len().min(12)],
                            requested.by,
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(
                    e @ (gantry_cli::run::RunError::Refused(_)
                    | gantry_cli::run::RunError::NotConfigured(_)
                    | gantry_cli::run::RunError::Config(_)),
                ) => {
                    eprintln!("gantry run: {e}");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("gantry run: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Tick { at } => {
            let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
            if endpoint.is_empty() {
                eprintln!("gantry tick: set AWS_ENDPOINT_URL to the endpoint gantry dev printed");
                return ExitCode::from(2);
            }
            let at = match at.as_deref().map(chrono::DateTime::parse_from_rfc3339) {
                None => None,
                Some(Ok(t)) => Some(t.with_timezone(&chrono::Utc)),
                Some(Err(e)) => {
                    eprintln!("gantry tick: --at takes an RFC 3339 time: {e}");
                    return ExitCode::from(2);
                }
            };
            let api = std::env::var("GITHUB_API_URL").unwrap_or_default();
            let mut overrides = vec![("CONFIG_TTL_SECONDS", "0")];
            if !api.is_empty() {
                overrides.push(("GITHUB_API_URL", api.as_str()));
            }
            let sdk = gantry_local::stack::sdk_config(&endpoint).await;
            let settings = match gantry_local::stack::schedule_settings(&overrides) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("gantry tick: {e}");
                    return ExitCode::from(2);
                }
            };
            let deps = settings.deps(&sdk);
            let tick = match at {
                Some(at) => gantry_schedule::Tick::at(at),
                None => gantry_schedule::Tick { time: None },
            };
            match gantry_schedule::tick(&deps, &tick).await {
                Ok(summary) => {
                    if summary.fired.is_empty() {
                        println!(
                            "gantry tick: no schedule fires in minute {}",
                            summary.minute
                        );
                    }
                    for (id, fired) in summary.fired {
                        println!("gantry tick: {id}: {fired:?}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("gantry tick: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Lint {
            format,
            kind,
            files,
        } => {
            let code = lint::run(
                &files,
                format,
                kind,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
            ExitCode::from(code)
        }
        Command::Send {
            url,
            secret,
            event,
            delivery,
            form,
            push,
            repo,
            git_ref,
            file,
        } => {
            let payload = match (&file, push) {
                (Some(file), _) => send::read_payload(file).map_err(|e| e.to_string()),
                (None, _) => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    gantry_cli::push::payload(&repo, &git_ref, now)
                        .map(|p| p.to_string().into_bytes())
                        .map_err(|e| e.to_string())
                }
            };
            let payload = match payload {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("gantry send: {e}");
                    return ExitCode::from(2);
                }
            };
            let event = event.unwrap_or_else(|| "push".to_owned());
            let delivery = Delivery {
                url: &url,
                secret: &secret,
                event: &event,
                delivery_id: delivery.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                form,
                payload,
            };
            match delivery.send(&reqwest::Client::new()).await {
                Ok(answer) => {
                    println!("{} {}", answer.status, answer.body);
                    if answer.status < 400 {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("gantry send: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Load {
            url,
            secret,
            event,
            count,
            concurrency,
            duplicates,
            forged,
            seed,
            bus_endpoint,
            settle,
            timeout,
            json,
            file,
        } => {
            let payload = match &file {
                Some(file) => match send::read_payload(file) {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("gantry load: {e}");
                        return ExitCode::from(2);
                    }
                },
                None => load::DEFAULT_PAYLOAD.as_bytes().to_vec(),
            };
            let options = LoadOptions {
                url,
                secret,
                event,
                payload,
                count,
                concurrency,
                duplicates,
                forged,
                seed,
                bus_endpoint: bus_endpoint
                    .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
                    .filter(|e| !e.is_empty()),
                settle: std::time::Duration::from_secs(settle),
                timeout: std::time::Duration::from_secs(timeout),
            };
            let report = match load::run(options).await {
                Ok(report) => report,
                Err(e) => {
                    eprintln!("gantry load: {e}");
                    return ExitCode::from(2);
                }
            };
            let to_stdout = json.as_deref().is_some_and(|p| p.as_os_str() == "-");
            if let Some(path) = &json {
                let text = match serde_json::to_string_pretty(&report) {
                    Ok(text) => text,
                    Err(e) => {
                        eprintln!("gantry load: cannot write the report as JSON: {e}");
                        return ExitCode::from(2);
                    }
                };
                if to_stdout {
                    println!("{text}");
                } else if let Err(e) = std::fs::write(path, text) {
                    eprintln!("gantry load: cannot write {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
            if to_stdout {
                eprint!("{}", report.text());
            } else {
                print!("{}", report.text());
            }
            if report.mismatches.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
