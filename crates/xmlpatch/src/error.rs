//! The one error type of the crate. Every variant carries the file label and enough context
//! (line and column, path, op number, what is allowed) for an operator to act on it without
//! a debugger. Values are never included: they may be secrets.

use crate::ops::Count;

/// Everything that can go wrong while reading, querying or patching a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The input is not well-formed XML (nothing is changed).
    #[error("{file}:{line}:{column}: malformed XML: {message}")]
    Malformed {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },

    /// The declared or detected encoding cannot be written back byte for byte.
    #[error(
        "{file}: encoding {encoding:?} is not supported (only UTF-8, ISO-8859-1/latin1 and US-ASCII can be \
         written back faithfully); the file was left untouched"
    )]
    UnsupportedEncoding { file: String, encoding: String },

    /// The bytes do not decode in the declared encoding.
    #[error("{file}:{line}:{column}: bytes are not valid {encoding}")]
    InvalidBytes {
        file: String,
        line: usize,
        column: usize,
        encoding: String,
    },

    /// A value or fragment holds a character the file's encoding cannot represent.
    /// `what` names the character, unless the op is secret ("a character of the secret value").
    #[error(
        "{file}: op #{op} at {path}: {what} cannot be written in {encoding}; the file was left untouched"
    )]
    Unrepresentable {
        file: String,
        op: usize,
        path: String,
        encoding: String,
        what: String,
    },

    /// The path expression does not parse.
    #[error("path {path:?}, at character {position}: {message}")]
    PathSyntax {
        path: String,
        position: usize,
        message: String,
    },

    /// The number of matching elements differs from what the operation expects.
    #[error(
        "{file}: op #{op}: path {path} expected {expected}, found {found}; deepest match: {deepest}"
    )]
    CountMismatch {
        file: String,
        op: usize,
        path: String,
        expected: Count,
        found: usize,
        deepest: String,
    },

    /// The operation cannot be applied to the element it matched (e.g. set_text on an
    /// element with child elements).
    #[error("{file}: op #{op}: {path}: {reason}")]
    NotApplicable {
        file: String,
        op: usize,
        path: String,
        reason: String,
    },

    /// An XML fragment given to ensure/replace_content is malformed or does not fit its key.
    #[error("{file}: op #{op}: fragment for {path}: {message}")]
    BadFragment {
        file: String,
        op: usize,
        path: String,
        message: String,
    },

    /// A read query (get_text, get_attr) matched no element, or several.
    #[error(
        "{file}: {path}: expected exactly one element, found {found}; deepest match: {deepest}"
    )]
    QueryMismatch {
        file: String,
        path: String,
        found: usize,
        deepest: String,
    },
}
