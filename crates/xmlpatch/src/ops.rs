//! Patch operations as plain data. They derive `Deserialize` so a playbook can state them in
//! TOML/JSON (`op = "set_text"`, ...) and `Serialize` so a plan can print them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a secret value is shown as, wherever it would be shown.
pub const MASK: &str = "********";

/// How many elements an operation expects its path to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Count {
    /// Exactly one (the default for every op except `remove`).
    #[default]
    One,
    /// Zero or one (the default for `remove`, so removing is idempotent).
    AtMostOne,
    /// One or more.
    AtLeastOne,
    /// Any number, including none.
    Any,
}

impl Count {
    pub fn allows(self, n: usize) -> bool {
        match self {
            Count::One => n == 1,
            Count::AtMostOne => n <= 1,
            Count::AtLeastOne => n >= 1,
            Count::Any => true,
        }
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Count::One => "exactly one element",
            Count::AtMostOne => "at most one element",
            Count::AtLeastOne => "at least one element",
            Count::Any => "any number of elements",
        })
    }
}

/// Where `ensure` inserts a missing element among the parent's children.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Right after the parent's start tag.
    First,
    /// Right after the parent's last child element (the default).
    #[default]
    Last,
    /// Right after the last child matching this step, e.g. `dbConfig[@name='wso2registry']`.
    After(String),
    /// Right before the first child matching this step.
    Before(String),
}

/// What `ensure` does when the keyed element already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IfPresent {
    /// Replace it with the fragment when it differs (the fragment is the desired state).
    #[default]
    Replace,
    /// Leave it exactly as it is.
    Keep,
}

/// One patch operation. Paths use the language of docs/xml-paths.md.
///
/// `Debug` prints a secret op's value as `********`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Set the text of the matched element(s); refused on elements with child elements.
    SetText {
        path: String,
        value: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<Count>,
        /// Mask the value (and the value it replaces) in diffs.
        #[serde(default, skip_serializing_if = "is_false")]
        secret: bool,
    },
    /// Set or add an attribute; `path` ends in `/@name`.
    SetAttr {
        path: String,
        value: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<Count>,
        #[serde(default, skip_serializing_if = "is_false")]
        secret: bool,
    },
    /// Make sure `parent` has exactly one child matching `key`, equal to `fragment`.
    /// Secrets inside the fragment are masked by passing them to the diff.
    Ensure {
        parent: String,
        key: String,
        fragment: String,
        #[serde(default)]
        position: Position,
        #[serde(default)]
        if_present: IfPresent,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<Count>,
    },
    /// Replace the whole content of the matched element(s) with `content` (raw XML).
    ReplaceContent {
        path: String,
        content: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<Count>,
    },
    /// Remove the matched element(s), and their line when they stand alone on it.
    Remove {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<Count>,
    },
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |value: &str, secret: bool| {
            if secret {
                MASK.to_string()
            } else {
                value.to_string()
            }
        };
        match self {
            Op::SetText {
                path,
                value,
                count,
                secret,
            }
            | Op::SetAttr {
                path,
                value,
                count,
                secret,
            } => f
                .debug_struct(if matches!(self, Op::SetText { .. }) {
                    "SetText"
                } else {
                    "SetAttr"
                })
                .field("path", path)
                .field("value", &shown(value, *secret))
                .field("count", count)
                .field("secret", secret)
                .finish(),
            Op::Ensure {
                parent,
                key,
                fragment,
                position,
                if_present,
                count,
            } => f
                .debug_struct("Ensure")
                .field("parent", parent)
                .field("key", key)
                .field("fragment", fragment)
                .field("position", position)
                .field("if_present", if_present)
                .field("count", count)
                .finish(),
            Op::ReplaceContent {
                path,
                content,
                count,
            } => f
                .debug_struct("ReplaceContent")
                .field("path", path)
                .field("content", content)
                .field("count", count)
                .finish(),
            Op::Remove { path, count } => f
                .debug_struct("Remove")
                .field("path", path)
                .field("count", count)
                .finish(),
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Op {
    /// `set_text` expecting exactly one match.
    pub fn set_text(path: impl Into<String>, value: impl Into<String>) -> Op {
        Op::SetText {
            path: path.into(),
            value: value.into(),
            count: None,
            secret: false,
        }
    }

    /// `set_attr` (path ends in `/@name`) expecting exactly one match.
    pub fn set_attr(path: impl Into<String>, value: impl Into<String>) -> Op {
        Op::SetAttr {
            path: path.into(),
            value: value.into(),
            count: None,
            secret: false,
        }
    }

    /// `ensure` with position `last` and `if_present = replace`.
    pub fn ensure(
        parent: impl Into<String>,
        key: impl Into<String>,
        fragment: impl Into<String>,
    ) -> Op {
        Op::Ensure {
            parent: parent.into(),
            key: key.into(),
            fragment: fragment.into(),
            position: Position::Last,
            if_present: IfPresent::Replace,
            count: None,
        }
    }

    /// `replace_content` expecting exactly one match.
    pub fn replace_content(path: impl Into<String>, content: impl Into<String>) -> Op {
        Op::ReplaceContent {
            path: path.into(),
            content: content.into(),
            count: None,
        }
    }

    /// `remove`, tolerating an element that is already gone.
    pub fn remove(path: impl Into<String>) -> Op {
        Op::Remove {
            path: path.into(),
            count: None,
        }
    }

    /// Returns the op with its expected match count replaced.
    pub fn with_count(mut self, expected: Count) -> Op {
        match &mut self {
            Op::SetText { count, .. }
            | Op::SetAttr { count, .. }
            | Op::Ensure { count, .. }
            | Op::ReplaceContent { count, .. }
            | Op::Remove { count, .. } => *count = Some(expected),
        }
        self
    }

    /// Returns the op marked secret: its value (and the value it replaces) is masked in
    /// diffs. Only `set_text` and `set_attr` carry a single value; for fragments, pass the
    /// secret strings to the diff instead.
    pub fn secret(mut self) -> Op {
        if let Op::SetText { secret, .. } | Op::SetAttr { secret, .. } = &mut self {
            *secret = true;
        }
        self
    }

    /// Returns an `ensure` op with its position replaced (no effect on other ops).
    pub fn at(mut self, where_: Position) -> Op {
        if let Op::Ensure { position, .. } = &mut self {
            *position = where_;
        }
        self
    }

    /// The op's name as written in playbooks.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::SetText { .. } => "set_text",
            Op::SetAttr { .. } => "set_attr",
            Op::Ensure { .. } => "ensure",
            Op::ReplaceContent { .. } => "replace_content",
            Op::Remove { .. } => "remove",
        }
    }

    /// The path the op addresses (the parent path for `ensure`).
    pub fn path(&self) -> &str {
        match self {
            Op::SetText { path, .. }
            | Op::SetAttr { path, .. }
            | Op::ReplaceContent { path, .. }
            | Op::Remove { path, .. } => path,
            Op::Ensure { parent, .. } => parent,
        }
    }

    /// The expected match count, with the op's default applied.
    pub fn expected(&self) -> Count {
        match self {
            Op::SetText { count, .. }
            | Op::SetAttr { count, .. }
            | Op::Ensure { count, .. }
            | Op::ReplaceContent { count, .. } => count.unwrap_or(Count::One),
            Op::Remove { count, .. } => count.unwrap_or(Count::AtMostOne),
        }
    }

    pub fn is_secret(&self) -> bool {
        match self {
            Op::SetText { secret, .. } | Op::SetAttr { secret, .. } => *secret,
            _ => false,
        }
    }
}
