//! apim-xmlpatch: in-place XML patching that changes only the bytes it must.
//!
//! Configuration files that operators also edit by hand must come out of a patch with every
//! byte they did not ask to change intact: declaration and encoding, CRLF, indentation,
//! attribute order and quotes, empty-element form, comments, CDATA, references. This crate
//! never re-serializes a tree. It indexes the byte spans of elements with quick-xml and
//! splices escaped values into the original text.
//!
//! **Architecture invariant:** this crate knows nothing of SSH, playbooks or any product's
//! element names; callers hand it bytes and [`Op`]s and get bytes back.
//!
//! # Overview
//! * [`Document::parse_named`] reads bytes (UTF-8, ISO-8859-1 or US-ASCII; anything else is
//!   refused) and builds the span index. Malformed XML is an error with line and column.
//! * Paths (`/Server/Ports/Offset`, `//datasource[name='X']/url`, `/a/b/@enable`) are described
//!   in docs/xml-paths.md. Elements inside comments, CDATA or PIs are never matched.
//! * [`Op`] is plain data (`serde`): `set_text`, `set_attr`, `ensure`, `replace_content`,
//!   `remove`, each with an expected match [`Count`].
//! * [`apply`] runs ops in order and returns [`Patched`]: the new bytes plus one
//!   [`OpOutcome`] per op. Re-applying the same ops to the output is a byte-identical no-op.
//! * [`Patched::secrets`] names the values a diff of the patch must mask (the crate renders no
//!   diffs: callers mask everything they print in one place).
//! * [`Document::get_text`] / [`Document::get_attr`] read values back (for drift checks).
//!
//! # Example
//! ```
//! use apim_xmlpatch::{Document, Op};
//!
//! let doc = Document::parse_named(
//!     "carbon.xml",
//!     b"<Server xmlns=\"urn:x\">\n  <!--Offset>9</Offset-->\n  <Offset>0</Offset>\n</Server>\n",
//! )?;
//! let patched = doc.apply(&[Op::set_text("/Server/Offset", "2")])?;
//! assert_eq!(
//!     patched.text,
//!     b"<Server xmlns=\"urn:x\">\n  <!--Offset>9</Offset-->\n  <Offset>2</Offset>\n</Server>\n"
//! );
//! assert!(patched.changes[0].changed);
//! # Ok::<(), apim_xmlpatch::XmlError>(())
//! ```

mod document;
mod encoding;
mod engine;
mod error;
mod escape;
mod index;
mod layout;
mod ops;
mod path;
mod structure;

pub use document::Document;
pub use encoding::Encoding;
pub use engine::{OpOutcome, Patched, apply};
pub use error::XmlError;
pub use escape::{escape_attr, escape_markup, escape_text};
pub use ops::{Count, IfPresent, MASK, Op, Position};
