//! Architecture invariants as tests: what a crate or module may know, checked by reading
//! the sources rather than trusted to review. ARCHITECTURE.md names the test behind each
//! invariant; a failure lists every offending `file:line`.
//!
//! The scanner is deliberately small (no parser, no new dependency): it classifies every
//! byte of a Rust file as code, comment or string literal, so an invariant about code is
//! not tripped by prose, and one about words reads the prose too. Each checker is a pure
//! function of a file's path and text, and has a test on a synthetic source that breaks
//! its invariant: a checker that silently stopped matching would fail there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------
// The invariants and their data

/// Words that name the product the engine happens to deploy (matched case-insensitively,
/// anywhere: code, comments, strings). The engine is generic: a playbook brings the
/// product, so the engine's code, docs and test data must read the same for any product.
const PRODUCT_WORDS: &[&str] = &[
    "wso2", // also wso2carbon, wso2server, wso2am
    "carbon",
    "apimanager",
    "api-manager",
    "api manager",
    "api_manager",
    "keymanager",
    "key manager",
    "key-manager",
    "key_manager",
    "gateway",
    "publisher",
    "master-datasources",
    "axis2",
    "synapse",
    "repository/conf",
    "apimgt",
];

/// Role names that are also ordinary English words: matched as whole words in code and
/// string literals only. As a role, `store` is data (`Some("store")`, `store = [...]`);
/// in a comment it is the verb, which the engine may use.
const PRODUCT_ROLE_WORDS: &[&str] = &["store"];

/// For each crate: the workspace crates it may depend on (normal and build dependencies;
/// dev-dependencies are test tooling, e.g. the transport's tests run on lab hosts).
const CRATE_DEPENDENCIES: &[(&str, &[&str])] = &[
    // The XML patcher knows nothing of SSH, playbooks or the product.
    ("apim-xmlpatch", &[]),
    // The transport knows hosts, bytes and exit codes; never an inventory or a playbook.
    ("apim-transport", &[]),
    // The engine drives transports and patches files; the product layer drives it.
    ("apim-engine", &["apim-xmlpatch", "apim-transport"]),
];

/// For each top-level module of the root package: the top-level modules it must not use.
/// Data flows one way: inventory -> topology -> wso2 -> deploy/operate -> cli.
const ROOT_MODULE_FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "inventory",
        &["topology", "wso2", "deploy", "operate", "cli", "connect"],
    ),
    ("topology", &["wso2", "deploy", "operate", "cli"]),
    ("wso2", &["deploy", "operate", "cli"]),
];

/// The only top-level items of the root package that may use `cli`: `cli` itself and the
/// binary's `main.rs` (the library's other modules are what `cli` calls).
const CLI_USERS: &[&str] = &["cli", "main"];

/// Code words that open a network connection. Only `connect.rs` opens connections in the
/// root package and the engine, so a command cannot reach a host in a way that skips the
/// inventory's SSH settings, the host-key policy and the one-connection-per-host rule.
const CONNECTION_WORDS: &[&str] = &["SshTransport", "russh", "TcpStream"];
const CONNECTION_OWNER: &str = "src/connect.rs";

/// Names that only lab code may use: the lab and stand-in crates, and the switch of the
/// lab tests. Production code treats a lab host like any host with sshd.
const LAB_WORDS: &[&str] = &["apim_lab", "apim_standin", "APIM_LAB"];

/// The root package's glue to the lab: `apim-deploy lab ...` and `lab dist`.
const LAB_GLUE: &[&str] = &["src/cli/lab.rs", "src/cli/dist.rs"];

/// Production sources besides the root package's `src/`.
const PRODUCTION_CRATES: &[&str] = &["crates/engine", "crates/transport", "crates/xmlpatch"];

// ---------------------------------------------------------------------------------------
// The invariant tests

#[test]
fn engine_names_no_product() {
    let mut found = Vec::new();
    for file in files_under("crates/engine", |_| true) {
        found.extend(product_hits(&file.path, &file.text));
    }
    assert!(
        found.is_empty(),
        "the engine names the product it deploys; a playbook must bring that \
         (reword, or use neutral sample data):\n{}",
        found.join("\n")
    );
}

#[test]
fn crates_depend_only_downward() {
    let members = workspace_members();
    let mut found = Vec::new();
    for (name, allowed) in CRATE_DEPENDENCIES {
        let manifest = members
            .get(*name)
            .unwrap_or_else(|| panic!("{name} is not a workspace member: update the table"));
        let names: BTreeSet<&str> = members.keys().map(String::as_str).collect();
        found.extend(crate_violations(name, manifest, &names, allowed));
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn root_modules_depend_only_downward() {
    let found: Vec<String> = files_under("src", is_rust)
        .iter()
        .flat_map(|f| module_violations(&f.path, &f.text))
        .collect();
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn only_connect_opens_connections() {
    let found: Vec<String> = production_rust_files()
        .iter()
        .filter(|f| f.path.starts_with("src/") || f.path.starts_with("crates/engine/"))
        .flat_map(|f| connection_violations(&f.path, &f.text))
        .collect();
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn production_code_knows_nothing_of_the_lab() {
    let found: Vec<String> = production_rust_files()
        .iter()
        .flat_map(|f| lab_violations(&f.path, &f.text))
        .collect();
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn comments_cite_no_issue_numbers() {
    let found: Vec<String> = ["src", "crates", "tests"]
        .iter()
        .flat_map(|dir| files_under(dir, is_rust))
        .flat_map(|f| issue_citations(&f.path, &f.text))
        .collect();
    assert!(
        found.is_empty(),
        "a comment cites an issue number; say the reason itself:\n{}",
        found.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Checkers: pure functions of a path and a text, one line per violation

/// Product words in an engine file, as `path:line: ...`.
fn product_hits(path: &str, text: &str) -> Vec<String> {
    let (all, code_and_strings) = if path.ends_with(".rs") {
        let kinds = classify(text);
        (
            text.to_string(),
            view(text, &kinds, &[Kind::Code, Kind::Str]),
        )
    } else {
        (text.to_string(), text.to_string())
    };
    let lower = all.to_ascii_lowercase();
    let mut hits = Vec::new();
    for word in PRODUCT_WORDS {
        for at in find_all(&lower, word) {
            hits.push((at, *word));
        }
    }
    let lower = code_and_strings.to_ascii_lowercase();
    for word in PRODUCT_ROLE_WORDS {
        for at in find_all(&lower, word).filter(|&at| whole_word(&lower, at, word.len())) {
            hits.push((at, *word));
        }
    }
    hits.sort();
    hits.into_iter()
        .map(|(at, word)| located(path, text, at, &format!("`{word}`")))
        .collect()
}

/// The workspace crates a manifest depends on that its row of the table does not allow.
fn crate_violations(
    name: &str,
    manifest: &toml::Table,
    workspace: &BTreeSet<&str>,
    allowed: &[&str],
) -> Vec<String> {
    let mut tables = vec![manifest];
    if let Some(toml::Value::Table(targets)) = manifest.get("target") {
        tables.extend(targets.values().filter_map(toml::Value::as_table));
    }
    let mut found = Vec::new();
    for table in tables {
        for section in ["dependencies", "build-dependencies"] {
            let Some(toml::Value::Table(deps)) = table.get(section) else {
                continue;
            };
            for (key, spec) in deps {
                let dep = spec
                    .get("package")
                    .and_then(toml::Value::as_str)
                    .unwrap_or(key);
                if workspace.contains(dep) && !allowed.contains(&dep) {
                    found.push(format!(
                        "{name} depends on {dep} ([{section}]); it may use only {allowed:?}"
                    ));
                }
            }
        }
    }
    found
}

/// Uses of a top-level module of the root package that the layering forbids.
fn module_violations(path: &str, text: &str) -> Vec<String> {
    let Some(module) = root_module_path(path) else {
        return Vec::new();
    };
    let top = module.first().map_or("lib", String::as_str);
    let forbidden: &[&str] = ROOT_MODULE_FORBIDDEN
        .iter()
        .find(|(m, _)| *m == top)
        .map_or(&[], |(_, f)| f);
    let code = view(text, &classify(text), &[Kind::Code]);
    let mut found = Vec::new();
    for (at, used) in used_root_modules(&code, &module) {
        let why = if forbidden.contains(&used.as_str()) {
            format!("`{top}` must not use `{used}`")
        } else if used == "cli" && !CLI_USERS.contains(&top) {
            format!("only {CLI_USERS:?} may use `cli`; `{top}` does")
        } else {
            continue;
        };
        found.push(located(path, text, at, &why));
    }
    found
}

/// Code that opens a connection outside `connect.rs`.
fn connection_violations(path: &str, text: &str) -> Vec<String> {
    if path == CONNECTION_OWNER {
        return Vec::new();
    }
    let code = view(text, &classify(text), &[Kind::Code]);
    let mut found: Vec<(usize, String)> = CONNECTION_WORDS
        .iter()
        .flat_map(|w| {
            find_all(&code, w)
                .filter(|&at| whole_word(&code, at, w.len()))
                .map(move |at| {
                    (
                        at,
                        format!("`{w}`: only {CONNECTION_OWNER} opens connections"),
                    )
                })
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(at, why)| located(path, text, at, &why))
        .collect()
}

/// Lab names in production code (code and doc links alike).
fn lab_violations(path: &str, text: &str) -> Vec<String> {
    if LAB_GLUE.contains(&path) {
        return Vec::new();
    }
    let mut found: Vec<(usize, &str)> = LAB_WORDS
        .iter()
        .flat_map(|w| find_all(text, w).map(move |at| (at, *w)))
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(at, w)| located(path, text, at, &format!("`{w}` in production code")))
        .collect()
}

/// Issue numbers cited in comments: the word, then a number, with or without `#`.
fn issue_citations(path: &str, text: &str) -> Vec<String> {
    let comments = view(text, &classify(text), &[Kind::Comment]).to_ascii_lowercase();
    find_all(&comments, "issue")
        .filter(|&at| {
            let rest = comments[at + "issue".len()..].trim_start_matches([' ', '#']);
            rest.starts_with(|c: char| c.is_ascii_digit())
        })
        .map(|at| located(path, text, at, "an issue number"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Module paths and `crate::` uses

/// The module path of a root-package source file (`src/cli/facts.rs` -> `[cli, facts]`,
/// `src/lib.rs` -> `[]`, `src/main.rs` -> `[main]`, standing for the binary).
fn root_module_path(path: &str) -> Option<Vec<String>> {
    let rel = path.strip_prefix("src/")?.strip_suffix(".rs")?;
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod") || rel == "lib" {
        parts.pop();
    }
    Some(parts)
}

/// The top-level modules named by `crate::x`, `crate::{x, y::z}`, `apim_deploy::x` and
/// `super::x` paths in code (comments and strings already blanked), with their offsets.
/// `super::` is resolved against the file's module path; inline modules (`mod tests`)
/// are not tracked, so there it resolves one level too high, which can only report a
/// use that is not there, never hide one.
fn used_root_modules(code: &str, module: &[String]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for prefix in ["crate::", "apim_deploy::"] {
        for at in find_all(code, prefix).filter(|&at| starts_word(code, at)) {
            let rest = &code[at + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                found.extend(group_heads(group).into_iter().map(|h| (at, h)));
            } else if let Some(head) = ident_at(rest) {
                found.push((at, head.to_string()));
            }
        }
    }
    for at in find_all(code, "super::").filter(|&at| starts_word(code, at)) {
        if code[..at].ends_with("super::") {
            continue; // the tail of a `super::super::` chain, counted at its start
        }
        let mut rest = &code[at..];
        let mut levels = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            levels += 1;
            rest = r;
        }
        // Within a top-level module's own files `super::` stays inside it; only a path
        // that climbs to the crate root names another top-level module.
        if levels >= module.len()
            && let Some(head) = ident_at(rest)
            && module.first().map(String::as_str) != Some(head)
        {
            found.push((at, head.to_string()));
        }
    }
    found.sort();
    found
}

/// The first identifier of each item of a `{a, b::c, d as e}` use group.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            c if item_start && depth == 0 && !c.is_whitespace() => {
                item_start = false;
                if let Some(head) = ident_at(&group[i..]) {
                    heads.push(head.to_string());
                }
            }
            _ => {}
        }
    }
    heads
}

fn ident_at(s: &str) -> Option<&str> {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

// ---------------------------------------------------------------------------------------
// The scanner: code, comments and string literals of a Rust source

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Code,
    Comment,
    Str,
}

/// The kind of every byte of `text`. Handles line and (nested) block comments, string,
/// byte and raw string literals, and tells char literals from lifetimes.
fn classify(text: &str) -> Vec<Kind> {
    let b = text.as_bytes();
    let mut kinds = vec![Kind::Code; b.len()];
    let mut i = 0;
    let mark = |kinds: &mut Vec<Kind>, from: usize, to: usize, k: Kind| {
        kinds[from..to.min(b.len())].fill(k);
    };
    while i < b.len() {
        let c = b[i];
        if b[i..].starts_with(b"//") {
            let end = memchr(b, i, b'\n');
            mark(&mut kinds, i, end, Kind::Comment);
            i = end;
        } else if b[i..].starts_with(b"/*") {
            let (mut j, mut depth) = (i + 2, 1);
            while j < b.len() && depth > 0 {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            mark(&mut kinds, i, j, Kind::Comment);
            i = j;
        } else if c == b'"' {
            let end = quoted_end(b, i + 1, b'"');
            mark(&mut kinds, i, end, Kind::Str);
            i = end;
        } else if c == b'\'' {
            match char_literal_end(b, i) {
                Some(end) => {
                    mark(&mut kinds, i, end, Kind::Str);
                    i = end;
                }
                None => i += 1, // a lifetime or a label
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let word = &b[start..i];
            if matches!(word, b"r" | b"br" | b"cr") {
                let hashes = b[i..].iter().take_while(|&&h| h == b'#').count();
                if b.get(i + hashes) == Some(&b'"') {
                    let mut close = vec![b'"'];
                    close.extend(std::iter::repeat_n(b'#', hashes));
                    let body = i + hashes + 1;
                    let end = find_bytes(b, body, &close).map_or(b.len(), |e| e + close.len());
                    mark(&mut kinds, start, end, Kind::Str);
                    i = end;
                }
            } else if matches!(word, b"b" | b"c") && b.get(i) == Some(&b'"') {
                let end = quoted_end(b, i + 1, b'"');
                mark(&mut kinds, start, end, Kind::Str);
                i = end;
            } else if word == b"b"
                && b.get(i) == Some(&b'\'')
                && let Some(end) = char_literal_end(b, i)
            {
                mark(&mut kinds, start, end, Kind::Str);
                i = end;
            }
        } else {
            i += 1;
        }
    }
    kinds
}

/// The end (exclusive) of a quoted literal whose body starts at `from`.
fn quoted_end(b: &[u8], mut from: usize, quote: u8) -> usize {
    while from < b.len() {
        match b[from] {
            b'\\' => from += 2,
            q if q == quote => return from + 1,
            _ => from += 1,
        }
    }
    b.len()
}

/// The end of a char literal opening at `at`, or `None` for a lifetime (`'a`, `'static`).
fn char_literal_end(b: &[u8], at: usize) -> Option<usize> {
    match b.get(at + 1)? {
        b'\\' => Some(quoted_end(b, at + 1, b'\'')),
        &lead => {
            let width = match lead {
                0x00..=0x7f => 1,
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                _ => 4,
            };
            (b.get(at + 1 + width) == Some(&b'\'')).then_some(at + 2 + width)
        }
    }
}

/// `text` with every byte of a kind not in `keep` blanked (newlines stay, so offsets and
/// line numbers are those of the original).
fn view(text: &str, kinds: &[Kind], keep: &[Kind]) -> String {
    let bytes: Vec<u8> = text
        .bytes()
        .zip(kinds)
        .map(|(c, k)| {
            if keep.contains(k) || c == b'\n' {
                c
            } else {
                b' '
            }
        })
        .collect();
    // Whole characters are blanked (a multi-byte char never straddles two kinds).
    String::from_utf8(bytes).expect("blanking keeps UTF-8")
}

fn memchr(b: &[u8], from: usize, needle: u8) -> usize {
    b[from..]
        .iter()
        .position(|&c| c == needle)
        .map_or(b.len(), |p| from + p)
}

fn find_bytes(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

fn find_all<'a>(haystack: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    haystack.match_indices(needle).map(|(at, _)| at)
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn starts_word(s: &str, at: usize) -> bool {
    at == 0 || !is_word_byte(s.as_bytes()[at - 1])
}

fn whole_word(s: &str, at: usize, len: usize) -> bool {
    starts_word(s, at) && s.as_bytes().get(at + len).is_none_or(|&c| !is_word_byte(c))
}

/// `path:line: why: the line`.
fn located(path: &str, text: &str, at: usize, why: &str) -> String {
    let line = text[..at].matches('\n').count() + 1;
    let source = text.lines().nth(line - 1).unwrap_or("").trim();
    format!("{path}:{line}: {why}: {source}")
}

// ---------------------------------------------------------------------------------------
// The workspace on disk

struct SourceFile {
    /// Relative to the workspace root, with `/`.
    path: String,
    text: String,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn is_rust(path: &str) -> bool {
    path.ends_with(".rs")
}

/// Every text file under `dir` (relative to the root) that `keep` accepts, sorted.
fn files_under(dir: &str, keep: impl Fn(&str) -> bool) -> Vec<SourceFile> {
    let mut out = Vec::new();
    let mut stack = vec![root().join(dir)];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let p: PathBuf = entry.unwrap().path();
            let rel = p
                .strip_prefix(root())
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            if p.is_dir() {
                if !matches!(
                    p.file_name().and_then(|n| n.to_str()),
                    Some("target" | ".git")
                ) {
                    stack.push(p);
                }
            } else if keep(&rel)
                && let Ok(text) = std::fs::read_to_string(&p)
            {
                out.push(SourceFile { path: rel, text });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    assert!(!out.is_empty(), "no files under {dir}");
    out
}

/// The Rust sources that ship: the root package's `src/` and the production crates' `src/`.
fn production_rust_files() -> Vec<SourceFile> {
    let mut files = files_under("src", is_rust);
    for krate in PRODUCTION_CRATES {
        files.extend(files_under(&format!("{krate}/src"), is_rust));
    }
    files
}

/// Every workspace member (the root package included) by package name, with its manifest.
fn workspace_members() -> BTreeMap<String, toml::Table> {
    let read = |dir: &Path| -> toml::Table {
        let path = dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        text.parse()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let top = read(root());
    let mut members = vec![top.clone()];
    let listed = top["workspace"]["members"].as_array().unwrap();
    for m in listed {
        members.push(read(&root().join(m.as_str().unwrap())));
    }
    members
        .into_iter()
        .map(|m| (m["package"]["name"].as_str().unwrap().to_string(), m))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The checkers catch what they must: each invariant broken on purpose, in a synthetic file

#[test]
fn scanner_tells_code_comments_and_strings_apart() {
    let text = "let a = \"x // y\"; // c1\n/* c2 /* nested */ still */ let b = r#\"q\"#;\n\
                fn f<'a>(x: &'a str) -> char { let _ = b'\\''; 'z' } // c3 'é'\n";
    let kinds = classify(text);
    let code = view(text, &kinds, &[Kind::Code]);
    let comments = view(text, &kinds, &[Kind::Comment]);
    let strings = view(text, &kinds, &[Kind::Str]);
    assert!(code.contains("let a =") && code.contains("let b =") && code.contains("<'a>"));
    assert!(!code.contains("x // y") && !code.contains("c1") && !code.contains("still"));
    assert!(!code.contains("'z'") && !code.contains("b'"), "{code}");
    assert!(comments.contains("// c1") && comments.contains("still */"));
    assert!(comments.contains("c3 'é'"), "{comments}");
    assert!(strings.contains("\"x // y\"") && strings.contains("r#\"q\"#"));
    assert!(strings.contains("'z'") && strings.contains("b'\\''"));
    assert_eq!(code.len(), text.len(), "offsets are kept");
}

#[test]
fn product_words_are_caught_in_comments_code_and_strings() {
    let text = "//! Starts a Carbon node.\nfn f() {}\nconst R: &str = \"role = 'gateway'\";\n\
                // we store the value; restore it; keystore\nlet s = Some(\"store\");\n";
    let hits = product_hits("crates/engine/src/x.rs", text);
    assert_eq!(hits.len(), 3, "{hits:#?}");
    assert!(hits[0].starts_with("crates/engine/src/x.rs:1: `carbon`"));
    assert!(hits[1].starts_with("crates/engine/src/x.rs:3: `gateway`"));
    assert!(hits[2].starts_with("crates/engine/src/x.rs:5: `store`"));
    assert!(product_hits("crates/engine/Cargo.toml", "description = \"WSO2\"").len() == 1);
}

#[test]
fn a_crate_depending_upward_is_caught() {
    let manifest: toml::Table = "[package]\nname = \"apim-engine\"\n\
        [dependencies]\napim-xmlpatch = { path = \"../xmlpatch\" }\nlab = { package = \"apim-lab\", path = \"../lab\" }\n\
        [dev-dependencies]\napim-standin = { path = \"../standin\" }\n\
        [target.'cfg(unix)'.build-dependencies]\napim-deploy = { path = \"../..\" }\n"
        .parse()
        .unwrap();
    let workspace: BTreeSet<&str> = ["apim-xmlpatch", "apim-lab", "apim-standin", "apim-deploy"]
        .into_iter()
        .collect();
    let found = crate_violations("apim-engine", &manifest, &workspace, &["apim-xmlpatch"]);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].contains("depends on apim-lab ([dependencies])"));
    assert!(found[1].contains("depends on apim-deploy ([build-dependencies])"));
}

#[test]
fn a_module_using_a_higher_layer_is_caught() {
    let text = "use crate::{topology::Node, values::X};\n// crate::wso2 in a comment\n\
                fn f() { crate::cli::main(); let s = \"crate::deploy\"; }\n";
    let found = module_violations("src/inventory/mod.rs", text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("src/inventory/mod.rs:1: `inventory` must not use `topology`"));
    assert!(found[1].starts_with("src/inventory/mod.rs:3: `inventory` must not use `cli`"));
    // `cli` is for `cli` and `main.rs` only; `super::` at the top resolves to the crate.
    assert_eq!(
        module_violations("src/deploy.rs", "use super::cli::Args;").len(),
        1
    );
    assert!(module_violations("src/main.rs", "apim_deploy::cli::main()").is_empty());
    assert!(module_violations("src/cli/plan.rs", "use super::apply::Args;").is_empty());
    let nested = module_violations("src/wso2/artifacts.rs", "use crate::{engine, operate::x};");
    assert_eq!(nested.len(), 1, "{nested:#?}");
}

#[test]
fn a_connection_outside_connect_is_caught() {
    let text = "// SshTransport::connect is connect.rs's job\n\
                let t = apim_transport::ssh::SshTransport::connect(target).await?;\n";
    let found = connection_violations("src/deploy.rs", text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].starts_with("src/deploy.rs:2: `SshTransport`"));
    assert!(connection_violations(CONNECTION_OWNER, text).is_empty());
    assert_eq!(
        connection_violations("crates/engine/src/x.rs", "std::net::TcpStream::connect(a)").len(),
        1
    );
}

#[test]
fn lab_names_in_production_code_are_caught() {
    let text = "use apim_lab::Lab;\nif std::env::var(\"APIM_LAB_TESTS\").is_ok() {}\n";
    let found = lab_violations("src/deploy.rs", text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("src/deploy.rs:1: `apim_lab`"));
    assert!(found[1].starts_with("src/deploy.rs:2: `APIM_LAB`"));
    assert!(lab_violations("src/cli/lab.rs", text).is_empty());
}

#[test]
fn issue_citations_in_comments_are_caught() {
    let text = "//! Parsed first (issue #2).\n// TODO(issue 6): later\n\
                let e = \"op #1 failed: issue 7\"; // an issue with the cache\n";
    let found = issue_citations("src/x.rs", text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("src/x.rs:1:") && found[1].starts_with("src/x.rs:2:"));
}
