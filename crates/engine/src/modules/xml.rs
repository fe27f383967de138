//! `xml`: in-place patches of one XML file through the byte-preserving patch
//! engine (crate `apim-xmlpatch`). Only the bytes of the values set change;
//! the file keeps its encoding, line endings and comments. With `owner`, `group`
//! and `mode` the file's owner and mode are part of its desired state too
//! (`file_attrs`); without them it keeps its own.
//! Several tasks may patch the same file: each sees the previous one's output.

use apim_xmlpatch::{Document, Op};
use serde::Deserialize;

use super::file_attrs::Wanted;
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
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// Octal, e.g. `"0600"`.
    #[serde(default)]
    pub mode: Option<String>,
}

impl Params {
    fn wanted(&self) -> Result<Wanted, ModuleError> {
        Wanted::parse(
            "xml",
            self.owner.as_deref(),
            self.group.as_deref(),
            self.mode.as_deref(),
        )
    }
}

pub fn questions(p: &Params) -> Result<Vec<Fact>, ModuleError> {
    let mut facts = vec![Fact::File(p.file.clone())];
    facts.extend(p.wanted()?.questions(&p.file));
    Ok(facts)
}

pub fn decide(p: &Params, ctx: &TaskCtx, state: &mut HostState) -> Result<Decision, ModuleError> {
    let wanted = p.wanted()?;
    let drift = wanted.drift(&p.file, state);
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
        if let Some(drift) = drift {
            wanted.plan(&p.file, state);
            return Ok(Decision::change(
                format!("{}: {drift}", short(&p.file)),
                vec![wanted.repair(&p.file)],
            ));
        }
        return Ok(Decision::ok(format!(
            "{}: {} value(s) already set",
            short(&p.file),
            p.ops.len()
        )));
    }
    let mut reason = format!("{}: {}", short(&p.file), changed.join(", "));
    if let Some(drift) = drift {
        reason.push_str(&format!("; {drift}"));
    }
    let mut d = Decision::change(
        reason,
        vec![Action::Write {
            path: p.file.clone(),
            bytes: patched.text.clone(),
            mode: wanted.mode,
            owner: wanted.transport_owner(),
        }],
    );
    wanted.plan(&p.file, state);
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
    use crate::modules::Verdict;
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
            owner: None,
            group: None,
            mode: None,
        };
        let d = decide(&p, &ctx, &mut state).unwrap();
        let diff = &d.diffs[0].diff;
        assert!(diff.contains("-  <Password>********</Password>"), "{diff}");
        assert!(diff.contains("+  <Password>********</Password>"), "{diff}");
        assert!(!diff.contains("pw"), "{diff}");
    }

    fn host_with(file: &str, body: &[u8], user: &str, mode: u32) -> HostState {
        let mut facts = Facts::default();
        facts.insert(Fact::File(file.into()), Answer::Bytes(body.to_vec()));
        facts.insert(
            Fact::Attrs(file.into()),
            Answer::Attrs(crate::probe::FileStat {
                kind: apim_transport::FileKind::File,
                size: body.len() as u64,
                mode,
                uid: 0,
                gid: 0,
                user: user.into(),
                group: user.into(),
                mtime: 0,
            }),
        );
        HostState::new(facts)
    }

    fn db_password(value: &str) -> Params {
        Params {
            file: "/opt/app/conf/db.xml".into(),
            ops: vec![Op::set_text("/db/password", value).secret()],
            owner: Some("svc".into()),
            group: Some("svc".into()),
            mode: Some("0600".into()),
            secret_elements: vec![],
        }
    }

    fn decide_on(p: &Params, state: &mut HostState) -> Decision {
        let params = toml::Table::new();
        let redactor = Redactor::new();
        let ctx = TaskCtx {
            params: &params,
            archive: None,
            redactor: &redactor,
        };
        decide(p, &ctx, state).unwrap()
    }

    #[test]
    fn right_values_with_a_loose_mode_are_repaired_by_chmod_not_rewritten() {
        // should: a change that names the drift, with a chown/chmod of the file as its
        // only action (the bytes are right), and no diff.
        let mut state = host_with(
            "/opt/app/conf/db.xml",
            b"<db><password>pw</password></db>",
            "svc",
            0o644,
        );
        let d = decide_on(&db_password("pw"), &mut state);
        assert_eq!(
            d.verdict,
            Verdict::Change("app/conf/db.xml: mode 0644 → 0600".into())
        );
        assert!(d.diffs.is_empty());
        let [Action::Script { script, .. }] = &d.actions[..] else {
            panic!("{:?}", d.actions)
        };
        assert!(
            script.contains("chmod -- 0600 /opt/app/conf/db.xml"),
            "{script}"
        );
        assert!(
            script.contains("chown -- svc:svc /opt/app/conf/db.xml"),
            "{script}"
        );
    }

    #[test]
    fn a_rewrite_sets_owner_and_mode_and_later_tasks_on_the_file_see_them() {
        // should: the write carries the final owner and mode; a second task on the same
        // file with nothing left to change is ok, not a second repair.
        let mut state = host_with(
            "/opt/app/conf/db.xml",
            b"<db><password>old</password></db>",
            "root",
            0o644,
        );
        let d = decide_on(&db_password("new"), &mut state);
        assert_eq!(
            d.verdict.reason(),
            "app/conf/db.xml: password; owner root:root → svc:svc, mode 0644 → 0600"
        );
        let [Action::Write { mode, owner, .. }] = &d.actions[..] else {
            panic!("{:?}", d.actions)
        };
        assert_eq!(*mode, Some(0o600));
        assert_eq!(
            owner,
            &Some(apim_transport::Owner::with_group("svc", "svc"))
        );
        let again = decide_on(&db_password("new"), &mut state);
        assert!(
            matches!(again.verdict, Verdict::Ok(_)),
            "{:?}",
            again.verdict
        );
    }

    #[test]
    fn right_values_owner_and_mode_are_ok() {
        let mut state = host_with(
            "/opt/app/conf/db.xml",
            b"<db><password>pw</password></db>",
            "svc",
            0o600,
        );
        let d = decide_on(&db_password("pw"), &mut state);
        assert!(matches!(d.verdict, Verdict::Ok(_)), "{:?}", d.verdict);
        assert!(d.actions.is_empty());
    }

    #[test]
    fn a_fragment_that_replaces_a_password_element_shows_neither_value() {
        // should: with `secret_elements`, a password inside a replaced fragment (which no
        // secret op marks) is masked on both sides, and other values stay readable.
        let file = "/opt/app/conf/envs.xml";
        let mut state = host_with(
            file,
            b"<e>\n  <Env><Url>a</Url><Password>old-secret</Password></Env>\n</e>\n",
            "svc",
            0o600,
        );
        let p = Params {
            file: file.into(),
            ops: vec![Op::replace_content(
                "/e",
                "<Env><Url>b</Url><Password>new-secret</Password></Env>",
            )],
            owner: None,
            group: None,
            mode: None,
            secret_elements: vec!["Password".into()],
        };
        let d = decide_on(&p, &mut state);
        let diff = &d.diffs[0].diff;
        assert!(
            !diff.contains("old-secret") && !diff.contains("new-secret"),
            "{diff}"
        );
        assert!(diff.contains("<Url>b</Url>"), "{diff}");
    }
}
