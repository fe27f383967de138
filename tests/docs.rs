//! The documents say only what the code does: every `--flag` that README.md and
//! docs/*.md name is a flag of the CLI (or, listed below, of another tool they
//! show), and every key docs/inventory.md's tables list is a field of the
//! inventory model. Read from the sources and clap's command tree, so a renamed
//! flag or field fails here before a reader trips on it.

use std::collections::BTreeSet;
use std::path::Path;

use clap::CommandFactory;

fn docs() -> Vec<(String, String)> {
    let mut files = vec![Path::new("README.md").to_path_buf()];
    let mut dir: Vec<_> = std::fs::read_dir("docs")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    dir.sort();
    files.extend(dir);
    files
        .into_iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

/// Every long flag of every command and subcommand.
fn cli_flags() -> BTreeSet<String> {
    fn walk(cmd: &clap::Command, out: &mut BTreeSet<String>) {
        for a in cmd.get_arguments() {
            if let Some(l) = a.get_long() {
                out.insert(l.to_string());
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut cmd = apim_deploy::cli::Cli::command();
    cmd.build();
    let mut out = BTreeSet::new();
    walk(&cmd, &mut out);
    out
}

/// Flags the documents show on other programs' command lines.
const OTHER_TOOLS: &[(&str, &str)] = &[
    ("release", "cargo build --release"),
    ("test", "cargo bench --test"),
    ("bench", "cargo bench"),
    ("example", "cargo run --example"),
    ("path", "cargo install --path"),
    ("workspace", "cargo test --workspace"),
    ("net", "unshare"),
    ("uts", "unshare"),
    ("pid", "unshare"),
    ("mount", "unshare"),
    ("fork", "unshare"),
    ("user", "useradd, unshare"),
    ("system", "useradd --system"),
    ("word", "git diff --word-diff"),
    ("tag", "docker or git"),
    ("reference", "the XML engine's reference tests"),
    ("datasource", "a WSO2 script option"),
];

fn flags_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = text[i..].find("--") {
        let start = i + at;
        let before = start.checked_sub(1).map(|b| bytes[b]);
        let mut end = start + 2;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'-')
        {
            end += 1;
        }
        let word = text[start + 2..end].trim_end_matches('-');
        let starts_word = before.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'-'));
        if starts_word && word.starts_with(|c: char| c.is_ascii_lowercase()) {
            out.push(word.to_string());
        }
        i = end.max(start + 2);
    }
    out
}

#[test]
fn every_flag_the_documents_name_exists() {
    let ours = cli_flags();
    let theirs: BTreeSet<&str> = OTHER_TOOLS.iter().map(|(f, _)| *f).collect();
    let mut unknown = Vec::new();
    for (file, text) in docs() {
        for flag in flags_in(&text) {
            if !ours.contains(&flag) && !theirs.contains(flag.as_str()) {
                unknown.push(format!("{file}: --{flag}"));
            }
        }
    }
    unknown.dedup();
    assert!(
        unknown.is_empty(),
        "flags the CLI does not have: {unknown:#?}"
    );
}

#[test]
fn the_flag_finder_finds_flags_and_not_dashes() {
    assert_eq!(
        flags_in("run `apim-deploy plan --limit app1 --json`; a -- b; x--y; --"),
        ["limit", "json"]
    );
}

/// The keys in the first column of docs/inventory.md's tables (`key` or `a`, `b`).
fn documented_keys(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let Some(cell) = line.strip_prefix("| ").and_then(|l| l.split(" |").next()) else {
            continue;
        };
        for part in cell.split(',') {
            let part = part.trim();
            if let Some(key) = part.strip_prefix('`').and_then(|p| p.strip_suffix('`')) {
                // File names (`all-in-one.toml`) and values are not keys.
                if !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
                {
                    keys.insert(key.to_string());
                }
            }
        }
    }
    keys
}

#[test]
fn every_inventory_key_the_document_lists_is_in_the_model() {
    let doc = std::fs::read_to_string("docs/inventory.md").unwrap();
    let mut model = String::new();
    let mut files: Vec<_> = std::fs::read_dir("src/inventory")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
    {
        model.push_str(&std::fs::read_to_string(f).unwrap());
    }
    let keys = documented_keys(&doc);
    assert!(
        keys.contains("identity_file") && keys.contains("sha256"),
        "{keys:?}"
    );
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| {
            // A serde field: `pub key:` / `key:` in a struct, or a rename to the key.
            !(model.contains(&format!(" {k}:")) || model.contains(&format!("\"{k}\"")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "keys docs/inventory.md lists but the model lacks: {missing:?}"
    );
}
