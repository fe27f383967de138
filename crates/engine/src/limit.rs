//! `--limit`: which part of the cluster a command acts on, parsed once from the
//! command line and asked by every command (`plan`, `apply`, `status`,
//! `restart`, `facts`, `check`) and by [`crate::Run::limit`].
//!
//! The things a limit picks are *units*: a role on a host (a node such as
//! `app1/api`, or the database on its host), and a host that carries no
//! role at all. A pattern picks a unit when it matches the unit's host name,
//! its role, or its `host/role` name. The patterns (Ansible's semantics, the
//! subset we want):
//!
//! * `name`: a host, a role or a node; `*` and `?` glob (`app*`, `gw?/api`);
//! * `!pattern`: removes what the pattern picks;
//! * `@FILE`: the patterns listed in FILE (one or more per line, `#` comments).
//!
//! The positive patterns are a union; with none, everything is picked before
//! the `!` patterns remove from it. A host is picked when one of its units is.
//! A pattern that names nothing of the inventory is an error listing what
//! exists, so a typo never silently narrows (or widens) a run.

use std::fmt;
use std::path::Path;

/// A parsed `--limit`; the default picks everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limit {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    exclude: bool,
    /// A name, or a glob when it holds `*` or `?`.
    glob: String,
}

impl Pattern {
    fn is_glob(&self) -> bool {
        self.glob.contains(['*', '?'])
    }

    /// Whether the pattern picks the unit `role` on `host` (a host alone: `None`).
    fn picks(&self, host: &str, role: Option<&str>) -> bool {
        glob_match(&self.glob, host)
            || role.is_some_and(|r| {
                glob_match(&self.glob, r) || glob_match(&self.glob, &format!("{host}/{r}"))
            })
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bang = if self.exclude { "!" } else { "" };
        write!(f, "{bang}{}", self.glob)
    }
}

impl Limit {
    /// Everything.
    pub fn all() -> Limit {
        Limit::default()
    }

    /// Parses the `--limit` values (the command line splits them at commas).
    /// Only the syntax is checked here; [`Limit::check`] checks the names.
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<Limit, String> {
        let mut patterns = Vec::new();
        for value in values {
            let value = value.as_ref().trim();
            match value.strip_prefix('@') {
                Some(file) => {
                    for p in read_file(Path::new(file))? {
                        patterns.push(pattern(&p, Some(file))?);
                    }
                }
                None => patterns.push(pattern(value, None)?),
            }
        }
        Ok(Limit { patterns })
    }

    /// Whether this limit picks everything (no patterns).
    pub fn is_all(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the unit `role` on `host` is picked; `role` is `None` for a host that
    /// carries no role.
    pub fn matches(&self, host: &str, role: Option<&str>) -> bool {
        let mut include = self.patterns.iter().filter(|p| !p.exclude).peekable();
        let included = include.peek().is_none() || include.any(|p| p.picks(host, role));
        included
            && !self
                .patterns
                .iter()
                .any(|p| p.exclude && p.picks(host, role))
    }

    /// Whether a host with these roles is picked: when one of its units is (a host
    /// without roles is a unit of its own).
    pub fn matches_host<'r>(&self, host: &str, roles: impl IntoIterator<Item = &'r str>) -> bool {
        let mut roles = roles.into_iter().peekable();
        if roles.peek().is_none() {
            return self.matches(host, None);
        }
        roles.any(|r| self.matches(host, Some(r)))
    }

    /// Checks that every pattern picks something among `hosts` (each with its roles);
    /// the error names the first that does not, and lists the hosts and roles there are.
    pub fn check<'h, R>(&self, hosts: impl IntoIterator<Item = (&'h str, R)>) -> Result<(), String>
    where
        R: IntoIterator<Item = &'h str>,
    {
        let hosts: Vec<(&str, Vec<&str>)> = hosts
            .into_iter()
            .map(|(h, roles)| (h, roles.into_iter().collect()))
            .collect();
        let units = || {
            hosts.iter().flat_map(|(h, roles)| {
                let alone = roles.is_empty().then_some((*h, None));
                roles.iter().map(|r| (*h, Some(*r))).chain(alone)
            })
        };
        let Some(unknown) = self
            .patterns
            .iter()
            .find(|p| !units().any(|(h, r)| p.picks(h, r)))
        else {
            return Ok(());
        };
        let mut roles: Vec<&str> = units().filter_map(|(_, r)| r).collect();
        roles.sort();
        roles.dedup();
        let names: Vec<&str> = hosts.iter().map(|(h, _)| *h).collect();
        let what = if unknown.is_glob() {
            "matches no host, role or node"
        } else {
            "is no host, role or node"
        };
        Err(format!(
            "--limit: `{}` {what} of the inventory (hosts: {}; roles: {})",
            unknown.glob,
            names.join(", "),
            roles.join(", ")
        ))
    }
}

/// The patterns as given (after `@FILE` expansion), comma-separated.
impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.patterns.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

fn pattern(text: &str, file: Option<&str>) -> Result<Pattern, String> {
    let place = file.map_or(String::new(), |f| format!(" (in @{f})"));
    let (exclude, glob) = match text.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, text),
    };
    if glob.is_empty() {
        return Err(format!("--limit: an empty pattern{place}"));
    }
    if glob.starts_with('@') {
        return Err(format!(
            "--limit: `{text}`{place}: an @FILE can only stand alone, not after `!` or in a file"
        ));
    }
    Ok(Pattern {
        exclude,
        glob: glob.to_string(),
    })
}

/// Where a failed run of the inventory at `inventory` lists its failed hosts
/// (Ansible's `site.yml.retry`): beside the inventory, so a retry needs no other name.
pub fn retry_path(inventory: &Path) -> std::path::PathBuf {
    let mut name = inventory.as_os_str().to_owned();
    name.push(".retry");
    name.into()
}

/// Writes `hosts` as an `@FILE` that `--limit` reads back: one host a line, under a
/// comment that says what the file is.
pub fn write_retry_file(path: &Path, hosts: &[String]) -> std::io::Result<()> {
    let mut text = String::from("# the hosts that failed in the last run; retry: --limit @FILE\n");
    for h in hosts {
        text.push_str(h);
        text.push('\n');
    }
    std::fs::write(path, text)
}

/// The patterns of an `@FILE`: separated by commas, blanks or lines; `#` starts a comment.
fn read_file(path: &Path) -> Result<Vec<String>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--limit @{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .flat_map(|l| l.split([',', ' ', '\t']))
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect())
}

/// `*` matches any run of characters (`/` too), `?` one character; the rest is literal.
fn glob_match(glob: &str, text: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    // The classic backtracking matcher: on a mismatch, let the last `*` take one more char.
    let (mut gi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match g.get(gi) {
            Some('*') => {
                star = Some((gi, ti));
                gi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                gi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sg, st)) => {
                    gi = sg + 1;
                    ti = st + 1;
                    star = Some((sg, st + 1));
                }
                None => return false,
            },
        }
    }
    g[gi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two-api layout: app1 (auth, admin, web), gw1 and gw2
    /// (api), db (database), and a spare host.
    const HOSTS: &[(&str, &[&str])] = &[
        ("app1", &["auth", "admin", "web"]),
        ("gw1", &["api"]),
        ("gw2", &["api"]),
        ("db", &["database"]),
        ("spare", &[]),
    ];

    fn limit(patterns: &[&str]) -> Limit {
        Limit::parse(patterns).unwrap()
    }

    /// Every unit the limit picks, as `host/role` (a host alone: `host`).
    fn picked(patterns: &[&str]) -> Vec<String> {
        let l = limit(patterns);
        let mut out = Vec::new();
        for (h, roles) in HOSTS {
            if roles.is_empty() && l.matches(h, None) {
                out.push(h.to_string());
            }
            for r in *roles {
                if l.matches(h, Some(r)) {
                    out.push(format!("{h}/{r}"));
                }
            }
        }
        out
    }

    fn hosts(patterns: &[&str]) -> Vec<&'static str> {
        let l = limit(patterns);
        HOSTS
            .iter()
            .filter(|(h, roles)| l.matches_host(h, roles.iter().copied()))
            .map(|(h, _)| *h)
            .collect()
    }

    fn check(patterns: &[&str]) -> Result<(), String> {
        limit(patterns).check(HOSTS.iter().map(|(h, r)| (*h, r.iter().copied())))
    }

    #[test]
    fn no_pattern_picks_everything() {
        assert!(Limit::all().is_all());
        assert_eq!(picked(&[]).len(), 7);
        assert_eq!(hosts(&[]), ["app1", "gw1", "gw2", "db", "spare"]);
    }

    #[test]
    fn names_pick_hosts_roles_and_nodes_as_a_union() {
        assert_eq!(picked(&["api"]), ["gw1/api", "gw2/api"]);
        assert_eq!(picked(&["app1/web", "gw2"]), ["app1/web", "gw2/api"]);
        assert_eq!(picked(&["database"]), ["db/database"]);
        assert_eq!(hosts(&["admin"]), ["app1"]);
        assert_eq!(hosts(&["database"]), ["db"]);
        assert_eq!(hosts(&["spare"]), ["spare"]);
        assert_eq!(hosts(&["app1/web", "gw2"]), ["app1", "gw2"]);
    }

    #[test]
    fn exclusions_remove_from_the_union_or_from_everything() {
        assert_eq!(
            picked(&["!api", "!app1"]),
            ["db/database", "spare"],
            "no positive pattern: everything, minus"
        );
        assert_eq!(picked(&["api", "!gw1"]), ["gw2/api"]);
        assert_eq!(picked(&["app1", "!app1/admin"]), ["app1/auth", "app1/web"]);
        assert_eq!(hosts(&["!api"]), ["app1", "db", "spare"]);
        assert_eq!(hosts(&["!gw2/api", "api"]), ["gw1"]);
    }

    #[test]
    fn globs_match_host_role_and_node_names() {
        assert_eq!(picked(&["gw*"]), ["gw1/api", "gw2/api"]);
        assert_eq!(picked(&["gw?"]), ["gw1/api", "gw2/api"]);
        assert_eq!(picked(&["*/web"]), ["app1/web"]);
        assert_eq!(picked(&["*ut*"]), ["app1/auth"]);
        assert_eq!(picked(&["*", "!*pi*"]).len(), 5);
        assert!(glob_match("a*b*c", "aXbYbZc") && !glob_match("a*b", "aXbY"));
        assert!(glob_match("**", "") && !glob_match("?", ""));
    }

    #[test]
    fn unknown_names_are_errors_that_list_what_exists() {
        let err = check(&["gw3"]).unwrap_err();
        assert_eq!(
            err,
            "--limit: `gw3` is no host, role or node of the inventory \
             (hosts: app1, gw1, gw2, db, spare; roles: admin, api, auth, database, web)"
        );
        assert!(check(&["!gw3"]).unwrap_err().contains("`gw3` is no host"));
        assert!(check(&["app1/api"]).is_err(), "app1 carries no api");
        let glob = check(&["app9*"]).unwrap_err();
        assert!(
            glob.starts_with("--limit: `app9*` matches no host"),
            "{glob}"
        );
        assert!(check(&["gw1/api", "web", "!app*", "spare", "db"]).is_ok());
    }

    #[test]
    fn syntax_errors_are_caught_when_parsed() {
        for bad in [&[""][..], &["!"], &["a", " "], &["!@x"]] {
            assert!(Limit::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_retry_file_is_read_back_by_at_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = retry_path(&dir.path().join("site.toml"));
        assert_eq!(path, dir.path().join("site.toml.retry"));
        write_retry_file(&path, &["app2".into(), "app4".into()]).unwrap();
        let l = Limit::parse(&[format!("@{}", path.display())]).unwrap();
        assert!(l.matches_host("app2", []) && l.matches_host("app4", []));
        assert!(!l.matches_host("app1", []));
    }

    #[test]
    fn an_at_file_lists_patterns_by_line_comma_or_blank() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("retry");
        std::fs::write(
            &file,
            "# failed last time\ngw1, gw2\n\napp1/web !gw2 # not this\n",
        )
        .unwrap();
        let l = Limit::parse(&[format!("@{}", file.display()), "db".into()]).unwrap();
        assert_eq!(l.to_string(), "gw1,gw2,app1/web,!gw2,db");
        assert!(l.matches("gw1", Some("api")) && !l.matches("gw2", Some("api")));
        std::fs::write(&file, "@other\n").unwrap();
        let nested = Limit::parse(&[format!("@{}", file.display())]).unwrap_err();
        assert!(nested.contains("in @"), "{nested}");
        let missing = Limit::parse(&["@/nonexistent/limit"]).unwrap_err();
        assert!(
            missing.starts_with("--limit @/nonexistent/limit: "),
            "{missing}"
        );
    }
}
