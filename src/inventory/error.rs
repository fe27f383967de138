//! The one error type of inventory loading and topology derivation.
//!
//! An [`InventoryError`] is a list of [`Problem`]s about one inventory file. Each problem
//! has a kind (for callers and tests), a one-line message, an optional byte span into the
//! file, a short label for the underline and a help text saying what is allowed.
//! Rendering is done here and only here: [`InventoryError::render`] draws the miette
//! report (`file:line:column`, the value underlined), and `Display` gives one plain
//! `file:line:column: message` line per problem for logs and tests.
//!
//! Source snippets are shown from a copy of the file in which inline string values of
//! secret-looking keys are blanked out (same length, so spans stay valid): a mistyped
//! inventory must not echo a password to the terminal.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

use super::secret::{INLINE_SECRET_MESSAGE, SECRET_FORMS_HELP};

/// The inventory file a problem is about: its display name and its text.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The path as given by the user (shown in messages).
    pub name: String,
    /// The whole file.
    pub text: Arc<str>,
}

impl Origin {
    /// An origin for `text` named `name`.
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of byte offset `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }
}

/// The classes of inventory problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The file could not be read.
    Read,
    /// TOML syntax, or a value of the wrong type.
    Syntax,
    /// A key that the schema does not have.
    UnknownKey,
    /// A role name that does not exist.
    UnknownRole,
    /// A value that breaks its syntax rule (host name, address, identifier, path, ...).
    InvalidValue,
    /// A secret written inline instead of as a reference.
    InlineSecret,
    /// Two hosts with the same name.
    DuplicateHostName,
    /// Two hosts with the same address.
    DuplicateAddress,
    /// A role listed twice on one host, or a host without roles.
    BadRoleList,
    /// A required role is on no host.
    MissingRole,
    /// `database.host` does not name the one host with the `database` role.
    DatabaseHost,
    /// Two things on one host would listen on the same port.
    PortCollision,
    /// Options that contradict each other or lack a companion setting.
    BadOption,
    /// A secret reference that does not resolve (variable unset, file missing or too open).
    UnresolvedSecret,
}

/// One thing wrong with an inventory.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The class of problem.
    pub kind: ProblemKind,
    /// One line saying what is wrong.
    pub message: String,
    /// Byte range of the offending text in the file, when there is one.
    pub span: Option<Range<usize>>,
    /// Short text shown under the underlined value.
    pub label: String,
    /// What is allowed, or how to fix it.
    pub help: Option<String>,
}

impl Problem {
    /// A problem at `span`.
    pub fn new(kind: ProblemKind, message: impl Into<String>, span: Range<usize>) -> Self {
        Self {
            kind,
            message: message.into(),
            span: Some(span),
            label: String::new(),
            help: None,
        }
    }

    /// Sets the underline label.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Sets the help text.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Classifies a TOML/serde error and rewrites serde's wording into the inventory's terms.
    pub(crate) fn from_toml(err: &toml::de::Error) -> Self {
        let message = err.message().trim().replace('\n', "; ");
        let span = err.span().unwrap_or(0..0);
        if message == INLINE_SECRET_MESSAGE {
            return Problem::new(ProblemKind::InlineSecret, message, span)
                .label("inline secret")
                .help(SECRET_FORMS_HELP);
        }
        if let Some((name, allowed)) = unknown_named("unknown field", &message) {
            let help = allowed_help("allowed keys here", &name, &allowed);
            return Problem::new(
                ProblemKind::UnknownKey,
                format!("unknown key `{name}`"),
                span,
            )
            .label("not a key of this table")
            .help(help);
        }
        if let Some((name, allowed)) = unknown_named("unknown variant", &message) {
            if allowed.iter().any(|a| a == "keymanager") {
                let help = allowed_help("allowed roles", &name, &allowed);
                return Problem::new(
                    ProblemKind::UnknownRole,
                    format!("unknown role `{name}`"),
                    span,
                )
                .label("not a role")
                .help(help);
            }
            let help = allowed_help("allowed values", &name, &allowed);
            return Problem::new(
                ProblemKind::InvalidValue,
                format!("invalid value `{name}`"),
                span,
            )
            .label("not allowed here")
            .help(help);
        }
        if let Some((expected, found, help)) = plain_type_error(&message) {
            return Problem::new(
                ProblemKind::InvalidValue,
                format!("expected {expected}, found {found}"),
                span,
            )
            .label("wrong type")
            .help(help);
        }
        if let Some((what, rule)) = message.split_once(": expected ")
            && what.starts_with("invalid ")
        {
            return Problem::new(ProblemKind::InvalidValue, what, span)
                .label("invalid value")
                .help(format!("expected {rule}"));
        }
        if let Some((field, _)) = unknown_named("missing field", &message) {
            let label = match span.start {
                0 => "the top level",
                _ => "in this table",
            };
            return Problem::new(ProblemKind::Syntax, message, span)
                .label(label)
                .help(format!(
                    "`{field}` is required here (docs/inventory.md lists the schema)"
                ));
        }
        Problem::new(ProblemKind::Syntax, message, span).label("here")
    }
}

/// serde's "invalid type: string \"22\", expected u16" in plain words, with an
/// example: (what is expected, what was found, how to write it). An operator
/// should not need to know what a `u16` is.
fn plain_type_error(message: &str) -> Option<(String, String, String)> {
    let rest = message.strip_prefix("invalid type: ")?;
    let (found, expected) = rest.rsplit_once(", expected ")?;
    let number = |t: &str| {
        matches!(
            t,
            "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize"
        )
    };
    let (expected, example) = match expected {
        t if number(t) => ("a whole number such as 22", "22"),
        "a boolean" => ("true or false", "true"),
        "a string" => ("text in quotes such as \"app1\"", "\"app1\""),
        t if t.starts_with("a sequence") || t.starts_with("a list") => {
            ("a list such as [\"a\", \"b\"]", "[\"a\", \"b\"]")
        }
        t if t.starts_with("struct") || t.starts_with("a map") || t.starts_with("a table") => {
            ("a table of keys", "{ key = \"value\" }")
        }
        _ => return None,
    };
    let found = if let Some(text) = found.strip_prefix("string ") {
        format!("the text {text}")
    } else if let Some(n) = found.strip_prefix("integer ") {
        format!("the number {}", n.trim_matches('`'))
    } else if let Some(b) = found.strip_prefix("boolean ") {
        b.trim_matches('`').to_string()
    } else if found == "sequence" {
        "a list".to_string()
    } else if found == "map" {
        "a table".to_string()
    } else {
        found.to_string()
    };
    let help = if found.starts_with("the text ") && example == "22" {
        "write the number without quotes, e.g. `port = 22`".to_string()
    } else if found.starts_with("the text ") && example == "true" {
        "write true or false without quotes, e.g. `sudo = true`".to_string()
    } else {
        format!("for example {example}")
    };
    Some((expected.to_string(), found, help))
}

/// Splits serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a` or `b`",
/// "expected `a`", "there are no fields") into the name and the allowed list.
fn unknown_named(prefix: &str, message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix(prefix)?.trim_start();
    let rest = rest.strip_prefix('`')?;
    let (name, tail) = rest.split_once('`')?;
    let allowed = tail
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((name.to_owned(), allowed))
}

fn allowed_help(what: &str, name: &str, allowed: &[String]) -> String {
    if allowed.is_empty() {
        return "this table takes no keys".to_owned();
    }
    let list = allowed
        .iter()
        .map(|a| format!("`{a}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match allowed.iter().find(|a| edit_distance(a, name) <= 2) {
        Some(near) => format!("did you mean `{near}`? {what}: {list}"),
        None => format!("{what}: {list}"),
    }
}

/// Levenshtein distance, for "did you mean" suggestions on short keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// One or more problems with an inventory file.
#[derive(Debug, Clone)]
pub struct InventoryError {
    /// The file the problems are about.
    pub origin: Origin,
    /// The problems, in file order where they have a position.
    pub problems: Vec<Problem>,
}

impl InventoryError {
    /// Wraps `problems` (sorted by position; problems without a span come first).
    pub fn new(origin: Origin, mut problems: Vec<Problem>) -> Self {
        problems.sort_by_key(|p| p.span.as_ref().map(|s| s.start));
        Self { origin, problems }
    }

    /// The plain `name:line:column: message` of one problem (`name: message` without a span).
    pub fn locate(&self, problem: &Problem) -> String {
        match &problem.span {
            Some(span) => {
                let (line, column) = self.origin.line_col(span.start);
                format!("{}:{line}:{column}: {}", self.origin.name, problem.message)
            }
            None => format!("{}: {}", self.origin.name, problem.message),
        }
    }

    /// The miette report of every problem, with source snippets (secrets blanked).
    /// `color` selects ANSI colours; pass `false` for files, pipes and tests.
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
        let source = NamedSource::new(&self.origin.name, redact_inline_secrets(&self.origin.text))
            .with_language("toml");
        let source = Arc::new(source);
        let mut out = String::new();
        for problem in &self.problems {
            let report = ProblemReport {
                problem,
                source: source.clone(),
                location: self.locate(problem),
            };
            if handler.render_report(&mut out, &report).is_err() {
                out.push_str(&report.location);
                out.push('\n');
            }
        }
        let count = self.problems.len();
        out.push_str(&format!(
            "{count} problem{} in {}\n",
            if count == 1 { "" } else { "s" },
            self.origin.name
        ));
        out
    }
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&self.locate(problem))?;
            if let Some(help) = &problem.help {
                write!(f, " ({help})")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for InventoryError {}

/// One problem as a miette diagnostic.
struct ProblemReport<'a> {
    problem: &'a Problem,
    source: Arc<NamedSource<String>>,
    location: String,
}

impl fmt::Debug for ProblemReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location)
    }
}

impl fmt::Display for ProblemReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Without a snippet the location would be lost, so it goes into the headline.
        match self.problem.span {
            Some(_) => f.write_str(&self.problem.message),
            None => f.write_str(&self.location),
        }
    }
}

impl std::error::Error for ProblemReport<'_> {}

impl Diagnostic for ProblemReport<'_> {
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.problem
            .span
            .as_ref()
            .map(|_| &*self.source as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.problem.span.clone()?;
        let label = (!self.problem.label.is_empty()).then(|| self.problem.label.clone());
        let span = LabeledSpan::new(label, span.start, span.len());
        Some(Box::new(std::iter::once(span)))
    }
}

/// Keys whose inline string value would be a secret.
const SECRET_KEYS: [&str; 4] = ["password", "passphrase", "admin_password", "app_password"];

/// Returns `text` with the quoted value of every `<secret key> = "..."` line replaced by `*`
/// (byte for byte, so spans into the original still fit).
pub(crate) fn redact_inline_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        out.push_str(&redact_line(line));
    }
    out
}

fn redact_line(line: &str) -> String {
    let Some((key, value)) = line.split_once('=') else {
        return line.to_owned();
    };
    let key = key.trim().trim_matches('"');
    let value_trimmed = value.trim_start();
    let is_secret_key = SECRET_KEYS.contains(&key);
    if !is_secret_key || value_trimmed.starts_with('{') {
        return line.to_owned();
    }
    let value_start = line.len() - value.len();
    let kept = &line[..value_start];
    let masked: String = line[value_start..]
        .chars()
        .map(|c| match c {
            '\n' | '\r' | ' ' | '\t' => c.to_string(),
            _ => "*".repeat(c.len_utf8()),
        })
        .collect();
    format!("{kept}{masked}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_wrong_type_is_said_in_plain_words_with_an_example() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            port: u16,
            sudo: Option<bool>,
        }
        let err = toml::from_str::<T>("port = \"22\"").unwrap_err();
        let p = super::Problem::from_toml(&err);
        assert_eq!(
            p.message,
            "expected a whole number such as 22, found the text \"22\""
        );
        assert_eq!(
            p.help.as_deref(),
            Some("write the number without quotes, e.g. `port = 22`")
        );
        let err = toml::from_str::<T>("port = 22\nsudo = \"yes\"").unwrap_err();
        let p = super::Problem::from_toml(&err);
        assert_eq!(p.message, "expected true or false, found the text \"yes\"");
    }

    use super::*;

    #[test]
    fn redaction_keeps_length_and_hides_inline_passwords() {
        let text =
            "[admin]\npassword = \"hünter2\"\nuser = \"x\"\nadmin_password = { env = \"X\" }\n";
        let redacted = redact_inline_secrets(text);
        assert_eq!(redacted.len(), text.len());
        assert!(!redacted.contains("nter2"));
        assert!(redacted.contains("user = \"x\""));
        assert!(redacted.contains("admin_password = { env = \"X\" }"));
    }

    #[test]
    fn line_col_counts_characters_from_one() {
        let origin = Origin::new("f", "ab\ncdé f\n");
        assert_eq!(origin.line_col(0), (1, 1));
        assert_eq!(origin.line_col(3), (2, 1));
        assert_eq!(origin.line_col(8), (2, 5));
    }

    #[test]
    fn suggestions_pick_near_keys() {
        assert_eq!(edit_distance("role", "roles"), 1);
        let help = allowed_help(
            "allowed keys here",
            "role",
            &["name".into(), "roles".into()],
        );
        assert_eq!(
            help,
            "did you mean `roles`? allowed keys here: `name`, `roles`"
        );
    }
}
