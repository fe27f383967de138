//! Unified diffs of a patch with secrets masked. The diff is computed on the real texts (so a
//! changed password still shows as a changed line) and every secret is masked in the rendered
//! output, on both the `-` and the `+` side.

use similar::TextDiff;

use crate::escape::{escape_attr, escape_text};

/// The mask shown in place of a secret value.
pub const MASK: &str = "********";

/// A unified diff (3 lines of context) of `old` to `new`, with every secret masked.
pub fn diff(old: &str, new: &str, secrets: &[&str]) -> String {
    unified_diff("file", old, new, secrets)
}

/// Like [`diff`], with `label` in the `---`/`+++` headers. Empty when nothing changed.
pub fn unified_diff(label: &str, old: &str, new: &str, secrets: &[&str]) -> String {
    if old == new {
        return String::new();
    }
    let rendered = TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{label}"), &format!("b/{label}"))
        .to_string();
    mask(&rendered, secrets)
}

/// Replaces every occurrence of each secret, raw or in its escaped XML forms, with [`MASK`].
/// A multi-line secret is also masked line by line, since a diff shows it line by line.
pub fn mask(text: &str, secrets: &[&str]) -> String {
    let mut forms: Vec<String> = secrets
        .iter()
        .flat_map(|s| std::iter::once(*s).chain(s.lines().filter(|_| s.contains('\n'))))
        .filter(|s| !s.trim().is_empty())
        .flat_map(|s| {
            [
                s.to_string(),
                escape_text(s),
                escape_attr(s, '"'),
                escape_attr(s, '\''),
            ]
        })
        .collect();
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    let mut out = text.to_string();
    for f in &forms {
        if out.contains(f.as_str()) {
            out = out.replace(f.as_str(), MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_on_both_sides() {
        let old = "<a>\n  <p>old&amp;pw</p>\n</a>\n";
        let new = "<a>\n  <p>n3w</p>\n</a>\n";
        let d = diff(old, new, &["old&pw", "n3w"]);
        assert!(d.contains("-  <p>********</p>"), "{d}");
        assert!(d.contains("+  <p>********</p>"), "{d}");
        assert!(!d.contains("n3w") && !d.contains("old"), "{d}");
    }

    #[test]
    fn identical_texts_give_an_empty_diff() {
        assert_eq!(diff("<a/>", "<a/>", &[]), "");
    }
}
