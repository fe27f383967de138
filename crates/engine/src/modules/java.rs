//! The Java runtime a `service` needs, found on its host.
//!
//! A non-interactive SSH session rarely has `JAVA_HOME` (it is set in login files
//! such sessions do not read), and a server started without the right JDK either
//! refuses to start or dies at once. So the runtime is looked up on each host in
//! the probe: the operator's choice when given, else the service account's login
//! environment, else the usual install locations; each candidate's version comes
//! from its `release` file (no process) or `bin/java -version`. The supported
//! versions are the playbook's, in order of preference.
//!
//! The rule that picks one is a shell function ([`Requirement::pick_fn`]): the
//! probe and `status` run the same function, so they can never disagree.

use serde::Deserialize;

use super::ModuleError;
use crate::probe::quote;
use crate::state::HostState;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// A JDK home chosen by the operator; empty: find one.
    #[serde(default)]
    pub home: String,
    /// Supported versions as prefixes (`1.7` matches `1.7.0_80`), preferred first.
    pub versions: Vec<String>,
    /// Where to look (shell globs of JDK homes), in order.
    #[serde(default = "default_search")]
    pub search: Vec<String>,
    /// The account whose login environment may name a JDK (`JAVA_HOME`).
    #[serde(default)]
    pub login_user: String,
}

fn default_search() -> Vec<String> {
    ["/usr/lib/jvm/*", "/opt/java/*", "/usr/java/*"]
        .map(String::from)
        .to_vec()
}

/// A JDK on a host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Jdk {
    pub home: String,
    /// The version it reports; empty when it has no runnable `bin/java`.
    pub version: String,
    /// Where it was found: `inventory`, `login` or `found`.
    pub source: String,
}

impl Requirement {
    /// Search globs are shell patterns: only plain path characters and `*`.
    fn globs(&self) -> Result<String, ModuleError> {
        let mut out = Vec::new();
        for g in &self.search {
            let ok = g.starts_with('/')
                && g.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-*".contains(c));
            if !ok {
                return Err(ModuleError::new(format!(
                    "java.search: `{g}` is not an absolute path pattern (letters, digits, `/._-*` only)"
                )));
            }
            out.push(g.clone());
        }
        Ok(out.join(" "))
    }

    /// Shell functions `jdk_version HOME`, `list_jdks` (one `source<TAB>home<TAB>version`
    /// line per candidate) and `pick_jdk` (`home<TAB>version` of the chosen one, or nothing).
    pub fn pick_fn(&self) -> String {
        let versions = self
            .versions
            .iter()
            .map(|v| quote(v))
            .collect::<Vec<_>>()
            .join(" ");
        format!(
            r#"jdk_want={home}; jdk_login={login}; jdk_versions=({versions})
jdk_version() {{
  local line v=''
  if [ -f "$1/release" ]; then
    while IFS= read -r line; do
      case "$line" in JAVA_VERSION=*) v=${{line#JAVA_VERSION=}}; v=${{v//\"/}};; esac
    done < "$1/release"
  fi
  if [ -z "$v" ] && [ -x "$1/bin/java" ]; then
    v=$("$1/bin/java" -version 2>&1 </dev/null | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)
  fi
  [ -x "$1/bin/java" ] || v=''
  printf '%s' "$v"
}}
list_jdks() {{
  local h
  if [ -n "$jdk_want" ]; then printf 'inventory\t%s\t%s\n' "$jdk_want" "$(jdk_version "$jdk_want")"; return; fi
  if [ -n "$jdk_login" ] && id -u -- "$jdk_login" >/dev/null 2>&1; then
    h=$(runuser -l "$jdk_login" -c 'printf %s "${{JAVA_HOME-}}"' 2>/dev/null </dev/null)
    [ -n "$h" ] && printf 'login\t%s\t%s\n' "$h" "$(jdk_version "$h")"
  fi
  for h in {globs}; do
    [ -d "$h" ] && [ ! -L "$h" ] && printf 'found\t%s\t%s\n' "$h" "$(jdk_version "$h")"
  done
  return 0
}}
jdk_ok() {{
  local w
  for w in "${{jdk_versions[@]}}"; do
    case "$1" in "$w"|"$w".*|"$w"_*) return 0;; esac
  done
  return 1
}}
pick_jdk() {{
  local src h v w all
  all=$(list_jdks)
  while IFS=$'\t' read -r src h v; do
    [ "$src" = found ] && continue
    jdk_ok "$v" && {{ printf '%s\t%s\n' "$h" "$v"; return 0; }}
  done <<< "$all"
  for w in "${{jdk_versions[@]}}"; do
    while IFS=$'\t' read -r src h v; do
      [ "$src" = found ] || continue
      case "$v" in "$w"|"$w".*|"$w"_*) printf '%s\t%s\n' "$h" "$v"; return 0;; esac
    done <<< "$all"
  done
  return 1
}}"#,
            home = quote(&self.home),
            login = quote(&self.login_user),
            globs = self.globs().unwrap_or_default(),
        )
    }

    /// The read-only probe: every candidate, then the chosen one.
    pub fn probe(&self) -> String {
        format!(
            "{}\nlist_jdks\nprintf 'pick\\t%s\\n' \"$(pick_jdk)\"",
            self.pick_fn()
        )
    }

    /// The JDK this host offers for the requirement, or an error naming what
    /// was found and what to do.
    pub fn choose(&self, state: &HostState) -> Result<Jdk, ModuleError> {
        self.globs()?;
        // A JDK this very run installs (an archive the operator pinned): it is there
        // when the nodes start.
        if !self.home.is_empty() && state.will_create(&self.home) {
            return Ok(Jdk {
                home: self.home.clone(),
                version: "(installed by this run)".into(),
                source: "inventory".into(),
            });
        }
        let out = state
            .probed_shell(&self.probe())
            .map(|(_, o)| String::from_utf8_lossy(o).into_owned())
            .unwrap_or_default();
        let (found, pick) = parse_probe(&out);
        if let Some(jdk) = pick {
            return Ok(jdk);
        }
        if !state.checks("java") {
            // The operator vouches for the runtime: the one they named, else the first found.
            let any = found.into_iter().find(|j| !j.version.is_empty());
            return Ok(any.unwrap_or(Jdk {
                home: self.home.clone(),
                version: "(not checked)".into(),
                source: "inventory".into(),
            }));
        }
        Err(crate::preflight::failed("java", self.none_usable(&found)))
    }

    fn none_usable(&self, found: &[Jdk]) -> String {
        let wanted = self.versions.join(" or ");
        let seen = if found.is_empty() {
            format!("none found (looked in {})", self.search.join(", "))
        } else {
            found
                .iter()
                .map(|j| {
                    let v = if j.version.is_empty() {
                        "no runnable bin/java".to_string()
                    } else {
                        format!("version {}", j.version)
                    };
                    let from = match j.source.as_str() {
                        "login" => " (the service account's JAVA_HOME)",
                        "inventory" => " ([install] java_home)",
                        _ => "",
                    };
                    format!("{}{from}: {v}", j.home)
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let todo = if self.home.is_empty() {
            format!(
                "install a JDK {wanted} on the host (for example under /usr/lib/jvm), set [install] java_home, or add a [java] archive to the inventory"
            )
        } else {
            format!("point [install] java_home at a JDK {wanted} home")
        };
        format!("no usable Java runtime (needs JDK {wanted}); found: {seen}; to fix: {todo}")
    }
}

/// The `java` module: a host offers a supported runtime (nothing to change; a
/// plan stops when one is missing, before anything is changed anywhere).
pub fn questions(r: &Requirement) -> Result<Vec<crate::probe::Fact>, ModuleError> {
    r.globs()?;
    Ok(vec![crate::probe::Fact::Shell(r.probe())])
}

pub fn decide(r: &Requirement, state: &HostState) -> Result<super::Decision, ModuleError> {
    let jdk = r.choose(state)?;
    let from = match jdk.source.as_str() {
        "inventory" => "as configured",
        "login" => "from the service account's login environment",
        _ => "found on the host",
    };
    Ok(super::Decision::ok(format!(
        "JDK {} at {} ({from})",
        jdk.version, jdk.home
    )))
}

/// Parses the probe's answer: every candidate, and the chosen one.
pub fn parse_probe(out: &str) -> (Vec<Jdk>, Option<Jdk>) {
    let mut found = Vec::new();
    let mut pick = None;
    for line in out.lines() {
        let mut f = line.split('\t');
        match (f.next(), f.next(), f.next()) {
            (Some("pick"), Some(home), Some(version)) if !home.is_empty() => {
                pick = Some((home.to_string(), version.to_string()));
            }
            (Some(source @ ("inventory" | "login" | "found")), Some(home), version) => {
                found.push(Jdk {
                    home: home.to_string(),
                    version: version.unwrap_or("").to_string(),
                    source: source.to_string(),
                })
            }
            _ => {}
        }
    }
    let pick = pick.map(|(home, version)| {
        let source = found
            .iter()
            .find(|j| j.home == home)
            .map_or_else(|| "found".to_string(), |j| j.source.clone());
        Jdk {
            home,
            version,
            source,
        }
    });
    (found, pick)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn req(home: &str, search: &[&str]) -> Requirement {
        Requirement {
            home: home.into(),
            versions: vec!["1.7".into(), "1.8".into()],
            search: search.iter().map(|s| s.to_string()).collect(),
            login_user: String::new(),
        }
    }

    /// A fake JDK home answering `-version` like the real one, with or without a
    /// `release` file.
    fn jdk(root: &std::path::Path, name: &str, version: &str, release: bool) -> String {
        let home = root.join(name);
        std::fs::create_dir_all(home.join("bin")).unwrap();
        let java = home.join("bin/java");
        std::fs::write(
            &java,
            format!("#!/bin/sh\necho 'java version \"{version}\"' >&2\n"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&java, std::fs::Permissions::from_mode(0o755)).unwrap();
        if release {
            std::fs::write(
                home.join("release"),
                format!("JAVA_VERSION=\"{version}\"\n"),
            )
            .unwrap();
        }
        home.to_str().unwrap().to_string()
    }

    fn run(r: &Requirement) -> (Vec<Jdk>, Option<Jdk>) {
        let out = Command::new("bash")
            .arg("-c")
            .arg(r.probe())
            .output()
            .unwrap();
        parse_probe(&String::from_utf8_lossy(&out.stdout))
    }

    #[test]
    fn the_preferred_supported_version_wins_over_file_order() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("jvm dir's");
        jdk(&root, "a-jdk17", "17.0.2", true);
        jdk(&root, "b-jdk8", "1.8.0_202", false);
        let seven = jdk(&root, "c-jdk7", "1.7.0_80", true);
        let glob = format!("{}/*", root.display());
        // The pattern holds a quote and a space: not a plain path pattern, refused.
        assert!(req("", &[&glob]).globs().is_err());
        let plain = tmp.path().join("jvm");
        std::fs::rename(&root, &plain).unwrap();
        let glob = format!("{}/*", plain.display());
        let (found, pick) = run(&req("", &[&glob]));
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[1].version, "1.8.0_202", "read from java -version");
        let pick = pick.unwrap();
        assert_eq!(pick.version, "1.7.0_80");
        assert_eq!(pick.home, seven.replace("jvm dir's", "jvm"));
    }

    #[test]
    fn an_unsupported_or_broken_runtime_is_named_in_the_error() {
        let tmp = tempfile::tempdir().unwrap();
        jdk(tmp.path(), "jdk-17", "17.0.2", true);
        std::fs::create_dir_all(tmp.path().join("empty-jre")).unwrap();
        let r = req("", &[&format!("{}/*", tmp.path().display())]);
        let (found, pick) = run(&r);
        assert!(pick.is_none());
        let msg = r.none_usable(&found);
        assert!(msg.contains("needs JDK 1.7 or 1.8"), "{msg}");
        assert!(msg.contains("jdk-17: version 17.0.2"), "{msg}");
        assert!(msg.contains("empty-jre: no runnable bin/java"), "{msg}");
        assert!(msg.contains("[install] java_home"), "{msg}");
    }

    #[test]
    fn the_operators_home_is_the_only_candidate() {
        let tmp = tempfile::tempdir().unwrap();
        jdk(tmp.path(), "jdk7", "1.7.0_80", true);
        let eight = jdk(tmp.path(), "jdk8", "1.8.0_202", true);
        let (found, pick) = run(&req(&eight, &[&format!("{}/*", tmp.path().display())]));
        assert_eq!(found.len(), 1);
        assert_eq!(pick.unwrap().home, eight);
        let bad = req("/nonexistent/jdk", &["/usr/lib/jvm/*"]);
        let (found, pick) = run(&bad);
        assert!(pick.is_none());
        assert!(
            bad.none_usable(&found)
                .contains("point [install] java_home")
        );
    }

    #[test]
    fn version_prefixes_match_whole_components() {
        let out = "found\t/a\t17.0.2\nfound\t/b\t1.70\npick\t\t\n";
        assert_eq!(parse_probe(out).1, None);
        let tmp = tempfile::tempdir().unwrap();
        jdk(tmp.path(), "x", "1.70", true);
        let (_, pick) = run(&req("", &[&format!("{}/*", tmp.path().display())]));
        assert!(pick.is_none(), "1.70 is not 1.7");
    }
}
