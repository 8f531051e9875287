//! A checkout writes its last files in the same tick of the filesystem's clock as the index,
//! and those entries stay racily clean (every look reads their files again) until the index
//! is written in a later tick. `session add` writes it back once that tick is past, so the
//! first list of a new session reads no file; and `session list` on a racily clean index
//! (a checkout in the session, an index put back) writes the refreshed index back, as `git
//! status` does: the first list pays and the next ones do not. Never while another process
//! holds `index.lock`, never while the session's agent runs, and never over an index changed
//! meanwhile. Real git, both gits.

mod common;

use std::path::{Path, PathBuf};

use common::{TestEnv, each_git, json, run};

fn index_of(t: &TestEnv, wt: &Path) -> PathBuf {
    PathBuf::from(t.git_in(
        wt,
        &["rev-parse", "--path-format=absolute", "--git-path", "index"],
    ))
}

fn list(t: &TestEnv) -> serde_json::Value {
    let (code, out, err) = run(t.codex(&["session", "list", "--json"]));
    assert_eq!(code, 0, "{err}");
    json(&out)
}

fn dirty(listing: &serde_json::Value, id: &str) -> bool {
    listing["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["id"] == id)
        .expect("listed")["dirty"]
        .as_bool()
        .expect("a dirty flag")
}

/// Whether git (`ls-files --debug`) sees every entry with the stat data of its file and an
/// index written after the files: no entry left for the next status to read again.
fn refreshed(t: &TestEnv, wt: &Path) -> bool {
    let index = index_of(t, wt);
    let written = std::fs::metadata(&index)
        .expect("index")
        .modified()
        .expect("mtime");
    let files = t.git_in(wt, &["ls-files"]);
    files.lines().all(|f| {
        let meta = std::fs::symlink_metadata(wt.join(f)).expect("file");
        meta.modified().expect("mtime") < written
    }) && !t
        .git_in(wt, &["ls-files", "--debug"])
        .lines()
        .any(|l| l.trim() == "size: 0\tflags: 0")
}

/// The index as written: its bytes and its time (a rewrite of the same entries changes only
/// the time).
fn written(index: &Path) -> (Vec<u8>, std::time::SystemTime) {
    let bytes = std::fs::read(index).expect("index");
    let time = std::fs::metadata(index)
        .expect("index")
        .modified()
        .expect("mtime");
    (bytes, time)
}

/// Gives the index the time of the oldest of its files, as if git had written them all and
/// the index in one tick: every entry is racily clean.
fn make_racy(t: &TestEnv, wt: &Path) {
    let oldest = t
        .git_in(wt, &["ls-files"])
        .lines()
        .map(|f| {
            std::fs::symlink_metadata(wt.join(f))
                .expect("file")
                .modified()
                .expect("mtime")
        })
        .min()
        .expect("files");
    std::fs::File::options()
        .write(true)
        .open(index_of(t, wt))
        .expect("index")
        .set_modified(oldest)
        .expect("set the index's time");
    assert!(!refreshed(t, wt));
}

#[test]
fn a_session_just_added_has_no_entry_a_look_must_read_again() {
    each_git(|t| {
        // Enough files that the checkout's last ones share the index's tick.
        for n in 0..300 {
            t.write(&format!("src/f{n}.txt"), &format!("file {n}\n"));
        }
        t.git(&["add", "-A"]);
        t.git(&["commit", "-q", "-m", "files"]);
        for id in ["a", "b", "c"] {
            let wt = t.add(id);
            assert!(
                refreshed(t, &wt),
                "session {id}: the index is past its files"
            );
            let index = written(&index_of(t, &wt));
            // So the list has nothing to read or write, and git sees what it checked out.
            assert!(!dirty(&list(t), id));
            assert!(
                written(&index_of(t, &wt)) == index,
                "the list wrote nothing"
            );
            assert_eq!(t.git_in(&wt, &["status", "--porcelain"]), "");
        }
    });
}

#[test]
fn the_first_list_writes_the_refreshed_index_back_and_the_next_finds_it() {
    each_git(|t| {
        for n in 0..30 {
            t.write(&format!("src/f{n}.txt"), &format!("file {n}\n"));
        }
        t.git(&["add", "-A"]);
        t.git(&["commit", "-q", "-m", "files"]);
        let wt = t.add("s");
        let index = index_of(t, &wt);
        make_racy(t, &wt);
        let before = written(&index);
        assert!(!dirty(&list(t), "s"));
        let after = written(&index);
        assert!(before != after, "the refreshed index was written back");
        assert!(refreshed(t, &wt), "every entry has its file's stat data");
        // What git sees is unchanged: clean, the same entries, nothing for it to write.
        assert_eq!(t.git_in(&wt, &["status", "--porcelain"]), "");
        assert_eq!(
            t.git_in(&wt, &["ls-files", "-s"]),
            t.git_in(
                &t.repo,
                &[
                    "ls-tree",
                    "-r",
                    "--format=%(objectmode) %(objectname) 0\t%(path)",
                    "codex/s"
                ]
            )
        );
        // The next list finds nothing to refresh (git, comparing whole seconds, may have
        // written it again meanwhile).
        let after = written(&index);
        assert!(!dirty(&list(t), "s"));
        assert!(written(&index) == after, "the next list wrote nothing");
        // A change made after it is seen, not hidden by the written stat data.
        std::fs::write(wt.join("src/f3.txt"), "file 3 changed\n").expect("write");
        assert!(dirty(&list(t), "s"));
    });
}

#[test]
fn no_index_is_written_under_anothers_lock_or_while_the_agent_runs() {
    each_git(|t| {
        let wt = t.add("s");
        let index = index_of(t, &wt);
        make_racy(t, &wt);
        let before = written(&index);
        // Another git holds the lock: it is left alone, and so is the index.
        let lock = PathBuf::from(format!("{}.lock", index.display()));
        std::fs::write(&lock, b"someone else's").expect("lock");
        assert!(!dirty(&list(t), "s"));
        assert!(written(&index) == before, "the index is left alone");
        assert_eq!(std::fs::read(&lock).expect("lock"), b"someone else's");
        std::fs::remove_file(&lock).expect("unlock");
        // The session's agent runs (and touched a file, whose entry a status would refresh):
        // its index is its own.
        let agent = t.hold_agent("s", "touch README.md; echo > touched");
        common::wait_until("the agent runs", || {
            !t.show("s")["agent"].is_null() && wt.join("touched").exists()
        });
        std::fs::remove_file(wt.join("touched")).expect("clean again");
        make_racy(t, &wt);
        let before = written(&index);
        assert!(!dirty(&list(t), "s"));
        assert!(written(&index) == before, "the index is left alone");
        assert!(agent.release().success());
        // Once it ended, the next list refreshes it.
        assert!(!dirty(&list(t), "s"));
        assert!(refreshed(t, &wt));
    });
}

#[test]
fn a_file_changed_in_the_tick_of_its_checkout_is_dirty_whatever_its_stat_says() {
    each_git(|t| {
        for n in 0..10 {
            t.write(&format!("src/f{n}.txt"), &format!("file {n}\n"));
        }
        t.git(&["add", "-A"]);
        t.git(&["commit", "-q", "-m", "files"]);
        let wt = t.add("s");
        // The same size, and the time the checkout gave it: only its content tells.
        let file = wt.join("src/f4.txt");
        let mtime = std::fs::metadata(&file)
            .expect("file")
            .modified()
            .expect("mtime");
        std::fs::write(&file, "file X\n").expect("write");
        std::fs::File::options()
            .write(true)
            .open(&file)
            .expect("open")
            .set_modified(mtime)
            .expect("set mtime");
        let index = index_of(t, &wt);
        let before = written(&index);
        assert!(dirty(&list(t), "s"), "the change is seen");
        assert!(dirty(&list(t), "s"), "and seen again");
        assert!(written(&index) == before, "a dirty index is left alone");
        assert!(t.git_in(&wt, &["status", "--porcelain"]).contains("f4.txt"));
        // Put back as it was, it is clean again.
        std::fs::write(&file, "file 4\n").expect("write");
        assert!(!dirty(&list(t), "s"));
    });
}

#[test]
fn with_attributes_or_end_of_line_conversion_the_full_status_decides() {
    each_git(|t| {
        t.write(".gitattributes", "*.txt text eol=crlf\n");
        t.write("a.txt", "one\ntwo\n");
        t.git(&["add", "-A"]);
        t.git(&["commit", "-q", "-m", "crlf"]);
        let wt = t.add("s");
        assert!(!dirty(&list(t), "s"), "a checkout with CRLF is clean");
        std::fs::write(wt.join("a.txt"), "one\r\nTWO\r\n").expect("write");
        assert!(dirty(&list(t), "s"));
    });
}
