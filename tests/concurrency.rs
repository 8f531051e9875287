//! Many agents calling `session add` at once: the lock serialises them and the limit holds.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{each_git, json, run};

#[test]
fn sixteen_concurrent_adds_with_a_limit_of_four_give_exactly_four_sessions() {
    each_git(|t| {
        t.set_config("[session]\nmax_parallel = 4\n");
        let barrier = Arc::new(std::sync::Barrier::new(16));
        let results: Vec<(i32, String, String)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|n| {
                    let barrier = Arc::clone(&barrier);
                    let cmd = t.codex(&["session", "add", &format!("agent-{n}")]);
                    scope.spawn(move || {
                        barrier.wait();
                        run(cmd)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        let ok: Vec<_> = results.iter().filter(|(code, _, _)| *code == 0).collect();
        let refused: Vec<_> = results.iter().filter(|(code, _, _)| *code == 3).collect();
        assert_eq!(ok.len(), 4, "exactly 4 succeed: {results:?}");
        assert_eq!(
            refused.len(),
            12,
            "the other 12 are refused by the limit: {results:?}"
        );
        for (_, _, err) in &refused {
            assert!(err.contains("limit of 4"), "{err}");
        }

        // Exactly the 4 winners exist, everywhere git and git-codex keep track.
        let winners: BTreeSet<String> = ok
            .iter()
            .map(|(_, out, _)| {
                let path = out.trim();
                path.rsplit("/wt-").next().expect("wt- path").to_string()
            })
            .collect();
        let list = json(&run(t.codex(&["session", "list", "--json"])).1);
        let listed: BTreeSet<String> = list["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .map(|s| s["id"].as_str().expect("id").to_string())
            .collect();
        assert_eq!(listed, winners);
        let branches: BTreeSet<String> = t
            .git(&[
                "for-each-ref",
                "--format=%(refname:short)",
                "refs/heads/codex/",
            ])
            .lines()
            .map(|b| b.trim_start_matches("codex/").to_string())
            .collect();
        assert_eq!(branches, winners, "no stray branch");
        let dirs: BTreeSet<String> = std::fs::read_dir(t.repo.join(".codex-worktrees"))
            .expect("base dir")
            .map(|e| {
                e.expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .trim_start_matches("wt-")
                    .to_string()
            })
            .collect();
        assert_eq!(dirs, winners, "no stray worktree dir");
        let admin = t.git(&["worktree", "list", "--porcelain"]);
        assert_eq!(
            admin.matches("worktree ").count(),
            5,
            "main + 4 sessions: {admin}"
        );
        let ports: BTreeSet<u64> = list["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .map(|s| s["port"].as_u64().expect("port"))
            .collect();
        assert_eq!(ports.len(), 4, "distinct ports");
    });
}

#[test]
fn the_lock_holds_when_its_file_is_deleted_or_replaced_while_held() {
    each_git(|t| {
        t.set_config("[session]\nmax_parallel = 4\n");
        // Someone deletes what looks like a stale lock, or puts a dir there, again and again.
        let lock = t.state_dir().join("lock");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let barrier = Arc::new(std::sync::Barrier::new(9));
        let results: Vec<(i32, String, String)> = std::thread::scope(|scope| {
            let stop2 = Arc::clone(&stop);
            let lock2 = lock.clone();
            scope.spawn(move || {
                while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::fs::remove_file(&lock2);
                    let _ = std::fs::remove_dir(&lock2);
                    let _ = std::fs::write(&lock2, "");
                }
            });
            let handles: Vec<_> = (0..8)
                .map(|n| {
                    let barrier = Arc::clone(&barrier);
                    let cmd = t.codex(&["session", "add", &format!("agent-{n}")]);
                    scope.spawn(move || {
                        barrier.wait();
                        run(cmd)
                    })
                })
                .collect();
            barrier.wait();
            let results = handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            results
        });
        let ok = results.iter().filter(|(code, _, _)| *code == 0).count();
        assert_eq!(ok, 4, "exactly 4 succeed: {results:?}");
        let list = json(&run(t.codex(&["session", "list", "--json"])).1);
        let sessions = list["sessions"].as_array().expect("sessions");
        assert_eq!(sessions.len(), 4, "{list}");
        let ports: BTreeSet<String> = sessions.iter().map(|s| s["port"].to_string()).collect();
        assert_eq!(ports.len(), 4, "each session has a port of its own: {list}");
    });
}
