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

/// Re-indents a multi-line fragment: leading and trailing blank lines and the common
/// indentation are removed; nesting is kept, converted from the fragment's own indentation unit
/// to `unit` (the file's) when the fragment indents consistently; every line after the first
/// is prefixed with `indent`; lines are joined with `eol`. The first line gets no prefix
/// because the caller places it after existing (or inserted) indentation.
pub(crate) fn reindent(fragment: &str, indent: &str, unit: &str, eol: &str) -> String {
    let normalized = fragment.replace("\r\n", "\n");
    let all: Vec<&str> = normalized
        .split('\n')
        .map(|l| l.trim_end_matches([' ', '\t']))
        .collect();
    let first = all.iter().position(|l| !l.trim().is_empty()).unwrap_or(0);
    let last = all.iter().rposition(|l| !l.trim().is_empty()).unwrap_or(0);
    let lines = &all[first..=last.max(first)];
    let depth_of = |l: &str| l.len() - l.trim_start_matches([' ', '\t']).len();
    let nonblank = || lines.iter().filter(|l| !l.trim().is_empty());
    let common = nonblank().map(|l| depth_of(l)).min().unwrap_or(0);
    let relative: Vec<&str> = nonblank()
        .map(|l| &l[common..common + (depth_of(l) - common)])
        .collect();
    let frag_unit = fragment_unit(&relative);
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str(eol);
        }
        if line.trim().is_empty() {
            continue;
        }
        if i > 0 {
            out.push_str(indent);
            let rel = &line[common..depth_of(line)];
            match frag_unit {
                Some(fu) => out.push_str(&unit.repeat(rel.len() / fu.len())),
                None => out.push_str(rel),
            }
        }
        out.push_str(line.trim_start_matches([' ', '\t']));
    }
    out
}

/// The fragment's indentation unit, when every relative indent is a whole number of it.
fn fragment_unit<'a>(relative: &[&'a str]) -> Option<&'a str> {
    let unit = relative
        .iter()
        .filter(|r| !r.is_empty())
        .min_by_key(|r| r.len())?;
    let ch = unit.chars().next()?;
    let uniform = unit.chars().all(|c| c == ch)
        && relative
            .iter()
            .all(|r| r.chars().all(|c| c == ch) && r.len() % unit.len() == 0);
    uniform.then_some(*unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reindent_strips_blank_edges_and_common_indent_and_uses_eol() {
        let frag = "\n    <a>\n        <b>1</b>\n\n    </a>\n   ";
        assert_eq!(
            reindent(frag, "\t", "\t", "\r\n"),
            "<a>\r\n\t\t<b>1</b>\r\n\r\n\t</a>"
        );
    }

    #[test]
    fn reindent_converts_the_fragment_unit_to_the_file_unit() {
        let frag = "<a>\n  <b>\n    <c/>\n  </b>\n</a>";
        assert_eq!(
            reindent(frag, "  ", "    ", "\n"),
            "<a>\n      <b>\n          <c/>\n      </b>\n  </a>"
        );
    }

    #[test]
    fn reindent_keeps_irregular_indentation_as_written() {
        let frag = "<a>\n  <b/>\n   <c/>\n</a>";
        assert_eq!(reindent(frag, "", "\t", "\n"), frag);
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
