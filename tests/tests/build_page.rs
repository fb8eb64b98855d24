//! The build page over the local stack (moto): what a signed link opens,
//! what a changed one does not, what the operator's choices show, and a
//! log read in parts: the latest first, older on demand, new lines while
//! the build runs, the raw text.

use gantry_build_page::{Page, serve};
use gantry_core::codebuild_events::BuildStatus;
use gantry_core::page::link::{self, Expiry, Target};
use gantry_e2e::pages::{PageWorld, failing_log, finish, pull_request_build};

const BASE: &str = "https://pages.example";

fn now_s() -> u64 {
    gantry_core::events::now_ms() / 1000
}

/// Path and query of a link under [`BASE`] (or any relative one).
fn split(link: &str) -> (String, String) {
    let link = link.trim_start_matches(BASE);
    let link = link.split('#').next().unwrap_or(link);
    match link.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (link.to_owned(), String::new()),
    }
}

async fn get(world: &PageWorld, link: &str) -> Page {
    let (path, query) = split(link);
    serve(&world.deps, "GET", &path, &query, now_s()).await
}

/// The `href` values of links whose text is `text`.
fn href(body: &str, text: &str) -> Option<String> {
    let end = body.find(&format!("\">{text}</a>"))?;
    let start = body[..end].rfind("href=\"")? + 6;
    Some(body[start..end].replace("&amp;", "&"))
}

#[tokio::test]
async fn a_link_opens_its_build_s_page_with_result_phases_and_log() {
    let world = PageWorld::start(BASE, &[]).await;
    let mut record = pull_request_build("0f1e2d3c-0000-4000-8000-000000000001");
    world.put(&record).await;
    world.append(&record, &failing_log(20)).await;
    finish(&mut record, BuildStatus::Failed);
    world.put(&record).await;
    let link = world.link(&record).await;
    assert!(link.starts_with(&format!(
        "{BASE}/builds/gantry-dev/0f1e2d3c-0000-4000-8000-000000000001?expires="
    )));

    let page = get(&world, &link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(body.contains("✗</span> failed</span> in BUILD"), "{body}");
    assert!(body.contains("#42 Make the widgets &lt;faster&gt;"));
    assert!(body.contains("<tr class=\"failed-phase\"><th scope=\"row\"><code>BUILD</code>"));
    assert!(body.contains("Cache the widget table"));
    assert!(
        !body.contains("It was read on every call"),
        "only the message's first line"
    );
    assert!(body.contains("https://github.com/octo-org/widgets/blob/9f2c1e4b7a6d5c3b2a1908f7e6d5c4b3a2918070/buildspec.yml"));
    // The first error of the failed phase is marked, and the log's own
    // markup is text.
    let first = body
        .find("id=\"first-error\"")
        .expect("the first error is marked");
    assert!(
        body[first..].starts_with("id=\"first-error\" class=\"error\"><a class=\"n\" id=\"L29\""),
        "{}",
        &body[first..first + 200]
    );
    assert!(body[first..first + 400].contains("table_is_cached"));
    assert!(body.contains("&lt;script&gt;alert(&#39;a log line is text&#39;)&lt;/script&gt;"));
    assert!(!body.contains("<script>alert"));
    // The whole log fits one part: numbered from its first line.
    assert!(body.contains("<span id=\"L1\">"));
    // What keeps the link to itself.
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("x-robots-tag"), Some("noindex, nofollow"));
    assert!(
        page.header("content-security-policy")
            .is_some_and(|c| c.starts_with("default-src 'none'"))
    );
    // Its history and raw text open under the same capability.
    let history = href(body, "Recent builds of octo-org/widgets").expect("a history link");
    let listed = get(&world, &history).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(
        listed
            .body
            .contains("href=\"/builds/gantry-dev/0f1e2d3c-0000-4000-8000-000000000001?expires="),
        "the history lists the build: {}",
        listed.body
    );
    let raw = href(body, "Raw text").expect("a raw link");
    let raw = get(&world, &raw).await;
    assert_eq!(
        raw.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(raw.body, failing_log(20).join("\n") + "\n");
}

#[tokio::test]
async fn a_changed_or_expired_link_opens_nothing_and_says_nothing_of_the_build() {
    let world = PageWorld::start(BASE, &[]).await;
    let uuid = "0f1e2d3c-0000-4000-8000-000000000002";
    let mut record = pull_request_build(uuid);
    finish(&mut record, BuildStatus::Failed);
    world.put(&record).await;
    let other = pull_request_build("0f1e2d3c-0000-4000-8000-000000000003");
    world.put(&other).await;
    let link = world.link(&record).await;
    let (path, query) = split(&link);
    let key = world
        .deps
        .keys
        .get()
        .await
        .expect("the key exists once a link was signed");
    let expired = link::url(
        BASE,
        &key,
        &Target::Build(record.build_id.clone()),
        Expiry::At(now_s() - 1),
    );
    let later = query.replace(
        &query[query.find("expires=").expect("expires") + 8..query.find('&').expect("&")],
        &(now_s() + 400 * 86_400).to_string(),
    );
    let mut flipped = query.clone();
    let last = flipped.pop().expect("a signature");
    flipped.push(if last == '0' { '1' } else { '0' });
    let other_path = path.replace(uuid, "0f1e2d3c-0000-4000-8000-000000000003");
    let cases: Vec<(&str, String, String, u16)> = vec![
        ("a flipped signature", path.clone(), flipped, 403),
        ("a later expiry", path.clone(), later, 403),
        (
            "another build's page",
            other_path.clone(),
            query.clone(),
            403,
        ),
        ("no signature", path.clone(), String::new(), 403),
        (
            "its log for another build",
            format!("{other_path}/raw"),
            query.clone(),
            403,
        ),
        (
            "a climbing path",
            format!("{path}/../../0f1e2d3c-0000-4000-8000-000000000003"),
            query.clone(),
            404,
        ),
        (
            "an encoded slash",
            path.replace("gantry-dev/", "gantry-dev%2F"),
            query.clone(),
            404,
        ),
        ("an expired link", split(&expired).0, split(&expired).1, 410),
    ];
    for (what, path, query, status) in cases {
        let page = serve(&world.deps, "GET", &path, &query, now_s()).await;
        assert_eq!(page.status, status, "{what}: {}", page.body);
        for secret in ["widgets", "0f1e2d3c", "a-contributor", "table_is_cached"] {
            assert!(
                !page.body.contains(secret),
                "{what} reveals {secret}: {}",
                page.body
            );
        }
    }
    // A build that does not exist, with a valid signature for it: nothing.
    let ghost = pull_request_build("0f1e2d3c-0000-4000-8000-00000000dead");
    let page = get(&world, &world.link(&ghost).await).await;
    assert_eq!(page.status, 404);
    // Only GET and HEAD.
    let page = serve(&world.deps, "POST", &path, &query, now_s()).await;
    assert_eq!(page.status, 405);
    let head = serve(&world.deps, "HEAD", &path, &query, now_s()).await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
}

#[tokio::test]
async fn a_link_that_never_expires_opens_a_public_fork_page_only() {
    let world = PageWorld::start(BASE, &[("PUBLIC_FORK_PAGES", "true")]).await;
    let mut trusted = pull_request_build("0f1e2d3c-0000-4000-8000-000000000004");
    finish(&mut trusted, BuildStatus::Succeeded);
    world.put(&trusted).await;
    let mut fork = pull_request_build("0f1e2d3c-0000-4000-8000-000000000005");
    fork.trusted = false;
    fork.source.fork = true;
    finish(&mut fork, BuildStatus::Succeeded);
    world.put(&fork).await;

    let fork_link = world.link(&fork).await;
    assert!(fork_link.contains("expires=never"), "{fork_link}");
    let page = get(&world, &fork_link).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("x-robots-tag"), None);
    assert!(!page.body.contains("noindex"));
    // Its history link expires: it must not open trusted builds for ever.
    let history = href(&page.body, "Recent builds of octo-org/widgets").expect("history");
    assert!(!history.contains("never"), "{history}");

    let trusted_link = world.link(&trusted).await;
    assert!(!trusted_link.contains("never"));
    assert_eq!(
        get(&world, &trusted_link).await.header("x-robots-tag"),
        Some("noindex, nofollow")
    );
    // Signed for ever (say, before the setting changed): refused.
    let key = world.deps.keys.get().await.expect("key");
    let forever = link::url(
        BASE,
        &key,
        &Target::Build(trusted.build_id.clone()),
        Expiry::Never,
    );
    assert_eq!(get(&world, &forever).await.status, 410);
}

#[tokio::test]
async fn a_private_repository_s_page_shows_what_the_operator_chose() {
    let summary = PageWorld::start(BASE, &[("PRIVATE_REPOSITORY_PAGES", "summary")]).await;
    let mut record = pull_request_build("0f1e2d3c-0000-4000-8000-000000000006");
    record.source.repository.private = true;
    summary.put(&record).await;
    summary.append(&record, &failing_log(3)).await;
    finish(&mut record, BuildStatus::Failed);
    summary.put(&record).await;
    let link = summary.link(&record).await;
    assert!(!link.contains("#first-error"));
    let page = get(&summary, &link).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("failed</span> in BUILD"));
    for hidden in ["table_is_cached", "Cache the widget table", "faster"] {
        assert!(!page.body.contains(hidden), "{hidden}");
    }
    assert!(href(&page.body, "Raw text").is_none());
    let (path, query) = split(&link);
    let raw = serve(
        &summary.deps,
        "GET",
        &format!("{path}/raw"),
        &query,
        now_s(),
    )
    .await;
    assert_eq!(raw.status, 404);
    assert!(!raw.body.contains("table_is_cached"));

    let none = PageWorld::start(BASE, &[("PRIVATE_REPOSITORY_PAGES", "none")]).await;
    none.put(&record).await;
    let signed = none
        .links
        .build_link(&record.build_id, &record.source, true, true, now_s())
        .await
        .expect("key");
    assert_eq!(signed, None, "no page, no link");
    // A link this stack signed anyway (before the setting changed) opens
    // nothing: the policy, not the signature, refuses it.
    let key = none.links.keys.get_or_create().await.expect("a key");
    let signed = link::url(
        BASE,
        &key,
        &Target::Build(record.build_id.clone()),
        Expiry::At(now_s() + 60),
    );
    let page = get(&none, &signed).await;
    assert_eq!(page.status, 404, "{}", page.body);
    assert!(!page.body.contains("widgets"));
}

#[tokio::test]
async fn a_long_log_shows_its_latest_part_and_older_parts_on_demand() {
    let world = PageWorld::start(BASE, &[]).await;
    let mut record = pull_request_build("0f1e2d3c-0000-4000-8000-000000000007");
    let log = failing_log(4_500);
    world.append(&record, &log).await;
    finish(&mut record, BuildStatus::Failed);
    world.put(&record).await;
    let page = get(&world, &world.link(&record).await).await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    // The end is there, the start is not: the latest part first.
    assert!(body.contains("Phase complete: POST_BUILD"));
    assert!(!body.contains("rustup show"));
    assert!(body.contains("id=\"first-error\""));
    // Numbered from the end, as the start is not known here.
    assert!(body.contains("<span id=\"E1\">"));
    let mut older = href(body, "Older lines").expect("older lines");
    let mut seen = 0;
    loop {
        let part = get(&world, &older).await;
        assert_eq!(part.status, 200, "{}", part.body);
        seen += 1;
        match href(&part.body, "Older lines") {
            Some(next) => older = next,
            None => {
                // The start: numbered from 1.
                assert!(part.body.contains("rustup show"));
                assert!(part.body.contains("<span id=\"L1\">"));
                break;
            }
        }
        assert!(seen < 10, "the log's start is reached");
    }
    assert_eq!(seen, 2, "4,516 lines in parts of 2,000");
}

#[tokio::test]
async fn a_running_build_s_page_follows_its_new_lines_until_it_ends() {
    let world = PageWorld::start(BASE, &[]).await;
    let mut record = pull_request_build("0f1e2d3c-0000-4000-8000-000000000008");
    world.put(&record).await;
    // Before its first line: the page waits for the log.
    let page = get(&world, &world.link(&record).await).await;
    assert!(page.body.contains("running"));
    let mut follow = page
        .body
        .split("data-follow=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a running page follows its log")
        .replace("&amp;", "&");
    let log = failing_log(2);
    world.append(&record, &log[..5]).await;
    let mut got = Vec::new();
    for batch in [&log[5..8], &log[8..]] {
        let answer = get(&world, &follow).await;
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let json: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
        got.push(json["html"].as_str().unwrap_or_default().to_owned());
        assert_eq!(json["done"], false);
        follow = json["next"].as_str().expect("next").to_owned();
        world.append(&record, batch).await;
    }
    assert!(
        got[0].contains("<span id=\"L1\">") && got[0].contains("<span id=\"L5\">"),
        "{}",
        got[0]
    );
    assert!(
        got[1].contains("<span id=\"L6\">") && got[1].contains("Compiling"),
        "{}",
        got[1]
    );
    finish(&mut record, BuildStatus::Failed);
    world.put(&record).await;
    let answer = get(&world, &follow).await;
    let json: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
    assert!(
        json["html"]
            .as_str()
            .unwrap_or_default()
            .contains("table_is_cached")
    );
    // The last lines are in; the next poll says it ended.
    let next = json["next"].as_str().expect("next").to_owned();
    let json: serde_json::Value =
        serde_json::from_str(&get(&world, &next).await.body).expect("json");
    assert_eq!(json["done"], true, "{json}");
}

#[tokio::test]
async fn the_raw_log_comes_in_linked_parts_that_add_up_to_it() {
    let world = PageWorld::start(BASE, &[]).await;
    let mut record = pull_request_build("0f1e2d3c-0000-4000-8000-000000000009");
    // About 3 MB: two parts.
    let lines: Vec<String> = (0..30_000)
        .map(|i| format!("{i:08} {}", "x".repeat(90)))
        .collect();
    world.append(&record, &lines).await;
    finish(&mut record, BuildStatus::Succeeded);
    world.put(&record).await;
    let (path, query) = split(&world.link(&record).await);
    let mut url = format!("{path}/raw?{query}");
    let mut text = String::new();
    let mut parts = 0;
    loop {
        let part = get(&world, &url).await;
        assert_eq!(part.status, 200);
        assert!(
            part.body.len() < 4 * 1024 * 1024,
            "a part fits a Lambda response"
        );
        parts += 1;
        match part.header("link") {
            Some(link) => {
                url = link
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .expect("a URL")
                    .to_owned();
                let (body, trailer) = part
                    .body
                    .rsplit_once("[gantry: the log goes on")
                    .expect("a trailer");
                assert!(trailer.contains(&url));
                text.push_str(body);
            }
            None => {
                text.push_str(&part.body);
                break;
            }
        }
        assert!(parts < 5);
    }
    assert_eq!(parts, 2);
    assert_eq!(text, lines.join("\n") + "\n");
}

#[tokio::test]
async fn the_first_links_signed_at_once_agree_on_one_key_and_never_replace_it() {
    let local = gantry_e2e::LocalStack::start(&gantry_e2e::every_push_config("")).await;
    let ssm = aws_sdk_ssm::Client::new(&local.sdk);
    let parameter = gantry_local::stack::names::PAGE_KEY_PARAMETER;
    let signer = || gantry_aws::pages::PageKeys::new(ssm.clone(), parameter);
    let (a, b, c, d) = (signer(), signer(), signer(), signer());
    let (ka, kb, kc, kd) = tokio::join!(
        a.get_or_create(),
        b.get_or_create(),
        c.get_or_create(),
        d.get_or_create()
    );
    let first = ka.expect("a key");
    for other in [kb, kc, kd] {
        assert_eq!(
            *other.expect("a key"),
            *first,
            "every signer signs with the stored key"
        );
    }
    // A key in place (an operator's, or one rotated) is used, never replaced.
    ssm.put_parameter()
        .name(parameter)
        .value("ab".repeat(32))
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("rotate");
    let rotated = signer().get_or_create().await.expect("a key");
    assert_eq!(
        *rotated,
        gantry_core::page::link::PageKey::from_hex(&"ab".repeat(32)).expect("hex")
    );
    // The page reads, never creates: with no key, every link is refused.
    ssm.delete_parameter()
        .name(parameter)
        .send()
        .await
        .expect("delete");
    let page = gantry_local::stack::build_page_settings(BASE, &[])
        .expect("settings")
        .deps(&local.sdk);
    let record = pull_request_build("0f1e2d3c-0000-4000-8000-00000000000a");
    let signed = link::url(
        BASE,
        &first,
        &Target::Build(record.build_id.clone()),
        Expiry::At(now_s() + 60),
    );
    let (path, query) = split(&signed);
    assert_eq!(
        serve(&page, "GET", &path, &query, now_s()).await.status,
        403
    );
    assert!(
        ssm.get_parameter().name(parameter).send().await.is_err(),
        "the page made no key"
    );
}

/// Issue 17: a build's artifacts are listed on its page, each with a link
/// that downloads it (signed for an hour, no AWS account needed); a
/// record naming a place outside Gantry's bucket lists nothing.
#[tokio::test]
async fn a_builds_artifacts_are_listed_with_links_that_download_them() {
    let world = PageWorld::start(BASE, &[]).await;
    let uuid = "0f1e2d3c-0000-4000-8000-000000000017";
    let mut record = pull_request_build(uuid);
    finish(&mut record, BuildStatus::Succeeded);
    let prefix = format!(
        "{}/{uuid}/",
        gantry_core::records::artifacts_path("gantry-dev")
    );
    let s3 = aws_sdk_s3::Client::new(&world.local.sdk);
    for (key, body) in [
        ("dist/app.tgz", "the app's bytes"),
        ("report <1>.html", "<h1>coverage</h1>"),
        ("dist/", ""),
    ] {
        s3.put_object()
            .bucket(gantry_local::stack::names::BUCKET)
            .key(format!("{prefix}{key}"))
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .expect("upload");
    }
    if let Some(f) = record.finished.as_mut() {
        f.artifacts = gantry_core::records::ArtifactsPlace::from_location(&format!(
            "arn:aws:s3:::{}/{}",
            gantry_local::stack::names::BUCKET,
            prefix
        ));
    }
    world.put(&record).await;
    let page = get(&world, &world.link(&record).await).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(
        body.contains("<h2 id=\"artifacts\">Artifacts</h2>"),
        "{body}"
    );
    let app = href(body, "dist/app.tgz").expect("a link to the file");
    assert!(app.contains("X-Amz-Signature="), "{app}");
    assert!(
        app.contains("response-content-disposition=attachment"),
        "{app}"
    );
    assert!(href(body, "report &lt;1&gt;.html").is_some(), "{body}");
    assert!(!body.contains(">dist/</a>"), "a folder is no file: {body}");
    assert!(body.contains("15 B"), "{body}");
    let downloaded = reqwest::get(&app).await.expect("download");
    assert_eq!(downloaded.status(), 200);
    assert_eq!(
        downloaded.text().await.expect("the file"),
        "the app's bytes"
    );

    // A record that names someone else's bucket: nothing is listed.
    let mut elsewhere = pull_request_build("0f1e2d3c-0000-4000-8000-000000000018");
    finish(&mut elsewhere, BuildStatus::Succeeded);
    if let Some(f) = elsewhere.finished.as_mut() {
        f.artifacts = gantry_core::records::ArtifactsPlace::from_location(&format!(
            "arn:aws:s3:::another-bucket/{prefix}"
        ));
    }
    world.put(&elsewhere).await;
    let page = get(&world, &world.link(&elsewhere).await).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("id=\"artifacts\""), "{}", page.body);
}
