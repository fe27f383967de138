//! `Document`: a parsed file (its exact text, encoding and span index) plus the read API
//! (`get_text`, `get_attr`, `count`) that status and drift checks use to probe values.

use crate::encoding::{self, Decoded, Encoding};
use crate::engine::{self, Patched};
use crate::error::XmlError;
use crate::index::{self, Index};
use crate::ops::Op;
use crate::path::Path;

/// A parsed XML document that remembers every byte of its source.
///
/// `Debug` shows the file label, encoding and sizes, never the text (it may hold passwords).
#[derive(Clone)]
pub struct Document {
    file: String,
    decoded: Decoded,
    index: Index,
}

impl Document {
    /// Parses `bytes`; errors name the file as `<input>`.
    pub fn parse(bytes: &[u8]) -> Result<Document, XmlError> {
        Document::parse_named("<input>", bytes)
    }

    /// Parses `bytes`, naming `file` in every error and diff.
    pub fn parse_named(file: &str, bytes: &[u8]) -> Result<Document, XmlError> {
        let decoded = encoding::decode(file, bytes)?;
        let index = build_index(file, &decoded.text)?;
        Ok(Document {
            file: file.to_string(),
            decoded,
            index,
        })
    }

    /// The label used in errors (usually the file's path).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The encoding the document is written back in.
    pub fn encoding(&self) -> Encoding {
        self.decoded.encoding
    }

    /// The decoded text (for ISO-8859-1 files, each byte is one char).
    pub fn text(&self) -> &str {
        &self.decoded.text
    }

    /// The document's bytes, identical to the input.
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(&self.decoded.text, self.decoded.encoding, self.decoded.bom)
    }

    /// Applies `ops` in order; see [`crate::apply`].
    pub fn apply(&self, ops: &[Op]) -> Result<Patched, XmlError> {
        engine::apply(self, ops)
    }

    /// The text of the one element `path` selects.
    pub fn get_text(&self, path: &str) -> Result<String, XmlError> {
        let elem = self.single(path, false)?;
        Ok(self.index.elems[elem].text.clone())
    }

    /// The texts of every element whose local name (the name without a prefix) is one of
    /// `names`, anywhere in the document, in document order: every value at a place that
    /// holds a credential, whatever wrote it.
    pub fn texts_named(&self, names: &[String]) -> Vec<String> {
        let local = |qname: &str| qname.rsplit(':').next().unwrap_or(qname).to_string();
        self.index
            .elems
            .iter()
            .filter(|e| names.contains(&local(&e.qname)))
            .map(|e| e.text.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// The texts of every element `path` selects (possibly none), in document order.
    pub fn get_all_text(&self, path: &str) -> Result<Vec<String>, XmlError> {
        let p = parse_element_path(path)?;
        let m = p.select(&self.index);
        Ok(m.elems
            .iter()
            .map(|&e| self.index.elems[e].text.clone())
            .collect())
    }

    /// The attribute named by `path` (`/a/b/@name`) on the one element it selects;
    /// `None` when that element lacks the attribute.
    pub fn get_attr(&self, path: &str) -> Result<Option<String>, XmlError> {
        let elem = self.single(path, true)?;
        let p = Path::parse(path)?;
        let name = p.attr.as_deref().unwrap_or_default();
        Ok(self.index.elems[elem].attr(name).map(|a| a.value.clone()))
    }

    /// How many elements `path` selects.
    pub fn count(&self, path: &str) -> Result<usize, XmlError> {
        Ok(parse_element_path(path)?.select(&self.index).elems.len())
    }

    pub(crate) fn decoded(&self) -> &Decoded {
        &self.decoded
    }

    pub(crate) fn index(&self) -> &Index {
        &self.index
    }

    fn single(&self, path: &str, want_attr: bool) -> Result<usize, XmlError> {
        let p = Path::parse(path)?;
        if p.attr.is_some() != want_attr {
            return Err(XmlError::PathSyntax {
                path: path.to_string(),
                position: path.len(),
                message: if want_attr {
                    "get_attr needs a path ending in /@name".to_string()
                } else {
                    "this path selects an attribute; use get_attr".to_string()
                },
            });
        }
        let m = p.select(&self.index);
        match m.elems.as_slice() {
            [one] => Ok(*one),
            _ => Err(XmlError::QueryMismatch {
                file: self.file.clone(),
                path: path.to_string(),
                found: m.elems.len(),
                deepest: m.deepest,
            }),
        }
    }
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("file", &self.file)
            .field("encoding", &self.decoded.encoding)
            .field("chars", &self.decoded.text.len())
            .field("elements", &self.index.elems.len())
            .finish()
    }
}

/// Parses a path that must select elements (no `/@attr`).
pub(crate) fn parse_element_path(path: &str) -> Result<Path, XmlError> {
    let p = Path::parse(path)?;
    if p.attr.is_some() {
        return Err(XmlError::PathSyntax {
            path: path.to_string(),
            position: path.len(),
            message: "this operation needs an element path, not /@attr".to_string(),
        });
    }
    Ok(p)
}

/// Indexes `text`, mapping a parse failure to a line:column error.
pub(crate) fn build_index(file: &str, text: &str) -> Result<Index, XmlError> {
    index::build(text).map_err(|f| {
        let (line, column) = index::line_col(text, f.offset);
        XmlError::Malformed {
            file: file.to_string(),
            line,
            column,
            message: f.message,
        }
    })
}
