//! `git codex man [--install [DIR]]`: the man pages. Without `--install`, the page of
//! `git-codex` goes to stdout; with it, every page is written to DIR, by default next to the
//! binary (`<bindir>/../share/man/man1`, where man looks without MANPATH), else to
//! `~/.local/share/man/man1`.

use std::io::Write as _;

use camino::{Utf8Path, Utf8PathBuf};

use crate::cli::ManArgs;
use crate::complete;
use crate::error::UserError;
use crate::output;

pub fn run(args: ManArgs) -> anyhow::Result<()> {
    let pages = complete::man_pages()?;
    match args.install {
        None => {
            let root = pages
                .first()
                .map(|(_, text)| text.clone())
                .unwrap_or_default();
            std::io::stdout().write_all(&root)?;
            Ok(())
        }
        Some(dir) => {
            let dir = match dir {
                Some(dir) => Utf8PathBuf::from(dir),
                None => default_dir()?,
            };
            write_pages(&dir, &pages)?;
            output::note(&format!("Installed {} man pages in {dir}", pages.len()));
            Ok(())
        }
    }
}

fn write_pages(dir: &Utf8Path, pages: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    fs_err::create_dir_all(dir)
        .map_err(|err| UserError::runtime(format!("cannot write man pages to {dir}: {err}")))?;
    for (name, text) in pages {
        fs_err::write(dir.join(name), text)?;
    }
    Ok(())
}

/// Next to the binary if that can be written, else under the user's data dir.
fn default_dir() -> anyhow::Result<Utf8PathBuf> {
    let candidates = [beside_binary(), user_dir()];
    for dir in candidates.into_iter().flatten() {
        if fs_err::create_dir_all(&dir).is_ok() {
            return Ok(dir);
        }
    }
    Err(UserError::runtime("found no writable man directory")
        .hint("pass one: git codex man --install DIR")
        .into())
}

fn beside_binary() -> Option<Utf8PathBuf> {
    let exe = Utf8PathBuf::from_path_buf(std::env::current_exe().ok()?).ok()?;
    Some(exe.parent()?.parent()?.join("share/man/man1"))
}

fn user_dir() -> Option<Utf8PathBuf> {
    let home = std::env::var("HOME").ok()?;
    Some(Utf8PathBuf::from(home).join(".local/share/man/man1"))
}

/// For `init`: installs the pages where man finds them, unless they are there already.
/// Never fails `init`: a read-only install only costs the pages.
pub fn install_if_missing() {
    let Some(dir) = beside_binary()
        .into_iter()
        .chain(user_dir())
        .find(|d| d.join("git-codex.1").exists() || fs_err::create_dir_all(d).is_ok())
    else {
        return;
    };
    if dir.join("git-codex.1").exists() {
        return;
    }
    if let Ok(pages) = complete::man_pages()
        && write_pages(&dir, &pages).is_ok()
    {
        output::note(&format!("Installed the man pages in {dir}"));
    }
}
