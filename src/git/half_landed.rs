//! A landing killed halfway in the worktree that has the target checked out: git had written
//! some of the landed files (or the whole index) but not moved the branch. Those paths hold
//! exactly what the landing's tree holds; git-codex proves that path by path, puts them back
//! as the branch has them, and lands again. A path that holds anything else is the person's
//! own: kept whole in a commit of its own before anything is touched, and written back, byte
//! for byte, once the session has landed.
//!
//! Paths are bytes, as git stores them (a name need not be UTF-8), and reach git through
//! `--pathspec-from-file` with literal pathspecs: no glob, no magic, no length limit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

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

    /// Every path.
    pub fn all(&self) -> Vec<RawPath> {
        self.in_head.iter().chain(&self.added).cloned().collect()
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

/// Whether the file at `path` holds the start of `content`, and only that (git writes a
/// checked-out file in place).
fn cut_short(wt: &Utf8Path, path: &[u8], content: Option<&[u8]>) -> bool {
    let Some(content) = content else {
        return false;
    };
    regular_file(wt, path)
        .is_some_and(|written| written.len() < content.len() && content.starts_with(&written))
}

/// The bytes of the regular file at `path` (never through a link).
fn regular_file(wt: &Utf8Path, path: &[u8]) -> Option<Vec<u8>> {
    let file = on_disk(wt, path);
    fs_err::symlink_metadata(&file)
        .ok()
        .filter(std::fs::Metadata::is_file)?;
    fs_err::read(&file).ok()
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
    /// halfway left and what it cannot have. A path is the landing's when the worktree holds
    /// exactly the bytes git writes for `tree`'s version (through the checkout's filters; gone
    /// where `tree` has none; a submodule's directory; not there at all where sparse checkout
    /// keeps it out) and the index
    /// HEAD's or `tree`'s. A file cut short of `tree`'s version, or gone where the landing
    /// changes it, is git's own write (or unlink) only when that file (or its directory) was
    /// last touched while the landing wrote: within a second of its newest file, or, none
    /// written yet, within seconds of `started`. Otherwise it is the person's as much as
    /// git's, and so theirs. An
    /// untracked file `tree` lacks is the person's and not listed at all (no landing touches
    /// it).
    pub fn sort_half_landed(
        &self,
        wt: &Utf8Path,
        landing: &LandingTree,
        changed: &[(RawPath, bool)],
        started: Option<std::time::SystemTime>,
    ) -> anyhow::Result<Sorted> {
        let paths: HashSet<&[u8]> = changed.iter().map(|(p, _)| p.as_slice()).collect();
        let wanted = self.blobs(wt, &["ls-tree", "-r", "-z", &landing.tree], &paths)?;
        let head = self.blobs(wt, &["ls-tree", "-r", "-z", "HEAD"], &paths)?;
        let index = self.blobs(wt, &["ls-files", "-s", "-z"], &paths)?;
        let sparse = self.skip_worktree(wt, &paths)?;
        let contents = self.contents(wt, &wanted, true)?;
        let mut sorted = Sorted::default();
        let mut cut = Vec::new();
        for (path, untracked) in changed {
            let want = wanted.get(path);
            if *untracked && want.is_none() {
                continue;
            }
            let staged = index.get(path);
            let content = contents.get(path).map(Vec::as_slice);
            let written = self.disk_holds(wt, path, want, content, sparse.contains(path))?
                || (want.is_none()
                    && fs_err::symlink_metadata(on_disk(wt, path)).is_ok_and(|m| m.is_dir())
                    && self.is_tree_in(wt, &landing.tree, path)?);
            let ours = staged == want || staged == head.get(path);
            let gone = fs_err::symlink_metadata(on_disk(wt, path)).is_err();
            if written && ours {
                sorted.half.push(path.clone(), head.contains_key(path));
            } else if ours && want != head.get(path) && cut_short(wt, path, content) {
                cut.push((path.clone(), on_disk(wt, path)));
            } else if ours && want.is_some() && want != head.get(path) && gone {
                // git unlinks a file it rewrites (all of them first, checking out in
                // parallel): when, its directory's time tells.
                let dir = on_disk(wt, path)
                    .parent()
                    .map_or_else(|| wt.as_std_path().to_path_buf(), Path::to_path_buf);
                cut.push((path.clone(), dir));
            } else {
                sorted.others.push(path.clone());
            }
        }
        // When git's writes ended: the landing's files written one after another from its
        // start, none more than a second after the one before (a file the person saved again
        // later, same bytes, is no write of git's).
        let second = std::time::Duration::from_secs(1);
        let mut times: Vec<std::time::SystemTime> = sorted
            .half
            .in_head
            .iter()
            .chain(&sorted.half.added)
            .filter_map(|p| {
                fs_err::symlink_metadata(on_disk(wt, p))
                    .ok()?
                    .modified()
                    .ok()
            })
            .filter(|at| started.is_none_or(|began| *at + second >= began))
            .collect();
        times.sort();
        let mut written: Option<std::time::SystemTime> = None;
        for at in times {
            match written {
                Some(last) if at > last + second => break,
                _ => written = Some(at),
            }
        }
        // Touched while the landing wrote: no later than a second after its last write (or,
        // none written yet, five after it began), and not before it began.
        let while_landing = |at: std::time::SystemTime| {
            let not_before = started.is_none_or(|began| at + second >= began);
            let not_after = match (written, started) {
                (Some(last), _) => at <= last + second,
                (None, Some(began)) => at <= began + 5 * second,
                (None, None) => false,
            };
            not_before && not_after
        };
        for (path, witness) in cut {
            let meta = fs_err::symlink_metadata(&witness).ok();
            let by_git = meta
                .as_ref()
                .and_then(|m| m.modified().ok())
                .is_some_and(|at| {
                    // A big file git was still writing when killed: made while the landing
                    // wrote, and written on since at no less than 10 MB/s.
                    let slow_write = meta.as_ref().is_some_and(|m| {
                        m.is_file()
                            && m.created().is_ok_and(|made| {
                                let pace = std::time::Duration::from_millis(m.len() / 10_000);
                                while_landing(made) && at <= made + second + pace
                            })
                    });
                    while_landing(at) || slow_write
                });
            if by_git {
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

    /// Puts the paths of a half landing back as HEAD has them. Those sparse checkout keeps
    /// out of the worktree are put back in the index alone, kept out still. A path that is a
    /// directory of the landing's is HEAD's file again once the landing's files under it go.
    pub fn undo_half_landed(&self, wt: &Utf8Path, half: &HalfLanded) -> anyhow::Result<()> {
        let all: HashSet<&[u8]> = half
            .in_head
            .iter()
            .chain(&half.added)
            .map(Vec::as_slice)
            .collect();
        let sparse = self.skip_worktree(wt, &all)?;
        let (kept_out, in_head): (Vec<RawPath>, Vec<RawPath>) = half
            .in_head
            .iter()
            .cloned()
            .partition(|p| sparse.contains(p));
        let (gone, added): (Vec<RawPath>, Vec<RawPath>) =
            half.added.iter().cloned().partition(|p| sparse.contains(p));
        // What the landing added goes first, from the index by exact name (a pathspec `d`
        // would take `d/x` too) and from the disk with the directories it leaves empty, so
        // that HEAD's file can come back where the landing had made a directory.
        if !added.is_empty() {
            let args = ["update-index", "-z", "--force-remove", "--stdin"];
            self.run_input(wt, &args, nul_joined(&added))?;
        }
        for path in &added {
            let file = on_disk(wt, path);
            if fs_err::symlink_metadata(&file).is_ok_and(|m| !m.is_dir()) {
                fs_err::remove_file(&file)?;
            }
            let mut dir = file.parent();
            while let Some(d) = dir.filter(|d| *d != wt.as_std_path()) {
                if std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        }
        self.with_paths(wt, &["checkout", "-q", "HEAD"], &in_head)?;
        if !kept_out.is_empty() {
            let wanted: HashSet<&[u8]> = kept_out.iter().map(Vec::as_slice).collect();
            let head = self.blobs(wt, &["ls-tree", "-r", "-z", "HEAD"], &wanted)?;
            let mut info = Vec::new();
            for (path, (mode, id)) in &head {
                info.extend_from_slice(format!("{mode} {id}\t").as_bytes());
                info.extend_from_slice(path);
                info.push(0);
            }
            self.run_input(wt, &["update-index", "-z", "--index-info"], info)?;
            let args = ["update-index", "-z", "--skip-worktree", "--stdin"];
            self.run_input(wt, &args, nul_joined(&kept_out))?;
        }
        if !gone.is_empty() {
            let args = ["update-index", "-z", "--force-remove", "--stdin"];
            self.run_input(wt, &args, nul_joined(&gone))?;
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

    /// For each of `paths`: whether `wt` holds what `rev` holds there (both nothing counts):
    /// the bytes git writes for it, or with `raw` the blob's own bytes (a kept commit holds
    /// what was on disk).
    pub fn holds_as(
        &self,
        wt: &Utf8Path,
        rev: &str,
        paths: &[RawPath],
        raw: bool,
    ) -> anyhow::Result<Vec<bool>> {
        let wanted: HashSet<&[u8]> = paths.iter().map(Vec::as_slice).collect();
        let there = self.blobs(wt, &["ls-tree", "-r", "-z", rev], &wanted)?;
        let contents = self.contents(wt, &there, !raw)?;
        paths
            .iter()
            .map(|p| {
                let content = contents.get(p).map(Vec::as_slice);
                self.disk_holds(wt, p, there.get(p), content, false)
            })
            .collect()
    }

    /// Those of `paths` whose file in `wt` holds only the start of what git writes for
    /// `rev`'s version there: git killed while it wrote it, or cut by the person (git-codex
    /// cannot tell which).
    pub fn short_of(
        &self,
        wt: &Utf8Path,
        rev: &str,
        paths: &[RawPath],
    ) -> anyhow::Result<Vec<RawPath>> {
        let wanted: HashSet<&[u8]> = paths.iter().map(Vec::as_slice).collect();
        let there = self.blobs(wt, &["ls-tree", "-r", "-z", rev], &wanted)?;
        let contents = self.contents(wt, &there, true)?;
        Ok(paths
            .iter()
            .filter(|p| cut_short(wt, p, contents.get(*p).map(Vec::as_slice)))
            .cloned()
            .collect())
    }

    /// Whether `wt` holds `want` at `path`: a file with `content` (the bytes git writes for
    /// it) and its mode, a link to its text, a submodule's directory, nothing where it is
    /// nothing, or, `sparse` (kept out of the worktree), nothing at all.
    fn disk_holds(
        &self,
        wt: &Utf8Path,
        path: &[u8],
        want: Option<&Entry>,
        content: Option<&[u8]>,
        sparse: bool,
    ) -> anyhow::Result<bool> {
        use std::os::unix::fs::PermissionsExt as _;
        let file = on_disk(wt, path);
        let Ok(meta) = fs_err::symlink_metadata(&file) else {
            return Ok(want.is_none() || sparse);
        };
        let Some((mode, id)) = want else {
            return Ok(false);
        };
        if meta.file_type().is_symlink() {
            // Its blob is the link's text (read, never followed), hashed as given.
            if mode != "120000" {
                return Ok(false);
            }
            let target = fs_err::read_link(&file)?;
            let hashed = self.run_input(
                wt,
                &["hash-object", "--stdin"],
                target.as_os_str().as_bytes(),
            )?;
            return Ok(hashed.trim() == id);
        }
        if meta.is_dir() {
            return Ok(mode == "160000");
        }
        let exec = meta.permissions().mode() & 0o111 != 0;
        let mode_matches = (mode == "100755" && exec) || (mode == "100644" && !exec);
        Ok(mode_matches
            && meta.is_file()
            && content.is_some_and(|c| fs_err::read(&file).is_ok_and(|b| b == c)))
    }

    /// The bytes of each regular-file blob in `entries`: as git writes it to `wt` (through
    /// the checkout's filters and line ends) with `smudged`, else as stored. The stored bytes
    /// come from one `cat-file --batch`; a blob at a path a filter or a line-end rule may
    /// apply to is put through the filters alone (`--batch --filters` tells the unfiltered
    /// size of the filtered bytes).
    fn contents(
        &self,
        wt: &Utf8Path,
        entries: &BTreeMap<RawPath, Entry>,
        smudged: bool,
    ) -> anyhow::Result<HashMap<RawPath, Vec<u8>>> {
        let files: Vec<(&RawPath, &str)> = entries
            .iter()
            .filter(|(_, (mode, _))| mode.starts_with("100"))
            .map(|(p, (_, id))| (p, id.as_str()))
            .collect();
        let mut found = HashMap::new();
        if files.is_empty() {
            return Ok(found);
        }
        let mut input = Vec::new();
        for (_, id) in &files {
            input.extend_from_slice(id.as_bytes());
            input.push(b'\n');
        }
        let out = self.bytes_with_index(wt, None, &["cat-file", "--batch"], Some(&input))?;
        let mut rest = out.as_slice();
        for (path, _) in &files {
            let Some(end) = rest.iter().position(|b| *b == b'\n') else {
                break;
            };
            let header = String::from_utf8_lossy(&rest[..end]).into_owned();
            rest = &rest[end + 1..];
            let Some(size) = header
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|_| !header.ends_with(" missing"))
            else {
                continue;
            };
            if rest.len() < size {
                break;
            }
            found.insert((*path).clone(), rest[..size].to_vec());
            rest = rest.get(size + 1..).unwrap_or_default();
        }
        if !smudged {
            return Ok(found);
        }
        let paths: Vec<RawPath> = files.iter().map(|(p, _)| (*p).clone()).collect();
        let filtered = self.may_filter(wt, &paths)?;
        for (path, id) in files {
            if !filtered.contains(path) {
                continue;
            }
            let mut with_path = std::ffi::OsString::from("--path=");
            with_path.push(OsStr::from_bytes(path));
            let args = [
                OsStr::new("cat-file"),
                OsStr::new("--filters"),
                with_path.as_os_str(),
                OsStr::new(id),
            ];
            let out = self.output(self.command(wt), &args)?;
            if out.status.success() {
                found.insert(path.clone(), out.stdout);
            }
        }
        Ok(found)
    }

    /// What of the person's in `wt` a landing of `tree` on `old` would overwrite or stop on:
    /// each path the landing adds that is there already (git takes ignored files for
    /// expendable and replaces them without a word; a directory stops it halfway), and each
    /// leading directory of one that is a file HEAD lacks.
    pub fn ignored_in_the_way(
        &self,
        wt: &Utf8Path,
        old: &str,
        tree: &str,
    ) -> anyhow::Result<Vec<RawPath>> {
        let args = ["diff-tree", "-r", "-z", "--diff-filter=A", old, tree];
        let listing = self.run_bytes(wt, &args)?;
        // `:<old mode> <new mode> <old id> <new id> A\0<path>\0`
        let fields: Vec<&[u8]> = listing.split(|b| *b == 0).collect();
        let mut found = Vec::new();
        for pair in fields
            .chunks(2)
            .filter(|p| p.len() == 2 && !p[1].is_empty())
        {
            let (meta, path) = (pair[0], pair[1]);
            let submodule = meta.split(|b| *b == b' ').nth(1) == Some(b"160000".as_slice());
            // A directory where the landing puts a submodule is the submodule's own, and one
            // HEAD has (the landing makes a file of it) git's to replace.
            if let Ok(meta) = fs_err::symlink_metadata(on_disk(wt, path)) {
                if !meta.is_dir() || !(submodule || self.is_in(wt, "HEAD", path)?) {
                    found.push(path.to_vec());
                }
                continue;
            }
            for (n, _) in path.iter().enumerate().filter(|(_, b)| **b == b'/') {
                let lead = &path[..n];
                let is_file =
                    fs_err::symlink_metadata(on_disk(wt, lead)).is_ok_and(|m| !m.is_dir());
                if is_file && !self.is_in(wt, "HEAD", lead)? {
                    found.push(lead.to_vec());
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Whether `rev` has anything at `path`.
    fn is_in(&self, wt: &Utf8Path, rev: &str, path: &[u8]) -> anyhow::Result<bool> {
        Ok(self.kind_in(wt, rev, path)?.is_some())
    }

    /// The kind of object `rev` has at `path` (`blob`, `tree`, `commit`), if any.
    fn kind_in(&self, wt: &Utf8Path, rev: &str, path: &[u8]) -> anyhow::Result<Option<String>> {
        if path.contains(&b'\n') {
            return Ok(None);
        }
        let mut input = format!("{rev}:").into_bytes();
        input.extend_from_slice(path);
        input.push(b'\n');
        let out = self.run_input(wt, &["cat-file", "--batch-check"], input)?;
        Ok(out
            .split(' ')
            .nth(1)
            .filter(|kind| !kind.trim().is_empty() && !out.ends_with(" missing"))
            .map(|kind| kind.trim().to_string()))
    }

    /// Whether `tree` has a directory at `path` (a file the landing made a directory).
    fn is_tree_in(&self, wt: &Utf8Path, tree: &str, path: &[u8]) -> anyhow::Result<bool> {
        Ok(self.kind_in(wt, tree, path)?.as_deref() == Some("tree"))
    }

    /// Paths among `paths` whose checkout git may change from the blob's bytes: all with
    /// `core.autocrlf` on, else those with a `text`, `eol`, `crlf`, `filter`, `ident` or
    /// `working-tree-encoding` attribute set either way.
    fn may_filter(&self, wt: &Utf8Path, paths: &[RawPath]) -> anyhow::Result<HashSet<RawPath>> {
        let autocrlf = self
            .run(wt, &["config", "--get", "core.autocrlf"])
            .unwrap_or_default();
        if matches!(
            autocrlf.trim().to_ascii_lowercase().as_str(),
            "true" | "input" | "yes" | "on" | "1"
        ) {
            return Ok(paths.iter().cloned().collect());
        }
        let args = [
            "check-attr",
            "-z",
            "--stdin",
            "text",
            "eol",
            "crlf",
            "filter",
            "ident",
            "working-tree-encoding",
        ];
        let out = self.bytes_with_index(wt, None, &args, Some(&nul_joined(paths)))?;
        let fields: Vec<&[u8]> = out.split(|b| *b == 0).collect();
        Ok(fields
            .chunks(3)
            .filter(|f| f.len() == 3 && f[2] != b"unspecified")
            .map(|f| f[0].to_vec())
            .collect())
    }

    /// Paths among `paths` that sparse checkout keeps out of `wt` (skip-worktree).
    fn skip_worktree(
        &self,
        wt: &Utf8Path,
        paths: &HashSet<&[u8]>,
    ) -> anyhow::Result<HashSet<RawPath>> {
        let listed = self.run_bytes(wt, &["ls-files", "-t", "-z"])?;
        Ok(listed
            .split(|b| *b == 0)
            .filter_map(|e| e.strip_prefix(b"S "))
            .filter(|p| paths.contains(p))
            .map(<[u8]>::to_vec)
            .collect())
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
                [mode, "blob" | "commit", id] => (*mode, *id),
                [mode, id, "0"] => (*mode, *id),
                _ => continue,
            };
            found.insert(path.to_vec(), (mode.to_string(), id.to_string()));
        }
        Ok(found)
    }
}
