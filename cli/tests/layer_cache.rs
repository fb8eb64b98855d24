//! buildspecs/docker.yml's Docker layer cache, run by `gantry build` against
//! a real engine and a registry on loopback (scripts/docker.sh starts them:
//! Docker 26 with the containerd image store, whose BuildKit exports a
//! registry cache, as CodeBuild's docker-container builder does). Each
//! build starts on an engine that has forgotten every layer, as a fresh
//! CodeBuild host does: what it reuses came from the registry. And its
//! push, against a `docker` of the test's own that a registry refuses.

mod common;

use common::git;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Engine {
    /// DOCKER_HOST of the engine.
    host: String,
    /// `127.0.0.1:<port>`.
    registry: String,
    /// The base image, already in the engine.
    image: String,
}

fn engine() -> Option<Engine> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        var("GANTRY_BUILDX_DOCKER_HOST"),
        var("GANTRY_BUILDX_REGISTRY"),
        var("GANTRY_BUILDX_IMAGE"),
    ) {
        (Some(host), Some(registry), Some(image)) => Some(Engine {
            host,
            registry,
            image,
        }),
        _ => {
            eprintln!(
                "layer cache test not run: GANTRY_BUILDX_DOCKER_HOST, GANTRY_BUILDX_REGISTRY and GANTRY_BUILDX_IMAGE are set by scripts/test where the engine can start"
            );
            None
        }
    }
}

fn docker(engine: &Engine, args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", &engine.host)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The engine forgets every layer and image but the base: the next build
/// has only the registry to reuse.
fn forget(engine: &Engine) {
    let images = docker(
        engine,
        &["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
    );
    for image in images.lines().filter(|i| i.starts_with(&engine.registry)) {
        docker(engine, &["image", "rm", "--force", image]);
    }
    docker(engine, &["buildx", "prune", "--all", "--force"]);
}

/// The registry's tags of `repository`, sorted.
fn tags(engine: &Engine, repository: &str) -> Vec<String> {
    let out = Command::new("curl")
        .args(["-fsS"])
        .arg(format!(
            "http://{}/v2/{repository}/tags/list",
            engine.registry
        ))
        .output()
        .expect("run curl");
    if !out.status.success() {
        return Vec::new(); // no such repository yet
    }
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut tags: Vec<String> = body["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    tags.sort();
    tags
}

struct Built {
    code: Option<i32>,
    out: String,
}

impl Built {
    /// Did BuildKit take the step whose line contains `step` from the
    /// cache (its `#<n> CACHED`)?
    fn cached(&self, step: &str) -> bool {
        let lines: Vec<&str> = self
            .out
            .lines()
            .map(|l| l.strip_prefix("[BUILD] ").unwrap_or(l))
            .collect();
        let Some(id) = lines
            .iter()
            .find(|l| l.starts_with('#') && l.contains(step))
            .and_then(|l| l.split_whitespace().next())
        else {
            return false;
        };
        lines.contains(&format!("{id} CACHED").as_str())
    }

    /// BuildKit reused the expensive install step and at least 2 of the 3
    /// steps. Docker 26's built-in builder now and then rebuilds
    /// the last, trivial step although its layer is in the imported cache
    /// (seen in about one run in five here), so the step whose reuse is
    /// the point is the one required.
    fn reused(&self) -> bool {
        let share = self
            .exported("DOCKER_CACHE")
            .and_then(gantry_core::exported::LayerCache::parse);
        self.cached(INSTALL) && share.is_some_and(|c| c.steps == 3 && c.cached >= 2)
    }

    fn exported(&self, name: &str) -> Option<&str> {
        let prefix = format!("exported {name}=");
        // An exported variable the build never set is printed empty.
        self.out
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .filter(|v| !v.is_empty())
    }
}

/// `gantry build` of `git_ref` with the docker buildspec, as start-build
/// would start it: the project's variables and Gantry's metadata.
fn build(
    engine: &Engine,
    repo: &Path,
    namespace: &str,
    git_ref: &str,
    gantry: &[(&str, &str)],
) -> Built {
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../buildspecs/docker.yml");
    let config = repo.join(".docker-config");
    let mut env: Vec<(String, String)> = vec![
        ("DOCKER_HOST".into(), engine.host.clone()),
        ("DOCKER_CONFIG".into(), config.display().to_string()),
        // The engine's own builder exports a registry cache (CodeBuild's
        // gets a docker-container builder).
        ("BUILDX_BUILDER".into(), "default".into()),
        (
            "IMAGE_REPO".into(),
            format!("{}/{namespace}/app", engine.registry),
        ),
        (
            "CACHE_REPO".into(),
            format!("{}/{namespace}/app/cache", engine.registry),
        ),
        // The registry takes any login (as ECR's token does).
        ("DOCKER_USERNAME".into(), "gantry".into()),
        ("DOCKER_PASSWORD".into(), "not-checked".into()),
        ("GANTRY_REPOSITORY".into(), "octo-org/app".into()),
        ("GANTRY_DEFAULT_BRANCH".into(), "main".into()),
    ];
    env.extend(
        gantry
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_gantry"));
    command
        .args(["build", "--executor", "shell", "--ref", git_ref, "--repo"])
        .arg(repo)
        .arg("--buildspec")
        .arg(&spec)
        .env("XDG_CACHE_HOME", repo.join(".cache-for-logs"));
    for (name, value) in &env {
        command.arg("--env").arg(format!("{name}={value}"));
    }
    let out = command.output().expect("run gantry build");
    let mut text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        text.push_str(&registry_log());
    }
    Built {
        code: out.status.code(),
        out: text,
    }
}

/// The end of the registry's own log (its warnings and errors), for a
/// build that failed: a registry's 5xx says why only there.
fn registry_log() -> String {
    let Some(path) = std::env::var_os("GANTRY_BUILDX_REGISTRY_LOG") else {
        return String::new();
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| format!("(unreadable: {e})"));
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "\n--- the registry's log, {}, last lines ---\n{}\n",
        std::path::Path::new(&path).display(),
        lines[lines.len().saturating_sub(40)..].join("\n")
    )
}

/// The Dockerfile's expensive step.
const INSTALL: &str = "sleep 2 && echo installed";

#[test]
fn a_second_build_reuses_its_layers_from_the_registry_and_a_fork_only_reads() {
    let Some(engine) = engine() else { return };
    let repo = std::env::temp_dir().join(format!("gantry-layer-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&repo);
    std::fs::create_dir_all(&repo).expect("scratch dir");
    git(&repo, &["init", "-q", "-b", "main"]);
    // Three steps to build; the first takes a while, as an install does.
    std::fs::write(
        repo.join("Dockerfile"),
        format!(
            "FROM {}\nRUN --network=none {INSTALL} > /installed\nCOPY a.txt /a.txt\nRUN --network=none cat /a.txt > /built\n",
            engine.image
        ),
    )
    .expect("Dockerfile");
    std::fs::write(repo.join("a.txt"), "one\n").expect("a.txt");
    std::fs::write(
        repo.join(".gitignore"),
        ".docker-config/\n.cache-for-logs/\n",
    )
    .expect("ignore");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let push = [
        ("GANTRY_TRUSTED", "true"),
        ("GANTRY_TRIGGER", "push"),
        ("GANTRY_BRANCH", "main"),
    ];
    // This run's own repositories in the registry (it outlives a run).
    let namespace = format!(
        "run{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
    );
    let cache = format!("{namespace}/app/cache");
    let images = format!("{namespace}/app");

    // The first build of main starts cold, pushes the image and writes
    // main's cache.
    forget(&engine);
    let first = build(&engine, &repo, &namespace, "main", &push);
    assert_eq!(first.code, Some(0), "{}", first.out);
    assert_eq!(first.exported("DOCKER_CACHE"), Some("0/3"), "{}", first.out);
    assert!(!first.cached(INSTALL), "{}", first.out);
    assert!(
        first
            .exported("IMAGE_URI")
            .is_some_and(|u| u.starts_with(&format!("{}/{images}:", engine.registry))),
        "{}",
        first.out
    );
    assert_eq!(tags(&engine, &cache), vec!["octo-org-app--main"]);

    // On a host that has forgotten it all, the same commit: every step
    // from the registry.
    forget(&engine);
    let second = build(&engine, &repo, &namespace, "main", &push);
    assert_eq!(second.code, Some(0), "{}", second.out);
    assert!(second.reused(), "{}", second.out);

    // A fork's pull request reads the default branch's cache and writes
    // nothing: no cache tag, no image.
    let images_before = tags(&engine, &images);
    forget(&engine);
    let fork = build(
        &engine,
        &repo,
        &namespace,
        "main",
        &[
            ("GANTRY_TRUSTED", "false"),
            ("GANTRY_TRIGGER", "pull_request"),
            ("GANTRY_PR_NUMBER", "7"),
            ("GANTRY_PR_BASE_BRANCH", "main"),
        ],
    );
    assert_eq!(fork.code, Some(0), "{}", fork.out);
    assert!(fork.reused(), "{}", fork.out);
    assert!(
        fork.out
            .contains("Layer cache: reads octo-org-app--main; writes nothing"),
        "{}",
        fork.out
    );
    assert_eq!(tags(&engine, &cache), vec!["octo-org-app--main"]);
    assert_eq!(tags(&engine, &images), images_before);
    assert_eq!(fork.exported("IMAGE_URI"), None, "{}", fork.out);

    // A trusted pull request whose first commit leaves the image's files
    // alone: it has no cache of its own yet, so it reads its base
    // branch's, all of it, and writes its own.
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(repo.join("README.md"), "not in the image\n").expect("README");
    git(&repo, &["add", "README.md"]);
    git(&repo, &["commit", "-q", "-m", "docs"]);
    let pull_request = [
        ("GANTRY_TRUSTED", "true"),
        ("GANTRY_TRIGGER", "pull_request"),
        ("GANTRY_PR_NUMBER", "8"),
        ("GANTRY_PR_BASE_BRANCH", "main"),
    ];
    forget(&engine);
    let docs = build(&engine, &repo, &namespace, "feature", &pull_request);
    assert_eq!(docs.code, Some(0), "{}", docs.out);
    assert!(
        docs.out.contains(
            "Layer cache: reads octo-org-app--pr-8 octo-org-app--main; writes octo-org-app--pr-8"
        ),
        "{}",
        docs.out
    );
    assert!(docs.reused(), "{}", docs.out);
    assert_eq!(
        tags(&engine, &cache),
        vec!["octo-org-app--main", "octo-org-app--pr-8"]
    );

    // Its next commit changes a copied file: the steps from it on are
    // built (the record says so), and its own cache now holds them, which
    // main's does not: the build after takes the new copy from its own key.
    std::fs::write(repo.join("a.txt"), "two\n").expect("a.txt");
    git(&repo, &["commit", "-q", "-am", "change a"]);
    forget(&engine);
    let changed = build(&engine, &repo, &namespace, "feature", &pull_request);
    assert_eq!(changed.code, Some(0), "{}", changed.out);
    let partial = changed
        .exported("DOCKER_CACHE")
        .and_then(gantry_core::exported::LayerCache::parse)
        .unwrap_or_else(|| panic!("no DOCKER_CACHE in {}", changed.out));
    assert_eq!(partial.steps, 3);
    assert!(partial.cached < 3, "{}", changed.out);
    forget(&engine);
    let again = build(&engine, &repo, &namespace, "feature", &pull_request);
    assert_eq!(again.code, Some(0), "{}", again.out);
    assert!(again.reused(), "{}", again.out);
    assert!(again.cached("COPY a.txt"), "{}", again.out);
    let _ = std::fs::remove_dir_all(&repo);
}

/// `gantry build` of a trusted push to `main` with the docker buildspec, on
/// the host, with a `docker` of our own first on its `PATH`: it logs every
/// command, has no buildx (so the plain `docker build`), and fails the push
/// of `<repo>:<tag>` as many times as `refusals` says, as a registry's 500
/// does. `sleep` is ours too, so a retry's wait costs nothing. The build,
/// the commands docker got, the sleeps.
fn build_with_a_failing_registry(refusals: &[(&str, u32)]) -> (Built, Vec<String>, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("gantry-push-retry-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (repo, bin) = (dir.join("repo"), dir.join("bin"));
    std::fs::create_dir_all(&repo).expect("repo dir");
    std::fs::create_dir_all(&bin).expect("bin dir");
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("Dockerfile"), "FROM scratch\n").expect("Dockerfile");
    std::fs::write(repo.join(".gitignore"), ".cache-for-logs/\n").expect("ignore");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    for (tag, n) in refusals {
        std::fs::write(dir.join(format!("refuse-{tag}")), n.to_string()).expect("refusals");
    }
    let (calls, sleeps) = (dir.join("docker.log"), dir.join("sleep.log"));
    let script = |path: &Path, text: String| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).expect("stub");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    };
    script(
        &bin.join("docker"),
        format!(
            r#"#!/bin/sh
echo "$*" >> '{calls}'
case "$1" in
  buildx) exit 1 ;;
  push)
    left="{dir}/refuse-${{2##*:}}"
    n=$(cat "$left" 2>/dev/null || echo 0)
    if [ "$n" -gt 0 ]; then
      echo $((n - 1)) > "$left"
      echo "unexpected status from HEAD request to https://registry.example/v2/app/manifests/${{2##*:}}: 500 Internal Server Error" >&2
      exit 1
    fi ;;
  image) echo "registry.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000" ;;
esac
exit 0
"#,
            calls = calls.display(),
            dir = dir.display()
        ),
    );
    script(
        &bin.join("sleep"),
        format!("#!/bin/sh\necho \"$*\" >> '{}'\n", sleeps.display()),
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../buildspecs/docker.yml");
    let mut command = Command::new(env!("CARGO_BIN_EXE_gantry"));
    command
        .args(["build", "--executor", "shell", "--ref", "main", "--repo"])
        .arg(&repo)
        .arg("--buildspec")
        .arg(&spec)
        .env("PATH", &path)
        .env("XDG_CACHE_HOME", repo.join(".cache-for-logs"));
    for var in [
        "IMAGE_REPO=registry.example/app",
        "DOCKER_USERNAME=gantry",
        "DOCKER_PASSWORD=not-checked",
        "GANTRY_TRUSTED=true",
        "GANTRY_TRIGGER=push",
        "GANTRY_BRANCH=main",
        "GANTRY_DEFAULT_BRANCH=main",
    ] {
        command.arg("--env").arg(var);
    }
    let out = command.output().expect("run gantry build");
    let lines = |path: &Path| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let built = Built {
        code: out.status.code(),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    };
    let (calls, sleeps) = (lines(&calls), lines(&sleeps));
    let _ = std::fs::remove_dir_all(&dir);
    (built, calls, sleeps)
}

/// A registry's passing failure (ECR's 5xx; this file's own registry, whose
/// in-place link writes race a concurrent push of the same tag) fails one
/// push, not the build: the push is tried again after a wait and every
/// tag is pushed. A registry that keeps refusing fails the build after
/// three tries, and no later tag is pushed.
#[test]
fn a_push_the_registry_refuses_once_is_tried_again() {
    let pushes = |calls: &[String]| -> Vec<String> {
        calls
            .iter()
            .filter_map(|c| c.strip_prefix("push registry.example/app:"))
            .map(str::to_owned)
            .collect()
    };

    let (built, calls, sleeps) = build_with_a_failing_registry(&[("main", 1)]);
    assert_eq!(built.code, Some(0), "{}", built.out);
    let pushed = pushes(&calls);
    assert_eq!(pushed.len(), 3, "{calls:?}");
    assert_eq!(pushed[1..], ["main", "main"], "{calls:?}");
    assert_eq!(sleeps, ["2"]);
    assert!(
        built.out.contains(
            "docker push registry.example/app:main failed (attempt 1 of 3): trying again in 2 s."
        ),
        "{}",
        built.out
    );
    let commit = &pushed[0];
    assert_eq!(
        built.exported("IMAGE_URI"),
        Some(format!("registry.example/app:{commit}").as_str())
    );

    let (built, calls, sleeps) = build_with_a_failing_registry(&[(commit, 5)]);
    assert_ne!(built.code, Some(0), "{}", built.out);
    assert_eq!(pushes(&calls), [commit.as_str(); 3], "{calls:?}");
    assert_eq!(sleeps, ["2", "4"]);
    assert!(
        built.out.contains(&format!(
            "docker push registry.example/app:{commit} failed 3 times: giving up."
        )),
        "{}",
        built.out
    );
    assert_eq!(built.exported("IMAGE_URI"), None);
}
