//! The span index: one pass of quick-xml over the document text that records, for every
//! element, the byte ranges of its start tag, content and end tag, its attributes' value ranges
//! and its decoded character data.
//!
//! Only elements are indexed. Comments, CDATA, processing instructions, the declaration and the
//! DOCTYPE are skipped, which is why a commented-out block such as `<!--Foo>x</Foo-->` can never
//! be matched. The index is read-only; edits are spliced into the original text elsewhere.

use std::ops::Range;

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// One attribute of a start tag.
#[derive(Debug, Clone)]
pub(crate) struct Attr {
    pub qname: String,
    /// The raw (still escaped) value, without quotes.
    pub value_span: Range<usize>,
    /// The value after reference resolution and attribute-value normalisation.
    pub value: String,
    pub quote: char,
    /// Stands for an insertion not yet spliced into the text (see the engine's pending edits).
    pub placeholder: bool,
}

/// One element of the document.
#[derive(Debug, Clone)]
pub(crate) struct Elem {
    pub qname: String,
    pub parent: Option<usize>,
    /// Child elements, in document order.
    pub children: Vec<usize>,
    pub start_tag: Range<usize>,
    /// Offset just after the qualified name in the start tag.
    pub name_end: usize,
    /// `None` for the empty-element form `<x/>`.
    pub end_tag: Option<Range<usize>>,
    pub attrs: Vec<Attr>,
    /// Decoded character data directly inside (text, references, CDATA).
    pub text: String,
    /// Whether comments or processing instructions sit directly inside.
    pub has_markup: bool,
}

impl Elem {
    /// From `<` of the start tag to the `>` of the end tag.
    pub fn span(&self) -> Range<usize> {
        let end = self.end_tag.as_ref().map_or(self.start_tag.end, |e| e.end);
        self.start_tag.start..end
    }

    /// The content between the tags; `None` for `<x/>`.
    pub fn content(&self) -> Option<Range<usize>> {
        self.end_tag.as_ref().map(|e| self.start_tag.end..e.start)
    }

    pub fn attr(&self, qname: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.qname == qname)
    }
}

/// All elements of a document, in document order (`elems[0]` is the root).
#[derive(Debug, Clone)]
pub(crate) struct Index {
    pub elems: Vec<Elem>,
}

impl Index {
    pub fn root(&self) -> usize {
        0
    }

    /// All descendants of `id` (not `id` itself), in document order.
    pub fn descendants(&self, id: usize) -> impl Iterator<Item = usize> + '_ {
        let end = self.elems[id].span().end;
        (id + 1..self.elems.len()).take_while(move |&d| self.elems[d].start_tag.start < end)
    }
}

/// Where and why the text is not well-formed.
#[derive(Debug, Clone)]
pub(crate) struct ParseFailure {
    pub offset: usize,
    pub message: String,
}

fn fail(offset: usize, message: impl Into<String>) -> ParseFailure {
    ParseFailure {
        offset,
        message: message.into(),
    }
}

/// Builds the index of `text`, or says where it is malformed.
pub(crate) fn build(text: &str) -> Result<Index, ParseFailure> {
    // The caller strips one BOM; quick-xml would silently skip another and shift every offset.
    if text.starts_with('\u{feff}') {
        return Err(fail(
            0,
            "a byte order mark (U+FEFF) where the document should start",
        ));
    }
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.trim_text(false);
    config.expand_empty_elements = false;
    config.check_end_names = true;
    config.check_comments = false;

    let mut elems: Vec<Elem> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader
            .read_event()
            .map_err(|e| fail(reader.error_position() as usize, e.to_string()))?;
        let after = reader.buffer_position() as usize;
        if before > after
            || after > text.len()
            || !text.is_char_boundary(before)
            || !text.is_char_boundary(after)
        {
            return Err(fail(
                before.min(text.len()),
                "internal: parser offsets out of step",
            ));
        }
        match event {
            Event::Start(tag) | Event::Empty(tag) => {
                if stack.is_empty() && !elems.is_empty() {
                    return Err(fail(
                        before,
                        "a second root element; a document has exactly one",
                    ));
                }
                let is_empty = text[before..after].ends_with("/>");
                let id = elems.len();
                let parent = stack.last().copied();
                elems.push(start_elem(text, &tag, before..after, parent)?);
                if let Some(p) = parent {
                    elems[p].children.push(id);
                }
                if !is_empty {
                    stack.push(id);
                }
            }
            Event::End(_) => {
                let id = stack
                    .pop()
                    .ok_or_else(|| fail(before, "end tag without a start tag"))?;
                elems[id].end_tag = Some(before..after);
            }
            Event::Text(t) => {
                let raw = t.into_inner();
                if raw.contains('\r') {
                    push_text(&mut elems, &stack, before, &raw.replace("\r\n", "\n"))?;
                } else {
                    push_text(&mut elems, &stack, before, &raw)?;
                }
            }
            Event::CData(c) => {
                let raw = c.into_inner();
                push_text(&mut elems, &stack, before, &raw)?;
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    Ok(None) => match resolve_predefined_entity(&r) {
                        Some(s) => s.to_string(),
                        None => format!("&{};", &*r),
                    },
                    Err(e) => return Err(fail(before, e.to_string())),
                };
                push_text(&mut elems, &stack, before, &resolved)?;
            }
            Event::Comment(_) | Event::PI(_) => {
                if let Some(&top) = stack.last() {
                    elems[top].has_markup = true;
                }
            }
            Event::Decl(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(&open) = stack.last() {
        let name = &elems[open].qname;
        return Err(fail(
            elems[open].start_tag.start,
            format!("element <{name}> is never closed"),
        ));
    }
    if elems.is_empty() {
        return Err(fail(text.len(), "no root element"));
    }
    Ok(Index { elems })
}

fn push_text(elems: &mut [Elem], stack: &[usize], at: usize, s: &str) -> Result<(), ParseFailure> {
    match stack.last() {
        Some(&top) => elems[top].text.push_str(s),
        None if s.chars().all(char::is_whitespace) => {}
        None => return Err(fail(at, "text outside the root element")),
    }
    Ok(())
}

fn start_elem(
    text: &str,
    tag: &BytesStart<'_>,
    span: Range<usize>,
    parent: Option<usize>,
) -> Result<Elem, ParseFailure> {
    let qname = tag.name().as_ref().to_string();
    let name_end = span.start + 1 + qname.len();
    let mut attrs = Vec::new();
    let mut iter = tag.attributes();
    iter.with_checks(true);
    for attr in iter {
        let attr = attr.map_err(|e| fail(span.start, e.to_string()))?;
        let offset = (attr.value.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
        if offset < span.start || offset + attr.value.len() > span.end {
            return Err(fail(
                span.start,
                "internal: attribute value outside its tag",
            ));
        }
        let quote = text[..offset].chars().next_back().unwrap_or('"');
        let value = attr
            .normalized_value_with(XmlVersion::Implicit1_0, 1, resolve_predefined_entity)
            .map(|v| v.into_owned())
            .unwrap_or_else(|_| attr.value.to_string());
        attrs.push(Attr {
            qname: attr.key.as_ref().to_string(),
            value_span: offset..offset + attr.value.len(),
            value,
            quote,
            placeholder: false,
        });
    }
    Ok(Elem {
        qname,
        parent,
        children: Vec::new(),
        start_tag: span,
        name_end,
        end_tag: None,
        attrs,
        text: String::new(),
        has_markup: false,
    })
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commented_and_cdata_lookalikes_are_not_elements() {
        let text = "<r><!--Foo>x</Foo--><![CDATA[<Foo>y</Foo>]]><Foo a='1'>z</Foo></r>";
        let idx = build(text).unwrap();
        let names: Vec<_> = idx.elems.iter().map(|e| e.qname.as_str()).collect();
        assert_eq!(names, ["r", "Foo"]);
        assert_eq!(idx.elems[1].text, "z");
        assert_eq!(&text[idx.elems[1].attrs[0].value_span.clone()], "1");
        assert_eq!(idx.elems[1].attrs[0].quote, '\'');
        assert_eq!(idx.elems[0].text, "<Foo>y</Foo>");
    }

    #[test]
    fn spans_cover_tags_and_content() {
        let text = "<a>\n  <b x=\"1\"/>\n  <c>t&amp;u</c>\n</a>";
        let idx = build(text).unwrap();
        let c = &idx.elems[2];
        assert_eq!(&text[c.span()], "<c>t&amp;u</c>");
        assert_eq!(&text[c.content().unwrap()], "t&amp;u");
        assert_eq!(c.text, "t&u");
        assert!(idx.elems[1].end_tag.is_none());
        assert_eq!(idx.descendants(0).count(), 2);
    }

    #[test]
    fn malformed_inputs_report_where() {
        let err = build("<a>\n<b></c></a>").unwrap_err();
        assert_eq!(line_col("<a>\n<b></c></a>", err.offset), (2, 4));
        assert!(build("<a>").is_err());
        assert!(build("<a/><b/>").is_err());
        assert!(build("").is_err());
        assert!(build("<a x='1' x='2'/>").is_err());
        assert!(
            build("\u{feff}<a/>").is_err(),
            "a second BOM is not skipped silently"
        );
    }
}
