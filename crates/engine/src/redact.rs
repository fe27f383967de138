//! Redaction by value: every secret resolved from the inventory is registered
//! here, and every string that leaves the process through a plan, a diff, a
//! log line or an error passes through [`Redactor::mask`].
//!
//! Masking by value (not by field) is deliberately blunt: a secret copied into
//! a template, a JDBC URL or a remote error message is still caught.

#[derive(Debug, Default, Clone)]
pub struct Redactor {
    secrets: Vec<String>,
}

pub const MASK: &str = "********";

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a secret value (empty values are ignored: they cannot leak).
    pub fn add(&mut self, secret: &str) {
        if !secret.is_empty() && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_string());
            // Longest first, so a secret containing another is masked whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// The text with every registered secret replaced by `********`, including
    /// the XML-escaped form a secret takes inside a config file.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), MASK);
            let escaped = xml_escape(s);
            if escaped != *s {
                out = out.replace(&escaped, MASK);
            }
        }
        out
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_plain_and_xml_escaped_secrets() {
        let mut r = Redactor::new();
        r.add("p&ss");
        assert_eq!(
            r.mask("<password>p&amp;ss</password> p&ss"),
            "<password>********</password> ********"
        );
    }

    #[test]
    fn longer_secret_wins_over_its_prefix() {
        let mut r = Redactor::new();
        r.add("abc");
        r.add("abcdef");
        assert_eq!(r.mask("x abcdef y abc"), "x ******** y ********");
    }
}
