//! The path language: a small XPath subset (see docs/xml-paths.md).
//!
//! ```text
//! path  := ("/" | "//") step (("/" | "//") step)* ("/@" attr)?
//! step  := (name | "*") ("[" pred "]")*
//! pred  := "@" attr "=" quoted        attribute value
//!        | name ("/" name)* "=" quoted child element text (a relative child path)
//!        | "." "=" quoted             the element's own text
//! ```
//!
//! Names compare literally and case-sensitively against the qualified name as written in the
//! file, so a document's default namespace needs no prefix. Evaluation reports the deepest
//! prefix of the path that still matched, for error messages.

use crate::error::XmlError;
use crate::index::{Elem, Index};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Axis {
    Child,
    Descendant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pred {
    Attr { name: String, value: String },
    Child { path: Vec<String>, value: String },
    OwnText { value: String },
}

/// One location step: a name test plus predicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    axis: Axis,
    name: Option<String>,
    preds: Vec<Pred>,
}

/// A parsed path, possibly ending in an attribute selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path {
    steps: Vec<Step>,
    pub attr: Option<String>,
    pub source: String,
}

/// Why a path found nothing: the deepest matched prefix, for messages.
#[derive(Debug, Clone)]
pub(crate) struct Matches {
    pub elems: Vec<usize>,
    pub deepest: String,
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, message: impl Into<String>) -> XmlError {
        XmlError::PathSyntax {
            path: self.src.to_string(),
            position: self.pos + 1,
            message: message.into(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }

    fn name(&mut self) -> Result<String, XmlError> {
        let len = self
            .rest()
            .find(|c: char| c.is_whitespace() || "/[]@='\"".contains(c))
            .unwrap_or(self.rest().len());
        if len == 0 {
            return Err(self.err("expected a name"));
        }
        let name = self.rest()[..len].to_string();
        self.pos += len;
        Ok(name)
    }

    fn quoted(&mut self) -> Result<String, XmlError> {
        let quote = match self.rest().chars().next() {
            Some(q @ ('\'' | '"')) => q,
            _ => return Err(self.err("expected a quoted value ('...' or \"...\")")),
        };
        self.pos += 1;
        let close = self
            .rest()
            .find(quote)
            .ok_or_else(|| self.err("unterminated quoted value"))?;
        let value = self.rest()[..close].to_string();
        self.pos += close + 1;
        Ok(value)
    }

    fn equals_value(&mut self) -> Result<String, XmlError> {
        self.skip_ws();
        if !self.eat("=") {
            return Err(self.err("expected '=' in predicate"));
        }
        self.skip_ws();
        self.quoted()
    }

    fn pred(&mut self) -> Result<Pred, XmlError> {
        self.skip_ws();
        let pred = if self.eat("@") {
            let name = self.name()?;
            Pred::Attr {
                name,
                value: self.equals_value()?,
            }
        } else if self.rest().starts_with('.') && !self.rest().starts_with("..") {
            self.pos += 1;
            Pred::OwnText {
                value: self.equals_value()?,
            }
        } else {
            let mut path = vec![self.name()?];
            while self.eat("/") {
                path.push(self.name()?);
            }
            Pred::Child {
                path,
                value: self.equals_value()?,
            }
        };
        self.skip_ws();
        if !self.eat("]") {
            return Err(self.err("expected ']' to close the predicate"));
        }
        Ok(pred)
    }

    fn step(&mut self, axis: Axis) -> Result<Step, XmlError> {
        let name = if self.eat("*") {
            None
        } else {
            Some(self.name()?)
        };
        let mut preds = Vec::new();
        while self.eat("[") {
            preds.push(self.pred()?);
        }
        Ok(Step { axis, name, preds })
    }
}

impl Path {
    /// Parses an absolute path (`/a/b`, `//b`, optionally ending in `/@attr`).
    pub fn parse(src: &str) -> Result<Path, XmlError> {
        let mut p = Parser { src, pos: 0 };
        let mut steps = Vec::new();
        let mut attr = None;
        if !src.starts_with('/') {
            return Err(p.err("a path starts with '/' (from the root) or '//' (anywhere)"));
        }
        while p.pos < src.len() {
            let axis = if p.eat("//") {
                Axis::Descendant
            } else if p.eat("/") {
                Axis::Child
            } else {
                return Err(p.err("expected '/' between steps"));
            };
            if p.eat("@") {
                if axis == Axis::Descendant || steps.is_empty() {
                    return Err(p.err("an attribute selection follows an element step: /a/b/@name"));
                }
                attr = Some(p.name()?);
                if p.pos < src.len() {
                    return Err(p.err("the attribute selection must be the last step"));
                }
                break;
            }
            steps.push(p.step(axis)?);
        }
        if steps.is_empty() {
            return Err(p.err("the path selects no element"));
        }
        Ok(Path {
            steps,
            attr,
            source: src.to_string(),
        })
    }

    /// Every element the path selects, in document order, plus the deepest matched prefix.
    pub fn select(&self, idx: &Index) -> Matches {
        let mut current: Vec<usize> = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let candidates =
                step_candidates(idx, step.axis, if i == 0 { None } else { Some(&current) });
            let next: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&e| step.matches(idx, &idx.elems[e]))
                .collect();
            if next.is_empty() {
                return Matches {
                    elems: next,
                    deepest: self.describe_miss(idx, i, &current, &candidates),
                };
            }
            current = next;
        }
        let deepest = format!("{} ({} elements)", self.source, current.len());
        Matches {
            elems: current,
            deepest,
        }
    }

    fn describe_miss(
        &self,
        idx: &Index,
        failed: usize,
        matched: &[usize],
        cand: &[usize],
    ) -> String {
        let prefix = render_steps(&self.steps[..failed]);
        let step = &self.steps[failed];
        let same_name = cand
            .iter()
            .filter(|&&e| step.name.as_ref().is_none_or(|n| idx.elems[e].qname == *n))
            .count();
        let at = if failed == 0 {
            "the document".to_string()
        } else {
            format!("{prefix} ({} elements)", matched.len())
        };
        let name = step.name.as_deref().unwrap_or("*");
        if same_name > 0 && !step.preds.is_empty() {
            format!(
                "{at}; {same_name} <{name}> there but none satisfies {}",
                render_preds(&step.preds)
            )
        } else {
            format!(
                "{at}; no <{name}> {}",
                if step.axis == Axis::Child {
                    "child"
                } else {
                    "below it"
                }
            )
        }
    }
}

/// Parses a single relative step such as `datasource[name='X']` (used for ensure keys and
/// sibling anchors).
pub(crate) fn parse_step(src: &str) -> Result<Step, XmlError> {
    let mut p = Parser { src, pos: 0 };
    let step = p.step(Axis::Child)?;
    if p.pos != src.len() {
        return Err(p.err("a key is one step: name[predicate]..."));
    }
    Ok(step)
}

impl Step {
    /// Whether `elem` passes this step's name test and predicates.
    pub fn matches(&self, idx: &Index, elem: &Elem) -> bool {
        if self.name.as_ref().is_some_and(|n| *n != elem.qname) {
            return false;
        }
        self.preds.iter().all(|p| pred_holds(idx, elem, p))
    }

    /// The children of `parent` this step selects.
    pub fn children_matching(&self, idx: &Index, parent: usize) -> Vec<usize> {
        idx.elems[parent]
            .children
            .iter()
            .copied()
            .filter(|&c| self.matches(idx, &idx.elems[c]))
            .collect()
    }

    pub fn render(&self) -> String {
        format!(
            "{}{}",
            self.name.as_deref().unwrap_or("*"),
            render_preds(&self.preds)
        )
    }
}

fn step_candidates(idx: &Index, axis: Axis, context: Option<&Vec<usize>>) -> Vec<usize> {
    let mut out: Vec<usize> = match (axis, context) {
        (Axis::Child, None) => vec![idx.root()],
        (Axis::Descendant, None) => (0..idx.elems.len()).collect(),
        (Axis::Child, Some(ctx)) => ctx
            .iter()
            .flat_map(|&e| idx.elems[e].children.clone())
            .collect(),
        (Axis::Descendant, Some(ctx)) => ctx.iter().flat_map(|&e| idx.descendants(e)).collect(),
    };
    out.sort_unstable();
    out.dedup();
    out
}

fn pred_holds(idx: &Index, elem: &Elem, pred: &Pred) -> bool {
    match pred {
        Pred::Attr { name, value } => elem.attr(name).is_some_and(|a| a.value == *value),
        Pred::OwnText { value } => elem.text == *value,
        Pred::Child { path, value } => {
            let mut level: Vec<&Elem> = vec![elem];
            for name in path {
                level = level
                    .iter()
                    .flat_map(|e| e.children.iter().map(|&c| &idx.elems[c]))
                    .filter(|c| c.qname == *name)
                    .collect();
            }
            level.iter().any(|e| e.text == *value)
        }
    }
}

fn render_steps(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| {
            let sep = if s.axis == Axis::Child { "/" } else { "//" };
            format!("{sep}{}", s.render())
        })
        .collect()
}

fn render_preds(preds: &[Pred]) -> String {
    preds
        .iter()
        .map(|p| match p {
            Pred::Attr { name, value } => format!("[@{name}='{value}']"),
            Pred::Child { path, value } => format!("[{}='{value}']", path.join("/")),
            Pred::OwnText { value } => format!("[.='{value}']"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::build;

    const DOC: &str = r#"<r xmlns="urn:x"><list><item k="a"><name>one</name></item><!--item k="b"><name>two</name></item--><item k="b" t="y"><name>two</name><sub><name>deep</name></sub></item></list></r>"#;

    fn names(path: &str) -> Vec<String> {
        let idx = build(DOC).unwrap();
        let p = Path::parse(path).unwrap();
        p.select(&idx)
            .elems
            .iter()
            .map(|&e| idx.elems[e].text.clone())
            .collect()
    }

    #[test]
    fn selects_by_absolute_descendant_and_predicates() {
        assert_eq!(names("/r/list/item/name"), ["one", "two"]);
        assert_eq!(names("//item[@k='b']/name"), ["two"]);
        assert_eq!(names("//item[name='two'][@t='y']/sub/name"), ["deep"]);
        assert_eq!(names("//name"), ["one", "two", "deep"]);
        assert_eq!(names("/r/list/item[sub/name=\"deep\"]/name"), ["two"]);
        assert_eq!(names("/r/*/item[@k='a']/name[.='one']"), ["one"]);
        assert!(names("/R/list").is_empty(), "names are case-sensitive");
    }

    #[test]
    fn reports_the_deepest_matched_prefix() {
        let idx = build(DOC).unwrap();
        let m = Path::parse("/r/list/item[name='three']/name")
            .unwrap()
            .select(&idx);
        assert!(m.elems.is_empty());
        assert_eq!(
            m.deepest,
            "/r/list (1 elements); 2 <item> there but none satisfies [name='three']"
        );
        let m = Path::parse("/r/lst/item").unwrap().select(&idx);
        assert_eq!(m.deepest, "/r (1 elements); no <lst> child");
    }

    #[test]
    fn parses_attribute_selection_and_rejects_bad_syntax() {
        let p = Path::parse("/a/b/@enable").unwrap();
        assert_eq!(p.attr.as_deref(), Some("enable"));
        for bad in [
            "a/b",
            "/a/b[",
            "/a/b[@x='1'",
            "/a/@x/b",
            "/",
            "/a//@x",
            "/a[x=1]",
        ] {
            assert!(Path::parse(bad).is_err(), "{bad} should not parse");
        }
        let err = Path::parse("/a[@x='1'").unwrap_err();
        assert_eq!(
            err.to_string(),
            "path \"/a[@x='1'\", at character 10: expected ']' to close the predicate"
        );
    }
}
