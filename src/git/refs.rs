//! Ref transactions and the annotated tags that record approvals and rejections.

use camino::Utf8Path;

use super::{Git, GitFailed};
use crate::error::UserError;

/// One step of an `update-ref --stdin` transaction; each is compare-and-swap.
pub enum RefUpdate {
    /// Set `name` to `new` if it is at `old` (`None`: if it does not exist).
    Set {
        name: String,
        new: String,
        old: Option<String>,
    },
    /// Delete `name` if it is at `old`.
    Delete { name: String, old: String },
}

impl Git {
    /// Applies every update or none.
    pub fn update_refs(&self, cwd: &Utf8Path, updates: &[RefUpdate]) -> anyhow::Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut input = String::new();
        for update in updates {
            match update {
                RefUpdate::Set {
                    name,
                    new,
                    old: Some(old),
                } => input.push_str(&format!("update {name} {new} {old}\n")),
                RefUpdate::Set {
                    name,
                    new,
                    old: None,
                } => input.push_str(&format!("create {name} {new}\n")),
                RefUpdate::Delete { name, old } => {
                    input.push_str(&format!("delete {name} {old}\n"))
                }
            }
        }
        self.run_input(cwd, &["update-ref", "--stdin"], &input)
            .map(|_| ())
    }

    /// Deletes refs in one transaction, each only if it still points where the caller saw it.
    pub fn delete_refs(&self, cwd: &Utf8Path, refs: &[(String, String)]) -> anyhow::Result<()> {
        let updates: Vec<RefUpdate> = refs
            .iter()
            .map(|(name, old)| RefUpdate::Delete {
                name: name.clone(),
                old: old.clone(),
            })
            .collect();
        self.update_refs(cwd, &updates)
    }

    /// The identity git would record for a commit made now ("Name <email> time zone"); a
    /// person's, so it fails when none is configured.
    pub fn committer_ident(&self, cwd: &Utf8Path) -> anyhow::Result<String> {
        self.run(cwd, &["var", "GIT_COMMITTER_IDENT"]).map_err(|err| {
            let detail = err
                .downcast_ref::<GitFailed>()
                .map_or_else(|| err.to_string(), |f| f.stderr.clone());
            UserError::bad_input(format!("git knows no identity for you: {detail}"))
                .hint("set one with 'git config user.name \"Your Name\"' and 'git config user.email you@example.com'")
                .into()
        })
    }

    /// Writes an annotated tag object for `target` (a commit) with the person's identity as
    /// tagger; returns its id. No ref is created.
    pub fn make_tag(
        &self,
        cwd: &Utf8Path,
        target: &str,
        tag_name: &str,
        message: &str,
    ) -> anyhow::Result<String> {
        let tagger = self.committer_ident(cwd)?;
        let content =
            format!("object {target}\ntype commit\ntag {tag_name}\ntagger {tagger}\n\n{message}");
        self.run_input(cwd, &["mktag"], &content)
    }

    /// As [`Git::make_tag`], signed with git's own signing settings (`gpg.format`,
    /// `user.signingkey`, `gpg.*.program`: git's `tag -s` does the signing). The tag is made in
    /// a scratch repository under `scratch_parent` that borrows the objects of `common_dir`
    /// and reads its config, so no tag ref ever appears in the repository; the signed object
    /// is then written here with `mktag`.
    pub fn make_signed_tag(
        &self,
        cwd: &Utf8Path,
        common_dir: &Utf8Path,
        scratch_parent: &Utf8Path,
        target: &str,
        tag_name: &str,
        message: &str,
    ) -> anyhow::Result<String> {
        let scratch = scratch_parent.join(format!(".sign-{}", std::process::id()));
        let _ = fs_err::remove_dir_all(&scratch);
        let result = (|| -> anyhow::Result<String> {
            fs_err::create_dir_all(scratch.join("objects/info"))?;
            fs_err::create_dir_all(scratch.join("refs/tags"))?;
            fs_err::write(scratch.join("HEAD"), "ref: refs/heads/main\n")?;
            fs_err::write(
                scratch.join("objects/info/alternates"),
                format!("{}\n", common_dir.join("objects")),
            )?;
            let include = format!("include.path={}", common_dir.join("config"));
            let git_dir = format!("--git-dir={scratch}");
            self.run_input(
                cwd,
                &[
                    "-c",
                    &include,
                    &git_dir,
                    "tag",
                    "-s",
                    "-F",
                    "-",
                    tag_name,
                    target,
                ],
                message,
            )
            .map_err(|err| {
                crate::error::UserError::runtime(format!("cannot sign the approval: {err:#}"))
                    .hint("set git's signing key (user.signingkey; gpg.format = ssh for an SSH key), or turn review.require_signed off")
            })?;
            let mut content = self.run(
                cwd,
                &[
                    &git_dir,
                    "cat-file",
                    "tag",
                    &format!("refs/tags/{tag_name}"),
                ],
            )?;
            content.push('\n');
            self.run_input(cwd, &["mktag"], &content)
        })();
        let _ = fs_err::remove_dir_all(&scratch);
        result
    }
}

impl Git {
    /// The commit each of `ids` peels to (an annotated tag to its commit), in one
    /// `cat-file --batch-check`; `None` for what is not there or not a commit.
    pub fn peel_to_commits(
        &self,
        cwd: &Utf8Path,
        ids: &[gix::ObjectId],
    ) -> anyhow::Result<Vec<Option<gix::ObjectId>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let input: String = ids.iter().map(|id| format!("{id}^{{commit}}\n")).collect();
        let out = self.run_input(
            cwd,
            &["cat-file", "--batch-check=%(objectname) %(objecttype)"],
            &input,
        )?;
        Ok(out
            .lines()
            .map(|line| match line.split_once(' ') {
                Some((id, "commit")) => gix::ObjectId::from_hex(id.as_bytes()).ok(),
                _ => None,
            })
            .collect())
    }
}
