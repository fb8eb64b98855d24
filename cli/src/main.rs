//! `gantry`: run Gantry locally and talk to it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use gantry_cli::dev::{self, DevOptions};
use gantry_cli::lint;
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
    Dev {
        /// Address the webhook answers on (every path, as a function URL).
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// gantry.yaml to use; without it every repository and branch
        /// builds on the project gantry-dev.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Webhook secret; defaults to the configuration's dev.webhook-secret.
        #[arg(long)]
        webhook_secret: Option<String>,
        /// The SAM template whose rules to create (default: ./template.yaml,
        /// else the one built in).
        #[arg(long)]
        template: Option<PathBuf>,
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
    /// Sign a payload file exactly as GitHub does and POST it.
    Send {
        #[arg(long)]
        url: String,
        #[arg(long)]
        secret: String,
        /// The X-GitHub-Event header: push, pull_request, ping, …
        #[arg(long)]
        event: String,
        /// The X-GitHub-Delivery header; a fresh one when not given.
        #[arg(long)]
        delivery: Option<String>,
        /// Send as application/x-www-form-urlencoded (payload=…).
        #[arg(long)]
        form: bool,
        /// The payload file (JSON).
        file: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Dev {
            listen,
            config,
            webhook_secret,
            template,
        } => {
            gantry_shared::logging::init_with_writer(std::io::stderr);
            match dev::run(DevOptions {
                listen,
                config,
                webhook_secret,
                template,
            })
            .await
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("gantry dev: {e}");
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
            file,
        } => {
            let payload = match send::read_payload(&file) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("gantry send: {e}");
                    return ExitCode::from(2);
                }
            };
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
    }
}
