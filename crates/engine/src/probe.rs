//! Facts in one round trip: a batch of read-only questions about a host, asked by
//! one generated `bash` script, answered in one framed stream.
//!
//! Why a script and not one command per fact: a no-op rerun must cost at most a
//! few round trips per host (a 50-host rerun is otherwise dominated by latency), and
//! the answers must come from one consistent moment. The script only reads: `plan` promises to write nothing,
//! not even a temp file, so command output is captured in shell variables.
//!
//! Framing: each answer starts with a header line `@@<index> <kind> <len> [<rc>]`
//! followed by exactly `<len>` bytes. Lengths make the stream immune to file
//! contents that look like headers.

use std::collections::BTreeMap;

pub use apim_transport::FileStat;

/// One question about a host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fact {
    /// The bytes of a regular file (absent when the path is not a regular file).
    File(String),
    /// The sha256 of a regular file, computed on the host (for large files).
    Sha256(String),
    /// The output and exit code of a read-only shell snippet.
    Shell(String),
    /// The owner, group and mode of a regular file (absent when the path is not one).
    Attrs(String),
}

/// The first line of a `Shell` question whose answer changes by itself (a clock,
/// free space): a saved plan does not hold a later run to it. In the script it is
/// a comment.
pub const VOLATILE: &str = "# changes by itself\n";

impl Fact {
    /// Whether the answer changes by itself, without anyone changing the host.
    pub fn is_volatile(&self) -> bool {
        matches!(self, Fact::Shell(s) if s.starts_with(VOLATILE))
    }
}

/// What the host answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Missing,
    Bytes(Vec<u8>),
    Digest(String),
    Output { rc: i32, stdout: Vec<u8> },
    Attrs(FileStat),
}

/// The answers of one probe, keyed by the question.
#[derive(Debug, Default, Clone)]
pub struct Facts {
    answers: BTreeMap<Fact, Answer>,
    /// The controller's clock (Unix seconds) halfway through the probe's round trip,
    /// to compare with a clock a host reports.
    pub asked_at: Option<f64>,
    /// Which task asked each question first (`target: task`), for messages.
    pub asked_by: BTreeMap<Fact, String>,
}

impl Facts {
    pub fn get(&self, fact: &Fact) -> Option<&Answer> {
        self.answers.get(fact)
    }

    pub fn file(&self, path: &str) -> Option<&[u8]> {
        match self.answers.get(&Fact::File(path.to_string())) {
            Some(Answer::Bytes(b)) => Some(b),
            _ => None,
        }
    }

    pub fn sha256(&self, path: &str) -> Option<&str> {
        match self.answers.get(&Fact::Sha256(path.to_string())) {
            Some(Answer::Digest(d)) => Some(d),
            _ => None,
        }
    }

    pub fn shell(&self, snippet: &str) -> Option<(i32, &[u8])> {
        match self.answers.get(&Fact::Shell(snippet.to_string())) {
            Some(Answer::Output { rc, stdout }) => Some((*rc, stdout)),
            _ => None,
        }
    }

    /// Every question with its answer, in question order.
    pub fn answers(&self) -> impl Iterator<Item = (&Fact, &Answer)> {
        self.answers.iter()
    }

    /// The probed owner, group and mode of a regular file.
    pub fn attrs(&self, path: &str) -> Option<&FileStat> {
        match self.answers.get(&Fact::Attrs(path.to_string())) {
            Some(Answer::Attrs(st)) => Some(st),
            _ => None,
        }
    }

    pub fn insert(&mut self, fact: Fact, answer: Answer) {
        self.answers.insert(fact, answer);
    }
}

/// Builds the probe script for a list of questions. Paths are quoted, so a
/// hostile path is data, never code; `Shell` snippets come from the playbook
/// and the engine, not from the inventory.
///
/// Files are read together, by one `stat` and one `cat` for all of them (two processes
/// per host, not two per file): `@@B <total> <index>:<size>...` then the contents, then
/// `@@E 0`, which tells a file that changed size while it was read from a short read.
/// Owners and modes likewise come from one `stat` for all the paths asked:
/// `@@S <len> <index>...` then one stat line per index.
pub fn script(questions: &[Fact]) -> String {
    let mut s = String::from("export LC_ALL=C\nset -u\nfiles=(); found=(); stats=(); stated=()\n");
    for (i, q) in questions.iter().enumerate() {
        match q {
            Fact::File(path) => {
                let p = quote(path);
                s.push_str(&format!(
                    "if [ -f {p} ] && [ -r {p} ]; then files+=({p}); found+=({i}); \
                     else printf '@@{i} M 0\\n'; fi\n"
                ));
            }
            Fact::Sha256(path) => {
                let p = quote(path);
                s.push_str(&format!(
                    "if [ -f {p} ]; then d=$(sha256sum {p} | cut -c1-64); printf '@@{i} D %s\\n%s' \"${{#d}}\" \"$d\"; \
                     else printf '@@{i} M 0\\n'; fi\n"
                ));
            }
            Fact::Shell(snippet) => {
                // `printf x` keeps trailing newlines that $(...) would strip.
                s.push_str(&format!(
                    "o=$( ( {snippet}\n ) 2>/dev/null; rc=$?; printf 'x%s' \"$rc\" ); rc=${{o##*x}}; o=${{o%x*}}; \
                     printf '@@{i} C %s %s\\n%s' \"${{#o}}\" \"$rc\" \"$o\"\n"
                ));
            }
            Fact::Attrs(path) => {
                let p = quote(path);
                s.push_str(&format!(
                    "if [ -f {p} ]; then stats+=({p}); stated+=({i}); \
                     else printf '@@{i} M 0\\n'; fi\n"
                ));
            }
        }
    }
    s.push_str(READ_STATS);
    s.push_str(READ_FILES);
    s
}

/// Owners and modes of the files found, in one batch (`stat -L`: a symlinked file is
/// judged by what it points to, as its contents are). The line format is the one the
/// transport's [`apim_transport::files::parse_stat`] reads.
const READ_STATS: &str = r#"if [ "${#stats[@]}" -gt 0 ]; then
  o=$(stat -L -c '%f %s %u %g %Y %U %G' -- "${stats[@]}") || { echo "a file vanished while the probe read it; run again" >&2; exit 1; }
  o+=$'\n'
  printf '@@S %s %s\n%s' "${#o}" "${stated[*]}" "$o"
fi
"#;

/// The tail of every probe: the files found, in one batch.
const READ_FILES: &str = r#"if [ "${#files[@]}" -gt 0 ]; then
  sizes=($(stat -c %s -- "${files[@]}"))
  if [ "${#sizes[@]}" -ne "${#files[@]}" ]; then
    echo "a file vanished while the probe read it; run again" >&2; exit 1
  fi
  header='' total=0
  for k in "${!files[@]}"; do header+=" ${found[k]}:${sizes[k]}"; total=$((total + sizes[k])); done
  printf '@@B %s%s
' "$total" "$header"
  cat -- "${files[@]}"
  printf '@@E 0
'
fi
"#;

/// Parses a probe's output against the questions it was built from.
pub fn parse(questions: &[Fact], mut out: &[u8]) -> Result<Facts, String> {
    let mut facts = Facts::default();
    while !out.is_empty() {
        let nl = out
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("probe output ends inside a header")?;
        let header = std::str::from_utf8(&out[..nl]).map_err(|_| "probe header is not text")?;
        out = &out[nl + 1..];
        if let Some(batch) = header.strip_prefix("@@B ") {
            out = parse_files(questions, batch, out, &mut facts)?;
            continue;
        }
        if let Some(batch) = header.strip_prefix("@@S ") {
            out = parse_stats(questions, batch, out, &mut facts)?;
            continue;
        }
        let mut parts = header.split(' ');
        let index: usize = parts
            .next()
            .and_then(|p| p.strip_prefix("@@"))
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("bad probe header {header:?}"))?;
        let kind = parts.next().unwrap_or_default();
        let len: usize = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("bad probe length in {header:?}"))?;
        if out.len() < len {
            return Err(format!("probe answer {index} is truncated"));
        }
        let (body, rest) = out.split_at(len);
        out = rest;
        let question = questions
            .get(index)
            .ok_or_else(|| format!("probe answered unknown question {index}"))?;
        let answer = match kind {
            "M" => Answer::Missing,
            "F" => Answer::Bytes(body.to_vec()),
            "D" => Answer::Digest(String::from_utf8_lossy(body).into_owned()),
            "C" => Answer::Output {
                rc: parts.next().and_then(|p| p.parse().ok()).unwrap_or(-1),
                stdout: body.to_vec(),
            },
            other => return Err(format!("unknown probe answer kind {other:?}")),
        };
        facts.insert(question.clone(), answer);
    }
    if let Some(q) = questions.iter().find(|q| facts.get(q).is_none()) {
        return Err(format!("probe gave no answer for {q:?}"));
    }
    Ok(facts)
}

/// One batch of files: `<total> <index>:<size>...`, the contents, then `@@E 0`.
/// Returns the output after the batch.
fn parse_files<'o>(
    questions: &[Fact],
    batch: &str,
    out: &'o [u8],
    facts: &mut Facts,
) -> Result<&'o [u8], String> {
    let bad = || format!("bad probe file batch header {batch:?}");
    let mut parts = batch.split(' ');
    let total: usize = parts.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
    if out.len() < total {
        return Err("probe file batch is truncated".into());
    }
    let (mut body, rest) = out.split_at(total);
    for item in parts {
        let (index, size) = item.split_once(':').ok_or_else(bad)?;
        let index: usize = index.parse().map_err(|_| bad())?;
        let size: usize = size.parse().map_err(|_| bad())?;
        let question = questions
            .get(index)
            .filter(|q| matches!(q, Fact::File(_)))
            .ok_or_else(|| format!("probe answered unknown file question {index}"))?;
        if body.len() < size {
            return Err(bad());
        }
        let (content, next) = body.split_at(size);
        facts.insert(question.clone(), Answer::Bytes(content.to_vec()));
        body = next;
    }
    if !body.is_empty() {
        return Err(bad());
    }
    rest.strip_prefix(b"@@E 0\n".as_slice())
        .ok_or_else(|| "a file changed size while the probe read it; run again".to_string())
}

/// One batch of stat lines: `<len> <index>...`, then `<len>` bytes holding one line
/// per index, in order. Returns the output after the batch.
fn parse_stats<'o>(
    questions: &[Fact],
    batch: &str,
    out: &'o [u8],
    facts: &mut Facts,
) -> Result<&'o [u8], String> {
    let bad = || format!("bad probe stat batch header {batch:?}");
    let mut parts = batch.split(' ');
    let len: usize = parts.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
    if out.len() < len {
        return Err("probe stat batch is truncated".into());
    }
    let (body, rest) = out.split_at(len);
    let body = std::str::from_utf8(body).map_err(|_| "probe stat batch is not text")?;
    let mut lines = body.strip_suffix('\n').ok_or_else(bad)?.split('\n');
    for item in parts {
        let index: usize = item.parse().map_err(|_| bad())?;
        let question = questions
            .get(index)
            .filter(|q| matches!(q, Fact::Attrs(_)))
            .ok_or_else(|| format!("probe answered unknown stat question {index}"))?;
        let line = lines
            .next()
            .ok_or_else(|| "a file vanished while the probe read it; run again".to_string())?;
        let stat = apim_transport::files::parse_stat(line)
            .map_err(|e| format!("bad probe stat line {line:?}: {e}"))?;
        facts.insert(question.clone(), Answer::Attrs(stat));
    }
    if lines.next().is_some() {
        return Err(bad());
    }
    Ok(rest)
}

/// `s` as one shell word, by the transport's quoting ([`apim_transport::quote`], the
/// workspace's only one), for the scripts the engine builds.
///
/// It cannot fail here: the one string no shell word can hold is one with a NUL byte,
/// and every value that reaches a script was rendered by the template engine, which
/// refuses NUL (or is a path the inventory validated). A NUL here is a bug, so it
/// stops the program instead of running a script that would mean something else.
pub fn quote(s: &str) -> String {
    match apim_transport::quote(s) {
        Ok(word) => word.into_owned(),
        Err(e) => panic!("a value for a script {e}; the template engine should have refused it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn run_probe(questions: &[Fact]) -> Facts {
        use std::io::Write;
        let mut child = Command::new("bash")
            .arg("-s")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script(questions).as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        parse(questions, &out.stdout).unwrap()
    }

    #[test]
    fn probe_returns_exact_bytes_of_files_that_look_like_headers() {
        let dir = tempfile::tempdir().unwrap();
        let tricky = dir.path().join("it's a \"file\" $(x)");
        let body = b"@@0 F 3\nabc\r\nno trailing newline";
        std::fs::write(&tricky, body).unwrap();
        let p = tricky.to_str().unwrap().to_string();
        let missing = dir.path().join("absent").to_str().unwrap().to_string();
        let qs = vec![
            Fact::File(p.clone()),
            Fact::File(missing.clone()),
            Fact::Sha256(p.clone()),
            Fact::Shell("printf 'two\\n\\n'; exit 3".into()),
        ];
        let facts = run_probe(&qs);
        assert_eq!(facts.file(&p), Some(&body[..]));
        assert_eq!(facts.get(&Fact::File(missing)), Some(&Answer::Missing));
        use sha2::Digest;
        assert_eq!(
            facts.sha256(&p),
            Some(hex::encode(sha2::Sha256::digest(body)).as_str())
        );
        assert_eq!(
            facts.shell("printf 'two\\n\\n'; exit 3"),
            Some((3, &b"two\n\n"[..]))
        );
    }

    #[test]
    fn several_files_come_back_exact_from_one_batch() {
        // should: every file's own bytes (empty, NULs, a fake end marker inside), in any
        // order of questions, with missing and unreadable-as-file paths answered Missing.
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            p.to_str().unwrap().to_string()
        };
        let a = write("a", b"x\0y\n@@E 0\n");
        let empty = write("empty", b"");
        let b = write("b b", b"second");
        let not_a_file = dir.path().to_str().unwrap().to_string();
        let qs = vec![
            Fact::File(b.clone()),
            Fact::Shell("echo between".into()),
            Fact::File(empty.clone()),
            Fact::File(not_a_file.clone()),
            Fact::File(a.clone()),
        ];
        let facts = run_probe(&qs);
        assert_eq!(facts.file(&a), Some(&b"x\0y\n@@E 0\n"[..]));
        assert_eq!(facts.file(&empty), Some(&b""[..]));
        assert_eq!(facts.file(&b), Some(&b"second"[..]));
        assert_eq!(facts.get(&Fact::File(not_a_file)), Some(&Answer::Missing));
        assert_eq!(facts.shell("echo between"), Some((0, &b"between\n"[..])));
    }

    #[test]
    fn owners_and_modes_come_back_from_one_stat() {
        // should: each asked file's own mode and owner (hostile names included), a
        // directory or missing path answered Missing, files and shells around them intact.
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, mode: u32| {
            let p = dir.path().join(name);
            std::fs::write(&p, b"x").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p.to_str().unwrap().to_string()
        };
        let secret = write("it's $(secret)\nfile", 0o600);
        let public = write("public", 0o644);
        let folder = dir.path().to_str().unwrap().to_string();
        let qs = vec![
            Fact::Attrs(secret.clone()),
            Fact::File(public.clone()),
            Fact::Attrs(folder.clone()),
            Fact::Attrs(public.clone()),
            Fact::Attrs(format!("{folder}/absent")),
        ];
        let facts = run_probe(&qs);
        let me = |f: &str| std::fs::metadata(f).map(|m| std::os::unix::fs::MetadataExt::uid(&m));
        let secret_attrs = facts.attrs(&secret).unwrap();
        assert_eq!(secret_attrs.mode, 0o600);
        assert_eq!(secret_attrs.uid, me(&secret).unwrap());
        assert_eq!(facts.attrs(&public).unwrap().mode, 0o644);
        assert_eq!(facts.file(&public), Some(&b"x"[..]));
        assert_eq!(
            facts.get(&Fact::Attrs(folder.clone())),
            Some(&Answer::Missing)
        );
        assert_eq!(
            facts.get(&Fact::Attrs(format!("{folder}/absent"))),
            Some(&Answer::Missing)
        );
    }

    #[test]
    fn a_stat_batch_that_does_not_match_its_questions_is_an_error() {
        let qs = vec![Fact::Attrs("/a".into()), Fact::Attrs("/b".into())];
        let line = "81a4 1 0 0 1 root root\n";
        let one = format!("@@S {} 0 1\n{line}", line.len());
        assert!(parse(&qs, one.as_bytes()).unwrap_err().contains("vanished"));
        let three = format!("@@S {} 0 1\n{line}{line}{line}", 3 * line.len());
        assert!(parse(&qs, three.as_bytes()).is_err());
        let two = format!("@@S {} 0 1\n{line}{line}", 2 * line.len());
        assert_eq!(
            parse(&qs, two.as_bytes())
                .unwrap()
                .attrs("/b")
                .unwrap()
                .mode,
            0o644
        );
        let on_a_file = format!("@@S {} 0\n{line}", line.len());
        assert!(parse(&[Fact::File("/a".into())], on_a_file.as_bytes()).is_err());
    }

    #[test]
    fn a_file_that_changed_size_while_read_is_an_error() {
        let qs = vec![Fact::File("/x".into())];
        let grew = parse(&qs, b"@@B 3 0:3\nabcd@@E 0\n").unwrap_err();
        assert!(grew.contains("changed size"), "{grew}");
        let shrank = parse(&qs, b"@@B 3 0:3\nab@@E 0\n").unwrap_err();
        assert!(shrank.contains("changed size"), "{shrank}");
        assert_eq!(
            parse(&qs, b"@@B 3 0:3\nabc@@E 0\n").unwrap().file("/x"),
            Some(&b"abc"[..])
        );
    }

    #[test]
    fn truncated_output_is_an_error_not_a_wrong_fact() {
        let qs = vec![Fact::File("/x".into())];
        assert!(parse(&qs, b"@@0 F 10\nabc").is_err());
        assert!(parse(&qs, b"").is_err());
    }
}
