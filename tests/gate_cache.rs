//! The gate's cache (`<state>/gate-cache`, issue 18) and the hooks' memo of what they read
//! (`<state>/read-memo`) are caches and nothing more: the gate refuses and allows exactly the
//! same landings with them as they were left, removed, corrupted (garbage, cut short, one byte
//! changed) or put back from when a session was at an older tip.
//! Real hooks, real git, on both gits; locally and on a server's pre-receive.

mod common;

use std::path::{Path, PathBuf};

use common::{StdinFile as _, TestEnv, each_git, run, write_file};

/// Lines long enough to count as a change of their own (never a "short" hunk).
fn lines(tag: &str) -> String {
    (1..=4)
        .map(|n| format!("{tag} feature line {n} with enough words to be a change\n"))
        .collect()
}

/// What is done to the cache before each landing.
#[derive(Clone, Copy, Debug)]
enum Cache {
    AsLeft,
    Removed,
    Garbage,
    CutShort,
    ByteChanged,
    OlderTip,
}

const CONDITIONS: [Cache; 6] = [
    Cache::AsLeft,
    Cache::Removed,
    Cache::Garbage,
    Cache::CutShort,
    Cache::ByteChanged,
    Cache::OlderTip,
];

fn apply(cache: Cache, file: &Path, older: &[u8]) {
    let now = std::fs::read(file).unwrap_or_default();
    match cache {
        Cache::AsLeft => {}
        Cache::Removed => {
            let _ = std::fs::remove_file(file);
        }
        Cache::Garbage => std::fs::write(file, b"\0\xffnot a cache\n{}").expect("write"),
        Cache::CutShort => std::fs::write(file, &now[..now.len() / 2]).expect("write"),
        Cache::ByteChanged => {
            let mut changed = now.clone();
            // A hex digit of a path or commit in the body, so the text still parses.
            if let Some(at) = changed.iter().rposition(|b| b.is_ascii_hexdigit()) {
                changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
            }
            std::fs::write(file, changed).expect("write");
        }
        Cache::OlderTip => std::fs::write(file, older).expect("write"),
    }
}

/// A landing a person (or an agent outside its sandbox) tries on main.
const LANDINGS: [&str; 7] = [
    "own-commit",
    "own-edit-of-a-session-file",
    "cherry-pick",
    "retyped-copy",
    "merge-unapproved",
    "squash-unapproved",
    "merge-approved",
];

fn ok(t: &TestEnv, args: &[&str]) -> bool {
    t.git_output(&t.repo, args).status.success()
}

fn land(t: &TestEnv, name: &str) -> bool {
    match name {
        "own-commit" => {
            t.write("notes.txt", &lines("a person's notes"));
            ok(t, &["add", "notes.txt"]) && ok(t, &["commit", "-q", "-m", "notes"])
        }
        "own-edit-of-a-session-file" => {
            t.write("shared.txt", &lines("the person's own"));
            ok(t, &["commit", "-q", "-am", "own edit"])
        }
        "cherry-pick" => ok(t, &["cherry-pick", "codex/a"]),
        "retyped-copy" => {
            t.write("shared.txt", &format!("shared\n{}", lines("alpha later")));
            ok(t, &["commit", "-q", "-am", "typed it myself"])
        }
        "merge-unapproved" => ok(t, &["merge", "-q", "--no-edit", "codex/b"]),
        "squash-unapproved" => {
            ok(t, &["merge", "-q", "--squash", "codex/b"])
                && ok(t, &["commit", "-q", "-m", "squashed"])
        }
        "merge-approved" => ok(t, &["merge", "-q", "--no-edit", "codex/c"]),
        other => panic!("no landing {other}"),
    }
}

/// Puts main (and the worktree) back to `start` after a landing, whatever it left.
fn undo(t: &TestEnv, start: &str) {
    for args in [
        &["merge", "--abort"][..],
        &["cherry-pick", "--abort"],
        &["reset", "-q", "--hard", start],
    ] {
        let _ = t.git_output(&t.repo, args);
    }
    assert_eq!(t.git(&["rev-parse", "main"]), start);
    let _ = std::fs::remove_file(t.repo.join("notes.txt"));
}

/// Sessions a (two commits: the second adds lines to shared.txt, which main has too),
/// b (unapproved) and c (approved). Returns the files the hooks keep (`gate-cache`,
/// `read-memo`), each with its bytes from when a was at its first commit.
fn setup(t: &TestEnv) -> [(PathBuf, Vec<u8>); 2] {
    t.commit_in(&t.repo, "shared.txt", "shared\n");
    let a = t.add("a");
    t.commit_in(&a, "a.txt", &lines("alpha"));
    let b = t.add("b");
    t.commit_in(&b, "b.txt", &lines("beta"));
    let c = t.add("c");
    t.commit_in(&c, "c.txt", &lines("gamma"));
    run(t.codex(&["session", "review", "c", "--approve"]));
    // A landing makes the cache: a is at its first commit.
    t.commit_in(&t.repo, "first.txt", "first\n");
    let file = t.state_dir().join("gate-cache");
    let older = std::fs::read(&file).expect("the gate keeps a cache");
    assert!(
        String::from_utf8_lossy(&older).contains("\"a\""),
        "the cache holds session a"
    );
    let memo = t.state_dir().join("read-memo");
    let older_memo = std::fs::read(&memo).expect("the hook keeps what it read");
    t.commit_in(
        &a,
        "shared.txt",
        &format!("shared\n{}", lines("alpha later")),
    );
    [(file, older), (memo, older_memo)]
}

#[test]
fn the_gate_decides_the_same_with_its_cache_removed_corrupted_or_from_an_older_tip() {
    each_git(|t| {
        let kept = setup(t);
        let start = t.git(&["rev-parse", "main"]);
        let expected = [true, true, false, false, false, false, true];
        for cache in CONDITIONS {
            let mut got = Vec::new();
            for landing in LANDINGS {
                // The same is done to the memo of what the hooks read.
                for (file, older) in &kept {
                    apply(cache, file, older);
                }
                got.push(land(t, landing));
                undo(t, &start);
            }
            let table: Vec<String> = LANDINGS
                .iter()
                .zip(&got)
                .map(|(l, g)| format!("{l}={g}"))
                .collect();
            assert_eq!(got, expected, "cache {cache:?}: {}", table.join(" "));
        }
        // The cache is in use: made again after being removed, and whole.
        let file = &kept[0].0;
        let _ = std::fs::remove_file(file);
        assert!(land(t, "own-commit"));
        let made = std::fs::read(file).expect("made again");
        assert!(made.starts_with(b"git-codex gate cache"));
    });
}

/// Pushes `refspecs` to the server skipping local hooks; whether it was accepted.
fn push(t: &TestEnv, refspecs: &[&str]) -> bool {
    let mut args = vec!["push", "--no-verify", "-q", "origin"];
    args.extend_from_slice(refspecs);
    t.git_output(&t.repo, &args).status.success()
}

#[test]
fn the_servers_gate_decides_the_same_with_its_cache_removed_corrupted_or_from_an_older_tip() {
    each_git(|t| {
        let server = t.bare_clone("server.git");
        let (code, _, err) = run(t.codex_in(&server, &["hooks", "install", "--server"]));
        assert_eq!(code, 0, "{err}");
        write_file(&server.join("codex/config.toml"), "");
        t.git(&["remote", "add", "origin", server.to_str().expect("utf-8")]);
        t.commit_in(&t.repo, "shared.txt", "shared\n");
        assert!(push(t, &["main"]));
        let a = t.add("a");
        t.commit_in(&a, "a.txt", &lines("alpha"));
        assert!(push(t, &["codex/a", "refs/codex/bases/a"]));
        // A push to main makes the server's cache: a is at its first commit.
        t.commit_in(&t.repo, "first.txt", "first\n");
        assert!(push(t, &["main"]));
        let file = server.join("codex/gate-cache");
        let older = std::fs::read(&file).expect("the server's gate keeps a cache");
        t.commit_in(
            &a,
            "shared.txt",
            &format!("shared\n{}", lines("alpha later")),
        );
        assert!(push(t, &["codex/a"]));
        let mut start = t.git(&["rev-parse", "main"]);
        for cache in CONDITIONS {
            // A copy of a's newest commit is refused; a person's own commit is not.
            apply(cache, &file, &older);
            assert!(ok(
                t,
                &["-c", "core.hooksPath=/dev/null", "cherry-pick", "codex/a"]
            ));
            assert!(!push(t, &["main"]), "cache {cache:?}: a copy was accepted");
            undo(t, &start);
            apply(cache, &file, &older);
            t.commit_in(&t.repo, &format!("notes-{cache:?}.txt"), &lines("notes"));
            assert!(
                push(t, &["main"]),
                "cache {cache:?}: a person's commit refused"
            );
            start = t.git(&["rev-parse", "main"]);
        }
    });
}

/// Tries `landing` on main twice from where main is: with the cache as it was left, then
/// with it removed; the two verdicts must be the same. Returns it.
fn same_verdict(t: &TestEnv, what: &str, landing: impl Fn(&TestEnv) -> bool) -> bool {
    let start = t.git(&["rev-parse", "main"]);
    let file = t.state_dir().join("gate-cache");
    assert!(file.exists(), "{what}: a cache to try");
    let with_cache = landing(t);
    undo(t, &start);
    let _ = std::fs::remove_file(&file);
    let without = landing(t);
    undo(t, &start);
    assert_eq!(with_cache, without, "{what}: the cache changed the verdict");
    with_cache
}

fn rm_and_commit(t: &TestEnv, file: &str) -> bool {
    ok(t, &["rm", "-q", file]) && ok(t, &["commit", "-q", "-m", &format!("rm {file}")])
}

#[test]
fn a_branch_put_back_at_its_ledger_or_swapped_with_another_of_the_session_is_seen_anew() {
    each_git(|t| {
        t.write("f", &lines("the person's file f"));
        t.git(&["add", "f"]);
        t.git(&["commit", "-q", "-m", "f"]);
        // The branch gone, only the ledger left; the cache made; the branch made again at
        // the ledger's head.
        let wt = t.add("s");
        t.commit_in(&wt, "g.txt", &lines("agent"));
        run(t.codex(&["session", "remove", "s"]));
        let _ = t.git_output(&t.repo, &["branch", "-D", "codex/s"]);
        t.commit_in(&t.repo, "notes.txt", "notes\n");
        t.git(&["branch", "codex/s", "refs/codex/ledger/s"]);
        same_verdict(t, "branch at the ledger's head", |t| rm_and_commit(t, "f"));
    });
    each_git(|t| {
        t.write("f", &lines("the person's file f"));
        t.git(&["add", "f"]);
        t.git(&["commit", "-q", "-m", "M0"]);
        let m0 = t.git(&["rev-parse", "HEAD"]);
        t.write("g", &lines("the person's file g"));
        t.git(&["add", "g"]);
        t.git(&["commit", "-q", "-m", "M1"]);
        let wt = t.add("s");
        write_file(
            &wt.join("f"),
            &format!("{}agent change\n", lines("the person's file f")),
        );
        t.git_in(&wt, &["commit", "-q", "-am", "A"]);
        let a = t.git(&["rev-parse", "codex/s"]);
        run(t.codex(&["config", "set", "session.branch_prefix", "agent/"]));
        let tree = t.git(&["rev-parse", &format!("{m0}^{{tree}}")]);
        let b = t.git(&["commit-tree", &tree, "-p", &m0, "-m", "B"]);
        t.git(&["branch", "agent/s", &b]);
        t.commit_in(&t.repo, "notes.txt", "notes\n");
        // The record's branch and the prefix's swap tips: the same tips, another branch.
        t.git(&["update-ref", "refs/heads/codex/s", &b]);
        t.git(&["branch", "-f", "agent/s", &a]);
        same_verdict(t, "branches swapped", |t| rm_and_commit(t, "g"));
    });
}

/// A commit on `wt`'s HEAD whose root tree is written byte for byte from `entries` (mode,
/// name, object id), as a hand-made tree git accepts with `hash-object --literally` but never
/// writes itself (a name twice, a mode git does not use).
fn commit_literal_tree(t: &TestEnv, wt: &Path, entries: &[(&str, &str, &str)]) -> String {
    let mut tree = Vec::new();
    for (mode, name, id) in entries {
        tree.extend(format!("{mode} {name}\0").as_bytes());
        tree.extend(
            (0..id.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&id[i..i + 2], 16).expect("hex")),
        );
    }
    let raw = t.root().join("tree.bin");
    std::fs::write(&raw, &tree).expect("tree");
    let raw = raw.to_str().expect("utf-8");
    let tree = t.git_in(wt, &["hash-object", "-t", "tree", "-w", "--literally", raw]);
    t.git_in(
        wt,
        &["commit-tree", &tree, "-p", "HEAD", "-m", "agent feature"],
    )
}

#[test]
fn a_tree_that_lists_a_name_twice_hides_nothing_from_the_gate() {
    each_git(|t| {
        t.write("a", &lines("the person's file a"));
        t.git(&["add", "a"]);
        t.git(&["commit", "-q", "-m", "a"]);
        let wt = t.add("s");
        // The agent writes a tree listing "a" twice, its new content first: git reads the
        // change to a, a comparison by name would not.
        let old = t.git_in(&wt, &["rev-parse", "HEAD:a"]);
        let added =
            "agent secret feature line with many words in it\nsecond agent line with more words\n";
        write_file(
            &wt.join("a"),
            &format!("{}{added}", lines("the person's file a")),
        );
        let new = t.git_in(&wt, &["hash-object", "-w", "a"]);
        let commit = commit_literal_tree(t, &wt, &[("100644", "a", &new), ("100644", "a", &old)]);
        t.git_in(&wt, &["reset", "-q", "--hard", &commit]);
        t.commit_in(&t.repo, "notes.txt", "notes\n");
        // A person retypes the agent's lines into a on main.
        let retype = |t: &TestEnv| {
            t.write("a", &format!("{}{added}", lines("the person's file a")));
            ok(t, &["commit", "-q", "-am", "retyped"])
        };
        assert!(
            !same_verdict(t, "a tree with a name twice", retype),
            "the copy is refused"
        );
    });
}

#[test]
fn a_tree_entry_git_reads_as_a_gitlink_neither_blocks_main_nor_hides_a_change() {
    each_git(|t| {
        t.write("dir/old.txt", "config_value = load_configuration(path)\n");
        t.git(&["add", "dir/old.txt"]);
        t.git(&["commit", "-q", "-m", "dir"]);
        let wt = t.add("s");
        // The agent writes a root tree whose "dir" has mode 140000: git reads it as a gitlink
        // (the session deletes dir/old.txt), a reading by gix's modes as a directory.
        let readme = t.git_in(&wt, &["rev-parse", "HEAD:README.md"]);
        let dir = t.git_in(&wt, &["rev-parse", "HEAD:dir"]);
        let odd = [
            ("100644", "README.md", readme.as_str()),
            ("140000", "dir", &dir),
        ];
        let commit = commit_literal_tree(t, &wt, &odd);
        t.git_in(&wt, &["reset", "-q", "--soft", &commit]);
        // Another session's such entry names a blob: nothing to read as a directory.
        let other = t.add("b");
        let blob = t.git_in(&other, &["rev-parse", "HEAD:dir/old.txt"]);
        let odd = [
            ("100644", "README.md", readme.as_str()),
            ("140000", "dir", &blob),
        ];
        let commit = commit_literal_tree(t, &other, &odd);
        t.git_in(&other, &["reset", "-q", "--soft", &commit]);
        // A person's own commit on main lands (nothing of either session's in it).
        t.write("notes.txt", "notes\n");
        assert!(ok(t, &["add", "notes.txt"]));
        let out = t.git_output(&t.repo, &["commit", "-q", "-m", "notes"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Deleting the file as the session's tree does is a copy of its change.
        let delete = |t: &TestEnv| rm_and_commit(t, "dir/old.txt");
        assert!(
            !same_verdict(t, "a 140000 entry", delete),
            "the copy is refused"
        );
    });
}

/// A landing reads every session's branch afresh, however its file changed. A branch rewritten
/// in place, same size, its modification time put back (what anyone running as the user can
/// do, hooks or no hooks), keeps the stat data it had but for its change time; written through
/// a shared mapping it keeps even that. Nothing the hooks keep (`<state>/read-memo`,
/// `gate-cache`) may stand for the branch as it was. Here the session was approved at A, which
/// landed, and its branch is moved to an unapproved B (a file of its own) that way; a
/// cherry-pick of B must be refused, with what the hooks keep as left and removed.
#[test]
fn a_branch_rewritten_in_place_with_its_old_times_is_read_anew() {
    each_git(|t| branch_moved_behind_the_hooks(t, Rewrite::InPlace));
}

/// As above, the branch written through a shared mapping of its file: the kernel leaves its
/// stat data as it was, change time included, while the page stays dirty.
#[test]
fn a_branch_written_through_a_shared_mapping_is_read_anew() {
    each_git(|t| branch_moved_behind_the_hooks(t, Rewrite::Mapped));
}

#[derive(Clone, Copy, PartialEq)]
enum Rewrite {
    InPlace,
    Mapped,
}

/// A shared, writable mapping of a 41-byte loose ref.
struct Mapping(*mut u8);

impl Mapping {
    fn of(path: &Path) -> Mapping {
        use std::os::fd::AsRawFd as _;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("open the branch");
        // SAFETY: a fresh shared mapping of 41 bytes of an open file, checked below.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                41,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(at, libc::MAP_FAILED, "map the branch");
        Mapping(at.cast())
    }

    fn write(&self, text: &str) {
        assert_eq!(text.len(), 41);
        // SAFETY: the mapping is 41 bytes long and lives as long as `self`.
        unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), self.0, 41) };
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping `of` made.
        unsafe { libc::munmap(self.0.cast(), 41) };
    }
}

fn branch_moved_behind_the_hooks(t: &TestEnv, how: Rewrite) {
    t.commit_in(&t.repo, "shared.txt", "shared\n");
    let s = t.add("s");
    t.commit_in(&s, "s.txt", &lines("sigma"));
    run(t.codex(&["session", "review", "s", "--approve"]));
    // A lands: what the branch's old tip reaches is on main, so a landing that brings
    // nothing of A's and touches none of its files does not concern the session as it
    // was (a stale read of the branch would let B's change through).
    assert!(ok(t, &["merge", "-q", "--no-ff", "--no-edit", "codex/s"]));
    let branch = t.repo.join(".git/refs/heads/codex/s");
    let before = std::fs::metadata(&branch).expect("a loose branch");
    let a = t.git(&["rev-parse", "codex/s"]);
    // Written through the mapping now, the page stays dirty: a later write through it
    // changes no time of the file.
    let mapping = (how == Rewrite::Mapped).then(|| {
        let mapping = Mapping::of(&branch);
        mapping.write(&format!("{a}\n"));
        mapping
    });
    // Left alone a while (a memo that trusted stat data would trust it now).
    std::thread::sleep(std::time::Duration::from_millis(2200));
    t.commit_in(&t.repo, "first.txt", "first\n");
    let memo = t.state_dir().join("read-memo");
    let kept = std::fs::read(&memo).expect("the hook keeps what it read");
    assert!(
        kept.windows(b"codex/s".len()).any(|w| w == b"codex/s"),
        "the memo holds session s"
    );
    // B: a commit on A (a file of its own), made without moving any ref.
    write_file(&s.join("t.txt"), &lines("tau, unapproved"));
    t.git_in(&s, &["add", "t.txt"]);
    let tree = t.git_in(&s, &["write-tree"]);
    let b = t.git_in(&s, &["commit-tree", &tree, "-p", &a, "-m", "unapproved"]);
    match &mapping {
        Some(mapping) => mapping.write(&format!("{b}\n")),
        None => {
            use std::io::Write as _;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(&branch)
                .expect("open the branch");
            file.write_all(format!("{b}\n").as_bytes()).expect("write");
            filetime::set_file_mtime(
                &branch,
                filetime::FileTime::from_last_modification_time(&before),
            )
            .expect("put the time back");
        }
    }
    assert_eq!(t.git(&["rev-parse", "codex/s"]), b);
    let start = t.git(&["rev-parse", "main"]);
    for memo_state in ["as left", "removed"] {
        if memo_state == "removed" {
            let _ = std::fs::remove_file(&memo);
            let _ = std::fs::remove_file(t.state_dir().join("gate-cache"));
        }
        // A copy of B's change, by B's id: only the branch tells the gate it is the
        // session's (the reference-transaction hook decides, which keeps the memo).
        let out = t.git_output(&t.repo, &["cherry-pick", &b]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("session 's'"),
            "memo {memo_state}: a copy of unapproved {b} must be refused: {stderr}"
        );
        undo(t, &start);
    }
}

/// A person who keeps the sessions dir elsewhere (a link at `.git/codex/sessions`) still has
/// their sessions listed, and commits on main, as before the hooks read records themselves.
#[test]
fn a_sessions_dir_that_is_a_link_is_read_through() {
    each_git(|t| {
        let s = t.add("s");
        t.commit_in(&s, "s.txt", &lines("sigma"));
        let dir = t.state_dir().join("sessions");
        let elsewhere = t.root().join("sessions-elsewhere");
        std::fs::rename(&dir, &elsewhere).expect("move the sessions dir");
        std::os::unix::fs::symlink(&elsewhere, &dir).expect("link it");
        let (code, listed, _) = run(t.codex(&["session", "list", "--json"]));
        assert_eq!(code, 0);
        assert!(listed.contains("\"s\""), "session s is listed: {listed}");
        t.commit_in(&t.repo, "notes.txt", "a person's notes\n");
        assert!(
            !ok(t, &["cherry-pick", "codex/s"]),
            "the gate still knows session s"
        );
    });
}

/// A record git-codex cannot read (cut short by a crash, or another session's bytes under its
/// own name) leaves the other sessions as they were: the hooks, which read records in brief,
/// read them whole then, as every command does. Here only its record says `codex/s` is session
/// s's branch (the prefix changed since), so a hook that dropped the readable records with the
/// broken one would record B, the agent's next commit, nowhere, and let a copy of it land.
#[test]
fn a_broken_record_leaves_the_other_sessions_gated() {
    each_git(|t| {
        let s = t.add("s");
        t.commit_in(&s, "s.txt", &lines("sigma"));
        run(t.codex(&["config", "set", "session.branch_prefix", "elsewhere/"]));
        let sessions = t.state_dir().join("sessions");
        let whole = std::fs::read(sessions.join("s.json")).expect("record of s");
        for (n, broken) in [&b"{\"schema\": 1, \"id\": \"x\""[..], &whole]
            .into_iter()
            .enumerate()
        {
            std::fs::write(sessions.join("x.json"), broken).expect("write");
            // A landing refreshes what the hooks keep, with the broken record there.
            t.commit_in(&t.repo, &format!("notes{n}.txt"), "a person's notes\n");
            let landed = t.git(&["rev-parse", "main"]);
            t.commit_in(&s, &format!("t{n}.txt"), &lines(&format!("tau {n}")));
            let b = t.git_in(&s, &["rev-parse", "HEAD"]);
            let out = t.git_output(&t.repo, &["cherry-pick", &b]);
            assert!(
                !out.status.success()
                    && String::from_utf8_lossy(&out.stderr).contains("session 's'"),
                "a copy of unapproved {b} must be refused: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            undo(t, &landed);
            let (code, listed, _) = run(t.codex(&["session", "list", "--json"]));
            assert_eq!(code, 0);
            assert!(listed.contains("\"broken\""), "{listed}");
        }
    });
}

/// One transaction puts a commit nobody approved on a session's branch and on main: the
/// session's ledger records it as the transaction is prepared, and the gate, whose branches
/// and ledgers are listed while the records are read, must list them again after that.
#[test]
fn a_commit_put_on_a_sessions_branch_and_main_in_one_transaction_is_refused() {
    each_git(|t| {
        let other = t.add("other");
        t.commit_in(&other, "other.txt", "other\n");
        // Warm the caches with a landing on main.
        t.commit_in(&t.repo, "warm.txt", "warm\n");
        let wt = t.add("s");
        // The agent's work, as a commit no ref holds yet.
        write_file(&wt.join("feature.txt"), &lines("agent"));
        t.git_in(&wt, &["add", "feature.txt"]);
        let tree = t.git_in(&wt, &["write-tree"]);
        let commit = t.git_in(
            &wt,
            &["commit-tree", &tree, "-p", "HEAD", "-m", "agent work"],
        );
        let main = t.git(&["rev-parse", "main"]);
        let branch = t.git(&["rev-parse", "codex/s"]);
        assert_eq!(main, branch, "the session starts at main");
        let input = format!(
            "start\nupdate refs/heads/codex/s {commit} {branch}\nupdate refs/heads/main {commit} {main}\nprepare\ncommit\n"
        );
        let out = std::process::Command::new(&t.git)
            .env_clear()
            .envs(t.vars())
            .current_dir(&t.repo)
            .args(["update-ref", "--stdin"])
            .stdin_file(&input);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "refused: {err}");
        assert_eq!(t.git(&["rev-parse", "main"]), main, "{err}");
        assert_eq!(t.git(&["rev-parse", "codex/s"]), branch);
    });
}
