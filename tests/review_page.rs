//! `session review --format html`: one self-contained page, opened in headless chromium with
//! no network, where nothing the agent wrote runs as script or becomes markup.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{TestEnv, each_git, run, write_file};

/// Each hostile string marks `<body>` with its own name if it ever runs.
const NAME: &str = r#"<img src=x onerror="document.body.setAttribute('data-pwned','name')">.txt"#;
const SCRIPT_LINE: &str =
    "</script><script>document.body.setAttribute('data-pwned','content')</script>";
const IMG_LINE: &str = r#"<img src=x onerror="document.body.setAttribute('data-pwned','img')">"#;
const SUBJECT: &str =
    "add pages <script>document.body.setAttribute('data-pwned','subject')</script>";
const HOOK_SAYS: &str = "<script>document.body.setAttribute('data-pwned','hook')</script>";

/// A browser that can be run with no network: the command up to its arguments.
struct Browser {
    argv: Vec<String>,
    how: &'static str,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether `wrapper` really isolates the network: inside it, only loopback exists.
fn isolates(wrapper: &[&str]) -> bool {
    let Some((program, args)) = wrapper.split_first() else {
        return false;
    };
    let out = Command::new(program)
        .args(args)
        .args(["cat", "/proc/self/net/dev"])
        .stdin(Stdio::null())
        .output();
    let Ok(out) = out else { return false };
    let devices: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|d| d.trim().to_string()))
        .collect();
    out.status.success() && devices == ["lo"]
}

/// Chromium inside a network namespace (bwrap, else `unshare`); `None`, with the reason
/// printed, when this machine has no chromium or cannot make one. With CI=true it must.
fn offline_browser() -> Option<Browser> {
    let skip = |why: &str| {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must be able to open the review page: {why}"
        );
        eprintln!("skipping: {why}");
        None
    };
    let Some(chromium) = on_path("chromium").or_else(|| on_path("chromium-browser")) else {
        return skip("chromium is not installed");
    };
    let Some(&(how, wrapper)) = common::sandbox::NET_NAMESPACE_WRAPPERS
        .iter()
        .find(|(_, w)| isolates(w))
    else {
        return skip("neither bwrap nor unshare can make a network namespace here");
    };
    let mut argv: Vec<String> = wrapper.iter().map(|s| s.to_string()).collect();
    argv.push(chromium.display().to_string());
    argv.extend(
        [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
        ]
        .map(String::from),
    );
    Some(Browser { argv, how })
}

impl Browser {
    /// Runs the browser with `args`, its profile and home under `dir`, for at most two minutes.
    fn open(&self, dir: &Path, args: &[String]) -> Output {
        let profile = dir.join("chromium-profile");
        let mut child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .env_clear()
            .env("HOME", dir)
            .env("PATH", "/usr/bin:/bin")
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let deadline = Instant::now() + Duration::from_secs(120);
        while child.try_wait().expect("wait for chromium").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("chromium ({}) ran past two minutes", self.how);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().expect("chromium output")
    }

    /// The DOM of `page` after its scripts ran.
    fn dom(&self, dir: &Path, page: &Path) -> String {
        let out = self.open(dir, &["--dump-dom".into(), url(page)]);
        let dom = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && dom.contains("<body"),
            "chromium ({}) dumped no DOM: {}",
            self.how,
            String::from_utf8_lossy(&out.stderr)
        );
        dom
    }
}

fn url(page: &Path) -> String {
    format!("file://{}", page.display())
}

/// Text as chromium serialises it between tags.
fn as_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A name as git quotes it (the page shows names so): in double quotes when it has one.
fn quoted(name: &str) -> String {
    if name.contains('"') {
        format!("\"{}\"", name.replace('"', "\\\""))
    } else {
        name.to_string()
    }
}

fn story(changed: &[usize]) -> String {
    (1..=60)
        .map(|n| {
            if changed.contains(&n) {
                format!("agent line {n}\n")
            } else {
                format!("original line {n}\n")
            }
        })
        .collect()
}

/// Session `page`: a hostile name, hostile content, a hostile subject, a file changed in
/// three places, a binary file, a rename, and an uncommitted file review commits.
fn hostile_session(t: &TestEnv) {
    t.write("story.txt", &story(&[]));
    t.write("old-name.txt", "one\ntwo\nthree\nfour\nfive\nsix\n");
    t.git(&["add", "."]);
    t.git(&["commit", "-q", "-m", "base files"]);
    let wt = t.add("page");
    write_file(&wt.join(NAME), "hello from a hostile name\n");
    write_file(
        &wt.join("payload.html"),
        &format!("{SCRIPT_LINE}\n{IMG_LINE}\n"),
    );
    write_file(&wt.join("story.txt"), &story(&[3, 30, 55]));
    std::fs::write(
        wt.join("blob.bin"),
        [0u8, 1, 2, 0xff, 0, 0x89, b'P', b'N', b'G', 0],
    )
    .unwrap();
    t.git_in(&wt, &["mv", "old-name.txt", "new-name.txt"]);
    write_file(
        &wt.join("new-name.txt"),
        "one\ntwo\nthree\nfour\nfive\nsix\nseven\n",
    );
    t.git_in(&wt, &["add", "-A"]);
    t.git_in(&wt, &["commit", "-q", "-m", SUBJECT]);
    write_file(&wt.join("notes.md"), "left uncommitted\n");

    let hook = t.repo.join("scripts/review.sh");
    write_file(
        &hook,
        &format!("#!/bin/sh\ncat <<'EOF'\nchecked: {HOOK_SAYS}\nEOF\n"),
    );
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    t.codex(&["config", "set", "review.hook", "./scripts/review.sh"])
        .assert()
        .success();
}

/// The page fetches nothing: no `src=` or `href=` leaves the file, no stylesheet is loaded.
fn assert_self_contained(raw: &str) {
    for attr in ["src=", "href="] {
        for (at, _) in raw.match_indices(attr) {
            let value = raw[at + attr.len()..].trim_start_matches(['"', '\'']);
            for remote in ["http:", "https:", "//"] {
                assert!(!value.starts_with(remote), "{attr}{remote} in the page");
            }
        }
    }
    for fetch in ["<link", "@import", "url("] {
        assert!(!raw.contains(fetch), "{fetch} in the page");
    }
    assert_eq!(
        raw.matches("<script").count(),
        1,
        "only the page's own script"
    );
    assert!(!raw.contains("<img"), "the agent's tag arrived raw");
    assert!(
        raw.contains("data-copy=\"approve-cmd\" hidden>"),
        "no copy button without the script"
    );
    assert!(
        raw.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';")
    );
}

fn assert_png(path: &Path) {
    let png = std::fs::read(path).expect("a screenshot");
    assert!(png.len() > 24, "an empty screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    assert_eq!(width, 1280, "the window's width");
}

fn assert_dom(dom: &str, tip: &str) {
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page's own script ran"
    );
    assert!(
        dom.contains("data-copy=\"approve-cmd\">Copy</button>"),
        "the script showed the copy button"
    );
    assert!(!dom.contains("data-pwned="), "the agent's script ran");
    for name in [
        &quoted(NAME),
        "payload.html",
        "story.txt",
        "blob.bin",
        "notes.md",
    ] {
        assert!(dom.contains(&as_text(name)), "{name} is shown");
    }
    assert!(dom.contains("old-name.txt → </span><span class=\"new\">new-name.txt"));
    for changed in [
        "<tr class=\"del\"><td class=\"num\">30</td><td class=\"num\"></td><td class=\"code\">original line 30</td></tr>",
        "<tr class=\"add\"><td class=\"num\"></td><td class=\"num\">30</td><td class=\"code\">agent line 30</td></tr>",
        "<td class=\"num\">55</td><td class=\"code\">agent line 55</td>",
        "<td class=\"num\">3</td><td class=\"code\">agent line 3</td>",
    ] {
        assert!(dom.contains(changed), "{changed}");
    }
    assert!(
        dom.contains("table class=\"diff split\""),
        "the side-by-side view"
    );
    for text in [SCRIPT_LINE, IMG_LINE, SUBJECT, HOOK_SAYS] {
        assert!(dom.contains(&as_text(text)), "{text} is shown as text");
    }
    assert!(dom.contains("Binary file: its content is not shown."));
    assert!(dom.contains(&format!(
        "<code id=\"approve-cmd\">git codex session review page --approve --tip {tip}</code>"
    )));
}

#[test]
fn the_review_page_shows_everything_and_runs_nothing_the_agent_wrote() {
    let Some(browser) = offline_browser() else {
        return;
    };
    each_git(|t| {
        // The detector works: the same payloads, unescaped, do mark the body.
        let control = t.root().join("control.html");
        write_file(
            &control,
            &format!(
                "<!DOCTYPE html><body><p>{IMG_LINE}</p>{}",
                &SCRIPT_LINE[9..]
            ),
        );
        let dom = browser.dom(&t.root(), &control);
        assert!(
            dom.contains("data-pwned="),
            "the control page's payload ran: {dom}"
        );

        hostile_session(t);
        let (code, out, err) = run(t.codex(&[
            "session",
            "review",
            "page",
            "--format",
            "html",
            "-o",
            "page.html",
        ]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "", "with -o nothing goes to stdout");
        let page = t.repo.join("page.html");
        let raw = std::fs::read_to_string(&page).expect("page.html");
        assert_self_contained(&raw);

        let tip = t.git(&["rev-parse", "codex/page"]);
        let common = t.repo.join(t.git(&["rev-parse", "--git-common-dir"]));
        let saved = common.join(format!("codex/reviews/page/{tip}.html"));
        assert_eq!(
            std::fs::read_to_string(&saved).expect("the saved page"),
            raw
        );

        assert_dom(&browser.dom(&t.root(), &page), &tip);
        let png = t.root().join("page.png");
        let out = browser.open(
            &t.root(),
            &[
                format!("--screenshot={}", png.display()),
                "--window-size=1280,2000".into(),
                url(&page),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_png(&png);
        // To look at the page and its screenshot: REVIEW_PAGE_KEEP=<dir> keeps a copy.
        if let Some(keep) = std::env::var_os("REVIEW_PAGE_KEEP") {
            let _ = std::fs::copy(&page, Path::new(&keep).join("page.html"));
            let _ = std::fs::copy(&png, Path::new(&keep).join("page.png"));
        }
    });
}
