//! `Cmd`: a remote command as data (argument vector, stdin, privilege, directory,
//! environment, timeout) and its rendering into one POSIX shell command line.
//!
//! Every argument is quoted by [`quote`] (the workspace's one shell quoting: shlex), so
//! what the far process receives in its argv is exactly what the caller put in the
//! vector; a NUL byte cannot be passed through a command line at all and is refused. Secrets never belong in a `Cmd`'s arguments or
//! environment (both are visible in `ps` on the far side): pass them through stdin.

use std::borrow::Cow;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::AsyncRead;

use crate::error::TransportError;

/// A value that cannot be one shell word: it holds a NUL byte, which no argv entry,
/// environment value or script line can carry (bash drops it silently).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("contains a NUL byte, which no shell word can hold")]
pub struct QuoteError;

/// `word` as one POSIX shell word: unchanged when it holds only characters that are
/// never special (`/opt/wso2`), quoted otherwise, so that the shell reads back exactly
/// `word` (quotes, `$()`, backticks, globs, newlines included). This is the one shell
/// quoting of the workspace (commands, file batches, the engine's scripts, `lab env`);
/// it is shlex's, which documents and tests its choices for every byte.
pub fn quote(word: &str) -> Result<Cow<'_, str>, QuoteError> {
    shlex::try_quote(word).map_err(|_| QuoteError)
}

/// A reader streamed into the command's stdin (for large inputs such as uploads).
pub type StdinReader = Box<dyn AsyncRead + Send + Unpin>;

/// What the command reads on stdin.
#[derive(Default)]
pub enum Stdin {
    /// Nothing: stdin is closed at once (the command sees EOF).
    #[default]
    Null,
    /// A buffer sent whole (small inputs, secrets).
    Bytes(Vec<u8>),
    /// A reader streamed chunk by chunk; it can be consumed by one execution only.
    Stream(Mutex<Option<StdinReader>>),
}

impl fmt::Debug for Stdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stdin::Null => write!(f, "Null"),
            // Never print stdin contents: it is where secrets travel.
            Stdin::Bytes(b) => write!(f, "Bytes(<{} bytes>)", b.len()),
            Stdin::Stream(_) => write!(f, "Stream(..)"),
        }
    }
}

/// A command to run on a host, built from an argument vector.
///
/// ```
/// use apim_transport::Cmd;
/// let cmd = Cmd::new("ls").arg("-l").arg("/opt/wso2 dir");
/// assert_eq!(cmd.render(false).unwrap(), "ls -l '/opt/wso2 dir'");
/// ```
#[derive(Debug)]
pub struct Cmd {
    argv: Vec<String>,
    stdin: Stdin,
    elevate: bool,
    cwd: Option<String>,
    env: Vec<(String, String)>,
    timeout: Option<Duration>,
    stdout_tap: Option<StdoutTap>,
}

/// Where a command's stdout goes as it arrives, chunk by chunk, besides the
/// [`crate::Output`] it ends with (for a command that reports before it ends).
pub type StdoutTap = tokio::sync::mpsc::UnboundedSender<Vec<u8>>;

impl Cmd {
    /// A command running `program` (looked up in the far side's PATH).
    pub fn new(program: impl Into<String>) -> Self {
        Cmd {
            argv: vec![program.into()],
            stdin: Stdin::Null,
            elevate: true,
            cwd: None,
            env: Vec::new(),
            timeout: None,
            stdout_tap: None,
        }
    }

    /// A command from a whole argument vector (`argv[0]` is the program).
    ///
    /// An empty vector is accepted here and refused when the command is rendered.
    pub fn from_argv<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cmd = Cmd::new(String::new());
        cmd.argv = argv.into_iter().map(Into::into).collect();
        cmd
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.argv.push(arg.into());
        self
    }

    /// Appends several arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.argv.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sends `bytes` on stdin (the way to hand a secret to a command).
    pub fn stdin_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Stdin::Bytes(bytes.into());
        self
    }

    /// Streams `reader` into stdin without holding it in memory.
    pub fn stdin_reader(mut self, reader: impl AsyncRead + Send + Unpin + 'static) -> Self {
        self.stdin = Stdin::Stream(Mutex::new(Some(Box::new(reader))));
        self
    }

    /// Runs as the login user even when the target elevates with sudo.
    ///
    /// By default a command runs as root: directly when the target logs in as root,
    /// through `sudo -n --` when the target says `sudo = true`.
    pub fn as_login_user(mut self) -> Self {
        self.elevate = false;
        self
    }

    /// Runs in this directory on the far side (`env -C`).
    pub fn current_dir(mut self, dir: impl Into<String>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets an environment variable for the command. The value is visible on the far
    /// side's command line: never a secret.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Fails the command with a timeout error after `limit` (default: the target's).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Sends each chunk of stdout to `tap` as it arrives (it is still collected
    /// into the output): a long-running command can say when it is ready.
    pub fn stdout_tap(mut self, tap: StdoutTap) -> Self {
        self.stdout_tap = Some(tap);
        self
    }

    /// Hands a chunk of stdout to the tap, if any (a closed tap is ignored).
    pub(crate) fn tap_stdout(&self, chunk: &[u8]) {
        if let Some(tap) = &self.stdout_tap {
            let _ = tap.send(chunk.to_vec());
        }
    }

    /// The argument vector as given.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// What the command reads on stdin.
    pub fn stdin(&self) -> &Stdin {
        &self.stdin
    }

    /// Whether the command asks to run as root (see [`Cmd::as_login_user`]).
    pub fn wants_root(&self) -> bool {
        self.elevate
    }

    /// The per-command timeout, if one was set.
    pub fn timeout_limit(&self) -> Option<Duration> {
        self.timeout
    }

    /// Takes the streamed stdin reader out of the command (once).
    pub(crate) fn take_stdin_reader(&self) -> Option<StdinReader> {
        match &self.stdin {
            Stdin::Stream(slot) => slot.lock().ok().and_then(|mut r| r.take()),
            _ => None,
        }
    }

    /// Renders the command as one POSIX shell command line; `sudo` adds the
    /// non-interactive `sudo -n --` prefix (password-less sudo only).
    ///
    /// Fails on an empty argument vector, a NUL byte anywhere, or an environment
    /// variable name that is not a shell identifier.
    pub fn render(&self, sudo: bool) -> Result<String, String> {
        if self.argv.first().is_none_or(|p| p.is_empty()) {
            return Err("empty program name".into());
        }
        let mut words: Vec<String> = Vec::new();
        if sudo {
            words.extend(["sudo", "-n", "--"].map(String::from));
        }
        if self.cwd.is_some() || !self.env.is_empty() {
            words.push("env".into());
            if let Some(dir) = &self.cwd {
                words.push("-C".into());
                words.push(dir.clone());
            }
            for (key, value) in &self.env {
                if !is_env_name(key) {
                    return Err(format!(
                        "environment variable name {key:?} is not a shell identifier"
                    ));
                }
                words.push(format!("{key}={value}"));
            }
        }
        words.extend(self.argv.iter().cloned());
        let quoted = words
            .iter()
            .map(|w| quote(w))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "an argument contains a NUL byte".to_string())?;
        Ok(quoted.join(" "))
    }

    /// A short, log-safe description: long or multi-line arguments (scripts) are
    /// replaced by their size, so errors stay readable.
    pub fn display(&self) -> String {
        let shown: Vec<String> = self
            .argv
            .iter()
            .map(|a| {
                if a.len() > 80 || a.contains('\n') {
                    format!("<{} bytes>", a.len())
                } else {
                    quote(a)
                        .map(Cow::into_owned)
                        .unwrap_or_else(|_| "<NUL>".into())
                }
            })
            .collect();
        shown.join(" ")
    }

    /// The error for a command that cannot be rendered.
    pub(crate) fn invalid(&self, host: &str, reason: String) -> TransportError {
        TransportError::InvalidCommand {
            host: host.to_string(),
            cmd: self.display(),
            reason,
        }
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(cmd: Cmd) -> String {
        cmd.render(false).unwrap()
    }

    #[test]
    fn plain_words_are_not_quoted() {
        assert_eq!(render(Cmd::new("echo").arg("hi")), "echo hi");
    }

    #[test]
    fn shell_syntax_is_quoted() {
        let line = render(Cmd::new("echo").arg("$(rm -rf /); `x` | y"));
        assert_eq!(line, "echo '$(rm -rf /); `x` | y'");
    }

    /// What bash prints back for `printf '%s' <quoted>`.
    fn through_bash(word: &str) -> String {
        let script = format!("printf '%s' {}", quote(word).unwrap());
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert!(out.status.success(), "{word:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn hostile_words_come_back_from_bash_unchanged() {
        for word in [
            "",
            "plain",
            "/opt/wso2/Key Manager",
            "it's",
            "'",
            "''\\'",
            "\"double\" and 'single'",
            "$(touch /tmp/apim-quote-pwned)",
            "`touch /tmp/apim-quote-pwned`",
            "${HOME} $HOME $$ $? $!",
            "a\nb\n\n",
            "line\r\n",
            "tab\there",
            "*.xml ? [a-z] {a,b} ~root",
            "; rm -rf / #",
            "a|b&c>d<e",
            "\\ backslash \\",
            "!event ^caret",
            "-n",
            "caf\u{e9} \u{1f600}",
            "\x01\x1b[31m\x7f",
        ] {
            assert_eq!(through_bash(word), word, "{word:?}");
        }
        assert!(!std::path::Path::new("/tmp/apim-quote-pwned").exists());
    }

    #[test]
    fn a_nul_byte_is_an_error_never_a_shorter_word() {
        assert_eq!(quote("a\0b"), Err(QuoteError));
        assert_eq!(quote("\0"), Err(QuoteError));
    }

    #[test]
    fn plain_words_stay_as_they_are() {
        assert_eq!(quote("/opt/wso2/Gateway").unwrap(), "/opt/wso2/Gateway");
        assert_eq!(quote("").unwrap(), "''");
    }

    #[test]
    fn sudo_prefix_is_non_interactive() {
        assert_eq!(Cmd::new("id").render(true).unwrap(), "sudo -n -- id");
    }

    #[test]
    fn dir_and_env_go_through_env() {
        let line = render(Cmd::new("pwd").current_dir("/opt/a b").env("A", "x y"));
        assert_eq!(line, "env -C '/opt/a b' 'A=x y' pwd");
    }

    #[test]
    fn nul_is_refused() {
        let err = Cmd::new("echo").arg("a\0b").render(false).unwrap_err();
        assert!(err.contains("NUL"), "{err}");
    }

    #[test]
    fn bad_env_name_is_refused() {
        let err = Cmd::new("true").env("A;B", "1").render(false).unwrap_err();
        assert!(err.contains("A;B"), "{err}");
    }

    #[test]
    fn empty_argv_is_refused() {
        assert!(Cmd::from_argv(Vec::<String>::new()).render(false).is_err());
    }

    #[test]
    fn display_hides_scripts() {
        let cmd = Cmd::new("bash").arg("-c").arg("echo 1\necho 2").arg("x");
        assert_eq!(cmd.display(), "bash -c <13 bytes> x");
    }

    #[test]
    fn debug_hides_stdin() {
        let cmd = Cmd::new("cat").stdin_bytes("s3cret");
        assert!(!format!("{cmd:?}").contains("s3cret"));
    }
}
