//! A rejection's message, handed to the agent's next run: the person writes
//! `--reject -m "fix the failing test in login.rs"` and the agent reads it from the file
//! `CODEX_REVIEW_FEEDBACK` names (and, for an agent with an instructions file, there too).

use gix::ObjectId;

use super::approval;
use crate::git::read::Reader;

/// The feedback a run of session `id` gets: the message of the rejection of the tip it starts
/// from. A tip the agent moved on from (it committed since) has none: what was rejected is no
/// longer what it works on; nor has `earlier`, the rejection of an earlier session of that id
/// (removed since) that was there when this one was made.
pub fn current(
    reader: &Reader,
    id: &str,
    earlier: Option<&str>,
    tip: Option<ObjectId>,
) -> anyhow::Result<Option<String>> {
    let Some(tip) = tip else { return Ok(None) };
    let Some(verdict) = approval::read(reader, &approval::rejection_ref(id))? else {
        return Ok(None);
    };
    if verdict.commit_id() != Some(tip) || earlier == Some(verdict.tag.as_str()) {
        return Ok(None);
    }
    let Some(message) = persons_words(&verdict.message) else {
        return Ok(None);
    };
    Ok(Some(format!(
        "# Review feedback on session {id}\n\nYour work at commit {tip} was rejected by {}. The reviewer says:\n\n{message}\n",
        verdict.by
    )))
}

/// The reviewer's own words in a verdict tag (`reject <branch> at <tip>`, a blank line, the
/// message, then the `Files:`/`Report:` lines git-codex adds); `None` when they wrote none.
fn persons_words(tag_message: &str) -> Option<String> {
    let (_, rest) = tag_message.split_once("\n\n")?;
    let words = match rest.rfind("\nFiles: ") {
        Some(at) => &rest[..at],
        None if rest.starts_with("Files: ") => "",
        None => rest,
    };
    let words = words.trim();
    (!words.is_empty()).then(|| words.to_string())
}

#[cfg(test)]
mod tests {
    use super::persons_words;

    #[test]
    fn the_reviewers_words_are_what_stands_between_the_head_line_and_the_counts() {
        let tag = "reject codex/s at abc\n\nfix the failing test in login.rs\n\nkeep the API\n\nFiles: 2, +3 -1\nReport: reviews/s/abc.md\n";
        assert_eq!(
            persons_words(tag).as_deref(),
            Some("fix the failing test in login.rs\n\nkeep the API")
        );
        let bare = "reject codex/s at abc\n\nFiles: 2, +3 -1\nReport: reviews/s/abc.md\n";
        assert_eq!(persons_words(bare), None);
    }
}
