//! Signed approvals (SPEC §7a): with `review.require_signed`, `--approve` signs the tag with
//! git's own signing settings, and the gate — `session merge`, the client hooks and the
//! server's pre-receive — accepts an approval only when its SSH signature verifies against
//! `review.allowed_signers` for the tagger. Keys are made here by `ssh-keygen`.

mod common;

use std::path::{Path, PathBuf};

use common::{TestEnv, each_git, json, run, write_file};

/// A new ed25519 key without a passphrase; returns the private key's path.
fn keygen(dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("key dir");
    let key = dir.join(name);
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    key
}

fn public(key: &Path) -> String {
    std::fs::read_to_string(key.with_extension("pub")).expect("public key")
}

fn config(allowed: &Path, require: bool) -> String {
    format!(
        "[review]\nrequire_signed = {require}\nallowed_signers = \"{}\"\n",
        allowed.display()
    )
}

fn approval_state(t: &TestEnv, id: &str) -> serde_json::Value {
    let (code, out, err) = run(t.codex(&["session", "list", "--json"]));
    assert_eq!(code, 0, "{err}");
    json(&out)["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["id"] == id)
        .expect("session listed")["approval"]
        .clone()
}

/// Pushes session `id`'s tip straight onto the server's main, with its refs, skipping the
/// local hooks as an agent would; returns whether the server took it, and what it said.
fn push_onto_main(t: &TestEnv, id: &str) -> (bool, String) {
    let out = t.git_output(
        &t.repo,
        &[
            "push".to_string(),
            "--no-verify".to_string(),
            "origin".to_string(),
            format!("codex/{id}:main"),
            format!("codex/{id}"),
            format!("refs/codex/bases/{id}"),
            format!("refs/codex/approvals/{id}"),
        ],
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn only_approvals_signed_by_an_allowed_key_land_on_the_client_and_the_server() {
    each_git(|t| {
        let keys = t.root().join("keys");
        let approver = keygen(&keys, "approver");
        let stranger = keygen(&keys, "stranger");
        let allowed = keys.join("allowed_signers");
        std::fs::write(
            &allowed,
            format!("approver@example.com {}", public(&approver)),
        )
        .expect("allowed signers");
        // The person's signing settings are git's own.
        t.git(&["config", "user.name", "A Person"]);
        t.git(&["config", "user.email", "approver@example.com"]);
        t.git(&["config", "gpg.format", "ssh"]);
        t.git(&["config", "user.signingkey", approver.to_str().unwrap()]);

        let server = t.bare_clone("server.git");
        let (code, _, err) = run(t.codex_in(&server, &["hooks", "install", "--server"]));
        assert_eq!(code, 0, "{err}");
        write_file(&server.join("codex/config.toml"), &config(&allowed, true));
        t.git(&["remote", "add", "origin", server.to_str().unwrap()]);

        for id in ["good", "unsigned", "stranger", "forged"] {
            let wt = t.add(id);
            t.commit_in(&wt, &format!("{id}.txt"), "agent work\n");
        }

        // Unsigned: approved while signatures were not required.
        t.set_config(&config(&allowed, false));
        t.codex(&["session", "review", "unsigned", "--approve"])
            .assert()
            .success();
        t.set_config(&config(&allowed, true));

        // Good: signed with the allowed key.
        let (code, _, err) = run(t.codex(&["session", "review", "good", "--approve"]));
        assert_eq!(code, 0, "{err}");
        let tag = t.git(&["cat-file", "tag", "refs/codex/approvals/good"]);
        assert!(tag.contains("-----BEGIN SSH SIGNATURE-----"), "{tag}");
        assert!(
            tag.contains("tagger A Person <approver@example.com>"),
            "{tag}"
        );
        assert_eq!(approval_state(t, "good")["state"], "approved");
        assert_eq!(
            t.git(&["tag", "--list"]),
            "",
            "signing leaves no tag ref behind"
        );

        // Stranger: signed by a key the file does not list. Refused at once...
        t.git(&["config", "user.signingkey", stranger.to_str().unwrap()]);
        let (code, _, err) = run(t.codex(&["session", "review", "stranger", "--approve"]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("would not count"), "{err}");
        assert!(
            t.git_output(
                &t.repo,
                &[
                    "rev-parse",
                    "-q",
                    "--verify",
                    "refs/codex/approvals/stranger"
                ]
            )
            .stdout
            .is_empty(),
            "no approval was recorded"
        );
        // ...and a tag signed so and written by hand does not count either.
        t.git(&[
            "tag",
            "-s",
            "-m",
            "approve",
            "by-stranger",
            "codex/stranger",
        ]);
        let forged = t.git(&["rev-parse", "by-stranger"]);
        t.git(&["update-ref", "refs/codex/approvals/stranger", &forged]);
        t.git(&["tag", "-d", "by-stranger"]);
        t.git(&["config", "user.signingkey", approver.to_str().unwrap()]);

        // Forged: a valid signed approval, rewritten after signing to name a later commit.
        t.codex(&["session", "review", "forged", "--approve"])
            .assert()
            .success();
        let signed = t.git(&["cat-file", "tag", "refs/codex/approvals/forged"]) + "\n";
        t.commit_in(&t.worktree("forged"), "later.txt", "unreviewed\n");
        let approved_tip = t.git(&["rev-parse", "refs/codex/approvals/forged^{commit}"]);
        let new_tip = t.git(&["rev-parse", "codex/forged"]);
        let rewritten = signed.replace(&approved_tip, &new_tip);
        assert_ne!(rewritten, signed);
        let out = {
            use std::io::Write as _;
            let mut child = std::process::Command::new(&t.git)
                .env_clear()
                .envs(t.vars())
                .current_dir(&t.repo)
                .args(["mktag"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("mktag");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(rewritten.as_bytes())
                .expect("write");
            child.wait_with_output().expect("mktag output")
        };
        assert!(out.status.success());
        let rewritten_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        t.git(&["update-ref", "refs/codex/approvals/forged", &rewritten_id]);

        for (id, why) in [
            ("unsigned", "not signed"),
            ("stranger", "does not verify"),
            ("forged", "does not verify"),
        ] {
            let state = approval_state(t, id);
            assert_eq!(state["state"], "unverified-approval", "{id}: {state}");
            assert!(
                state["reason"].as_str().unwrap().contains(why),
                "{id}: {state}"
            );
            // The client: verify, session merge, and git's own merge through the hooks.
            let (code, _, err) = run(t.codex(&["verify", &format!("main..codex/{id}")]));
            assert_eq!(code, 3, "{id}: verify: {err}");
            let main_before = t.git(&["rev-parse", "main"]);
            let (code, _, err) = run(t.codex(&["session", "merge", id]));
            assert_eq!(code, 3, "{id}: {err}");
            assert!(
                err.contains("does not count") && err.contains(why),
                "{id}: {err}"
            );
            let out = t.git_output(
                &t.repo,
                &["merge", "-q", "--ff-only", &format!("codex/{id}")],
            );
            assert!(!out.status.success(), "{id}: the hooks let it through");
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(
                said.contains("its approval does not count") && said.contains(why),
                "{id}: {said}"
            );
            assert_eq!(t.git(&["rev-parse", "main"]), main_before, "{id}");
            // git wrote the files before the hook refused the ref: put them back.
            t.git(&["reset", "-q", "--hard"]);
            // The server.
            let (taken, err) = push_onto_main(t, id);
            assert!(!taken, "{id}: the server took it");
            assert!(err.contains(&format!("session '{id}'")), "{id}: {err}");
            assert!(
                err.contains("its approval does not count") && err.contains(why),
                "{id}: {err}"
            );
        }
        assert_eq!(
            t.git_in(&server, &["rev-parse", "main"]),
            t.git(&["rev-parse", "main"]),
            "the server's main never moved"
        );

        // The good one lands, here and there.
        let (code, _, err) = run(t.codex(&["verify", "main..codex/good"]));
        assert_eq!(code, 0, "verify: {err}");
        let (code, _, err) = run(t.codex(&["session", "merge", "good"]));
        assert_eq!(code, 0, "{err}");
        let (taken, err) = push_onto_main(t, "good");
        assert!(taken, "{err}");
        let out = t.git_output(&t.repo, &["push", "origin", "main"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            t.git_in(&server, &["rev-parse", "main"]),
            t.git(&["rev-parse", "main"])
        );
    });
}
