//! `hosts_file`: an idempotent managed block in /etc/hosts. Lines outside the
//! block are never touched; the block is replaced whole, or appended once.
//! With `owner`, `group` and `mode` (for /etc/hosts: root, root, 0644) the file's
//! owner and mode are part of its desired state (`file_attrs`).

use serde::Deserialize;

use super::file_attrs::Wanted;
use super::{Action, Decision, ModuleError, TaskCtx, file_diff};
use crate::probe::Fact;
use crate::state::HostState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "default_path")]
    pub path: String,
    /// Names the block's marker lines (`# BEGIN <marker>` / `# END <marker>`).
    pub marker: String,
    pub entries: Vec<Entry>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// Octal, e.g. `"0644"`.
    #[serde(default)]
    pub mode: Option<String>,
}

impl Params {
    fn wanted(&self) -> Result<Wanted, ModuleError> {
        Wanted::parse(
            "hosts_file",
            self.owner.as_deref(),
            self.group.as_deref(),
            self.mode.as_deref(),
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub address: String,
    pub names: Vec<String>,
}

fn default_path() -> String {
    "/etc/hosts".into()
}

pub fn questions(p: &Params) -> Result<Vec<Fact>, ModuleError> {
    let mut facts = vec![Fact::File(p.path.clone())];
    facts.extend(p.wanted()?.questions(&p.path));
    Ok(facts)
}

pub fn decide(p: &Params, ctx: &TaskCtx, state: &mut HostState) -> Result<Decision, ModuleError> {
    for e in &p.entries {
        for word in std::iter::once(&e.address).chain(&e.names) {
            if word.is_empty() || word.chars().any(|c| c.is_whitespace() || c == '#') {
                return Err(ModuleError::new(format!(
                    "hosts_file: {word:?} is not a valid address or host name"
                )));
            }
        }
    }
    let wanted = p.wanted()?;
    let drift = wanted.drift(&p.path, state);
    let old = state.read(&p.path).unwrap_or_default();
    let text = String::from_utf8_lossy(&old).into_owned();
    let new = with_block(&text, &p.marker, &block_lines(p));
    if new == text {
        if let Some(drift) = drift {
            wanted.plan(&p.path, state);
            return Ok(Decision::change(
                format!("{}: {drift}", p.path),
                vec![wanted.repair(&p.path)],
            ));
        }
        return Ok(Decision::ok(format!(
            "{} already maps {}",
            p.path,
            names(p)
        )));
    }
    let mut reason = format!("{} will map {}", p.path, names(p));
    if let Some(drift) = drift {
        reason.push_str(&format!("; {drift}"));
    }
    let mut d = Decision::change(
        reason,
        vec![Action::Write {
            path: p.path.clone(),
            bytes: new.clone().into_bytes(),
            mode: wanted.mode,
            owner: wanted.transport_owner(),
        }],
    );
    wanted.plan(&p.path, state);
    d.diffs
        .push(file_diff(&p.path, &old, new.as_bytes(), ctx.redactor));
    state.write(&p.path, new.into_bytes());
    Ok(d)
}

fn names(p: &Params) -> String {
    p.entries
        .iter()
        .flat_map(|e| e.names.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(", ")
}

fn block_lines(p: &Params) -> Vec<String> {
    p.entries
        .iter()
        .map(|e| format!("{}\t{}", e.address, e.names.join(" ")))
        .collect()
}

/// `text` with the managed block set to `lines` (replaced in place, or appended).
pub fn with_block(text: &str, marker: &str, lines: &[String]) -> String {
    let begin = format!("# BEGIN {marker}");
    let end = format!("# END {marker}");
    let mut block = String::new();
    block.push_str(&begin);
    block.push('\n');
    for l in lines {
        block.push_str(l);
        block.push('\n');
    }
    block.push_str(&end);
    block.push('\n');

    let all: Vec<&str> = text.split_inclusive('\n').collect();
    let start = all.iter().position(|l| l.trim_end() == begin);
    let stop = start.and_then(|s| {
        all[s..]
            .iter()
            .position(|l| l.trim_end() == end)
            .map(|e| s + e)
    });
    match (start, stop) {
        (Some(s), Some(e)) => {
            let mut out: String = all[..s].concat();
            out.push_str(&block);
            out.push_str(&all[e + 1..].concat());
            out
        }
        _ => {
            let mut out = text.to_string();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&block);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_once_then_replaces_in_place() {
        let lines = vec!["10.0.0.9\tdb.example".to_string()];
        let first = with_block("127.0.0.1 localhost", "apim", &lines);
        assert_eq!(
            first,
            "127.0.0.1 localhost\n# BEGIN apim\n10.0.0.9\tdb.example\n# END apim\n"
        );
        assert_eq!(with_block(&first, "apim", &lines), first);
        let moved = with_block(
            &format!("{first}::1 x\n"),
            "apim",
            &["1.2.3.4\tdb".to_string()],
        );
        assert_eq!(
            moved,
            "127.0.0.1 localhost\n# BEGIN apim\n1.2.3.4\tdb\n# END apim\n::1 x\n"
        );
    }
}
