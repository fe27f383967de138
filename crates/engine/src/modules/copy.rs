//! `copy`: a controller file on the host, by checksum (the distribution
//! archive, the JDBC driver jar). Skipped when the host already has a file with
//! the pinned sha256; otherwise streamed and verified on the far side.
//!
//! Hashing a large file on every host on every run would dominate a no-op rerun
//! (150 MB: about half a second per host). With `digest_cache`, the host keeps a
//! record of the digest it verified, stamped with the file's device, inode, size,
//! mtime and ctime; the probe hashes again only when that stamp no longer matches
//! (any write or replacement moves the ctime, which cannot be set back).
//!
//! With `url`, the host downloads the file itself (curl or wget) instead of
//! receiving it from the controller, for hosts that reach a mirror; the download
//! is checked against the same pinned sha256 before it replaces anything.
//!
//! With `owner`, `group` and `mode`, the file's owner and mode are part of its desired
//! state (`file_attrs`): a file with the right bytes and the wrong owner or mode is
//! repaired by a `chown`/`chmod`, and a new copy gets them before it takes its place.

use std::path::PathBuf;

use serde::Deserialize;

use super::file_attrs::Wanted;
use super::{Action, Decision, ModuleError};
use crate::preflight;
use crate::probe::{Fact, quote};
use crate::state::HostState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The file on the controller (already verified against `sha256`).
    pub src: PathBuf,
    pub sha256: String,
    /// Absolute destination path on the host.
    pub dest: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// Octal, e.g. `"0644"`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Where the host records the digest it verified (for large files).
    #[serde(default)]
    pub digest_cache: Option<String>,
    /// The host downloads the file from here itself (empty: the controller pushes it).
    #[serde(default)]
    pub url: Option<String>,
}

/// The stat fields that change whenever the file's bytes or identity do.
const STAMP: &str = "stat -c '%d %i %s %.9Y %.9Z' --";

/// Prints the file's sha256: the recorded one while the stamp matches, else a fresh
/// hash; exit 3 when the file is missing. Read-only (plan writes nothing).
fn cached_digest_probe(dest: &str, cache: &str) -> String {
    format!(
        "f={f}; c={c}; s=$({STAMP} \"$f\" 2>/dev/null) || exit 3\n\
         l1=''; l2=''; {{ read -r l1; read -r l2; }} 2>/dev/null < \"$c\"\n\
         if [ \"$l1\" = \"$s\" ] && [ -n \"$l2\" ]; then echo \"$l2\"; \
         else sha256sum -- \"$f\" | cut -c1-64; fi",
        f = quote(dest),
        c = quote(cache),
    )
}

/// Records the digest of a just-verified file (after its chown, which moves the ctime).
fn record_digest(dest: &str, cache: &str, sha256: &str) -> String {
    format!(
        "set -eu\nf={f}; c={c}\ns=$({STAMP} \"$f\")\n\
         printf '%s\\n%s\\n' \"$s\" {sha} > \"$c.tmp\"\nmv -f \"$c.tmp\" \"$c\"\n",
        f = quote(dest),
        c = quote(cache),
        sha = quote(sha256),
    )
}

impl Params {
    fn wanted(&self) -> Result<Wanted, ModuleError> {
        Wanted::parse(
            "copy",
            self.owner.as_deref(),
            self.group.as_deref(),
            self.mode.as_deref(),
        )
    }
}

pub fn questions(p: &Params) -> Result<Vec<Fact>, ModuleError> {
    let mut facts = vec![
        match &p.digest_cache {
            Some(cache) => Fact::Shell(cached_digest_probe(&p.dest, cache)),
            None => Fact::Sha256(p.dest.clone()),
        },
        preflight::free_space(&p.dest),
        preflight::commands(TOOLS),
    ];
    facts.extend(p.wanted()?.questions(&p.dest));
    Ok(facts)
}

/// What a copy may need on the host: a hasher to verify what arrived, and a
/// downloader when the host fetches the file itself.
const TOOLS: &[&str] = &["sha256sum", "openssl", "curl", "wget"];

fn check_tools(p: &Params, state: &HostState) -> Result<(), ModuleError> {
    let what = format!("verifying {}", p.dest);
    preflight::require_command(state, TOOLS, &["sha256sum", "openssl"], &what)?;
    if p.url.as_deref().is_some_and(|u| !u.is_empty()) {
        let what = format!("downloading {}", p.dest);
        preflight::require_command(state, TOOLS, &["curl", "wget"], &what)?;
    }
    Ok(())
}

/// Room on the host for the file (it is written beside its destination, then
/// renamed). Its size is the controller's copy's; a download has the same bytes.
fn check_room(p: &Params, state: &mut HostState) -> Result<(), ModuleError> {
    let Ok(size) = std::fs::metadata(&p.src).map(|m| m.len()) else {
        return Ok(()); // a download-only artifact: its size is not known here
    };
    preflight::reserve_room(state, &p.dest, size, &p.dest)
}

/// The digest the host reported, `None` when the file is missing.
fn host_digest(p: &Params, state: &HostState) -> Result<Option<String>, ModuleError> {
    let Some(cache) = &p.digest_cache else {
        return Ok(state.probed_sha256(&p.dest).map(str::to_string));
    };
    match state.probed_shell(&cached_digest_probe(&p.dest, cache)) {
        Some((0, out)) => Ok(Some(String::from_utf8_lossy(out).trim().to_string())),
        Some((3, _)) => Ok(None),
        Some((rc, out)) => Err(ModuleError::new(format!(
            "copy: cannot hash {} on the host (exit {rc}): {}",
            p.dest,
            String::from_utf8_lossy(out).trim()
        ))),
        None => Err(ModuleError::new("copy: the digest probe did not run")),
    }
}

pub fn decide(p: &Params, state: &mut HostState) -> Result<Decision, ModuleError> {
    let wanted = p.wanted()?;
    match host_digest(p, state)? {
        Some(d) if d.eq_ignore_ascii_case(&p.sha256) => match wanted.drift(&p.dest, state) {
            None => Ok(Decision::ok(format!(
                "{} has sha256 {}",
                p.dest,
                short(&p.sha256)
            ))),
            Some(drift) => {
                wanted.plan(&p.dest, state);
                let mut actions = vec![wanted.repair(&p.dest)];
                // A chown or chmod moves the ctime the recorded digest is stamped with.
                if let Some(cache) = &p.digest_cache {
                    actions.push(record(&p.dest, cache, &p.sha256.to_lowercase()));
                }
                Ok(Decision::change(format!("{}: {drift}", p.dest), actions))
            }
        },
        found => {
            let why = match found {
                Some(d) => format!(
                    "{} has sha256 {}, want {}",
                    p.dest,
                    short(&d),
                    short(&p.sha256)
                ),
                None => format!("{} is missing", p.dest),
            };
            check_room(p, state)?;
            check_tools(p, state)?;
            let sha256 = p.sha256.to_lowercase();
            let mut actions = vec![match p.url.as_deref().filter(|u| !u.is_empty()) {
                Some(url) => Action::Script {
                    describe: format!("download {} on the host", p.dest),
                    script: download(url, &p.dest, &sha256, &wanted),
                },
                None => Action::Upload {
                    local: p.src.clone(),
                    remote: p.dest.clone(),
                    sha256: sha256.clone(),
                    mode: wanted.mode,
                    owner: wanted.transport_owner(),
                },
            }];
            if let Some(cache) = &p.digest_cache {
                actions.push(record(&p.dest, cache, &sha256));
            }
            wanted.plan(&p.dest, state);
            Ok(Decision::change(why, actions))
        }
    }
}

fn record(dest: &str, cache: &str, sha256: &str) -> Action {
    Action::Script {
        describe: format!("record the sha256 of {dest}"),
        script: record_digest(dest, cache, sha256),
    }
}

/// The host fetches `url` to a temp name beside `dest`, checks the pinned sha256,
/// gives it its owner and mode, then renames it into place: a failed or wrong
/// download replaces nothing.
fn download(url: &str, dest: &str, sha256: &str, wanted: &Wanted) -> String {
    let mut chown = String::new();
    if let Some(spec) = wanted.chown_spec() {
        chown.push_str(&format!("chown -- {} \"$t\"\n", quote(&spec)));
    }
    if let Some(m) = wanted.mode {
        chown.push_str(&format!("chmod -- {} \"$t\"\n", quote(&format!("{m:04o}"))));
    }
    format!(
        r#"set -eu
d={dest}; u={url}; want={sha}
mkdir -p "$(dirname "$d")"
t="$d.apim-download.$$"
trap 'rm -f "$t"' EXIT
if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 2 -o "$t" -- "$u"
elif command -v wget >/dev/null 2>&1; then wget -q -O "$t" -- "$u"
else echo "neither curl nor wget is installed on this host" >&2; exit 1; fi
got=$(sha256sum -- "$t" | cut -c1-64)
if [ "$got" != "$want" ]; then echo "$u has sha256 $got, but $want is pinned" >&2; exit 1; fi
{chown}mv -f "$t" "$d"
"#,
        dest = quote(dest),
        url = quote(url),
        sha = quote(sha256),
    )
}

fn short(d: &str) -> &str {
    crate::report::short_digest(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(script: &str) -> (i32, String) {
        let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    }

    #[test]
    fn the_recorded_digest_stands_only_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("it's a.zip");
        let c = dir.path().join("a.zip.sha256");
        let (f, c) = (f.to_str().unwrap(), c.to_str().unwrap());
        assert_eq!(sh(&cached_digest_probe(f, c)).0, 3, "missing file");
        std::fs::write(f, b"bytes").unwrap();
        let real = sh(&format!("sha256sum {} | cut -c1-64", quote(f))).1;
        // A record claiming another digest is believed while the stamp matches...
        let fake = "ab".repeat(32);
        assert_eq!(sh(&record_digest(f, c, &fake)).0, 0);
        assert_eq!(sh(&cached_digest_probe(f, c)), (0, fake));
        // ...and ignored once the file was written (same size, mtime put back).
        let mtime = std::fs::metadata(f).unwrap().modified().unwrap();
        std::fs::write(f, b"BYTES").unwrap();
        let file = std::fs::File::options().write(true).open(f).unwrap();
        file.set_modified(mtime).unwrap();
        let changed = sh(&format!("sha256sum {} | cut -c1-64", quote(f))).1;
        assert_ne!(changed, real);
        assert_eq!(sh(&cached_digest_probe(f, c)), (0, changed));
    }

    fn jar_host(digest: &str, user: &str, mode: u32) -> HostState {
        use crate::probe::{Answer, Facts, FileStat};
        let mut facts = Facts::default();
        facts.insert(
            Fact::Sha256("/opt/lib/db.jar".into()),
            Answer::Digest(digest.into()),
        );
        facts.insert(
            Fact::Attrs("/opt/lib/db.jar".into()),
            Answer::Attrs(FileStat {
                kind: apim_transport::FileKind::File,
                size: 5,
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

    fn jar() -> Params {
        Params {
            src: "/ctl/db.jar".into(),
            sha256: "ab".repeat(32),
            dest: "/opt/lib/db.jar".into(),
            owner: Some("svc".into()),
            group: Some("svc".into()),
            mode: Some("0644".into()),
            digest_cache: None,
            url: None,
        }
    }

    #[test]
    fn a_jar_with_the_right_bytes_left_root_0600_is_a_change_repaired_in_place() {
        // should: the run frozen between upload and chown leaves this; the plan must name
        // owner and mode and repair them, without sending the file again.
        let mut state = jar_host(&"ab".repeat(32), "root", 0o600);
        let d = decide(&jar(), &mut state).unwrap();
        assert_eq!(
            d.verdict.reason(),
            "/opt/lib/db.jar: owner root:root → svc:svc, mode 0600 → 0644"
        );
        let [Action::Script { script, .. }] = &d.actions[..] else {
            panic!("{:?}", d.actions)
        };
        assert!(script.contains("chown -- svc:svc /opt/lib/db.jar\nchmod -- 0644 /opt/lib/db.jar"));
        let ok = decide(&jar(), &mut jar_host(&"ab".repeat(32), "svc", 0o644)).unwrap();
        assert!(!ok.verdict.is_change(), "{:?}", ok.verdict);
    }

    #[test]
    fn a_new_copy_is_uploaded_with_its_owner_and_mode() {
        let mut state = jar_host(&"cd".repeat(32), "root", 0o600);
        let d = decide(&jar(), &mut state).unwrap();
        let [Action::Upload { mode, owner, .. }] = &d.actions[..] else {
            panic!("{:?}", d.actions)
        };
        assert_eq!(*mode, Some(0o644));
        assert_eq!(
            owner,
            &Some(apim_transport::Owner::with_group("svc", "svc"))
        );
    }

    #[test]
    fn a_download_gets_its_owner_and_mode_before_it_takes_its_place() {
        let w = Wanted::parse("copy", Some("svc"), Some("svc"), Some("0644")).unwrap();
        let script = download("https://m/x.jar", "/opt/x.jar", &"ab".repeat(32), &w);
        let chown = script.find("chown -- svc:svc \"$t\"").expect(&script);
        let chmod = script.find("chmod -- 0644 \"$t\"").expect(&script);
        let mv = script.find("mv -f \"$t\"").expect(&script);
        assert!(chown < mv && chmod < mv, "{script}");
    }
}
