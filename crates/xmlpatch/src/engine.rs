//! The patch engine: runs operations in order against the text, each one turning matched
//! spans into edits that are spliced into the current text. Nothing is ever re-serialized, so
//! every byte outside an edit stays as it was. After an operation changes the text, the span
//! index is rebuilt before the next operation looks at it (later ops see earlier results).

use std::borrow::Cow;
use std::ops::Range;

use crate::diff;
use crate::document::{Document, build_index, parse_element_path};
use crate::encoding::{self, Encoding};
use crate::error::XmlError;
use crate::escape::{escape_attr, escape_text};
use crate::index::{Elem, Index};
use crate::layout::{indent_unit, line_ending, line_indent, line_start, own_line_indent, reindent};
use crate::ops::{IfPresent, Op, Position};
use crate::path::{Path, Step, parse_step};

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

    /// A unified diff of the change. Values of ops marked `secret` (and the values they
    /// replaced), plus `extra_secrets`, appear as `********` on both sides.
    pub fn diff(&self, extra_secrets: &[&str]) -> String {
        let mut secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        secrets.extend_from_slice(extra_secrets);
        diff::unified_diff(&self.file, &self.old_text, &self.new_text, &secrets)
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
        secrets: Vec::new(),
    };
    let mut changes = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        changes.push(work.run(i + 1, op)?);
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
struct Style<'a> {
    eol: &'a str,
    unit: String,
}

/// One replacement of a byte range of the current text.
struct Edit {
    range: Range<usize>,
    text: String,
}

fn edit(range: Range<usize>, text: impl Into<String>) -> Edit {
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
    /// Borrowed from the document until the first change; `None` after a change, until the
    /// next op needs it.
    index: Option<Cow<'d, Index>>,
    secrets: Vec<String>,
}

/// Context every edit builder needs, for error messages.
struct OpCtx<'a> {
    file: &'a str,
    op: usize,
    path: &'a str,
}

impl OpCtx<'_> {
    fn not_applicable(&self, reason: impl Into<String>) -> XmlError {
        XmlError::NotApplicable {
            file: self.file.to_string(),
            op: self.op,
            path: self.path.to_string(),
            reason: reason.into(),
        }
    }

    fn bad_fragment(&self, message: impl Into<String>) -> XmlError {
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
        if self.index.is_none() {
            self.index = Some(Cow::Owned(build_index(self.file, &self.text)?));
        }
        let view = View {
            text: &self.text,
            eol: self.eol,
            idx: self.index.as_ref().expect("index was just built"),
        };
        let ctx = OpCtx {
            file: self.file,
            op: op_no,
            path: op.path(),
        };
        let (path, matched) = select_checked(&ctx, op, view.idx)?;
        let mut edits = Vec::new();
        for &elem in &matched {
            edits.extend(edit_for(&ctx, &view, op, &path, elem, &mut self.secrets)?);
        }
        check_encodable(&ctx, self.encoding, op, &edits)?;
        let changed = !edits.is_empty();
        if changed {
            self.text = splice(&ctx, &self.text, edits)?;
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

/// Refuses edits holding a character the file's encoding cannot write.
fn check_encodable(
    ctx: &OpCtx<'_>,
    encoding: Encoding,
    op: &Op,
    edits: &[Edit],
) -> Result<(), XmlError> {
    let Some(ch) = edits
        .iter()
        .find_map(|e| encoding.first_unencodable(&e.text))
    else {
        return Ok(());
    };
    Err(XmlError::Unrepresentable {
        file: ctx.file.to_string(),
        op: ctx.op,
        path: op.path().to_string(),
        encoding: encoding.name().to_string(),
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

/// Remembers a secret op's new and old values so diffs can mask them.
fn note_secret(secrets: &mut Vec<String>, secret: bool, new: &str, old: &str) {
    if secret {
        for s in [new, old] {
            if !s.is_empty() && !secrets.iter().any(|k| k == s) {
                secrets.push(s.to_string());
            }
        }
    }
}

/// Applies non-overlapping edits in one pass.
fn splice(ctx: &OpCtx<'_>, text: &str, mut edits: Vec<Edit>) -> Result<String, XmlError> {
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    let mut out = String::with_capacity(text.len() + 64);
    let mut pos = 0;
    for e in edits {
        if e.range.start < pos {
            return Err(ctx.not_applicable(
                "the matched elements overlap (one contains another); narrow the path",
            ));
        }
        out.push_str(&text[pos..e.range.start]);
        out.push_str(&e.text);
        pos = e.range.end;
    }
    out.push_str(&text[pos..]);
    Ok(out)
}

/// The edit turning `<x a="1"/>` into `<x a="1">inner</x>`.
fn open_empty_element(text: &str, e: &Elem, inner: &str) -> Edit {
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

fn set_attr(text: &str, e: &Elem, name: &str, value: &str) -> Option<Edit> {
    if let Some(a) = e.attr(name) {
        return (a.value != value).then(|| edit(a.value_span.clone(), escape_attr(value, a.quote)));
    }
    let (at, quote) = match e.attrs.last() {
        Some(last) => (last.value_span.end + 1, last.quote),
        None => (e.name_end, '"'),
    };
    debug_assert!(text.is_char_boundary(at));
    Some(edit(
        at..at,
        format!(" {name}={quote}{}{quote}", escape_attr(value, quote)),
    ))
}

struct EnsureSpec<'a> {
    key: &'a str,
    fragment: &'a str,
    position: &'a Position,
    if_present: IfPresent,
}

fn ensure(
    ctx: &OpCtx<'_>,
    text: &str,
    st: &Style<'_>,
    idx: &Index,
    parent: usize,
    spec: &EnsureSpec<'_>,
) -> Result<Option<Edit>, XmlError> {
    let (eol, unit) = (st.eol, st.unit.as_str());
    let key = parse_step(spec.key)?;
    let frag = parse_fragment(ctx, spec.fragment)?;
    if !key.matches(&frag, &frag.elems[0]) {
        return Err(ctx.bad_fragment(format!(
            "its root element does not satisfy the key {}",
            key.render()
        )));
    }
    let existing = key.children_matching(idx, parent);
    match existing.as_slice() {
        [] => insert_child(ctx, text, st, idx, parent, spec.position, spec.fragment).map(Some),
        [one] => {
            let e = &idx.elems[*one];
            if spec.if_present == IfPresent::Keep || same_element(idx, e, &frag, &frag.elems[0]) {
                return Ok(None);
            }
            let body = reindent(
                spec.fragment,
                line_indent(text, e.start_tag.start),
                unit,
                eol,
            );
            Ok(Some(edit(e.span(), body)))
        }
        many => Err(ctx.not_applicable(format!(
            "{} children match the key {}; a key must identify one element",
            many.len(),
            key.render()
        ))),
    }
}

/// Builds the edit inserting `fragment` as a child of `parent` at `position`.
fn insert_child(
    ctx: &OpCtx<'_>,
    text: &str,
    st: &Style<'_>,
    idx: &Index,
    parent: usize,
    position: &Position,
    fragment: &str,
) -> Result<Edit, XmlError> {
    let (eol, unit) = (st.eol, st.unit.as_str());
    let p = &idx.elems[parent];
    if p.children.is_empty() {
        return Ok(insert_into_childless(text, st, p, fragment));
    }
    let anchor_of = |step: &str, last: bool| -> Result<usize, XmlError> {
        let step: Step = parse_step(step)?;
        let found = step.children_matching(idx, parent);
        let pick = if last { found.last() } else { found.first() };
        pick.copied().ok_or_else(|| {
            ctx.not_applicable(format!("no child matches the anchor {}", step.render()))
        })
    };
    let first_child = &idx.elems[p.children[0]];
    match position {
        Position::First => {
            let at = p.start_tag.end;
            Ok(match own_line_indent(text, first_child.start_tag.start) {
                Some(ci) => edit(
                    at..at,
                    format!("{eol}{ci}{}", reindent(fragment, ci, unit, eol)),
                ),
                None => edit(at..at, reindent(fragment, line_indent(text, at), unit, eol)),
            })
        }
        Position::Last => Ok(insert_after(
            text,
            st,
            &idx.elems[*p.children.last().expect("non-empty")],
            fragment,
        )),
        Position::After(step) => Ok(insert_after(
            text,
            st,
            &idx.elems[anchor_of(step, true)?],
            fragment,
        )),
        Position::Before(step) => {
            let anchor = &idx.elems[anchor_of(step, false)?];
            let at = anchor.start_tag.start;
            Ok(match own_line_indent(text, at) {
                Some(ci) => {
                    let ls = line_start(text, at);
                    edit(
                        ls..ls,
                        format!("{ci}{}{eol}", reindent(fragment, ci, unit, eol)),
                    )
                }
                None => edit(at..at, reindent(fragment, line_indent(text, at), unit, eol)),
            })
        }
    }
}

fn insert_after(text: &str, st: &Style<'_>, anchor: &Elem, fragment: &str) -> Edit {
    let (eol, unit) = (st.eol, st.unit.as_str());
    let at = anchor.span().end;
    match own_line_indent(text, anchor.start_tag.start) {
        Some(ci) => edit(
            at..at,
            format!("{eol}{ci}{}", reindent(fragment, ci, unit, eol)),
        ),
        None => edit(at..at, reindent(fragment, line_indent(text, at), unit, eol)),
    }
}

fn insert_into_childless(text: &str, st: &Style<'_>, p: &Elem, fragment: &str) -> Edit {
    let (eol, unit) = (st.eol, st.unit.as_str());
    let pi = line_indent(text, p.start_tag.start);
    let ci = format!("{pi}{unit}");
    let body = reindent(fragment, &ci, unit, eol);
    match &p.end_tag {
        None => open_empty_element(text, p, &format!("{eol}{ci}{body}{eol}{pi}")),
        Some(end) => match own_line_indent(text, end.start) {
            Some(_) => {
                let ls = line_start(text, end.start);
                edit(ls..ls, format!("{ci}{body}{eol}"))
            }
            None => edit(end.start..end.start, format!("{eol}{ci}{body}{eol}{pi}")),
        },
    }
}

fn replace_content(
    ctx: &OpCtx<'_>,
    text: &str,
    st: &Style<'_>,
    idx: &Index,
    e: &Elem,
    content: &str,
) -> Result<Option<Edit>, XmlError> {
    let (eol, unit) = (st.eol, st.unit.as_str());
    let wrapped = format!("<xmlpatch-content>{content}</xmlpatch-content>");
    let frag = parse_fragment(ctx, &wrapped)?;
    if same_content(idx, e, &frag, &frag.elems[0]) {
        return Ok(None);
    }
    let inner = if frag.elems.len() == 1 {
        content.to_string()
    } else {
        let pi = line_indent(text, e.start_tag.start);
        let ci = e
            .children
            .first()
            .and_then(|&c| own_line_indent(text, idx.elems[c].start_tag.start))
            .map(str::to_string)
            .unwrap_or_else(|| format!("{pi}{unit}"));
        format!("{eol}{ci}{}{eol}{pi}", reindent(content, &ci, unit, eol))
    };
    Ok(Some(match e.content() {
        Some(range) => edit(range, inner),
        None => open_empty_element(text, e, &inner),
    }))
}

fn remove(ctx: &OpCtx<'_>, text: &str, e: &Elem) -> Result<Option<Edit>, XmlError> {
    if e.parent.is_none() {
        return Err(ctx.not_applicable("the root element cannot be removed"));
    }
    let span = e.span();
    let rest = &text[span.end..];
    let line_end = rest.find('\n').map_or(text.len(), |p| span.end + p + 1);
    let alone =
        own_line_indent(text, span.start).is_some() && text[span.end..line_end].trim().is_empty();
    Ok(Some(if alone {
        edit(line_start(text, span.start)..line_end, "")
    } else {
        edit(span, "")
    }))
}

/// Parses a fragment (one element, no declaration) into its own index.
fn parse_fragment(ctx: &OpCtx<'_>, fragment: &str) -> Result<Index, XmlError> {
    crate::index::build(fragment).map_err(|f| {
        let (line, column) = crate::index::line_col(fragment, f.offset);
        ctx.bad_fragment(format!("line {line}, column {column}: {}", f.message))
    })
}

/// Whether two elements are equal as configuration: same name, same attributes (any order),
/// same text (ignoring whitespace around child elements) and equal children in order.
/// Comments and formatting do not count.
fn same_element(a_idx: &Index, a: &Elem, b_idx: &Index, b: &Elem) -> bool {
    if a.qname != b.qname || a.attrs.len() != b.attrs.len() {
        return false;
    }
    let attrs_equal = a
        .attrs
        .iter()
        .all(|x| b.attr(&x.qname).is_some_and(|y| y.value == x.value));
    attrs_equal && same_content(a_idx, a, b_idx, b)
}

fn same_content(a_idx: &Index, a: &Elem, b_idx: &Index, b: &Elem) -> bool {
    if a.children.len() != b.children.len() {
        return false;
    }
    let text_equal = if a.children.is_empty() {
        a.text == b.text
    } else {
        a.text.split_whitespace().eq(b.text.split_whitespace())
    };
    text_equal
        && a.children
            .iter()
            .zip(&b.children)
            .all(|(&x, &y)| same_element(a_idx, &a_idx.elems[x], b_idx, &b_idx.elems[y]))
}
