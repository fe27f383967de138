//! Checks a plan makes before it promises anything: is there room for what the
//! run will write, are the commands it needs there, are the ports it will bind
//! free. Each is a question in the host's one probe, so a plan costs no extra
//! round trip, and a problem stops the plan (and so `apply`) before any change,
//! naming the host, what was found and what to do.

use crate::probe::{Fact, quote};

/// The checks an operator may skip (`--skip-preflight NAME`), when they know better
/// than the probe (a JDK the version probe cannot read, a port another node will
/// free, a filesystem that reports less than it can hold).
pub const CHECKS: &[&str] = &["java", "disk", "ports", "commands", "clock", "open-files"];

/// An error naming the check, and how to skip it.
pub fn failed(check: &str, message: String) -> crate::modules::ModuleError {
    crate::modules::ModuleError::new(format!(
        "{message} (preflight `{check}`; --skip-preflight {check} to go on anyway)"
    ))
}

/// Free space on the filesystem that `path` (or its nearest existing ancestor)
/// is on: prints `<mount point> <available KiB>`.
pub fn free_space(path: &str) -> Fact {
    Fact::Shell(format!(
        "{}d={}\nwhile [ ! -e \"$d\" ] && [ \"$d\" != / ]; do d=${{d%/*}}; [ -n \"$d\" ] || d=/; done\n\
         df -Pk -- \"$d\" | while read -r _ _ _ avail _ mount; do [ \"$avail\" = Available ] || echo \"$mount $avail\"; done",
        crate::probe::VOLATILE,
        quote(path)
    ))
}

/// Parses [`free_space`]'s answer.
pub fn parse_free_space(out: &[u8]) -> Option<(String, u64)> {
    let text = String::from_utf8_lossy(out);
    let line = text.lines().last()?;
    let (mount, avail) = line.rsplit_once(' ')?;
    Some((mount.to_string(), avail.trim().parse::<u64>().ok()? * 1024))
}

/// Which of `commands` exist on the host: prints one name per line.
pub fn commands(commands: &[&str]) -> Fact {
    let list: Vec<String> = commands.iter().map(|c| quote(c)).collect();
    Fact::Shell(format!(
        "for c in {}; do command -v \"$c\" >/dev/null 2>&1 && echo \"$c\"; done; true",
        list.join(" ")
    ))
}

/// Reserves room for writing `bytes` at `dest` (beside it, then renamed): an error
/// naming what is written, the room this run needs on that filesystem and what is
/// free. Reads the [`free_space`] answer for `dest` from the probe.
pub fn reserve_room(
    state: &mut crate::state::HostState,
    dest: &str,
    bytes: u64,
    what: &str,
) -> Result<(), crate::modules::ModuleError> {
    if !state.checks("disk") {
        return Ok(());
    }
    let Fact::Shell(free) = free_space(dest) else {
        unreachable!("a shell fact")
    };
    let answer = state
        .probed_shell(&free)
        .map(|(_, o)| o.to_vec())
        .unwrap_or_default();
    state
        .reserve(&answer, bytes)
        .map_err(|(mount, need, avail)| {
            failed(
                "disk",
                format!(
                    "no space left for {what}: this run needs {} on {mount}, {} free; \
                 free some space or choose another [install] root",
                    mib(need),
                    mib(avail)
                ),
            )
        })
}

/// Requires one of `any_of` among the commands a [`commands`]`(asked)` probe found:
/// an error naming what needs them when none is there.
pub fn require_command(
    state: &crate::state::HostState,
    asked: &[&str],
    any_of: &[&str],
    what: &str,
) -> Result<(), crate::modules::ModuleError> {
    if !state.checks("commands") {
        return Ok(());
    }
    let Fact::Shell(probe) = commands(asked) else {
        unreachable!("a shell fact")
    };
    let Some((_, out)) = state.probed_shell(&probe) else {
        return Ok(());
    };
    let found = String::from_utf8_lossy(out);
    if found.lines().any(|c| any_of.contains(&c)) {
        return Ok(());
    }
    Err(failed(
        "commands",
        format!(
            "{what} needs {} on the host, and it has none: install {}",
            any_of.join(" or "),
            if any_of.len() == 1 { "it" } else { "one" }
        ),
    ))
}

/// The room a write of `bytes` needs: the bytes, plus a margin for what the
/// filesystem and the product's first start add (logs, temp files).
pub fn with_margin(bytes: u64) -> u64 {
    bytes + bytes / 10 + 64 * 1024 * 1024
}

/// `123456789` -> `118 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes.div_ceil(1024 * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: &Fact) -> Vec<u8> {
        let Fact::Shell(s) = f else { unreachable!() };
        std::process::Command::new("bash")
            .arg("-c")
            .arg(s)
            .output()
            .unwrap()
            .stdout
    }

    #[test]
    fn free_space_is_asked_of_the_nearest_existing_ancestor() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("not yet/created's/dir");
        let (mount, avail) = parse_free_space(&run(&free_space(deep.to_str().unwrap()))).unwrap();
        assert!(mount.starts_with('/'), "{mount}");
        assert!(avail > 0);
        assert_eq!(parse_free_space(b""), None);
        assert_eq!(parse_free_space(b"/ x"), None);
    }

    #[test]
    fn a_missing_command_is_named_with_what_needs_it_and_the_way_out() {
        let asked = ["sha256sum", "openssl", "curl", "wget"];
        let state = |found: &str| {
            let mut facts = crate::probe::Facts::default();
            facts.insert(
                commands(&asked),
                crate::probe::Answer::Output {
                    rc: 0,
                    stdout: found.as_bytes().to_vec(),
                },
            );
            crate::state::HostState::new(facts)
        };
        let s = state("openssl\ncurl\n");
        assert!(require_command(&s, &asked, &["sha256sum", "openssl"], "verifying x").is_ok());
        let err = require_command(&s, &asked, &["wget"], "downloading x")
            .unwrap_err()
            .0;
        assert_eq!(
            err,
            "downloading x needs wget on the host, and it has none: install it \
             (preflight `commands`; --skip-preflight commands to go on anyway)"
        );
        let mut s = state("");
        s.skip_checks = ["commands".to_string()].into();
        assert!(require_command(&s, &asked, &["wget"], "downloading x").is_ok());
    }

    #[test]
    fn only_the_commands_that_exist_are_listed() {
        let out = run(&commands(&["bash", "no-such-command-here", "sh"]));
        assert_eq!(String::from_utf8_lossy(&out), "bash\nsh\n");
    }
}
