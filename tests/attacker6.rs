//! A sixth outside attacker's findings against the default sandbox's promises (SPEC §7,
//! §7a, §8; README "The agent is the party being gated"). Each test is an agent's attack (a
//! script here), judged by what the person would see; each fails until the product holds.

mod common;

use std::time::Duration;

use common::sandbox::{can_confine, script};
use common::{TestEnv, each_git, run};

/// attacker5.rs's sparse file, in the other directory the agent writes that git-codex reads:
/// its object directory (`GIT_OBJECT_DIRECTORY`, `.git/codex/objects/<id>`). `settle`
/// (`import_objects`) walks every object the store lists, and a pack index lists as many as
/// its header says: a sparse `pack-*.idx` claiming N entries (with a stub `.pack`) costs the
/// agent no disk, and git-codex spends about 0.4 s and 24 MB resident per million entries
/// rejecting them, one by one. A v2 index holds up to 2^32 entries (about half an hour
/// each), and nothing limits the number of index files: the end of `session run`, and
/// whichever of `review`, `merge`, `remove`, `prune` (the person's own `git checkout`, through
/// post-checkout, once the session expires) settles the session first, stall for as long as
/// the agent likes. Shown with 30 million entries: the run's settle, normally instant,
/// takes many seconds.
#[test]
fn a_sparse_pack_index_in_the_agents_object_dir_does_not_stall_git_codex() {
    if !can_confine() {
        return;
    }
    each_git(|t: &TestEnv| {
        let (code, _, err) = run(t.codex(&["init"]));
        assert_eq!(code, 0, "{err}");
        t.add("pk");
        let maker = t.home.join("mkpack.py");
        common::write_file(
            &maker,
            "import os, struct\n\
             d = os.path.join(os.environ['GIT_OBJECT_DIRECTORY'], 'pack')\n\
             os.makedirs(d, exist_ok=True)\n\
             n = 30000000\n\
             name = 'pack-' + '1' * 40\n\
             with open(os.path.join(d, name + '.idx'), 'wb') as f:\n\
             \x20   f.write(b'\\377tOc' + struct.pack('>I', 2))\n\
             \x20   f.write(struct.pack('>I', n) * 256)\n\
             \x20   f.truncate(8 + 1024 + n * 28 + 40)\n\
             with open(os.path.join(d, name + '.pack'), 'wb') as f:\n\
             \x20   f.write(b'PACK' + struct.pack('>II', 2, n))\n\
             \x20   f.truncate(4096)\n\
             print('planted', flush=True)\n",
        );
        let agent = script(
            t,
            "sparse-pack.sh",
            &format!("#!/bin/sh\npython3 {} || exit 1\n", maker.display()),
        );
        let mut cmd = t.codex(&["session", "run", "pk", "--", &agent]);
        // A guard against a hang, not a measure: the hollow pack is dropped whole (its two
        // files), never read entry by entry (30 million rejections).
        cmd.timeout(Duration::from_secs(600));
        let (code, out, err) = run(cmd);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("planted"),
            "the agent did not plant its index: {out}{err}"
        );
        assert!(
            err.contains("git-codex: 2 object(s) that session 'pk' wrote"),
            "the pack index the agent planted was read entry by entry: {err}"
        );
    });
}
