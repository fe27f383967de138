//! Our own `known_hosts` matcher, because russh's helper accepts `@revoked` keys,
//! misreads tabs and repeated spaces, and ignores wildcards (measured, see
//! ssh-notes.md §1.2). Semantics follow OpenSSH's sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT":
//!
//! * fields are separated by any whitespace; `#` lines and blank lines are skipped;
//! * an optional marker: `@revoked` (the key is refused for the hosts it names),
//!   `@cert-authority` (skipped: host certificates are not supported);
//! * host field: a comma list of patterns with `*`, `?` and negation `!` (a line
//!   matches when some positive pattern matches and no negated one does), or one
//!   hashed name `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`;
//! * the name looked up is `host` on port 22 and `[host]:port` otherwise.

use std::io::Write;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_encoding::base64::{Base64, Encoding};
use russh::keys::{HashAlg, PublicKey};
use sha1::Sha1;

/// What the known_hosts file says about a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A line for this host holds exactly this key.
    Known { line: usize },
    /// No line names this host.
    Unknown,
    /// The host is known with other keys: possible man-in-the-middle.
    Changed {
        line: usize,
        known_fingerprints: Vec<String>,
    },
    /// An `@revoked` line for this host holds this key.
    Revoked { line: usize },
}

/// The name OpenSSH looks up: `host`, or `[host]:port` for a port other than 22.
pub fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Checks `key` for `host`:`port` against the text of a known_hosts file.
pub fn check(contents: &str, host: &str, port: u16, key: &PublicKey) -> Verdict {
    let name = lookup_name(host, port);
    let offered = key_base64(key);
    let offered_alg = key.algorithm().to_string();
    let mut known: Option<usize> = None;
    let mut others: Vec<(usize, String)> = Vec::new();
    for (index, raw) in contents.lines().enumerate() {
        let line_no = index + 1;
        let Some(entry) = parse_line(raw) else {
            continue;
        };
        if entry.marker == Marker::CertAuthority || !entry.matches(&name) {
            continue;
        }
        let same_key = entry.key_type == offered_alg && entry.key_base64 == offered;
        match (entry.marker, same_key) {
            (Marker::Revoked, true) => return Verdict::Revoked { line: line_no },
            (Marker::Revoked, false) => {}
            (_, true) => known = known.or(Some(line_no)),
            (_, false) => others.push((line_no, entry.fingerprint())),
        }
    }
    if let Some(line) = known {
        return Verdict::Known { line };
    }
    match others.first() {
        None => Verdict::Unknown,
        Some((line, _)) => Verdict::Changed {
            line: *line,
            known_fingerprints: others.into_iter().map(|(_, f)| f).collect(),
        },
    }
}

/// The key algorithms the file lists for this host (to prefer them in negotiation).
pub fn known_algorithms(contents: &str, host: &str, port: u16) -> Vec<String> {
    let name = lookup_name(host, port);
    let mut algs: Vec<String> = Vec::new();
    for entry in contents.lines().filter_map(parse_line) {
        if entry.marker == Marker::None && entry.matches(&name) && !algs.contains(&entry.key_type) {
            algs.push(entry.key_type.clone());
        }
    }
    algs
}

/// Line numbers (1-based) of every entry whose host field matches `host`:`port`,
/// markers included: the same lines `ssh-keygen -F` reports.
pub fn matching_lines(contents: &str, host: &str, port: u16) -> Vec<usize> {
    let name = lookup_name(host, port);
    contents
        .lines()
        .enumerate()
        .filter(|(_, raw)| parse_line(raw).is_some_and(|e| e.matches(&name)))
        .map(|(i, _)| i + 1)
        .collect()
}

/// Appends a line recording `key` for `host`:`port` (accept-new), creating the file
/// (mode 0600) and its directory when missing.
pub fn append(path: &Path, host: &str, port: u16, key: &PublicKey) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let needs_newline = std::fs::read(path).map(|b| !b.is_empty() && !b.ends_with(b"\n"))?;
    let mut line = String::new();
    if needs_newline {
        line.push('\n');
    }
    line.push_str(&format!(
        "{} {} {}\n",
        lookup_name(host, port),
        key.algorithm(),
        key_base64(key)
    ));
    file.write_all(line.as_bytes())?;
    file.sync_all()
}

/// SHA256 fingerprint as OpenSSH prints it (`SHA256:...`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn key_base64(key: &PublicKey) -> String {
    key.to_openssh()
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug)]
struct Entry<'a> {
    marker: Marker,
    hosts: &'a str,
    key_type: String,
    key_base64: &'a str,
}

fn parse_line(raw: &str) -> Option<Entry<'_>> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return None,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    Some(Entry {
        marker,
        hosts: first,
        key_type: fields.next()?.to_string(),
        key_base64: fields.next()?,
    })
}

impl Entry<'_> {
    fn matches(&self, name: &str) -> bool {
        if let Some(hashed) = self.hosts.strip_prefix("|1|") {
            return hashed_matches(hashed, name);
        }
        let mut positive = false;
        for pattern in self.hosts.split(',') {
            if let Some(negated) = pattern.strip_prefix('!') {
                if wildcard_match(&negated.to_ascii_lowercase(), &name.to_ascii_lowercase()) {
                    return false;
                }
            } else if wildcard_match(&pattern.to_ascii_lowercase(), &name.to_ascii_lowercase()) {
                positive = true;
            }
        }
        positive
    }

    fn fingerprint(&self) -> String {
        PublicKey::from_openssh(&format!("{} {}", self.key_type, self.key_base64))
            .map(|k| fingerprint(&k))
            .unwrap_or_else(|_| format!("{} (unparsable key)", self.key_type))
    }
}

fn hashed_matches(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (Base64::decode_vec(salt), Base64::decode_vec(hash)) else {
        return false;
    };
    let Ok(mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(name.as_bytes())
        .verify_slice(&hash)
        .is_ok()
}

/// OpenSSH `match_pattern`: `*` any run of characters, `?` exactly one.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((bp, bt)) = backtrack {
            pi = bp + 1;
            ti = bt + 1;
            backtrack = Some((bp, bt + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKtWn61wec2eD15rBAjeyYepKrnos/3tNjsmzI0ZqX2w";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAWgUwt2zEw2yxgCqFV50XqSWvG7rPo/7oZ7QTQKWSDi";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    fn check_a(contents: &str, host: &str, port: u16) -> Verdict {
        check(contents, host, port, &key(KEY_A))
    }

    #[test]
    fn plain_name_and_port_form() {
        assert_eq!(
            check_a(&format!("10.0.0.1 {KEY_A}\n"), "10.0.0.1", 22),
            Verdict::Known { line: 1 }
        );
        let bracketed = format!("[127.0.0.1]:2222 {KEY_A}\n");
        assert_eq!(
            check_a(&bracketed, "127.0.0.1", 2222),
            Verdict::Known { line: 1 }
        );
        assert_eq!(check_a(&bracketed, "127.0.0.1", 22), Verdict::Unknown);
    }

    #[test]
    fn tabs_and_repeated_spaces_separate_fields() {
        let (kt, kb) = KEY_A.split_once(' ').unwrap();
        assert_eq!(
            check_a(&format!("h1\t{kt}\t{kb}\n"), "h1", 22),
            Verdict::Known { line: 1 }
        );
        assert_eq!(
            check_a(&format!("h1   {kt}  {kb} comment\n"), "h1", 22),
            Verdict::Known { line: 1 }
        );
    }

    #[test]
    fn comma_lists_wildcards_and_negation() {
        let line = format!("app1,127.0.10.*,!127.0.10.9 {KEY_A}\n");
        assert_eq!(check_a(&line, "app1", 22), Verdict::Known { line: 1 });
        assert_eq!(check_a(&line, "127.0.10.3", 22), Verdict::Known { line: 1 });
        assert_eq!(check_a(&line, "127.0.10.9", 22), Verdict::Unknown);
        assert_eq!(
            check_a(&format!("app? {KEY_A}"), "app7", 22),
            Verdict::Known { line: 1 }
        );
        assert_eq!(
            check_a(&format!("app? {KEY_A}"), "app10", 22),
            Verdict::Unknown
        );
    }

    #[test]
    fn changed_key_lists_known_fingerprints() {
        let v = check_a(&format!("# c\n\nh1 {KEY_B}\n"), "h1", 22);
        let Verdict::Changed {
            line,
            known_fingerprints,
        } = v
        else {
            panic!("{v:?}")
        };
        assert_eq!(line, 3);
        assert_eq!(known_fingerprints, vec![fingerprint(&key(KEY_B))]);
    }

    #[test]
    fn revoked_wins_over_a_matching_line() {
        let text = format!("h1 {KEY_A}\n@revoked * {KEY_A}\n");
        assert_eq!(check_a(&text, "h1", 22), Verdict::Revoked { line: 2 });
        // a revoked *other* key does not refuse this one
        assert_eq!(
            check_a(&format!("h1 {KEY_A}\n@revoked * {KEY_B}\n"), "h1", 22),
            Verdict::Known { line: 1 }
        );
    }

    #[test]
    fn cert_authority_lines_are_skipped() {
        assert_eq!(
            check_a(&format!("@cert-authority * {KEY_B}\n"), "h1", 22),
            Verdict::Unknown
        );
    }

    #[test]
    fn hashed_entry_matches_only_its_name() {
        // ssh-keygen -H output for "[127.0.0.1]:2222" with a fixed salt, computed here.
        let salt = [7u8; 20];
        let mac = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt)
            .unwrap()
            .chain_update(b"[127.0.0.1]:2222");
        let hash = mac.finalize().into_bytes();
        let line = format!(
            "|1|{}|{} {KEY_A}\n",
            Base64::encode_string(&salt),
            Base64::encode_string(&hash)
        );
        assert_eq!(
            check_a(&line, "127.0.0.1", 2222),
            Verdict::Known { line: 1 }
        );
        assert_eq!(check_a(&line, "127.0.0.2", 2222), Verdict::Unknown);
    }

    #[test]
    fn wildcard_matching() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("*.example.com", "x.y.example.com"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(!wildcard_match("a*d", "abc"));
    }
}
