//! Escaping of values on their way into the text: the one escaper of the workspace (the
//! playbook's `| xml` filter and the redactor's search for escaped secrets use it too). Text
//! gets `&`, `<`, `>` (and a carriage return as a reference so it survives end-of-line
//! normalisation); attribute values also get their own quote character and whitespace
//! references, so reading them back gives the value.

/// Which characters besides `&`, `<`, `>` and CR become references.
#[derive(Clone, Copy)]
struct Rules {
    double_quote: bool,
    single_quote: bool,
    /// Tab and newline: an attribute value's are normalised to spaces when read.
    whitespace: bool,
}

fn escape(value: &str, rules: Rules) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if rules.double_quote => out.push_str("&quot;"),
            '\'' if rules.single_quote => out.push_str("&apos;"),
            '\t' if rules.whitespace => out.push_str("&#9;"),
            '\n' if rules.whitespace => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes `value` for use as element text.
pub fn escape_text(value: &str) -> String {
    escape(
        value,
        Rules {
            double_quote: false,
            single_quote: false,
            whitespace: false,
        },
    )
}

/// Escapes `value` for use inside an attribute delimited by `quote` (`"` or `'`).
pub fn escape_attr(value: &str, quote: char) -> String {
    escape(
        value,
        Rules {
            double_quote: quote == '"',
            single_quote: quote == '\'',
            whitespace: true,
        },
    )
}

/// Escapes `value` for a fragment of markup written before anyone knows where the value lands
/// (a template's `| xml`): element text, or an attribute with either quote. Both quotes become
/// references; line breaks stay as they are, as element text wants them.
pub fn escape_markup(value: &str) -> String {
    escape(
        value,
        Rules {
            double_quote: true,
            single_quote: true,
            whitespace: false,
        },
    )
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

    #[test]
    fn markup_escapes_both_quotes_but_keeps_slashes_and_newlines() {
        assert_eq!(
            escape_markup("jdbc:mysql://h/db?a=1&b='2'<>\"\n"),
            "jdbc:mysql://h/db?a=1&amp;b=&apos;2&apos;&lt;&gt;&quot;\n"
        );
    }

    #[test]
    fn a_carriage_return_is_a_reference_everywhere() {
        // A literal CR is turned into LF by every XML reader; only the reference keeps it.
        for escaped in [
            escape_text("a\rb"),
            escape_attr("a\rb", '"'),
            escape_markup("a\rb"),
        ] {
            assert_eq!(escaped, "a&#13;b");
        }
    }

    #[test]
    fn text_and_attributes_read_back_as_the_value() {
        let value = "t\u{e9}st & <tag> \"q\" 'a'\ttab\nline\r";
        let doc = format!(
            "<r a=\"{}\" b='{}'>{}<m>{}</m></r>",
            escape_attr(value, '"'),
            escape_attr(value, '\''),
            escape_text(value),
            escape_markup(value)
        );
        let parsed = roxmltree::Document::parse(&doc).unwrap();
        let root = parsed.root_element();
        assert_eq!(root.attribute("a"), Some(value));
        assert_eq!(root.attribute("b"), Some(value));
        assert_eq!(root.first_child().unwrap().text(), Some(value));
        assert_eq!(root.last_child().unwrap().text(), Some(value));
    }
}
