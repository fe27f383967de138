//! Owner, group and mode as part of a managed file's desired state, for the modules
//! that write files (`xml`, `copy`, `hosts_file`).
//!
//! Why a module decides them and not only the writer: a file can have the right bytes
//! and the wrong owner or mode (a run killed between an upload and its `chown`, a
//! `chmod` by hand). The server then cannot read it, or another local user can, and
//! only a plan that compares owner and mode shows it. So the probe reports each
//! managed file's owner and mode (one `stat` for all of a host's), the module names
//! what drifted, and the repair is a `chown`/`chmod` of that one file. A file whose
//! bytes change is written with its final owner and mode set on the temporary file
//! before the rename, so it never exists with others.

use apim_transport::Owner;

use super::{Action, ModuleError};
use crate::probe::{Fact, quote};
use crate::state::{FileAttrs, HostState};

/// The owner, group and mode a task wants for its file; `None` fields are not managed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<u32>,
}

impl Wanted {
    /// Reads the `owner`, `group` and `mode` parameters of a `module` task. `mode` is
    /// octal text (`"0600"`), the way `chmod` and `ls` show it.
    pub fn parse(
        module: &str,
        owner: Option<&str>,
        group: Option<&str>,
        mode: Option<&str>,
    ) -> Result<Self, ModuleError> {
        let name = |what: &str, value: Option<&str>| -> Result<Option<String>, ModuleError> {
            let Some(v) = value else { return Ok(None) };
            let valid = !v.is_empty()
                && !v.starts_with('-')
                && v.chars().all(|c| c.is_ascii_graphic() && c != ':');
            if !valid {
                return Err(ModuleError::new(format!(
                    "{module}: {what} {v:?} is not a user or group name"
                )));
            }
            Ok(Some(v.to_string()))
        };
        let wanted = Wanted {
            owner: name("owner", owner)?,
            group: name("group", group)?,
            mode: mode.map(|m| parse_mode(module, m)).transpose()?,
        };
        if wanted.group.is_some() && wanted.owner.is_none() {
            return Err(ModuleError::new(format!(
                "{module}: `group` needs `owner` (the file's user)"
            )));
        }
        Ok(wanted)
    }

    pub fn is_empty(&self) -> bool {
        self.owner.is_none() && self.mode.is_none()
    }

    /// The probe question this needs about `path` (none when nothing is managed).
    pub fn questions(&self, path: &str) -> Vec<Fact> {
        if self.is_empty() {
            vec![]
        } else {
            vec![Fact::Attrs(path.to_string())]
        }
    }

    /// The owner to give a written file (`user`, or `user:group`).
    pub fn transport_owner(&self) -> Option<Owner> {
        let user = self.owner.clone()?;
        Some(match &self.group {
            Some(g) => Owner::with_group(user, g),
            None => Owner::user(user),
        })
    }

    /// The `chown` argument: `user` or `user:group`.
    pub fn chown_spec(&self) -> Option<String> {
        let user = self.owner.as_ref()?;
        Some(match &self.group {
            Some(g) => format!("{user}:{g}"),
            None => user.clone(),
        })
    }

    /// What differs between `path`'s planned owner and mode and these, e.g.
    /// `owner root:root → app:app, mode 0600 → 0644`; `None` when nothing does.
    pub fn drift(&self, path: &str, state: &HostState) -> Option<String> {
        let now = state.attrs(path);
        let mut parts = Vec::new();
        let user_differs = self.owner.is_some() && now.user != self.owner;
        let group_differs = self.group.is_some() && now.group != self.group;
        if user_differs || group_differs {
            let show = |user: &Option<String>, group: &Option<String>| {
                let user = user.as_deref().unwrap_or("?");
                match (&self.group, group) {
                    (None, _) => user.to_string(),
                    (Some(_), g) => format!("{user}:{}", g.as_deref().unwrap_or("?")),
                }
            };
            parts.push(format!(
                "owner {} → {}",
                show(&now.user, &now.group),
                show(&self.owner, &self.group)
            ));
        }
        if let Some(mode) = self.mode
            && now.mode != Some(mode)
        {
            let was = now.mode.map_or("?".to_string(), |m| format!("{m:04o}"));
            parts.push(format!("mode {was} → {mode:04o}"));
        }
        if parts.is_empty() {
            return None;
        }
        if now == FileAttrs::default() {
            return Some(format!("{} (not on the host yet)", self.describe()));
        }
        Some(parts.join(", "))
    }

    /// `owner app:app, mode 0600`, for messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(spec) = self.chown_spec() {
            parts.push(format!("owner {spec}"));
        }
        if let Some(m) = self.mode {
            parts.push(format!("mode {m:04o}"));
        }
        parts.join(", ")
    }

    /// The action that gives `path` this owner and mode, without touching its bytes.
    pub fn repair(&self, path: &str) -> Action {
        let mut script = String::from("set -eu\n");
        if let Some(spec) = self.chown_spec() {
            script.push_str(&format!("chown -- {} {}\n", quote(&spec), quote(path)));
        }
        if let Some(m) = self.mode {
            script.push_str(&format!(
                "chmod -- {} {}\n",
                quote(&format!("{m:04o}")),
                quote(path)
            ));
        }
        Action::Script {
            describe: format!("set {} of {path}", self.describe()),
            script,
        }
    }

    /// Records in the planned state that `path` will have these attributes.
    pub fn plan(&self, path: &str, state: &mut HostState) {
        state.set_attrs(
            path,
            FileAttrs {
                user: self.owner.clone(),
                group: self.group.clone(),
                mode: self.mode,
            },
        );
    }
}

fn parse_mode(module: &str, text: &str) -> Result<u32, ModuleError> {
    let digits = text.len();
    match u32::from_str_radix(text, 8) {
        Ok(m) if (3..=4).contains(&digits) && text.bytes().all(|b| b.is_ascii_digit()) => Ok(m),
        _ => Err(ModuleError::new(format!(
            "{module}: mode {text:?} is not an octal mode such as \"0640\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Answer, Facts, FileStat};
    use apim_transport::FileKind;

    fn host(path: &str, user: &str, group: &str, mode: u32) -> HostState {
        let mut facts = Facts::default();
        facts.insert(
            Fact::Attrs(path.into()),
            Answer::Attrs(FileStat {
                kind: FileKind::File,
                size: 1,
                mode,
                uid: 0,
                gid: 0,
                user: user.into(),
                group: group.into(),
                mtime: 0,
            }),
        );
        HostState::new(facts)
    }

    fn wanted(owner: &str, group: &str, mode: &str) -> Wanted {
        Wanted::parse("xml", Some(owner), Some(group), Some(mode)).unwrap()
    }

    #[test]
    fn drift_names_what_differs_and_nothing_else() {
        let w = wanted("app", "app", "0644");
        let s = host("/j.jar", "root", "root", 0o600);
        assert_eq!(
            w.drift("/j.jar", &s).unwrap(),
            "owner root:root → app:app, mode 0600 → 0644"
        );
        let s = host("/j.jar", "app", "app", 0o600);
        assert_eq!(w.drift("/j.jar", &s).unwrap(), "mode 0600 → 0644");
        let s = host("/j.jar", "app", "wheel", 0o644);
        assert_eq!(w.drift("/j.jar", &s).unwrap(), "owner app:wheel → app:app");
        assert_eq!(
            w.drift("/j.jar", &host("/j.jar", "app", "app", 0o644)),
            None
        );
    }

    #[test]
    fn an_unmanaged_group_is_not_compared() {
        let w = Wanted::parse("copy", Some("app"), None, None).unwrap();
        assert_eq!(w.drift("/f", &host("/f", "app", "wheel", 0o600)), None);
        assert_eq!(
            w.drift("/f", &host("/f", "root", "app", 0o600)).unwrap(),
            "owner root → app"
        );
    }

    #[test]
    fn a_planned_write_with_attributes_leaves_no_drift() {
        let w = wanted("app", "app", "0600");
        let mut s = host("/c.xml", "root", "root", 0o644);
        assert!(w.drift("/c.xml", &s).is_some());
        w.plan("/c.xml", &mut s);
        assert_eq!(w.drift("/c.xml", &s), None);
    }

    #[test]
    fn a_file_not_on_the_host_yet_is_drift_without_a_made_up_old_value() {
        let w = wanted("app", "app", "0600");
        let s = HostState::new(Facts::default());
        assert_eq!(
            w.drift("/new.xml", &s).unwrap(),
            "owner app:app, mode 0600 (not on the host yet)"
        );
    }

    #[test]
    fn the_repair_quotes_every_value() {
        let w = wanted("app", "app", "0600");
        let Action::Script { script, .. } = w.repair("/opt/it's here.xml") else {
            panic!("a script")
        };
        assert_eq!(
            script,
            "set -eu\nchown -- app:app \"/opt/it's here.xml\"\nchmod -- 0600 \"/opt/it's here.xml\"\n"
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        for (owner, group, mode, says) in [
            (Some("a:b"), None, None, "owner \"a:b\""),
            (Some(""), None, None, "owner \"\""),
            (Some("-r"), None, None, "owner \"-r\""),
            (None, Some("g"), None, "needs `owner`"),
            (None, None, Some("644x"), "mode \"644x\""),
            (None, None, Some("0o644"), "mode \"0o644\""),
            (None, None, Some("99"), "mode \"99\""),
            (None, None, Some("07777"), "mode \"07777\""),
            (None, None, Some("+644"), "mode \"+644\""),
        ] {
            let e = Wanted::parse("xml", owner, group, mode).unwrap_err().0;
            assert!(e.contains(says), "{e}");
        }
        assert_eq!(
            Wanted::parse("xml", None, None, Some("4755")).unwrap().mode,
            Some(0o4755)
        );
    }
}
