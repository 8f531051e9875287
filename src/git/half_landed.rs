//! A landing killed halfway in the worktree that has the target checked out: git had written
//! some of the landed files (or the whole index) but not moved the branch. Those paths hold
//! exactly what the landing's tree holds; git-codex proves that path by path, puts them back
//! as the branch has them, and lands again. A path that holds anything else is the person's
//! own: kept whole in a commit of its own before anything is touched, and written back, byte
//! for byte, once the session has landed.
//!
//! Paths are bytes, as git stores them (a name need not be UTF-8), and reach git through
//! `--pathspec-from-file` with literal pathspecs: no glob, no magic, no length limit.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;

use camino::Utf8Path;

use super::Git;
use super::snapshot::{ScratchIndex, machine_identity};

/// A path inside a worktree as git stores it.
pub type RawPath = Vec<u8>;

/// `(mode, id)` of a path in a tree, the index or on disk.
type Entry = (String, String);

/// What the landing left, path by path.
#[derive(Default)]
pub struct HalfLanded {
    /// Paths the branch's commit has: checked out from it again.
    in_head: Vec<RawPath>,
    /// Paths only the landing's tree has: taken out of the index and deleted (their bytes
    /// are the tree's, which keeps them).
    added: Vec<RawPath>,
}

impl HalfLanded {
    pub fn paths(&self) -> usize {
        self.in_head.len() + self.added.len()
    }

    fn push(&mut self, path: RawPath, in_head: bool) {
        if in_head {
            self.in_head.push(path);
        } else {
            self.added.push(path);
        }
    }
}

/// The tree a landing makes, and the paths where it conflicts.
pub struct LandingTree {
    pub tree: String,
    pub conflicted: HashSet<RawPath>,
}

/// A checkout's changes sorted against a landing's tree.
#[derive(Default)]
pub struct Sorted {
    /// The paths the landing wrote, proven: each holds exactly the landing's version.
    pub half: HalfLanded,
    /// Changed paths that hold something else: the person's.
    pub others: Vec<RawPath>,
}

/// A path for messages (not UTF-8 bytes shown as U+FFFD; quoting is the caller's).
pub fn shown(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// `path` inside `wt`, from its bytes.
fn on_disk(wt: &Utf8Path, path: &[u8]) -> PathBuf {
    wt.as_std_path().join(OsStr::from_bytes(path))
}

fn nul_joined(paths: &[RawPath]) -> Vec<u8> {
    let mut input = Vec::new();
    for path in paths {
        input.extend_from_slice(path);
        input.push(0);
    }
    input
}

impl Git {
    /// What `wt` holds beyond its HEAD: changed or staged paths, and untracked ones (`true`).
    pub fn changed_paths(&self, wt: &Utf8Path) -> anyhow::Result<Vec<(RawPath, bool)>> {
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
            .map(|e| (e[3..].to_vec(), e.starts_with(b"??")))
            .collect())
    }

    /// Sorts `changed` (from [`Git::changed_paths`]) into what a landing of `tree` killed
    /// halfway left and what it cannot have. A path is the landing's when it holds `tree`'s
    /// version in the worktree exactly (gone where `tree` has none; a conflicted file with
    /// only its markers' labels told apart) and HEAD's or `tree`'s in the index. A file cut
    /// short of `tree`'s version is git's own last write only when it is the one such file
    /// and was written with the landing's others (within a second of the newest): otherwise
    /// the person's as much as git's, and so theirs. An untracked file `tree` lacks is the
    /// person's and not listed at all (no landing touches it).
    pub fn sort_half_landed(
        &self,
        wt: &Utf8Path,
        landing: &LandingTree,
        changed: &[(RawPath, bool)],
    ) -> anyhow::Result<Sorted> {
        let paths: HashSet<&[u8]> = changed.iter().map(|(p, _)| p.as_slice()).collect();
        let wanted = self.blobs(wt, &["ls-tree", "-r", "-z", &landing.tree], &paths)?;
        let head = self.blobs(wt, &["ls-tree", "-r", "-z", "HEAD"], &paths)?;
        let index = self.blobs(wt, &["ls-files", "-s", "-z"], &paths)?;
        let mut sorted = Sorted::default();
        let mut cut = Vec::new();
        for (path, untracked) in changed {
            let want = wanted.get(path);
            if *untracked && want.is_none() {
                continue;
            }
            let staged = index.get(path);
            let on_disk_now = self.disk_blob(wt, path)?;
            let written = on_disk_now.as_ref() == want
                || (landing.conflicted.contains(path) && self.same_but_labels(wt, path, want)?);
            let ours = staged == want || staged == head.get(path);
            if written && ours {
                sorted.half.push(path.clone(), head.contains_key(path));
            } else if ours && want != head.get(path) && self.cut_short(wt, path, want)? {
                cut.push(path.clone());
            } else {
                sorted.others.push(path.clone());
            }
        }
        let newest = |paths: &[RawPath]| {
            paths
                .iter()
                .filter_map(|p| {
                    fs_err::symlink_metadata(on_disk(wt, p))
                        .ok()?
                        .modified()
                        .ok()
                })
                .max()
        };
        let written = newest(&sorted.half.in_head)
            .into_iter()
            .chain(newest(&sorted.half.added))
            .max();
        let with_the_others = match (cut.as_slice(), written) {
            ([one], Some(last)) => newest(std::slice::from_ref(one)).is_some_and(|at| {
                let gap = at
                    .duration_since(last)
                    .or_else(|e| Ok::<_, ()>(e.duration()));
                gap.is_ok_and(|gap| gap <= std::time::Duration::from_secs(1))
            }),
            _ => false,
        };
        for path in cut {
            if with_the_others {
                sorted.half.push(path.clone(), head.contains_key(&path));
            } else {
                sorted.others.push(path);
            }
        }
        Ok(sorted)
    }

    /// The tree a landing of `tip` on `old` makes: `tip`'s own for a fast-forward, the merge of
    /// the two otherwise (a rebase of a clean merge ends at the same tree), with the paths
    /// that conflict (their files hold git's conflict markers).
    pub fn landing_tree(
        &self,
        wt: &Utf8Path,
        old: &str,
        tip: &str,
        ff: bool,
    ) -> anyhow::Result<Option<LandingTree>> {
        if ff {
            let tree = self.run(wt, &["rev-parse", &format!("{tip}^{{tree}}")])?;
            return Ok(Some(LandingTree {
                tree,
                conflicted: HashSet::new(),
            }));
        }
        let args = ["merge-tree", "--write-tree", "--name-only", "-z", old, tip];
        let os_args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let out = self.output(self.command(wt), &os_args)?;
        // Exit 1 is a conflict, with the tree still written; anything else is no tree.
        if !matches!(out.status.code(), Some(0 | 1)) {
            return Ok(None);
        }
        let mut fields = out.stdout.split(|b| *b == 0);
        let Some(tree) = fields
            .next()
            .map(|t| String::from_utf8_lossy(t).trim().to_string())
        else {
            return Ok(None);
        };
        let conflicted = fields
            .take_while(|f| !f.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        Ok((!tree.is_empty()).then_some(LandingTree { tree, conflicted }))
    }

    /// Puts the paths of a half landing back as HEAD has them.
    pub fn undo_half_landed(&self, wt: &Utf8Path, half: &HalfLanded) -> anyhow::Result<()> {
        self.with_paths(wt, &["checkout", "-q", "HEAD"], &half.in_head)?;
        self.with_paths(
            wt,
            &["rm", "-q", "--cached", "--ignore-unmatch"],
            &half.added,
        )?;
        for path in &half.added {
            let file = on_disk(wt, path);
            if fs_err::symlink_metadata(&file).is_ok_and(|m| !m.is_dir()) {
                fs_err::remove_file(&file)?;
            }
        }
        Ok(())
    }

    /// Puts `paths` (kept first: see [`Git::keep_paths`]) back as HEAD has them, whatever
    /// they hold now; a path HEAD lacks is taken out of the index and deleted.
    pub fn put_back(&self, wt: &Utf8Path, paths: &[RawPath]) -> anyhow::Result<()> {
        let wanted: HashSet<&[u8]> = paths.iter().map(Vec::as_slice).collect();
        let head = self.blobs(wt, &["ls-tree", "-r", "-z", "HEAD"], &wanted)?;
        let (in_head, added) = paths.iter().cloned().partition(|p| head.contains_key(p));
        self.undo_half_landed(wt, &HalfLanded { in_head, added })
    }

    /// Whether any of `paths` is a directory in `wt` (which a kept commit would not hold
    /// whole: an empty one, a nested repository).
    pub fn any_dir(&self, wt: &Utf8Path, paths: &[RawPath]) -> Option<String> {
        paths
            .iter()
            .find(|p| fs_err::symlink_metadata(on_disk(wt, p)).is_ok_and(|m| m.is_dir()))
            .map(|p| shown(p))
    }

    /// Commits `paths` as they are in `wt`, byte for byte (files, links; a path with nothing
    /// there is absent) on top of HEAD, at `keep_ref`, without touching the index or the
    /// worktree. Its second parent holds the index's version of those of `paths` staged
    /// apart from HEAD (returned), and a third the commit `keep_ref` held before, if any:
    /// nothing kept earlier becomes unreachable.
    pub fn keep_paths(
        &self,
        wt: &Utf8Path,
        scratch: &Utf8Path,
        paths: &[RawPath],
        keep_ref: &str,
        message: &str,
    ) -> anyhow::Result<(String, Vec<RawPath>)> {
        let wanted: HashSet<&[u8]> = paths.iter().map(Vec::as_slice).collect();
        let head = self.blobs(wt, &["ls-tree", "-r", "-z", "HEAD"], &wanted)?;
        let index = self.blobs(wt, &["ls-files", "-s", "-z"], &wanted)?;
        let staged: Vec<RawPath> = paths
            .iter()
            .filter(|p| index.get(*p) != head.get(*p))
            .cloned()
            .collect();
        let mut staged_info = Vec::new();
        for path in &staged {
            if let Some((mode, id)) = index.get(path) {
                staged_info.extend_from_slice(format!("{mode} {id}\t").as_bytes());
                staged_info.extend_from_slice(path);
                staged_info.push(0);
            }
        }
        let staged_tree = self.tree_of(wt, scratch, &staged_info)?;
        // Each file's own bytes (no clean filter, no line-ending change): what is written
        // back is what was there.
        let mut info = Vec::new();
        for path in paths {
            use std::os::unix::fs::PermissionsExt as _;
            let file = on_disk(wt, path);
            let Ok(meta) = fs_err::symlink_metadata(&file) else {
                continue;
            };
            let (mode, bytes) = if meta.file_type().is_symlink() {
                let target = fs_err::read_link(&file)?;
                ("120000", target.as_os_str().as_bytes().to_vec())
            } else if meta.is_file() {
                let exec = meta.permissions().mode() & 0o111 != 0;
                (if exec { "100755" } else { "100644" }, fs_err::read(&file)?)
            } else {
                anyhow::bail!(
                    "{} is neither a file nor a link: git-codex cannot keep it aside",
                    file.display()
                );
            };
            let id =
                self.run_input(wt, &["hash-object", "-w", "--no-filters", "--stdin"], bytes)?;
            info.extend_from_slice(format!("{mode} {}\t", id.trim()).as_bytes());
            info.extend_from_slice(path);
            info.push(0);
        }
        let tree = self.tree_of(wt, scratch, &info)?;
        let machine = |args: &[&str]| {
            let mut cmd = self.command(wt);
            machine_identity(&mut cmd);
            self.run_with(cmd, args)
        };
        let staged_commit = machine(&[
            "commit-tree",
            &staged_tree,
            "-p",
            "HEAD",
            "-m",
            "git-codex: the staged versions of the paths kept aside",
        ])?;
        let mut args = vec!["commit-tree", &tree, "-p", "HEAD", "-p", &staged_commit];
        let earlier = self
            .run(
                wt,
                &[
                    "rev-parse",
                    "-q",
                    "--verify",
                    &format!("{keep_ref}^{{commit}}"),
                ],
            )
            .ok();
        if let Some(earlier) = &earlier {
            args.extend(["-p", earlier]);
        }
        args.extend(["-m", message]);
        let commit = machine(&args)?;
        self.run(wt, &["update-ref", keep_ref, &commit])?;
        Ok((commit, staged))
    }

    /// The tree of `info` (`update-index -z --index-info` records), built in a scratch index.
    fn tree_of(&self, wt: &Utf8Path, scratch: &Utf8Path, info: &[u8]) -> anyhow::Result<String> {
        let index = ScratchIndex::new(scratch)?;
        self.bytes_with_index(wt, Some(index.path()), &["read-tree", "--empty"], None)?;
        if !info.is_empty() {
            self.bytes_with_index(
                wt,
                Some(index.path()),
                &["update-index", "-z", "--index-info"],
                Some(info),
            )?;
        }
        let tree = self.bytes_with_index(wt, Some(index.path()), &["write-tree"], None)?;
        Ok(String::from_utf8_lossy(&tree).trim().to_string())
    }

    /// Stages `staged` as `kept`'s second parent holds them (taking out of the index those
    /// it lacks): what the person had staged before their changes were kept aside.
    pub fn restore_staged(
        &self,
        wt: &Utf8Path,
        kept: &str,
        staged: &[RawPath],
    ) -> anyhow::Result<()> {
        if staged.is_empty() {
            return Ok(());
        }
        let wanted: HashSet<&[u8]> = staged.iter().map(Vec::as_slice).collect();
        let there = self.blobs(wt, &["ls-tree", "-r", "-z", &format!("{kept}^2")], &wanted)?;
        let mut info = Vec::new();
        let mut gone = Vec::new();
        for path in staged {
            if let Some((mode, id)) = there.get(path) {
                info.extend_from_slice(format!("{mode} {id}\t").as_bytes());
                info.extend_from_slice(path);
                info.push(0);
            } else {
                gone.push(path.clone());
            }
        }
        if !info.is_empty() {
            self.run_input(wt, &["update-index", "-z", "--index-info"], info)?;
        }
        if !gone.is_empty() {
            let args = ["update-index", "-z", "--force-remove", "--stdin"];
            self.run_input(wt, &args, nul_joined(&gone))?;
        }
        Ok(())
    }

    /// Writes `paths` in `wt` back as `kept` holds them (deleting those it lacks), leaving
    /// the index alone.
    pub fn restore_kept(&self, wt: &Utf8Path, kept: &str, paths: &[RawPath]) -> anyhow::Result<()> {
        let wanted: HashSet<&[u8]> = paths.iter().map(Vec::as_slice).collect();
        let in_kept = self.blobs(wt, &["ls-tree", "-r", "-z", kept], &wanted)?;
        let index = self.blobs(wt, &["ls-files", "-s", "-z"], &wanted)?;
        let (known, unknown): (Vec<RawPath>, Vec<RawPath>) = paths
            .iter()
            .cloned()
            .partition(|p| in_kept.contains_key(p) || index.contains_key(p));
        let source = format!("--source={kept}");
        self.with_paths(wt, &["restore", &source, "--worktree"], &known)?;
        // git wrote them through the smudge filters: each regular file gets its kept bytes.
        for (path, (mode, id)) in &in_kept {
            if mode.starts_with("100") {
                let bytes = self.run_bytes(wt, &["cat-file", "blob", id])?;
                super::unfiltered::overwrite(wt, path, &bytes)?;
            }
        }
        // Neither kept nor known to git: whatever is there now is the landing's leftover.
        for path in unknown {
            let file = on_disk(wt, &path);
            if fs_err::symlink_metadata(&file).is_ok_and(|m| !m.is_dir()) {
                fs_err::remove_file(&file)?;
            }
        }
        Ok(())
    }

    /// For each of `paths`: whether `wt` holds what `rev` holds there (both nothing counts).
    pub fn holds_as(
        &self,
        wt: &Utf8Path,
        rev: &str,
        paths: &[RawPath],
    ) -> anyhow::Result<Vec<bool>> {
        let wanted: HashSet<&[u8]> = paths.iter().map(Vec::as_slice).collect();
        let there = self.blobs(wt, &["ls-tree", "-r", "-z", rev], &wanted)?;
        paths
            .iter()
            .map(|p| Ok(self.disk_blob(wt, p)?.as_ref() == there.get(p)))
            .collect()
    }

    /// Those of `paths` whose file in `wt` holds only the start of `rev`'s version there: git
    /// killed while it wrote it, or cut by the person (git-codex cannot tell which).
    pub fn short_of(
        &self,
        wt: &Utf8Path,
        rev: &str,
        paths: &[RawPath],
    ) -> anyhow::Result<Vec<RawPath>> {
        let wanted: HashSet<&[u8]> = paths.iter().map(Vec::as_slice).collect();
        let there = self.blobs(wt, &["ls-tree", "-r", "-z", rev], &wanted)?;
        let mut short = Vec::new();
        for path in paths {
            let Some((_, id)) = there.get(path) else {
                continue;
            };
            let file = on_disk(wt, path);
            if !fs_err::symlink_metadata(&file).is_ok_and(|m| m.is_file()) {
                continue;
            }
            let written = fs_err::read(&file)?;
            let blob = self.run_bytes(wt, &["cat-file", "blob", id])?;
            if written.len() < blob.len() && blob.starts_with(&written) {
                short.push(path.clone());
            }
        }
        Ok(short)
    }

    /// Whether the file at `path` holds `want`'s blob up to the labels of its conflict markers
    /// (git's merge names the sides HEAD and the branch; `merge-tree` by their commits).
    fn same_but_labels(
        &self,
        wt: &Utf8Path,
        path: &[u8],
        want: Option<&Entry>,
    ) -> anyhow::Result<bool> {
        let Some((_, id)) = want else {
            return Ok(false);
        };
        let file = on_disk(wt, path);
        if !fs_err::symlink_metadata(&file).is_ok_and(|m| m.is_file()) {
            return Ok(false);
        }
        let unlabelled = |bytes: &[u8]| -> Vec<Vec<u8>> {
            bytes
                .split(|b| *b == b'\n')
                .map(|line| {
                    let marker = [b"<<<<<<<", b"|||||||", b">>>>>>>"]
                        .iter()
                        .find(|m| line.starts_with(&m[..]));
                    marker.map_or_else(|| line.to_vec(), |m| m.to_vec())
                })
                .collect()
        };
        let written = fs_err::read(&file)?;
        let blob = self.run_bytes(wt, &["cat-file", "blob", id])?;
        Ok(unlabelled(&written) == unlabelled(&blob))
    }

    /// Whether the file at `path` is the start of `want`'s blob (git writes a checked-out
    /// file in place).
    fn cut_short(&self, wt: &Utf8Path, path: &[u8], want: Option<&Entry>) -> anyhow::Result<bool> {
        let Some((_, id)) = want else {
            return Ok(false);
        };
        let file = on_disk(wt, path);
        if !fs_err::symlink_metadata(&file).is_ok_and(|m| m.is_file()) {
            return Ok(false);
        }
        let written = fs_err::read(&file)?;
        let blob = self.run_bytes(wt, &["cat-file", "blob", id])?;
        Ok(written.len() < blob.len() && blob.starts_with(&written))
    }

    /// Runs `git --literal-pathspecs ARGS` with `paths` as its pathspec, on stdin.
    fn with_paths(&self, wt: &Utf8Path, args: &[&str], paths: &[RawPath]) -> anyhow::Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        let mut full = vec!["--literal-pathspecs"];
        full.extend_from_slice(args);
        full.extend(["--pathspec-from-file=-", "--pathspec-file-nul"]);
        self.run_input(wt, &full, nul_joined(paths))?;
        Ok(())
    }

    /// `(mode, id)` of each of `paths` in a listing (`ls-tree -r -z` or `ls-files -s -z`).
    fn blobs(
        &self,
        wt: &Utf8Path,
        args: &[&str],
        paths: &HashSet<&[u8]>,
    ) -> anyhow::Result<BTreeMap<RawPath, Entry>> {
        let out = self.run_bytes(wt, args)?;
        let mut found = BTreeMap::new();
        for entry in out.split(|b| *b == 0).filter(|e| !e.is_empty()) {
            let Some(tab) = entry.iter().position(|b| *b == b'\t') else {
                continue;
            };
            let (meta, path) = (&entry[..tab], &entry[tab + 1..]);
            if !paths.contains(path) {
                continue;
            }
            // ls-tree: "<mode> blob <id>"; ls-files -s: "<mode> <id> <stage>".
            let meta = String::from_utf8_lossy(meta);
            let fields: Vec<&str> = meta.split(' ').collect();
            let (mode, id) = match fields.as_slice() {
                [mode, "blob", id] => (*mode, *id),
                [mode, id, "0"] => (*mode, *id),
                _ => continue,
            };
            found.insert(path.to_vec(), (mode.to_string(), id.to_string()));
        }
        Ok(found)
    }

    /// `(mode, id)` of the file at `path` as git would stage it, `None` when there is none.
    fn disk_blob(&self, wt: &Utf8Path, path: &[u8]) -> anyhow::Result<Option<Entry>> {
        use std::os::unix::fs::PermissionsExt as _;
        let file = on_disk(wt, path);
        let Ok(meta) = fs_err::symlink_metadata(&file) else {
            return Ok(None);
        };
        let mode = if meta.file_type().is_symlink() {
            // Its blob is the link's text (read, never followed), hashed as given.
            let target = fs_err::read_link(&file)?;
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
        let args = [
            OsStr::new("hash-object"),
            OsStr::new("--"),
            OsStr::from_bytes(path),
        ];
        let id = self.run_os(wt, &args)?;
        let id = String::from_utf8_lossy(&id).trim().to_string();
        Ok(Some((mode.to_string(), id)))
    }
}
