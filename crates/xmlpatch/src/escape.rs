//! Escaping of values on their way into the text. Text gets `&`, `<`, `>` (and a carriage
//! return as a reference so it survives end-of-line normalisation); attribute values also get
//! their own quote character and whitespace references, so reading them back gives the value.

/// Escapes `value` for use as element text.
pub fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes `value` for use inside an attribute delimited by `quote` (`"` or `'`).
pub fn escape_attr(value: &str, quote: char) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if quote == '"' => out.push_str("&quot;"),
            '\'' if quote == '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jdbc_url_ampersand_is_escaped() {
        assert_eq!(
            escape_text("jdbc:mysql://db:3306/x?autoReconnect=true&useSSL=false"),
            "jdbc:mysql://db:3306/x?autoReconnect=true&amp;useSSL=false"
        );
    }

    #[test]
    fn attribute_escapes_only_its_own_quote() {
        assert_eq!(escape_attr(r#"a"b'c<"#, '"'), "a&quot;b'c&lt;");
        assert_eq!(escape_attr(r#"a"b'c"#, '\''), "a\"b&apos;c");
    }
}
