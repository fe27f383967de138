//! Redaction by value: every secret resolved from the inventory is registered
//! here, and every string that leaves the process through a plan, a diff, a
//! log line or an error passes through [`Redactor::mask`]. This is the one
//! masking implementation: diffs ([`crate::modules::file_diff`]) use it too.
//!
//! Masking by value (not by field) is deliberately blunt: a secret copied into
//! a template, a JDBC URL or a remote error message is still caught, and so is
//! every form it takes inside a config file (escaped by the one XML escaper for
//! element text, either attribute quote, or a template's `| xml`).

pub use apim_xmlpatch::MASK;

#[derive(Debug, Default, Clone)]
pub struct Redactor {
    secrets: Vec<String>,
    /// Every text that gives a secret away, longest first, so a secret that
    /// contains another is masked whole.
    forms: Vec<String>,
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a secret value (blank values are ignored: they cannot leak).
    pub fn add(&mut self, secret: &str) {
        if secret.trim().is_empty() || self.secrets.iter().any(|s| s == secret) {
            return;
        }
        self.secrets.push(secret.to_string());
        // A diff or a log shows a multi-line secret line by line.
        let lines = secret.lines().filter(|_| secret.contains('\n'));
        for part in std::iter::once(secret).chain(lines) {
            if part.trim().is_empty() {
                continue;
            }
            for form in [
                part.to_string(),
                apim_xmlpatch::escape_text(part),
                apim_xmlpatch::escape_attr(part, '"'),
                apim_xmlpatch::escape_attr(part, '\''),
                apim_xmlpatch::escape_markup(part),
            ] {
                if !self.forms.contains(&form) {
                    self.forms.push(form);
                }
            }
        }
        self.forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    }

    /// This redactor with more secrets (the values a patch replaces, say).
    pub fn with<'s>(&self, more: impl IntoIterator<Item = &'s String>) -> Redactor {
        let mut r = self.clone();
        for s in more {
            r.add(s);
        }
        r
    }

    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// The text with every registered secret, raw or escaped, replaced by `********`.
    /// A short secret (under [`SHORT`] characters, such as a product's default `admin`) is
    /// masked only where it stands as a word of its own: inside a longer word it is
    /// not the secret, and masking it there would garble the text and, by the gap it
    /// leaves, give the value away. A longer one is masked wherever it appears.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for f in &self.forms {
            if !out.contains(f.as_str()) {
                continue;
            }
            out = if f.chars().count() < SHORT {
                replace_words(&out, f)
            } else {
                out.replace(f.as_str(), MASK)
            };
        }
        out
    }
}

/// Secrets shorter than this are masked as whole words only (and `check` warns
/// about them).
pub const SHORT: usize = 8;

/// `text` with every occurrence of `word` that is not glued to a letter or digit
/// on a side where `word` itself ends in one replaced by the mask.
fn replace_words(text: &str, word: &str) -> String {
    let glued = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let starts_alnum = glued(word.chars().next());
    let ends_alnum = glued(word.chars().last());
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().last().or_else(|| out.chars().last());
        let after = rest[i + word.len()..].chars().next();
        out.push_str(&rest[..i]);
        if (starts_alnum && glued(before)) || (ends_alnum && glued(after)) {
            out.push_str(word);
        } else {
            out.push_str(MASK);
        }
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(secrets: &[&str]) -> Redactor {
        let mut r = Redactor::new();
        for s in secrets {
            r.add(s);
        }
        r
    }

    #[test]
    fn masks_plain_and_xml_escaped_secrets() {
        let r = redactor(&["p&ss"]);
        assert_eq!(
            r.mask("<password>p&amp;ss</password> p&ss"),
            "<password>********</password> ********"
        );
    }

    #[test]
    fn masks_every_form_a_secret_takes_in_a_config_file() {
        let secret = "a'b\"c<d>\te";
        let r = redactor(&[secret]);
        for form in [
            apim_xmlpatch::escape_text(secret),
            apim_xmlpatch::escape_attr(secret, '"'),
            apim_xmlpatch::escape_attr(secret, '\''),
            apim_xmlpatch::escape_markup(secret),
        ] {
            assert_eq!(
                r.mask(&format!("<x>{form}</x>")),
                "<x>********</x>",
                "{form}"
            );
        }
    }

    #[test]
    fn longer_secret_wins_over_its_prefix() {
        let r = redactor(&["abc", "abcdef"]);
        assert_eq!(r.mask("x abcdef y abc"), "x ******** y ********");
    }

    #[test]
    fn a_multi_line_secret_is_masked_line_by_line_too() {
        let r = redactor(&["first line\nsecond line"]);
        assert_eq!(
            r.mask("-first line\n+second line\n"),
            "-********\n+********\n"
        );
    }

    #[test]
    fn a_short_secret_is_masked_as_a_word_not_inside_other_words() {
        let r = redactor(&["admin"]);
        assert_eq!(
            r.mask("log in as admin; apimadmin and administrator are other users; admin"),
            "log in as ********; apimadmin and administrator are other users; ********"
        );
        assert_eq!(
            r.mask("<Password>admin</Password>"),
            "<Password>********</Password>"
        );
        assert_eq!(r.mask("password=admin&x"), "password=********&x");
        // A long secret is masked wherever it is, even glued to other text.
        let r = redactor(&["correct-horse"]);
        assert_eq!(r.mask("xcorrect-horsey"), "x********y");
    }

    #[test]
    fn blank_secrets_mask_nothing() {
        let r = redactor(&["", "  "]);
        assert_eq!(r.mask("a  b"), "a  b");
        assert!(r.secrets().is_empty());
    }
}
