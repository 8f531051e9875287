//! Commands read refs while `git pack-refs --all` runs in a loop, as `git gc --auto` does
//! after commits: a ref a pack moves from its loose file into `packed-refs` is never
//! unreadable to them (issue 16, class 7).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{TestEnv, each_git, run, write_file};

/// Runs `git-codex ARGS`; a failure is kept (with its error) for the final assertion.
fn attempt(t: &TestEnv, args: &[&str], failures: &mut Vec<String>) -> String {
    let (code, out, err) = run(t.codex(args));
    if code != 0 {
        failures.push(format!("{args:?} exited {code}: {err}"));
    }
    out
}

/// Enough rounds that, without retries, a read fails in most runs.
const ROUNDS: usize = 12;
/// Loose branches each pack moves into `packed-refs`.
const CHURN: usize = 200;

struct Stop<'a>(&'a AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn every_command_succeeds_while_refs_are_packed_in_a_loop() {
    each_git(|t| {
        t.set_config("[session]\nmax_parallel = 4\n");
        let main = t.git(&["rev-parse", "main"]);
        // Many loose branches written again before each pack: each pack deletes their files
        // while the commands list the branches.
        let churn: String = (0..CHURN)
            .map(|n| format!("update refs/heads/churn/{n} {main}\n"))
            .collect();
        let churn_file = t.root().join("churn");
        std::fs::write(&churn_file, churn).expect("churn");
        let stop = AtomicBool::new(false);
        let packs = AtomicUsize::new(0);
        let mut failures = Vec::new();
        std::thread::scope(|scope| {
            // Stops the packing however the rounds end (a panic would otherwise wait forever).
            let _stop = Stop(&stop);
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let stdin = std::fs::File::open(&churn_file).expect("churn");
                    let mut update = std::process::Command::new(&t.git);
                    update.env_clear().envs(t.vars()).current_dir(&t.repo);
                    let args = ["update-ref", "--stdin"];
                    update.args(args).stdin(stdin).output().expect("update-ref");
                    t.git_output(&t.repo, &["pack-refs", "--all"]);
                    packs.fetch_add(1, Ordering::Relaxed);
                }
            });
            for round in 0..ROUNDS {
                let id = format!("p{round}");
                let out = attempt(t, &["session", "add", &id], &mut failures);
                if let Some(wt) = out.lines().last().filter(|l| !l.is_empty()) {
                    write_file(&std::path::Path::new(wt).join(format!("{id}.txt")), &id);
                }
                attempt(t, &["session", "review", &id], &mut failures);
                attempt(t, &["session", "list"], &mut failures);
                attempt(t, &["session", "list", "--json"], &mut failures);
                if round > 0 {
                    let previous = format!("p{}", round - 1);
                    if t.state_dir()
                        .join(format!("sessions/{previous}.json"))
                        .exists()
                    {
                        attempt(t, &["session", "remove", &previous], &mut failures);
                    }
                }
                if round % 3 == 2 {
                    if t.state_dir().join(format!("sessions/{id}.json")).exists() {
                        t.age(&id, 1000);
                    }
                    attempt(t, &["session", "prune"], &mut failures);
                }
            }
        });
        assert!(packs.load(Ordering::Relaxed) > 0, "refs were packed");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    });
}
