//! The patch engine: runs operations in order against the text, each one turning matched
//! spans into edits that are spliced into the current text. Nothing is ever re-serialized, so
//! every byte outside an edit stays as it was. Later ops see earlier results: value edits
//! (set_text, set_attr) are recorded in the index and kept pending; before a structural op, or
//! an edit touching a pending one, the pending edits are spliced and the index is rebuilt.
//! Value ops live here; structural ones in `structure.rs`.

use std::borrow::Cow;
use std::ops::Range;

use crate::document::{Document, build_index, parse_element_path};
use crate::encoding::{self, Encoding};
use crate::error::XmlError;
use crate::escape::{escape_attr, escape_text};
use crate::index::{Attr, Elem, Index};
use crate::layout::{indent_unit, line_ending};
use crate::ops::Op;
use crate::path::Path;
use crate::structure::{EnsureSpec, ensure, remove, replace_content};

/// What one operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpOutcome {
    /// 1-based position of the op in the list, as used in error messages.
    pub op: usize,
    /// `set_text`, `set_attr`, `ensure`, `replace_content` or `remove`.
    pub kind: &'static str,
    pub path: String,
    /// How many elements the path matched.
    pub matched: usize,
    /// Whether the op changed any byte.
    pub changed: bool,
}

/// The result of [`apply`]: the new bytes plus what each op did.
///
/// `Debug` shows sizes and outcomes, never the texts or secrets.
#[derive(Clone)]
pub struct Patched {
    /// The patched file, in the document's own encoding.
    pub text: Vec<u8>,
    pub changes: Vec<OpOutcome>,
    file: String,
    old_text: String,
    new_text: String,
    secrets: Vec<String>,
}

impl Patched {
    /// Whether the result differs from the input. (Per-op flags are in `changes`; an op list
    /// that sets the same target twice to different values reports op-level changes on every
    /// run although the final bytes are stable.)
    pub fn changed(&self) -> bool {
        self.new_text != self.old_text
    }

    /// The patched text, decoded (ISO-8859-1 bytes as chars).
    pub fn new_text(&self) -> &str {
        &self.new_text
    }

    /// The values a diff of this patch must mask: those of ops marked `secret`, and the
    /// values they replaced (an old password is as secret as the new one).
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }
}

impl std::fmt::Debug for Patched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patched")
            .field("file", &self.file)
            .field("bytes", &self.text.len())
            .field("changed", &self.changed())
            .field("changes", &self.changes)
            .finish()
    }
}

/// Applies `ops` in order to `doc`. Either every op succeeds and the result is returned, or
/// the first failure is returned and nothing is changed. Applying the same ops to the result
/// changes nothing.
pub fn apply(doc: &Document, ops: &[Op]) -> Result<Patched, XmlError> {
    let decoded = doc.decoded();
    let mut work = Work {
        file: doc.file(),
        encoding: decoded.encoding,
        eol: line_ending(&decoded.text),
        text: decoded.text.clone(),
        index: Some(Cow::Borrowed(doc.index())),
        pending: Vec::new(),
        secrets: Vec::new(),
    };
    let mut changes = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        changes.push(work.run(i + 1, op)?);
    }
    work.flush();
    if work.index.is_none() {
        // Safety net: never hand back a file that no longer parses.
        build_index(doc.file(), &work.text).map_err(|e| match e {
            XmlError::Malformed {
                file,
                line,
                column,
                message,
            } => XmlError::Malformed {
                file,
                line,
                column,
                message: format!(
                    "the patched text would not be well-formed ({message}); nothing was changed"
                ),
            },
            other => other,
        })?;
    }
    Ok(Patched {
        text: encoding::encode(&work.text, decoded.encoding, decoded.bom),
        changes,
        file: doc.file().to_string(),
        old_text: decoded.text.clone(),
        new_text: work.text,
        secrets: work.secrets,
    })
}

/// How inserted markup is laid out: the file's line ending and indentation unit.
pub(crate) struct Style<'a> {
    pub eol: &'a str,
    pub unit: String,
}

/// One replacement of a byte range of the current text.
pub(crate) struct Edit {
    range: Range<usize>,
    text: String,
}

pub(crate) fn edit(range: Range<usize>, text: impl Into<String>) -> Edit {
    Edit {
        range,
        text: text.into(),
    }
}

/// The mutable state while ops run.
struct Work<'d> {
    file: &'d str,
    encoding: Encoding,
    eol: &'static str,
    text: String,
    /// Describes `text`. Borrowed from the document until the first change; `None` after a
    /// splice, until the next op needs it.
    index: Option<Cow<'d, Index>>,
    /// Value edits (set_text/set_attr) not yet spliced into `text`, in its coordinates. The
    /// index already carries their new values, so later ops' predicates see them; splicing
    /// waits until an op needs fresh offsets (a structural op, or an edit touching a pending
    /// one), which saves re-indexing the file after every value.
    pending: Vec<Edit>,
    secrets: Vec<String>,
}

/// Context every edit builder needs, for error messages.
pub(crate) struct OpCtx<'a> {
    file: &'a str,
    op: usize,
    path: &'a str,
}

impl OpCtx<'_> {
    pub fn not_applicable(&self, reason: impl Into<String>) -> XmlError {
        XmlError::NotApplicable {
            file: self.file.to_string(),
            op: self.op,
            path: self.path.to_string(),
            reason: reason.into(),
        }
    }

    pub fn bad_fragment(&self, message: impl Into<String>) -> XmlError {
        XmlError::BadFragment {
            file: self.file.to_string(),
            op: self.op,
            path: self.path.to_string(),
            message: message.into(),
        }
    }
}

impl Work<'_> {
    fn run(&mut self, op_no: usize, op: &Op) -> Result<OpOutcome, XmlError> {
        let value_op = matches!(op, Op::SetText { .. } | Op::SetAttr { .. });
        if !value_op {
            self.flush();
        }
        let ctx = OpCtx {
            file: self.file,
            op: op_no,
            path: op.path(),
        };
        let (mut path, mut matched, mut edits) = self.compute(&ctx, op)?;
        if value_op && self.touches_pending(&edits) {
            self.flush();
            (path, matched, edits) = self.compute(&ctx, op)?;
        }
        let changed = !edits.is_empty();
        if changed && value_op {
            self.record_values(op, &path, &matched);
            self.pending.extend(edits);
        } else if changed {
            self.text = splice(&self.text, edits);
            self.index = None;
        }
        Ok(OpOutcome {
            op: op_no,
            kind: op.kind(),
            path: op.path().to_string(),
            matched: matched.len(),
            changed,
        })
    }

    /// Selects the op's elements and builds its edits against the current text and index.
    fn compute(
        &mut self,
        ctx: &OpCtx<'_>,
        op: &Op,
    ) -> Result<(Path, Vec<usize>, Vec<Edit>), XmlError> {
        if self.index.is_none() {
            self.index = Some(Cow::Owned(build_index(self.file, &self.text)?));
        }
        let view = View {
            text: &self.text,
            eol: self.eol,
            idx: self.index.as_ref().expect("index was just built"),
        };
        let (path, matched) = select_checked(ctx, op, view.idx)?;
        let mut edits = Vec::new();
        for &elem in &matched {
            edits.extend(edit_for(ctx, &view, op, &path, elem, &mut self.secrets)?);
        }
        check_writable(ctx, self.encoding, op, &edits)?;
        check_disjoint(ctx, &mut edits)?;
        Ok((path, matched, edits))
    }

    fn touches_pending(&self, edits: &[Edit]) -> bool {
        edits.iter().any(|n| {
            self.pending
                .iter()
                .any(|p| n.range.start <= p.range.end && p.range.start <= n.range.end)
        })
    }

    /// Writes a value op's new values into the index, as if the text had been re-read.
    fn record_values(&mut self, op: &Op, path: &Path, matched: &[usize]) {
        let idx = self
            .index
            .as_mut()
            .expect("index exists while edits are pending")
            .to_mut();
        for &elem in matched {
            let e = &mut idx.elems[elem];
            match op {
                Op::SetText { value, .. } => e.text.clone_from(value),
                Op::SetAttr { value, .. } => {
                    let name = path.attr.as_deref().unwrap_or_default();
                    let (at, quote) = new_attr_position(e);
                    match e.attrs.iter_mut().find(|a| a.qname == name) {
                        Some(a) => a.value.clone_from(value),
                        // A placeholder at the insertion point: any later edit of it touches the
                        // pending insertion, which forces a splice and a fresh index first.
                        None => e.attrs.push(Attr {
                            qname: name.to_string(),
                            value_span: at..at,
                            value: value.clone(),
                            quote,
                            placeholder: true,
                        }),
                    }
                }
                _ => {}
            }
        }
    }

    /// Splices pending value edits into the text.
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let edits = std::mem::take(&mut self.pending);
            self.text = splice(&self.text, edits);
            self.index = None;
        }
    }
}

/// The current text and its index, as one op sees them.
struct View<'a> {
    text: &'a str,
    eol: &'static str,
    idx: &'a Index,
}

impl View<'_> {
    fn style(&self) -> Style<'static> {
        Style {
            eol: self.eol,
            unit: indent_unit(self.text, self.idx),
        }
    }
}

/// Parses the op's path and selects its elements, checking the expected count.
fn select_checked(ctx: &OpCtx<'_>, op: &Op, idx: &Index) -> Result<(Path, Vec<usize>), XmlError> {
    let path = match op {
        Op::SetAttr { path, .. } => attribute_path(path)?,
        _ => parse_element_path(op.path())?,
    };
    let matches = path.select(idx);
    if !op.expected().allows(matches.elems.len()) {
        return Err(XmlError::CountMismatch {
            file: ctx.file.to_string(),
            op: ctx.op,
            path: op.path().to_string(),
            expected: op.expected(),
            found: matches.elems.len(),
            deepest: matches.deepest,
        });
    }
    Ok((path, matches.elems))
}

/// The edit one op makes on one matched element (`None` when it is already as desired).
fn edit_for(
    ctx: &OpCtx<'_>,
    view: &View<'_>,
    op: &Op,
    path: &Path,
    elem: usize,
    secrets: &mut Vec<String>,
) -> Result<Option<Edit>, XmlError> {
    let e = &view.idx.elems[elem];
    match op {
        Op::SetText { value, secret, .. } => {
            note_secret(secrets, *secret, value, &e.text);
            set_text(ctx, view.text, e, value)
        }
        Op::SetAttr { value, secret, .. } => {
            let name = path.attr.as_deref().unwrap_or_default();
            let old = e.attr(name).map_or("", |a| a.value.as_str());
            note_secret(secrets, *secret, value, old);
            Ok(set_attr(view.text, e, name, value))
        }
        Op::Ensure {
            key,
            fragment,
            position,
            if_present,
            ..
        } => {
            let spec = EnsureSpec {
                key,
                fragment,
                position,
                if_present: *if_present,
            };
            ensure(ctx, view.text, &view.style(), view.idx, elem, &spec)
        }
        Op::ReplaceContent { content, .. } => {
            replace_content(ctx, view.text, &view.style(), view.idx, e, content)
        }
        Op::Remove { .. } => remove(ctx, view.text, e),
    }
}

/// Whether XML 1.0 allows `ch` in a document (its `Char` production).
fn xml_char(ch: char) -> bool {
    matches!(ch, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Refuses edits holding a character XML 1.0 forbids or the file's encoding cannot write.
fn check_writable(
    ctx: &OpCtx<'_>,
    encoding: Encoding,
    op: &Op,
    edits: &[Edit],
) -> Result<(), XmlError> {
    let forbidden = edits
        .iter()
        .find_map(|e| e.text.chars().find(|&c| !xml_char(c)));
    let (ch, target) = match forbidden {
        Some(ch) => (ch, "XML 1.0".to_string()),
        None => match edits
            .iter()
            .find_map(|e| encoding.first_unencodable(&e.text))
        {
            Some(ch) => (ch, encoding.name().to_string()),
            None => return Ok(()),
        },
    };
    Err(XmlError::Unrepresentable {
        file: ctx.file.to_string(),
        op: ctx.op,
        path: op.path().to_string(),
        encoding: target,
        what: if op.is_secret() {
            "a character of the secret value".to_string()
        } else {
            format!("character {ch:?} (U+{:04X})", ch as u32)
        },
    })
}

/// Parses a `set_attr` path, which must end in `/@name`.
fn attribute_path(path: &str) -> Result<Path, XmlError> {
    let p = Path::parse(path)?;
    if p.attr.is_none() {
        return Err(XmlError::PathSyntax {
            path: path.to_string(),
            position: path.len(),
            message: "set_attr needs a path ending in /@name".to_string(),
        });
    }
    Ok(p)
}

/// Remembers a secret op's new and old values, for [`Patched::secrets`].
fn note_secret(secrets: &mut Vec<String>, secret: bool, new: &str, old: &str) {
    if secret {
        for s in [new, old] {
            if !s.is_empty() && !secrets.iter().any(|k| k == s) {
                secrets.push(s.to_string());
            }
        }
    }
}

/// Sorts an op's edits and refuses overlapping ones (nested matches).
fn check_disjoint(ctx: &OpCtx<'_>, edits: &mut [Edit]) -> Result<(), XmlError> {
    edits.sort_by_key(|e| (e.range.start, !e.range.is_empty()));
    if edits.windows(2).any(|w| w[1].range.start < w[0].range.end) {
        return Err(ctx.not_applicable(
            "the matched elements overlap (one contains another); narrow the path",
        ));
    }
    Ok(())
}

/// Applies disjoint edits in one pass (insertions at an offset before a replacement there).
fn splice(text: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| (e.range.start, !e.range.is_empty()));
    let mut out = String::with_capacity(text.len() + 64);
    let mut pos = 0;
    for e in edits {
        debug_assert!(e.range.start >= pos, "edits are disjoint");
        out.push_str(&text[pos..e.range.start]);
        out.push_str(&e.text);
        pos = e.range.end;
    }
    out.push_str(&text[pos..]);
    out
}

/// The edit turning `<x a="1"/>` into `<x a="1">inner</x>`.
pub(crate) fn open_empty_element(text: &str, e: &Elem, inner: &str) -> Edit {
    let tag = &text[e.start_tag.clone()];
    let body_end = e.start_tag.start + tag[..tag.len() - 2].trim_end().len();
    edit(body_end..e.start_tag.end, format!(">{inner}</{}>", e.qname))
}

fn set_text(ctx: &OpCtx<'_>, text: &str, e: &Elem, value: &str) -> Result<Option<Edit>, XmlError> {
    if !e.children.is_empty() {
        return Err(ctx.not_applicable(format!(
            "<{}> has child elements; set_text would delete them (use replace_content)",
            e.qname
        )));
    }
    if e.has_markup {
        return Err(ctx.not_applicable(format!(
            "<{}> holds comments or processing instructions; set_text would delete them",
            e.qname
        )));
    }
    if e.text == value {
        return Ok(None);
    }
    let escaped = escape_text(value);
    Ok(Some(match e.content() {
        Some(content) => edit(content, escaped),
        None => open_empty_element(text, e, &escaped),
    }))
}

/// Where a new attribute goes (after the last one) and the quote it uses (the last one's).
fn new_attr_position(e: &Elem) -> (usize, char) {
    match e.attrs.last() {
        // A pending insertion: the same point, so the edit touches it and forces a splice.
        Some(last) if last.placeholder => (last.value_span.start, last.quote),
        Some(last) => (last.value_span.end + 1, last.quote),
        None => (e.name_end, '"'),
    }
}

fn set_attr(text: &str, e: &Elem, name: &str, value: &str) -> Option<Edit> {
    if let Some(a) = e.attr(name) {
        return (a.value != value).then(|| edit(a.value_span.clone(), escape_attr(value, a.quote)));
    }
    let (at, quote) = new_attr_position(e);
    debug_assert!(text.is_char_boundary(at));
    Some(edit(
        at..at,
        format!(" {name}={quote}{}{quote}", escape_attr(value, quote)),
    ))
}
