//! `xml`: in-place patches of one XML file through the byte-preserving patch
//! engine (crate `apim-xmlpatch`). Only the bytes of the values set change;
//! the file keeps its owner, mode, encoding, line endings and comments.
//! Several tasks may patch the same file: each sees the previous one's output.

use apim_xmlpatch::{Document, Op};
use serde::Deserialize;

use super::{Action, Decision, ModuleError, TaskCtx, file_diff};
use crate::probe::Fact;
use crate::state::HostState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub file: String,
    pub ops: Vec<Op>,
    /// Local names of elements that hold credentials (`password`): their texts, before
    /// and after, are masked in every diff, whichever op (or hand) put them there.
    #[serde(default)]
    pub secret_elements: Vec<String>,
}

pub fn questions(p: &Params) -> Result<Vec<Fact>, ModuleError> {
    Ok(vec![Fact::File(p.file.clone())])
}

pub fn decide(p: &Params, ctx: &TaskCtx, state: &mut HostState) -> Result<Decision, ModuleError> {
    let old = state
        .read(&p.file)
        .ok_or_else(|| ModuleError::new(format!("{} does not exist", p.file)))?;
    let doc = Document::parse_named(&p.file, &old).map_err(|e| ModuleError::new(e.to_string()))?;
    let patched = doc
        .apply(&p.ops)
        .map_err(|e| ModuleError::new(ctx.redactor.mask(&e.to_string())))?;
    let changed: Vec<String> = p
        .ops
        .iter()
        .zip(&patched.changes)
        .filter(|(_, c)| c.changed)
        .map(|(op, _)| last_step(op.path()).to_string())
        .collect();
    // The bytes decide: ops that set one value twice can flag changes that cancel out.
    if !patched.changed() {
        return Ok(Decision::ok(format!(
            "{}: {} value(s) already set",
            short(&p.file),
            p.ops.len()
        )));
    }
    let mut d = Decision::change(
        format!("{}: {}", short(&p.file), changed.join(", ")),
        vec![Action::Write {
            path: p.file.clone(),
            bytes: patched.text.clone(),
            mode: None,
            owner: None,
        }],
    );
    // The values a secret op replaces are secrets too (an old password), and so is every
    // value at a place that holds a credential, on both sides.
    let mut hidden: Vec<String> = patched.secrets().to_vec();
    hidden.extend(doc.texts_named(&p.secret_elements));
    if let Ok(after) = Document::parse_named(&p.file, &patched.text) {
        hidden.extend(after.texts_named(&p.secret_elements));
    }
    let redactor = ctx.redactor.with(&hidden);
    d.diffs
        .push(file_diff(&p.file, &old, &patched.text, &redactor));
    state.write(&p.file, patched.text);
    Ok(d)
}

/// The last step of a path (`Property[@name='dataSource']`), for short verdicts.
fn last_step(path: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in path.char_indices().rev() {
        match c {
            ']' => depth += 1,
            '[' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => return &path[i + 1..],
            _ => {}
        }
    }
    path
}

/// The file name with its last two directories, for readable verdicts.
fn short(path: &str) -> &str {
    let mut cut = path.len();
    for _ in 0..3 {
        match path[..cut].rfind('/') {
            Some(i) => cut = i,
            None => return path,
        }
    }
    &path[cut + 1..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Answer, Facts};
    use crate::redact::Redactor;

    #[test]
    fn the_diff_masks_the_password_a_secret_op_replaces() {
        // should: a password set by hand on the node is as secret as the inventory's; the
        // diff shows the changed line with both sides masked.
        let file = "/opt/app/api/conf/users.xml";
        let mut facts = Facts::default();
        facts.insert(
            Fact::File(file.into()),
            Answer::Bytes(b"<u>\n  <Password>hand-set-pw</Password>\n</u>\n".to_vec()),
        );
        let mut state = HostState::new(facts);
        let mut redactor = Redactor::new();
        redactor.add("inventory-pw");
        let params = toml::Table::new();
        let ctx = TaskCtx {
            params: &params,
            archive: None,
            redactor: &redactor,
        };
        let p = Params {
            file: file.into(),
            ops: vec![Op::set_text("/u/Password", "inventory-pw").secret()],
            secret_elements: vec![],
        };
        let d = decide(&p, &ctx, &mut state).unwrap();
        let diff = &d.diffs[0].diff;
        assert!(diff.contains("-  <Password>********</Password>"), "{diff}");
        assert!(diff.contains("+  <Password>********</Password>"), "{diff}");
        assert!(!diff.contains("pw"), "{diff}");
    }

    #[test]
    fn a_fragment_that_replaces_a_password_element_shows_neither_value() {
        // should: with `secret_elements`, a password inside a replaced fragment (which no
        // secret op marks) is masked on both sides, and other values stay readable.
        let file = "/opt/app/api/conf/envs.xml";
        let mut facts = Facts::default();
        facts.insert(
            Fact::File(file.into()),
            Answer::Bytes(
                b"<e>\n  <Env><Url>a</Url><Password>old-secret</Password></Env>\n</e>\n".to_vec(),
            ),
        );
        let mut state = HostState::new(facts);
        let redactor = Redactor::new();
        let params = toml::Table::new();
        let ctx = TaskCtx {
            params: &params,
            archive: None,
            redactor: &redactor,
        };
        let p = Params {
            file: file.into(),
            ops: vec![Op::replace_content(
                "/e",
                "<Env><Url>b</Url><Password>new-secret</Password></Env>",
            )],
            secret_elements: vec!["Password".into()],
        };
        let d = decide(&p, &ctx, &mut state).unwrap();
        let diff = &d.diffs[0].diff;
        assert!(
            !diff.contains("old-secret") && !diff.contains("new-secret"),
            "{diff}"
        );
        assert!(diff.contains("<Url>b</Url>"), "{diff}");
    }
}
