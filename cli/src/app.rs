//! `gantry app create`: registers Gantry as a GitHub App by GitHub's
//! manifest flow, on this machine. A loopback page posts the manifest to
//! GitHub (the user's settings, or an organisation's); GitHub sends the
//! browser back to loopback with a code and the state; the code is
//! converted (`POST /app-manifests/{code}/conversions`) into the App's id,
//! private key and webhook secret, which are stored in SSM, the key and
//! the secret as SecureStrings, and never printed. Then the install link.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use gantry_aws::github::app::Registered;
use gantry_aws::github::contents::{GitHubClient, GitHubError};
use gantry_core::github::app_manifest::{self, Spec};

#[derive(clap::Args, Debug)]
pub struct CreateOptions {
    /// Gantry's webhook: the deployed stack's function URL.
    #[arg(long)]
    pub webhook_url: String,
    /// The App's name on GitHub (unique there).
    #[arg(long, default_value = "gantry")]
    pub name: String,
    /// Register it for this organisation (you must own it), not for you.
    #[arg(long)]
    pub org: Option<String>,
    /// GitHub's web address (GitHub Enterprise Server: yours).
    #[arg(long, default_value = "https://github.com")]
    pub github_url: String,
    /// GitHub's API (default: $GITHUB_API_URL, else https://api.github.com).
    #[arg(long)]
    pub api_url: Option<String>,
    /// Where the loopback page listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The SSM path the App's id, private key and webhook secret go under.
    #[arg(long, default_value = "/gantry/github-app/")]
    pub parameter_prefix: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error("GitHub did not register the App: {0}")]
    GitHub(#[from] GitHubError),
    #[error("storing {name} in SSM: {reason}")]
    Store { name: String, reason: String },
    #[error("stopped before GitHub sent the browser back")]
    Interrupted,
}

/// The SSM parameters the App's credentials are stored as.
#[derive(Clone)]
pub struct Stored {
    pub id: String,
    pub private_key: String,
    pub webhook_secret: String,
}

impl Stored {
    fn under(prefix: &str) -> Stored {
        let prefix = format!("/{}/", prefix.trim_matches('/'));
        Stored {
            id: format!("{prefix}id"),
            private_key: format!("{prefix}private-key"),
            webhook_secret: format!("{prefix}webhook-secret"),
        }
    }
}

/// `&`, `<`, `>`, `"` and `'` as HTML entities, for the manifest in an
/// attribute.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: u16, html: String) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// One run of the flow, shared by the page's connections.
struct Flow {
    /// The first page: the form that posts the manifest.
    form: String,
    state: String,
    github: GitHubClient,
    stored: Stored,
    ssm: aws_sdk_ssm::Client,
    done: mpsc::Sender<Result<Registered, AppError>>,
    /// One registration: a second callback (a reload) finds it taken.
    taken: Mutex<bool>,
    github_url: String,
}

impl Flow {
    async fn answer(
        &self,
        req: &hyper::Request<hyper::body::Incoming>,
    ) -> hyper::Response<Full<Bytes>> {
        if req.method() != http::Method::GET {
            return page(405, "GET only".into());
        }
        match req.uri().path() {
            "/" => return page(200, self.form.clone()),
            "/callback" => {}
            _ => return page(404, "not here".into()),
        }
        let code = match callback(req.uri().query(), &self.state) {
            Ok(code) => code,
            Err(why) => return page(400, html_escape(why)),
        };
        if let Ok(mut taken) = self.taken.lock() {
            if *taken {
                return page(409, "The App is already being registered.".into());
            }
            *taken = true;
        }
        let result = register(&self.github, &self.ssm, &self.stored, &code).await;
        let answer = match &result {
            Ok(app) => page(
                200,
                format!(
                    "<!doctype html><meta charset=utf-8><p>Gantry is registered as <b>{}</b> (App {}). \
                     <a href=\"{}\">Install it on your repositories</a>.</p>",
                    html_escape(&app.slug),
                    app.id,
                    html_escape(&app_manifest::install_url(&self.github_url, &app.slug)),
                ),
            ),
            Err(e) => page(502, html_escape(&e.to_string())),
        };
        let _ = self.done.send(result).await;
        answer
    }
}

/// The `code` of a callback whose `state` is ours.
fn callback(query: Option<&str>, state: &str) -> Result<String, &'static str> {
    let mut code = None;
    let mut came = None;
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "code" => code = Some(v.into_owned()),
            "state" => came = Some(v.into_owned()),
            _ => {}
        }
    }
    if came.as_deref() != Some(state) {
        return Err(
            "the state does not match the one this page sent: start again from the first page",
        );
    }
    code.ok_or("GitHub sent no code")
}

/// Runs the flow: prints the page's address, waits for GitHub's redirect,
/// registers and stores. `say` gets each line for the user.
pub async fn create(
    options: &CreateOptions,
    say: &(dyn Fn(&str) + Send + Sync),
) -> Result<Registered, AppError> {
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|e| AppError::Listen {
            addr: options.listen,
            reason: e.to_string(),
        })?;
    let addr = listener.local_addr().map_err(|e| AppError::Listen {
        addr: options.listen,
        reason: e.to_string(),
    })?;
    let state = uuid::Uuid::new_v4().simple().to_string();
    let redirect_url = format!("http://{addr}/callback");
    let manifest = app_manifest::manifest(&Spec {
        name: &options.name,
        url: &options.github_url,
        webhook_url: &options.webhook_url,
        redirect_url: &redirect_url,
    });
    let action = app_manifest::new_app_url(&options.github_url, options.org.as_deref(), &state);
    let form = format!(
        "<!doctype html><meta charset=utf-8><title>Register Gantry as a GitHub App</title>\
         <form id=f method=post action=\"{}\"><input type=hidden name=manifest value=\"{}\">\
         <p>GitHub will ask you to confirm the App <b>{}</b>.</p>\
         <button type=submit>Register on GitHub</button></form>\
         <script>document.getElementById('f').submit()</script>",
        html_escape(&action),
        html_escape(&manifest.to_string()),
        html_escape(&options.name),
    );
    let api = options
        .api_url
        .clone()
        .or_else(|| {
            std::env::var("GITHUB_API_URL")
                .ok()
                .filter(|u| !u.is_empty())
        })
        .unwrap_or_else(|| "https://api.github.com".to_owned());
    let sdk = gantry_aws::sdk_loader().load().await;
    let (done_tx, mut done_rx) = mpsc::channel::<Result<Registered, AppError>>(1);
    let flow_names = Stored::under(&options.parameter_prefix);
    let flow = Arc::new(Flow {
        form,
        state,
        github: GitHubClient::new(&api),
        stored: flow_names.clone(),
        ssm: aws_sdk_ssm::Client::new(&sdk),
        done: done_tx,
        taken: Mutex::new(false),
        github_url: options.github_url.clone(),
    });
    say(&format!(
        "Open http://{addr}/ in a browser signed in to GitHub{}: it posts the App's manifest there, and GitHub sends you back here.",
        options
            .org
            .as_deref()
            .map(|o| format!(" as an owner of {o}"))
            .unwrap_or_default()
    ));
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let flow = flow.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let flow = flow.clone();
                    async move { Ok::<_, Infallible>(flow.answer(&req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let result = done_rx.recv().await.unwrap_or(Err(AppError::Interrupted));
    // Let the answer page reach the browser before the server goes.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    server.abort();
    let app = result?;
    say(&format!(
        "Registered the GitHub App {} (id {}): {}",
        app.slug, app.id, app.html_url
    ));
    say(&format!(
        "Stored in SSM: {} (String), {} and {} (SecureString).",
        flow_names.id, flow_names.private_key, flow_names.webhook_secret,
    ));
    say(&format!(
        "Deploy in App mode: sam deploy --parameter-overrides GitHubAppId={} GitHubAppKeyParameterName={} WebhookSecretParameterName={}",
        app.id, flow_names.private_key, flow_names.webhook_secret,
    ));
    say(&format!(
        "Install it: {}",
        app_manifest::install_url(&options.github_url, &app.slug)
    ));
    Ok(app)
}

async fn register(
    github: &GitHubClient,
    ssm: &aws_sdk_ssm::Client,
    stored: &Stored,
    code: &str,
) -> Result<Registered, AppError> {
    use aws_sdk_ssm::types::ParameterType;
    let app = github.convert_manifest(code).await?;
    let id = app.id.to_string();
    for (name, value, kind) in [
        (&stored.id, id.as_str(), ParameterType::String),
        (
            &stored.private_key,
            app.pem.expose(),
            ParameterType::SecureString,
        ),
        (
            &stored.webhook_secret,
            app.webhook_secret.expose(),
            ParameterType::SecureString,
        ),
    ] {
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(kind)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| AppError::Store {
                name: name.clone(),
                reason: gantry_aws::describe_sdk_error(&e),
            })?;
    }
    Ok(app)
}
