//! A landing killed halfway in the worktree that has the target checked out: git had written
//! some of the landed files (or the whole index) but not moved the branch. Those paths hold
//! exactly what the landing's tree holds; git-codex proves that path by path, puts them back
//! as the branch has them, and lands again. A path that holds anything else is the person's
//! own change: while there is one, nothing is touched and the person is told which.

use std::collections::BTreeMap;

use camino::Utf8Path;

use super::Git;

/// What the landing left, path by path.
pub struct HalfLanded {
    /// Paths the branch's commit has: checked out from it again.
    in_head: Vec<String>,
    /// Paths only the landing's tree has: taken out of the index and deleted (their bytes
    /// are the tree's, which keeps them).
    added: Vec<String>,
}

impl HalfLanded {
    pub fn paths(&self) -> usize {
        self.in_head.len() + self.added.len()
    }
}

/// A checkout's changes sorted against a landing's tree.
pub struct Sorted {
    /// The paths the landing wrote (or was writing).
    pub half: HalfLanded,
    /// Changed paths that hold something else: the person's, never touched.
    pub others: Vec<String>,
}

impl Git {
    /// What `wt` holds beyond its HEAD: changed or staged paths, and untracked ones (`true`).
    pub fn changed_paths(&self, wt: &Utf8Path) -> anyhow::Result<Vec<(String, bool)>> {
        let status = self.run_bytes(
            wt,
            &[
                "status",
                "--porcelain=v1",
                "-z",
                "--untracked-files=all",
                "--ignore-submodules=dirty",
                "--no-renames",
            ],
        )?;
        Ok(status
            .split(|b| *b == 0)
            .filter(|e| e.len() > 3)
            .map(|e| {
                (
                    String::from_utf8_lossy(&e[3..]).into_owned(),
                    e.starts_with(b"??"),
                )
            })
            .collect())
    }

    /// Sorts `changed` (from [`Git::changed_paths`]) into what a landing of `tree` killed
    /// halfway left and what it cannot have. A path is the landing's when it holds `tree`'s
    /// version in the worktree (or is cut short of it, or is gone where `tree` has none or
    /// where the landing changes it: git was about to write it) and HEAD's or `tree`'s in the
    /// index. An untracked file `tree` lacks is the person's and not listed at all.
    pub fn sort_half_landed(
        &self,
        wt: &Utf8Path,
        tree: &str,
        changed: &[(String, bool)],
    ) -> anyhow::Result<Sorted> {
        let paths: std::collections::HashSet<&str> =
            changed.iter().map(|(p, _)| p.as_str()).collect();
        let wanted = self.blobs(wt, &["ls-tree", "-r", "-z", tree], &paths)?;
        let head = self.blobs(wt, &["ls-tree", "-r", "-z", "HEAD"], &paths)?;
        let index = self.blobs(wt, &["ls-files", "-s", "-z"], &paths)?;
        let mut sorted = Sorted {
            half: HalfLanded {
                in_head: Vec::new(),
                added: Vec::new(),
            },
            others: Vec::new(),
        };
        for (path, untracked) in changed {
            let want = wanted.get(path);
            if *untracked && want.is_none() {
                continue;
            }
            let on_disk = self.disk_blob(wt, path)?;
            let staged = index.get(path);
            // git checks a changed file out by unlinking it and writing it anew: killed in
            // between, a file the landing changes is gone (HEAD still has its bytes).
            let unlinked = on_disk.is_none() && want.is_some() && want != head.get(path);
            let written = on_disk.as_ref() == want || unlinked || self.cut_short(wt, path, want)?;
            if !written || !(staged == want || staged == head.get(path)) {
                sorted.others.push(path.clone());
            } else if head.contains_key(path) {
                sorted.half.in_head.push(path.clone());
            } else {
                sorted.half.added.push(path.clone());
            }
        }
        Ok(sorted)
    }

    /// The tree a landing of `tip` on `old` makes: `tip`'s own for a fast-forward, the merge of
    /// the two otherwise (a rebase of a clean merge ends at the same tree). `None` on a
    /// conflict.
    pub fn landing_tree(
        &self,
        wt: &Utf8Path,
        old: &str,
        tip: &str,
        ff: bool,
    ) -> anyhow::Result<Option<String>> {
        if ff {
            return self
                .run(wt, &["rev-parse", &format!("{tip}^{{tree}}")])
                .map(Some);
        }
        match self.run(wt, &["merge-tree", "--write-tree", old, tip]) {
            Ok(out) => Ok(out.lines().next().map(str::to_string)),
            Err(err) if err.downcast_ref::<super::GitFailed>().is_some() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Puts the paths of a half landing back as HEAD has them.
    pub fn undo_half_landed(&self, wt: &Utf8Path, half: &HalfLanded) -> anyhow::Result<()> {
        for chunk in half.in_head.chunks(200) {
            let mut args = vec!["checkout", "-q", "HEAD", "--"];
            args.extend(chunk.iter().map(String::as_str));
            self.run(wt, &args)?;
        }
        for chunk in half.added.chunks(200) {
            let mut args = vec!["rm", "-q", "--cached", "--ignore-unmatch", "--"];
            args.extend(chunk.iter().map(String::as_str));
            self.run(wt, &args)?;
        }
        for path in &half.added {
            let file = wt.join(path);
            if fs_err::symlink_metadata(&file).is_ok_and(|m| !m.is_dir()) {
                fs_err::remove_file(&file)?;
            }
        }
        Ok(())
    }

    /// Whether the file at `path` is the start of `want`'s blob: git was killed while it wrote
    /// it (git writes a checked-out file in place).
    fn cut_short(
        &self,
        wt: &Utf8Path,
        path: &str,
        want: Option<&(String, String)>,
    ) -> anyhow::Result<bool> {
        let Some((_, id)) = want else {
            return Ok(false);
        };
        let file = wt.join(path);
        if !fs_err::symlink_metadata(&file).is_ok_and(|m| m.is_file()) {
            return Ok(false);
        }
        let written = fs_err::read(&file)?;
        let blob = self.run_bytes(wt, &["cat-file", "blob", id])?;
        Ok(written.len() < blob.len() && blob.starts_with(&written))
    }

    /// `(mode, id)` of each of `paths` in a listing (`ls-tree -r -z` or `ls-files -s -z`).
    fn blobs(
        &self,
        wt: &Utf8Path,
        args: &[&str],
        paths: &std::collections::HashSet<&str>,
    ) -> anyhow::Result<BTreeMap<String, (String, String)>> {
        let out = self.run_bytes(wt, args)?;
        let mut found = BTreeMap::new();
        for entry in out.split(|b| *b == 0).filter(|e| !e.is_empty()) {
            let text = String::from_utf8_lossy(entry);
            let Some((meta, path)) = text.split_once('\t') else {
                continue;
            };
            if !paths.contains(path) {
                continue;
            }
            // ls-tree: "<mode> blob <id>"; ls-files -s: "<mode> <id> <stage>".
            let fields: Vec<&str> = meta.split(' ').collect();
            let (mode, id) = match fields.as_slice() {
                [mode, "blob", id] => (*mode, *id),
                [mode, id, "0"] => (*mode, *id),
                _ => continue,
            };
            found.insert(path.to_string(), (mode.to_string(), id.to_string()));
        }
        Ok(found)
    }

    /// `(mode, id)` of the file at `path` as git would stage it, `None` when there is none.
    fn disk_blob(&self, wt: &Utf8Path, path: &str) -> anyhow::Result<Option<(String, String)>> {
        use std::os::unix::fs::PermissionsExt as _;
        let Ok(meta) = fs_err::symlink_metadata(wt.join(path)) else {
            return Ok(None);
        };
        let mode = if meta.file_type().is_symlink() {
            // Its blob is the link's text (read, never followed), hashed as given.
            use std::os::unix::ffi::OsStrExt as _;
            let target = fs_err::read_link(wt.join(path))?;
            let id = self.run_input(
                wt,
                &["hash-object", "--stdin"],
                target.as_os_str().as_bytes(),
            )?;
            return Ok(Some(("120000".into(), id.trim().to_string())));
        } else if meta.is_dir() {
            return Ok(Some(("040000".into(), String::new())));
        } else if meta.permissions().mode() & 0o111 != 0 {
            "100755"
        } else {
            "100644"
        };
        let id = self.run(wt, &["hash-object", "--", path])?;
        Ok(Some((mode.to_string(), id.trim().to_string())))
    }
}
