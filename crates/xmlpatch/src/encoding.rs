//! Byte-faithful decoding and encoding of whole documents.
//!
//! The engine works on a Rust `String`, so a document must round-trip bytes -> text -> bytes
//! unchanged. That holds for UTF-8 (with or without BOM), for ISO-8859-1 (each byte is the code
//! point of the same number) and for US-ASCII. Anything else (UTF-16, windows-1252, ...) is
//! refused instead of guessed at, and a value that the file's encoding cannot hold is refused
//! instead of being mangled.

use crate::error::XmlError;

const UTF8_BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

/// The character encodings a document can be read in and written back faithfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Latin1,
    Ascii,
}

impl Encoding {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Latin1 => "ISO-8859-1",
            Encoding::Ascii => "US-ASCII",
        }
    }

    /// Whether `ch` can be written in this encoding.
    pub fn can_encode(self, ch: char) -> bool {
        match self {
            Encoding::Utf8 => true,
            Encoding::Latin1 => (ch as u32) <= 0xFF,
            Encoding::Ascii => ch.is_ascii(),
        }
    }

    /// The first character of `s` this encoding cannot write, if any.
    pub fn first_unencodable(self, s: &str) -> Option<char> {
        s.chars().find(|&c| !self.can_encode(c))
    }

    fn from_label(label: &str) -> Option<Encoding> {
        match label.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "latin-1" | "l1"
            | "iso-ir-100" | "cp819" | "ibm819" => Some(Encoding::Latin1),
            "us-ascii" | "ascii" => Some(Encoding::Ascii),
            _ => None,
        }
    }
}

/// A decoded document: its text plus what is needed to write it back identically.
#[derive(Debug, Clone)]
pub(crate) struct Decoded {
    pub text: String,
    pub encoding: Encoding,
    pub bom: bool,
}

/// Decodes `bytes`, refusing encodings that cannot be written back byte for byte.
pub(crate) fn decode(file: &str, bytes: &[u8]) -> Result<Decoded, XmlError> {
    refuse_utf16(file, bytes)?;
    let (bom, body) = match bytes.strip_prefix(UTF8_BOM) {
        Some(rest) => (true, rest),
        None => (false, bytes),
    };
    let encoding = match declared_encoding(body) {
        None => Encoding::Utf8,
        Some(label) => Encoding::from_label(&label).ok_or(XmlError::UnsupportedEncoding {
            file: file.to_string(),
            encoding: label.clone(),
        })?,
    };
    if bom && encoding != Encoding::Utf8 {
        return Err(XmlError::UnsupportedEncoding {
            file: file.to_string(),
            encoding: format!("{} with a UTF-8 byte order mark", encoding.name()),
        });
    }
    let text = decode_body(file, body, encoding)?;
    Ok(Decoded {
        text,
        encoding,
        bom,
    })
}

/// Encodes `text` back; the caller has already checked every written value is encodable.
pub(crate) fn encode(text: &str, encoding: Encoding, bom: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 3);
    if bom {
        out.extend_from_slice(UTF8_BOM);
    }
    match encoding {
        Encoding::Utf8 | Encoding::Ascii => out.extend_from_slice(text.as_bytes()),
        Encoding::Latin1 => out.extend(text.chars().map(|c| c as u32 as u8)),
    }
    out
}

fn refuse_utf16(file: &str, bytes: &[u8]) -> Result<(), XmlError> {
    let utf16 = bytes.starts_with(&[0xFE, 0xFF])
        || bytes.starts_with(&[0xFF, 0xFE])
        || bytes.starts_with(&[0x00, b'<'])
        || bytes.starts_with(&[b'<', 0x00]);
    if utf16 {
        return Err(XmlError::UnsupportedEncoding {
            file: file.to_string(),
            encoding: "UTF-16".to_string(),
        });
    }
    Ok(())
}

/// The `encoding="..."` pseudo-attribute of a leading XML declaration, if any.
fn declared_encoding(body: &[u8]) -> Option<String> {
    let rest = body.strip_prefix(b"<?xml")?;
    if !rest.first().is_some_and(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let end = rest.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&rest[..end]).ok()?;
    let at = decl.find("encoding")?;
    let after = decl[at + "encoding".len()..].trim_start();
    let after = after.strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &after[1..];
    let close = value.find(quote)?;
    Some(value[..close].to_string())
}

fn decode_body(file: &str, body: &[u8], encoding: Encoding) -> Result<String, XmlError> {
    match encoding {
        Encoding::Utf8 => std::str::from_utf8(body)
            .map(str::to_string)
            .map_err(|e| invalid_at(file, body, e.valid_up_to(), encoding)),
        Encoding::Ascii => match body.iter().position(|b| !b.is_ascii()) {
            Some(pos) => Err(invalid_at(file, body, pos, encoding)),
            None => Ok(String::from_utf8(body.to_vec()).expect("ASCII is UTF-8")),
        },
        Encoding::Latin1 => Ok(body.iter().map(|&b| b as char).collect()),
    }
}

fn invalid_at(file: &str, body: &[u8], pos: usize, encoding: Encoding) -> XmlError {
    let before = &body[..pos];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    XmlError::InvalidBytes {
        file: file.to_string(),
        line,
        column,
        encoding: encoding.name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_round_trips_every_byte() {
        let mut bytes = b"<?xml version='1.0' encoding='ISO-8859-1'?><a>".to_vec();
        bytes.extend(0x80u8..=0xFF);
        bytes.extend_from_slice(b"</a>");
        let d = decode("f", &bytes).unwrap();
        assert_eq!(d.encoding, Encoding::Latin1);
        assert_eq!(encode(&d.text, d.encoding, d.bom), bytes);
    }

    #[test]
    fn utf8_bom_is_kept() {
        let bytes = b"\xEF\xBB\xBF<a>\xC3\xA9</a>".to_vec();
        let d = decode("f", &bytes).unwrap();
        assert!(d.bom);
        assert_eq!(d.text, "<a>\u{e9}</a>");
        assert_eq!(encode(&d.text, d.encoding, d.bom), bytes);
    }

    #[test]
    fn utf16_and_unknown_labels_are_refused() {
        let utf16 = [0xFF, 0xFE, b'<', 0, b'a', 0];
        assert!(matches!(
            decode("f", &utf16),
            Err(XmlError::UnsupportedEncoding { .. })
        ));
        let sjis = b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><a/>";
        let err = decode("f", sjis).unwrap_err();
        assert!(err.to_string().contains("Shift_JIS"), "{err}");
    }

    #[test]
    fn invalid_utf8_reports_line_and_column() {
        let bytes = b"<a>\n  <b>\xFF</b></a>";
        let err = decode("conf.xml", bytes).unwrap_err();
        assert_eq!(err.to_string(), "conf.xml:2:6: bytes are not valid UTF-8");
    }
}
