//! `gantry dev`: the whole chain on one machine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gantry_core::config::{Config, DEV_CONFIG};

use gantry_local::moto::{Moto, MotoError};
use gantry_local::stack::{self, StackError, StackSpec};
use gantry_local::tap;

/// `template.yaml` as built into this binary, for running outside the repository.
pub const BUILTIN_TEMPLATE: &str = include_str!("../../template.yaml");

/// The buildspecs of `buildspecs/`, deployed to the bucket as the projects'
/// defaults (`buildspecs/<project>.yml` is used by a project of that name);
/// `test.yml` is also `default.yml`.
pub const BUILTIN_BUILDSPECS: &[(&str, &str)] = &[
    (
        "buildspecs/test.yml",
        include_str!("../../buildspecs/test.yml"),
    ),
    (
        "buildspecs/docker.yml",
        include_str!("../../buildspecs/docker.yml"),
    ),
    (
        "buildspecs/default.yml",
        include_str!("../../buildspecs/test.yml"),
    ),
];

/// The build timeout of the local builds, as template.yaml's default
/// `BuildTimeoutMinutes`.
const BUILD_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// The token `gantry dev` stores when `GITHUB_TOKEN` is not set: statuses
/// then go to the local sink, which accepts any.
pub const DEV_GITHUB_TOKEN: &str = "gantry-dev-token";

#[derive(clap::Args)]
pub struct DevOptions {
    /// Address the webhook answers on (every path, as a function URL).
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// gantry.yaml to use; without it every repository and branch builds
    /// on the project gantry-dev.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Webhook secret; defaults to the configuration's dev.webhook-secret.
    #[arg(long)]
    pub webhook_secret: Option<String>,
    /// The SAM template whose rules to create (default: ./template.yaml,
    /// else the one built in).
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// Serve the webhook and print the event log only: run none of the
    /// downstream functions (for measuring the webhook alone, e.g. with
    /// `gantry load`; they take no CPU from it).
    #[arg(long)]
    pub only_webhook: bool,
    /// The git repository whose files the GitHub stand-in serves at each
    /// commit (default: the one of the current directory). Not used when
    /// GITHUB_API_URL is set.
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// A SecureString to put in the local SSM, for gantry.yaml's
    /// `secrets` and the buildspecs' `env.parameter-store`: NAME=VALUE
    /// (repeat). Values are masked in the build logs.
    #[arg(long = "parameter", value_name = "NAME=VALUE", value_parser = crate::build::name_value)]
    pub parameters: Vec<(String, String)>,
    /// A secret to create in the local Secrets Manager, for the buildspecs'
    /// `env.secrets-manager`: NAME=VALUE (repeat; a JSON object's keys are
    /// read by `name:key` references). Values are masked in the build logs.
    #[arg(long = "secrets-manager", value_name = "NAME=VALUE", value_parser = crate::build::name_value)]
    pub secrets: Vec<(String, String)>,
    /// Runs Gantry's GitHub App mode as App ID (with --github-app-key):
    /// the stand-in verifies the App's JWT with this key's public half and
    /// issues installation tokens; with GITHUB_API_URL set, the real
    /// GitHub is used.
    #[arg(long, value_name = "ID", requires = "github_app_key")]
    pub github_app_id: Option<u64>,
    /// The GitHub App's private key (PEM, as GitHub hands it out), for
    /// its GitHub App mode (with --github-app-id).
    #[arg(long, value_name = "FILE.pem", requires = "github_app_id")]
    pub github_app_key: Option<PathBuf>,
    /// Run the schedule function at the start of every minute, as its
    /// EventBridge rule does when deployed (gantry.yaml's `schedules:`).
    #[arg(long)]
    pub tick: bool,
    #[command(flatten)]
    pub executor: crate::build::ExecutorOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is invalid:\n{diagnostics}")]
    Config { path: String, diagnostics: String },
    #[error(
        "no webhook secret: pass --webhook-secret or set dev.webhook-secret in the configuration"
    )]
    NoSecret,
    #[error(transparent)]
    Moto(#[from] MotoError),
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the local sink for statuses and chat webhooks on a loopback port: {0}")]
    Sink(std::io::Error),
    #[error("invalid settings: {0}")]
    Settings(#[from] gantry_webhook::SettingsError),
    /// Never quotes the key.
    #[error("{path} is not the GitHub App's private key: {source}")]
    AppKey {
        path: String,
        source: crate::standin::StandInError,
    },
}

fn read(path: &PathBuf) -> Result<String, DevError> {
    std::fs::read_to_string(path).map_err(|source| DevError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Runs until Ctrl-C. Prints the chain's events on stdout, one per line.
pub async fn run(options: DevOptions) -> Result<(), DevError> {
    let stop = Stop::install();
    let (config_yaml, config_name) = match &options.config {
        Some(path) => (read(path)?, path.display().to_string()),
        None => (
            DEV_CONFIG.to_owned(),
            "built-in development configuration".to_owned(),
        ),
    };
    let config = match Config::parse(&config_yaml) {
        Ok((config, warnings)) => {
            for w in warnings {
                eprintln!("{config_name}:{w}");
            }
            config
        }
        Err(diagnostics) => {
            let diagnostics = diagnostics
                .iter()
                .map(|d| format!("  {config_name}:{d}"))
                .collect::<Vec<_>>()
                .join("\n");
            return Err(DevError::Config {
                path: config_name,
                diagnostics,
            });
        }
    };
    let secret = options
        .webhook_secret
        .clone()
        .or_else(|| config.dev.webhook_secret.clone())
        .ok_or(DevError::NoSecret)?;
    // GitHub App mode: the key is read (and found to be one) before
    // anything starts.
    let (app_stand_in, app_key) = match (options.github_app_id, &options.github_app_key) {
        (Some(app_id), Some(path)) => {
            let pem = read(path)?;
            let stand_in =
                crate::standin::AppStandIn::from_pem(app_id, &pem).map_err(|source| {
                    DevError::AppKey {
                        path: path.display().to_string(),
                        source,
                    }
                })?;
            (Some(stand_in), Some((app_id, pem)))
        }
        _ => (None, None),
    };
    let template_yaml = match &options.template {
        Some(path) => read(path)?,
        None => match std::fs::read_to_string("template.yaml") {
            Ok(text) => text,
            Err(_) => BUILTIN_TEMPLATE.to_owned(),
        },
    };

    // An endpoint given in the environment is used as is; otherwise we run
    // our own moto server and stop it on the way out.
    let (moto, endpoint) = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(endpoint) if !endpoint.is_empty() => (None, endpoint),
        _ => {
            let moto = Moto::start().await?;
            let endpoint = moto.endpoint().to_owned();
            (Some(moto), endpoint)
        }
    };
    let sdk = stack::sdk_config(&endpoint).await;
    // A local sink stands for GitHub's status API (unless GITHUB_API_URL
    // says where to post) and for every chat webhook.
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(DevError::Sink)?;
    let sink_url = format!("http://{}", sink.local_addr().map_err(DevError::Sink)?);
    // The functions read buildspecs from GitHub (or GITHUB_API_URL) with
    // the token from the environment, stored in SSM as it is when deployed;
    // without one, a development token is stored for the statuses.
    let github_token = std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty());
    let github_api_env = std::env::var("GITHUB_API_URL")
        .ok()
        .filter(|u| !u.is_empty());
    // Without GITHUB_API_URL, the sink stands for GitHub: it serves files
    // from the local repository at the commit asked for, so the chain runs
    // offline on the user's own buildspec.
    let stand_in = github_api_env.is_none();
    let repo = options.repo.clone().or_else(current_repository);
    let github_api = github_api_env.clone().unwrap_or_else(|| sink_url.clone());
    let statuses_api = github_api_env.unwrap_or_else(|| sink_url.clone());
    let chat_urls: Vec<(String, String)> = config
        .repositories
        .iter()
        .flat_map(|r| r.notifications.iter())
        .map(|route| {
            (
                route.url_parameter.clone(),
                format!("{sink_url}/chat/{}", route.provider),
            )
        })
        .collect();
    // App mode: the key where the functions read it, as deployed.
    let app_key_parameter = app_key.as_ref().map(|(_, pem)| {
        (
            gantry_local::stack::names::GITHUB_APP_KEY_PARAMETER.to_owned(),
            pem.clone(),
        )
    });
    let secure_parameters: Vec<(&str, &str)> = chat_urls
        .iter()
        .chain(options.parameters.iter())
        .chain(app_key_parameter.iter())
        .map(|(p, u)| (p.as_str(), u.as_str()))
        .collect();
    let secrets: Vec<(&str, &str)> = options
        .secrets
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let stack = stack::provision(
        &sdk,
        &StackSpec {
            template_yaml: &template_yaml,
            webhook_secret: &secret,
            config_yaml: &config_yaml,
            buildspecs: BUILTIN_BUILDSPECS,
            github_token: Some(github_token.as_deref().unwrap_or(DEV_GITHUB_TOKEN)),
            secure_parameters: &secure_parameters,
            secrets: &secrets,
        },
    )
    .await?;

    // Pick up edits to the parameters quickly while developing.
    let settings =
        stack::webhook_settings(&[("CONFIG_TTL_SECONDS", "5"), ("SECRET_TTL_SECONDS", "5")])?;
    let webhook = settings.deps(&sdk);
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| DevError::Listen {
            addr: options.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| DevError::Listen {
        addr: options.listen,
        source,
    })?;

    println!(
        "gantry dev: AWS endpoint {endpoint}{}",
        if moto.is_some() {
            " (moto, started here)"
        } else {
            ""
        }
    );
    println!("gantry dev: configuration: {config_name}");
    for tapped in &stack.rules {
        println!(
            "gantry dev: rule {} → queue {}",
            tapped.rule.logical_id,
            tapped.tap.queue_url()
        );
    }
    println!("gantry dev: webhook listening on http://{addr}/");
    // The build page, on the same address (GET /builds/…, /repos/…).
    let page_url = format!("http://{addr}");
    let page_settings = stack::build_page_settings(&page_url, &[])?;
    println!(
        "gantry dev: build pages at {page_url}/builds/<project>/<build> (each build prints its signed link)"
    );
    println!(
        "gantry dev: try: gantry send --url http://{addr}/ --secret <secret> --push (your last commit) or --event push <payload.json>"
    );

    let mut functions = gantry_local::functions::LocalFunctions::new(
        &sdk,
        &gantry_local::functions::GitHubUrls {
            contents_api: &github_api,
            with_token: github_token.is_some() && app_key.is_none(),
            statuses_api: &statuses_api,
            app: app_key
                .as_ref()
                .map(|(app_id, _)| gantry_aws::github::credentials::AppSettings {
                    app_id: *app_id,
                    key_parameter: gantry_local::stack::names::GITHUB_APP_KEY_PARAMETER.to_owned(),
                    statuses_too: false,
                }),
            page_url: Some(&page_url),
        },
    )?;
    if let Some((app_id, _)) = &app_key {
        println!(
            "gantry dev: GitHub App mode (App {app_id}): each build is a check run; {}",
            if stand_in {
                "the stand-in verifies the App's JWT with the key's public half and issues installation tokens"
            } else {
                "installation tokens from GITHUB_API_URL"
            }
        );
    }
    // Builds run here from the repository the stand-in serves (or the one
    // given with --repo); without one, moto's CodeBuild only records them.
    let build_repo = options.repo.clone().or(repo.clone().filter(|_| stand_in));
    let mut local_builds = None;
    match build_repo {
        Some(build_repo) => {
            let place = options.executor.place();
            println!(
                "gantry dev: builds run {} from {}; logs at {sink_url}{}/",
                match &place {
                    gantry_local::executor::Place::Host =>
                        "on this machine (shell executor, as the current user)".to_owned(),
                    gantry_local::executor::Place::Docker { image } =>
                        format!("in containers of {image} (docker executor)"),
                },
                build_repo.display(),
                crate::sink::LOGS_PATH
            );
            let builds = gantry_local::builds::LocalBuilds::new(
                &sdk,
                build_repo,
                format!("{sink_url}{}", crate::sink::LOGS_PATH),
                BUILD_TIMEOUT,
                place,
            )
            .with_project_env(options.executor.env.clone())
            .with_pages(gantry_aws::pages::PageLinks::new(
                page_settings.pages.clone(),
                aws_sdk_ssm::Client::new(&sdk),
            ));
            functions = functions.with_local_builds(builds.clone());
            local_builds = Some(builds);
        }
        None => println!(
            "gantry dev: builds are not run (no repository to check their commits out of: pass --repo PATH); moto's CodeBuild reports each one SUCCEEDED at once"
        ),
    }
    println!(
        "gantry dev: commit statuses go to {statuses_api}; chat webhooks to {sink_url}/chat/<provider>"
    );
    tokio::spawn(crate::sink::serve(
        sink,
        crate::sink::SinkOptions {
            repo: repo.clone().filter(|_| stand_in),
            app: app_stand_in.filter(|_| stand_in),
        },
    ));
    if stand_in {
        match &repo {
            Some(repo) => println!(
                "gantry dev: GitHub stands in on {sink_url}: files at each commit from {} (set GITHUB_API_URL for a real GitHub)",
                repo.display()
            ),
            None => println!(
                "gantry dev: GitHub stands in on {sink_url} with no repository (--repo PATH): every buildspec comes from the project's default"
            ),
        }
    }
    println!(
        "gantry dev: validate-buildspec reads buildspecs from {github_api}{}",
        if app_key.is_some() {
            " with the App's installation tokens"
        } else if github_token.is_some() {
            " with $GITHUB_TOKEN"
        } else {
            " without a token (set GITHUB_TOKEN for private repositories)"
        }
    );

    let schedules: usize = config.repositories.iter().map(|r| r.schedules.len()).sum();
    println!(
        "gantry dev: run a build by hand: GITHUB_API_URL={github_api} AWS_ENDPOINT_URL={endpoint} GANTRY_BUCKET={} gantry run OWNER/REPO [--ref REF | --sha SHA] [--var NAME=VALUE]{}",
        gantry_local::stack::names::BUCKET,
        if options.config.is_some() {
            ""
        } else {
            " (the built-in configuration builds any repository)"
        }
    );
    if options.tick {
        println!(
            "gantry dev: --tick: the schedule function runs at the start of every minute ({schedules} schedule(s) in the configuration)"
        );
    } else if schedules > 0 {
        println!(
            "gantry dev: {schedules} schedule(s) in the configuration: run with --tick to fire them every minute"
        );
    }
    println!(
        "gantry dev: tick the schedules by hand: GITHUB_API_URL={statuses_api} AWS_ENDPOINT_URL={endpoint} gantry tick [--at 2026-01-01T03:00:00Z]"
    );

    let served = crate::serve::Served {
        webhook,
        pages: (!options.only_webhook).then(|| page_settings.deps(&sdk)),
    };
    let server = tokio::spawn(crate::serve::serve(listener, Arc::new(served)));
    let watcher = if options.only_webhook {
        println!(
            "gantry dev: --only-webhook: printing the event log; no function runs on the events"
        );
        let (rules, others): (Vec<_>, Vec<_>) = stack
            .rules
            .iter()
            .cloned()
            .partition(|t| t.rule.targets.iter().any(|t| t == "EventLogGroup"));
        // Nobody reads the other rules' queues: take their targets away,
        // so the bus does not fill them (moto delivers to every target
        // within PutEvents, so each one also slows the webhook down).
        for other in &others {
            other.tap.untarget().await.map_err(StackError::from)?;
        }
        tokio::spawn(async move {
            loop {
                for observed in tap::drain(&rules, Duration::from_secs(1)).await {
                    println!("{}", observed.summary());
                }
            }
        })
    } else {
        let rules = stack.rules.clone();
        let functions = Arc::new(functions);
        if options.tick {
            let ticking = Arc::clone(&functions);
            tokio::spawn(async move {
                loop {
                    // The start of the next minute, as EventBridge's
                    // `rate(1 minute)` fires (give or take).
                    let now = chrono::Utc::now();
                    let into = u64::try_from(now.timestamp().rem_euclid(60)).unwrap_or(0);
                    tokio::time::sleep(Duration::from_secs(60 - into)).await;
                    for line in ticking.tick(Some(chrono::Utc::now())).await {
                        println!("{line}");
                    }
                }
            });
        }
        tokio::spawn(async move {
            loop {
                let mut observed = tap::drain(&rules, Duration::from_secs(1)).await;
                // The event first, then what the functions made of it.
                observed.sort_by_key(|o| !o.targets.iter().any(|t| t == "EventLogGroup"));
                for observed in observed {
                    match functions.dispatch(&observed).await {
                        Some(line) => println!("{line}"),
                        None => println!("{}", observed.summary()),
                    }
                }
                // Builds the emulator shows ending become CodeBuild's events.
                for line in functions.progress().await {
                    println!("{line}");
                }
            }
        })
    };
    stop.wait().await;
    println!("gantry dev: stopping");
    server.abort();
    watcher.abort();
    // A build still running is stopped, and what it started killed with
    // it, before its moto goes.
    if let Some(builds) = &local_builds {
        let stopped = builds.stop_all(Duration::from_secs(15)).await;
        if stopped > 0 {
            println!("gantry dev: stopped {stopped} running build(s)");
        }
    }
    if let Some(moto) = moto {
        moto.stop().await;
    }
    Ok(())
}

/// The git repository of the current directory, if it is in one.
fn current_repository() -> Option<PathBuf> {
    crate::git::git(std::path::Path::new("."), &["rev-parse", "--show-toplevel"])
        .ok()
        .map(PathBuf::from)
}

/// Ctrl-C or SIGTERM (a process manager's or `kill`'s stop): either way
/// the moto server this started is stopped with it, not left behind. The
/// handlers are installed before anything starts, so a signal that comes
/// early is not missed (it would kill the process and leave moto running).
struct Stop {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Stop {
    fn install() -> Stop {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                .ok();
            Stop { signals }
        }
        #[cfg(not(unix))]
        Stop {}
    }

    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = self.signals {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
