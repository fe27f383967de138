//! Layout of inserted markup: the file's own line ending, the indentation an inserted element
//! takes from its siblings, and re-indentation of multi-line fragments. Nothing here changes
//! existing bytes; it only shapes the text that gets inserted.

use crate::index::Index;

/// The file's line ending: the one ending its first line (LF when there is none).
pub(crate) fn line_ending(text: &str) -> &'static str {
    match text.find('\n') {
        Some(p) if p > 0 && text.as_bytes()[p - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// Offset of the start of the line holding `pos`.
pub(crate) fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |p| p + 1)
}

/// The whitespace between the line start and `pos`, when only whitespace precedes `pos`.
pub(crate) fn own_line_indent(text: &str, pos: usize) -> Option<&str> {
    let before = &text[line_start(text, pos)..pos];
    before
        .chars()
        .all(|c| c == ' ' || c == '\t')
        .then_some(before)
}

/// The leading whitespace of the line holding `pos`.
pub(crate) fn line_indent(text: &str, pos: usize) -> &str {
    let start = line_start(text, pos);
    let line = &text[start..];
    let len = line.len() - line.trim_start_matches([' ', '\t']).len();
    &line[..len]
}

/// One indentation level, learned from the first element whose child sits on its own line
/// deeper than the parent; four spaces when the file shows none.
pub(crate) fn indent_unit(text: &str, idx: &Index) -> String {
    for elem in &idx.elems {
        let Some(parent) = elem.parent else { continue };
        let Some(child) = own_line_indent(text, elem.start_tag.start) else {
            continue;
        };
        let parent_indent = line_indent(text, idx.elems[parent].start_tag.start);
        if let Some(unit) = child.strip_prefix(parent_indent)
            && !unit.is_empty()
        {
            return unit.to_string();
        }
    }
    "    ".to_string()
}

/// Re-indents a multi-line fragment: its common indentation is removed, every line after the
/// first is prefixed with `indent`, and lines are joined with `eol`. The first line gets no
/// prefix because the caller places it after existing (or inserted) indentation.
pub(crate) fn reindent(fragment: &str, indent: &str, eol: &str) -> String {
    let normalized = fragment.replace("\r\n", "\n");
    let lines: Vec<&str> = normalized
        .trim_matches(|c| c == '\n')
        .split('\n')
        .map(|l| l.trim_end_matches([' ', '\t']))
        .collect();
    let first_indent = lines.first().map_or(0, |l| l.len() - l.trim_start().len());
    let common = lines
        .iter()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
        .chain(std::iter::once(first_indent))
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i == 0 {
            out.push_str(line.trim_start());
            continue;
        }
        out.push_str(eol);
        if !line.trim().is_empty() {
            out.push_str(indent);
            out.push_str(&line[common.min(line.len())..]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reindent_strips_common_indent_and_uses_eol() {
        let frag = "\n    <a>\n        <b>1</b>\n\n    </a>\n";
        assert_eq!(
            reindent(frag, "\t", "\r\n"),
            "<a>\r\n\t    <b>1</b>\r\n\r\n\t</a>"
        );
    }

    #[test]
    fn reindent_handles_unindented_first_line() {
        let frag = "<a>\n  <b/>\n</a>";
        assert_eq!(reindent(frag, "  ", "\n"), "<a>\n    <b/>\n  </a>");
    }

    #[test]
    fn detects_line_ending_and_indents() {
        assert_eq!(line_ending("<a>\r\n</a>"), "\r\n");
        assert_eq!(line_ending("<a/>"), "\n");
        let text = "<a>\n\t\t<b/> <c/>\n</a>";
        assert_eq!(own_line_indent(text, 6), Some("\t\t"));
        assert_eq!(own_line_indent(text, 11), None);
        assert_eq!(line_indent(text, 11), "\t\t");
    }
}
