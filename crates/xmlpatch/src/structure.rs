//! Structural operations: `ensure`, `replace_content` and `remove`. They insert, replace or
//! delete whole elements, laying new markup out like its neighbours (line ending, sibling
//! indentation) and treating two elements as equal when they are equal as configuration, so
//! formatting alone never triggers a rewrite.

use crate::engine::{Edit, OpCtx, Style, edit, open_empty_element};
use crate::error::XmlError;
use crate::index::{Elem, Index};
use crate::layout::{line_indent, line_start, own_line_indent, reindent};
use crate::ops::{IfPresent, Position};
use crate::path::{Step, parse_step};

/// What `ensure` needs besides the parent.
pub(crate) struct EnsureSpec<'a> {
    pub key: &'a str,
    pub fragment: &'a str,
    pub position: &'a Position,
    pub if_present: IfPresent,
}

pub(crate) fn ensure(
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

pub(crate) fn replace_content(
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

pub(crate) fn remove(ctx: &OpCtx<'_>, text: &str, e: &Elem) -> Result<Option<Edit>, XmlError> {
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
    // Both are only allowed at the top of a document, never inside one.
    for (marker, what) in [("<?xml", "an XML declaration"), ("<!DOCTYPE", "a DOCTYPE")] {
        if fragment.contains(marker) {
            return Err(ctx.bad_fragment(format!("it holds {what}; a fragment is elements only")));
        }
    }
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
