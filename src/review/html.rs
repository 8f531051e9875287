//! The review page: one self-contained HTML file (inline CSS and script, nothing fetched).

use maud::{DOCTYPE, html};

use super::Summary;

/// The page for `s`.
pub fn page(s: &Summary) -> String {
    html! {
        (DOCTYPE)
        html { body { h1 { "Review of session " (s.session) } } }
    }
    .into_string()
}
