//! Repository formats git-codex cannot read yet say so (issue 15, point 4).

mod common;

use common::{each_git, run};

#[test]
fn a_sha256_repository_is_named_as_unsupported() {
    each_git(|t| {
        let repo = t.root().join("sha256");
        let out = t.git_output(
            &t.root(),
            &["init", "-q", "--object-format=sha256", "sha256"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (code, _, err) = run(t.codex_in(&repo, &["session", "list"]));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("SHA-256 repository"), "{err}");
        assert!(err.contains("does not support yet"), "{err}");
        assert!(!err.contains("not a git repository"), "{err}");
    });
}
