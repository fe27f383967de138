//! Secrets: references in the inventory, values only when resolved.
//!
//! The inventory never holds a secret itself. A secret field is a [`SecretRef`]:
//! `{ env = "VAR" }`, `{ file = "/abs/path" }`, or `{ command = ["pass", "show", "apim/db"] }`
//! (the operator's vault: pass, HashiCorp Vault's or a cloud secret manager's CLI, run
//! without a shell, its standard output the secret); an inline string is rejected at parse
//! time, because an inventory is a file people commit, copy and paste into tickets.
//! [`SecretRef::resolve`] reads the value into a [`Secret`], whose `Debug` and `Display`
//! print `********`, so a secret cannot leak through logging or `{:?}` by accident.

use std::fmt;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::values::AbsolutePath;

/// The message of the parse error for an inline secret. `error.rs` recognises it to classify
/// the problem (and the value itself is never echoed).
pub(crate) const INLINE_SECRET_MESSAGE: &str = "a secret must be a reference, not an inline string";

/// What a secret field accepts, shown as help for an inline secret.
pub(crate) const SECRET_FORMS_HELP: &str = "write `{ env = \"VAR\" }` (read from the environment \
     variable VAR), `{ file = \"/absolute/path\" }` (a file of mode 0600 holding the secret) or \
     `{ command = [\"pass\", \"show\", \"apim/db\"] }` (a program that prints it)";

/// Below this many characters a secret is weak (a warning from `check`).
pub const MIN_STRONG_CHARS: usize = 8;

/// Values that come with the products or are the first guess of anyone who tries: WSO2's
/// `admin`/`admin` and `wso2carbon` keystore password, MySQL's `root` and empty password.
/// Compared without regard to case.
const WELL_KNOWN: &[&str] = &[
    "",
    "admin",
    "administrator",
    "wso2carbon",
    "wso2",
    "root",
    "mysql",
    "password",
    "changeme",
    "secret",
];

/// Why `value` is a weak secret (`is a WSO2 or MySQL default value`, `is shorter than 8
/// characters`), or `None`. The reason never contains the value.
pub fn weakness(value: &str) -> Option<String> {
    if WELL_KNOWN.iter().any(|w| w.eq_ignore_ascii_case(value)) {
        return Some("is a WSO2 or MySQL default or a well-known password: choose another".into());
    }
    if value.chars().count() < MIN_STRONG_CHARS {
        return Some(format!(
            "is shorter than {MIN_STRONG_CHARS} characters: choose a longer one"
        ));
    }
    None
}

/// Where a secret comes from. Holds no secret material, so it may be printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretRef {
    /// An environment variable of the apim-deploy process.
    Env(String),
    /// A local file that only its owner may read (no group/other permission bits).
    /// One trailing newline is stripped.
    File(PathBuf),
    /// A program (argv, no shell) that prints the secret on its standard output;
    /// one trailing newline is stripped. It must succeed, print something, and
    /// finish within [`COMMAND_TIMEOUT`].
    Command(Vec<String>),
}

/// How long a secret command may take (a vault CLI that waits for a login prompt
/// must not hang the run).
pub const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A resolved secret. `Debug` and `Display` print `********`; use [`Secret::expose`] at the
/// single point where the value is written (e.g. into a config file's bytes).
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a value (tests and lab setup; production code gets secrets from [`SecretRef::resolve`]).
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The secret text. Call only where the value must be written out.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

/// Why a secret reference could not be resolved. Never contains the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable `{var}` is not set")]
    EnvNotSet { var: String },
    #[error("environment variable `{var}` is empty")]
    EnvEmpty { var: String },
    #[error("environment variable `{var}` is not valid UTF-8")]
    EnvNotUnicode { var: String },
    #[error("cannot read secret file `{}`: {source}", path.display())]
    FileUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("secret file `{}` is not a regular file", path.display())]
    FileNotRegular { path: PathBuf },
    #[error("secret file `{}` has mode {mode:04o}; it must not be accessible by group or others", path.display())]
    FileMode { path: PathBuf, mode: u32 },
    #[error("secret file `{}` is empty", path.display())]
    FileEmpty { path: PathBuf },
    #[error("secret file `{}` is not valid UTF-8", path.display())]
    FileNotUnicode { path: PathBuf },
    #[error("secret command `{command}` cannot run: {message}")]
    CommandFailedToRun { command: String, message: String },
    // The command's stderr is not shown: a vault CLI may echo what it was given.
    #[error("secret command `{command}` failed ({status})")]
    CommandFailed { command: String, status: String },
    #[error("secret command `{command}` printed nothing")]
    CommandEmpty { command: String },
    #[error("secret command `{command}` took more than {}s", COMMAND_TIMEOUT.as_secs())]
    CommandTimeout { command: String },
    #[error("secret command `{command}` printed something that is not UTF-8")]
    CommandNotUnicode { command: String },
}

impl SecretError {
    /// What the operator can do about it.
    pub fn help(&self) -> String {
        match self {
            Self::EnvNotSet { var } | Self::EnvEmpty { var } | Self::EnvNotUnicode { var } => {
                format!(
                    "export {var}=... before running apim-deploy, or use `{{ file = \"/absolute/path\" }}`"
                )
            }
            Self::FileMode { path, .. } => format!("run `chmod 600 {}`", path.display()),
            Self::FileUnreadable { .. }
            | Self::FileNotRegular { .. }
            | Self::FileEmpty { .. }
            | Self::FileNotUnicode { .. } => {
                "create the file with the secret on its first line, then `chmod 600` it".to_owned()
            }
            Self::CommandFailedToRun { .. }
            | Self::CommandFailed { .. }
            | Self::CommandEmpty { .. }
            | Self::CommandTimeout { .. }
            | Self::CommandNotUnicode { .. } => {
                "run the command yourself: it must print the secret and exit 0 without asking \
                 anything (log in to the vault first)"
                    .to_owned()
            }
        }
    }
}

impl SecretRef {
    /// Reads the secret now. Environment variables and files are read each time, so call
    /// this where the value is needed rather than caching it.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match self {
            Self::Env(var) => resolve_env(var),
            Self::File(path) => resolve_file(path),
            Self::Command(argv) => resolve_command(argv),
        }
    }
}

/// Runs the command with no shell and no stdin, reading its stdout; its stderr goes
/// to the operator's terminal (a vault CLI's own hints), never into an error.
fn resolve_command(argv: &[String]) -> Result<Secret, SecretError> {
    use std::io::Read;
    let command = argv.join(" ");
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| SecretError::CommandFailedToRun {
            command: command.clone(),
            message: "empty command".into(),
        })?;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| SecretError::CommandFailedToRun {
            command: command.clone(),
            message: e.to_string(),
        })?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| SecretError::CommandFailedToRun {
                command: command.clone(),
                message: e.to_string(),
            })?
        {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SecretError::CommandTimeout { command });
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let bytes = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(SecretError::CommandFailed {
            command,
            status: status.to_string(),
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| SecretError::CommandNotUnicode {
        command: command.clone(),
    })?;
    let value = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if value.is_empty() {
        return Err(SecretError::CommandEmpty { command });
    }
    Ok(Secret::new(value))
}

fn resolve_env(var: &str) -> Result<Secret, SecretError> {
    match std::env::var(var) {
        Ok(value) if value.is_empty() => Err(SecretError::EnvEmpty {
            var: var.to_owned(),
        }),
        Ok(value) => Ok(Secret::new(value)),
        Err(std::env::VarError::NotPresent) => Err(SecretError::EnvNotSet {
            var: var.to_owned(),
        }),
        Err(std::env::VarError::NotUnicode(_)) => Err(SecretError::EnvNotUnicode {
            var: var.to_owned(),
        }),
    }
}

fn resolve_file(path: &std::path::Path) -> Result<Secret, SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let path_buf = || path.to_path_buf();
    let meta = std::fs::metadata(path).map_err(|source| SecretError::FileUnreadable {
        path: path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(SecretError::FileNotRegular { path: path_buf() });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::FileMode {
            path: path_buf(),
            mode,
        });
    }
    let bytes = std::fs::read(path).map_err(|source| SecretError::FileUnreadable {
        path: path_buf(),
        source,
    })?;
    let text =
        String::from_utf8(bytes).map_err(|_| SecretError::FileNotUnicode { path: path_buf() })?;
    let value = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if value.is_empty() {
        return Err(SecretError::FileEmpty { path: path_buf() });
    }
    Ok(Secret::new(value))
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretRefVisitor)
    }
}

struct SecretRefVisitor;

impl<'de> Visitor<'de> for SecretRefVisitor {
    type Value = SecretRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a secret reference `{ env = \"VAR\" }`, `{ file = \"/absolute/path\" }` or `{ command = [\"prog\", \"arg\"] }`",
        )
    }

    // The value is deliberately not echoed: it is the secret.
    fn visit_str<E: de::Error>(self, _value: &str) -> Result<SecretRef, E> {
        Err(E::custom(INLINE_SECRET_MESSAGE))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "empty secret reference: expected `{ env = \"VAR\" }` or `{ file = \"/absolute/path\" }`",
            ));
        };
        let reference = match key.as_str() {
            "env" => SecretRef::Env(env_var_name(map.next_value()?)?),
            "file" => SecretRef::File(map.next_value::<AbsolutePath>()?.as_path().to_path_buf()),
            "command" => {
                let argv: Vec<String> = map.next_value()?;
                if argv.first().is_none_or(|p| p.is_empty())
                    || argv.iter().any(|a| a.contains('\0'))
                {
                    return Err(de::Error::custom(
                        "a secret command is a non-empty list: the program, then its arguments (no shell)",
                    ));
                }
                SecretRef::Command(argv)
            }
            other => return Err(de::Error::unknown_field(other, &["env", "file", "command"])),
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "a secret reference has exactly one key, `env`, `file` or `command`; `{extra}` is one too many"
            )));
        }
        Ok(reference)
    }
}

fn env_var_name<E: de::Error>(name: String) -> Result<String, E> {
    let mut bytes = name.bytes();
    let ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(name)
    } else {
        Err(E::custom(format!(
            "invalid environment variable name `{name}`: expected letters, digits and `_`, not starting with a digit"
        )))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn defaults_and_short_values_are_weak_and_the_reason_never_holds_the_value() {
        for value in [
            "admin",
            "ADMIN",
            "wso2carbon",
            "root",
            "password",
            "",
            "mysql",
        ] {
            let why = weakness(value).unwrap_or_else(|| panic!("{value:?} is weak"));
            assert!(why.contains("default"), "{value:?}: {why}");
        }
        let why = weakness("x7#kQ2").unwrap();
        assert!(
            why.contains("shorter than 8") && !why.contains("x7#kQ2"),
            "{why}"
        );
        assert_eq!(weakness("s3cret-Pa55word"), None);
        // Characters, not bytes: eight accented letters are eight.
        assert_eq!(weakness("éééééééé"), None);
    }

    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn secret_never_prints_its_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?}"), "******** ********");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn file_secret_requires_owner_only_mode_and_strips_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SecretRef::File(path.clone()).resolve().unwrap_err();
        assert!(err.to_string().contains("has mode 0644"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let secret = SecretRef::File(path).resolve().unwrap();
        assert_eq!(secret.expose(), "s3cret");
    }

    #[test]
    fn a_command_prints_the_secret_or_fails_naming_the_reference_never_the_value() {
        let run = |argv: &[&str]| {
            SecretRef::Command(argv.iter().map(|s| s.to_string()).collect()).resolve()
        };
        assert_eq!(run(&["printf", "s3cr3t\\n"]).unwrap().expose(), "s3cr3t");
        let err = run(&["sh", "-c", "echo leaked-value >&2; exit 3"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "secret command `sh -c echo leaked-value >&2; exit 3` failed (exit status: 3)"
        );
        let err = run(&["true"]).unwrap_err().to_string();
        assert_eq!(err, "secret command `true` printed nothing");
        let err = run(&["/nonexistent/vault"]).unwrap_err().to_string();
        assert!(
            err.starts_with("secret command `/nonexistent/vault` cannot run:"),
            "{err}"
        );
        let started = std::time::Instant::now();
        let err = run(&["sleep", "30"]).unwrap_err().to_string();
        assert_eq!(err, "secret command `sleep 30` took more than 10s");
        assert!(started.elapsed().as_secs() < 12);
    }

    #[test]
    fn missing_file_and_unset_env_are_errors() {
        let err = SecretRef::File("/nonexistent/apim/pw".into())
            .resolve()
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read secret file `/nonexistent/apim/pw`")
        );
        let err = SecretRef::Env("APIM_TEST_SURELY_UNSET_VAR".into())
            .resolve()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable `APIM_TEST_SURELY_UNSET_VAR` is not set"
        );
    }
}
