//! Validated scalar values of the inventory.
//!
//! Every string that later ends up in a shell command, an SQL statement, an XML file or a
//! URL is parsed here into a newtype whose constructor enforces a narrow syntax. Downstream
//! code can then interpolate these values without re-checking them; the quoting rules of
//! the transport and the XML engine are a second line of defence, not the first.
//!
//! Each type deserializes from a TOML string and fails with a message that names the rule,
//! so the parse error points at the value and says what is allowed.

use std::fmt;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Generates the common impls of a validated string newtype: `Deserialize` through
/// `parse`, `Serialize`/`Display` as the plain string, `as_str`, and `FromStr`.
macro_rules! validated_string {
    ($ty:ident) => {
        impl $ty {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                $ty::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                $ty::parse(text)
            }
        }
    };
}

/// A DNS name: dot-separated labels of ASCII letters, digits and `-`, each 1..=63
/// characters, not starting or ending with `-`; at most 253 characters in all.
fn is_dns_name(text: &str) -> bool {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    (1..=253).contains(&text.len()) && text.split('.').all(label_ok)
}

/// The rule for [`HostName`] and DNS names, as shown in error messages.
const DNS_RULE: &str = "dot-separated labels of letters, digits and `-` (each 1-63 characters, \
                        not starting or ending with `-`), at most 253 characters";

/// The name of a `[[hosts]]` entry (and of the machine in `/etc/hosts` entries): DNS name syntax.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostName(String);
validated_string!(HostName);

impl HostName {
    /// Validates `text` as a host name.
    pub fn parse(text: &str) -> Result<Self, String> {
        if is_dns_name(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!("invalid host name `{text}`: expected {DNS_RULE}"))
        }
    }
}

/// A DNS name that nodes resolve, such as `apimgtdb.mysql-wso2.com`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsName(String);
validated_string!(DnsName);

impl DnsName {
    /// Validates `text` as a DNS name.
    pub fn parse(text: &str) -> Result<Self, String> {
        if is_dns_name(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!("invalid DNS name `{text}`: expected {DNS_RULE}"))
        }
    }
}

/// A network address of a host: an IPv4/IPv6 address or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(String);
validated_string!(Address);

impl Address {
    /// Validates `text` as an IP address or a DNS name.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            // Normalised so that `127.0.0.1` and `127.000.000.001`-style spellings
            // (rejected by std anyway) or differently written IPv6 compare equal.
            return Ok(Self(ip.to_string()));
        }
        if is_dns_name(text) && !text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Ok(Self(text.to_ascii_lowercase()));
        }
        Err(format!(
            "invalid address `{text}`: expected an IPv4 or IPv6 address, or a DNS name ({DNS_RULE})"
        ))
    }

    /// The IP address, when the address is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.0.parse().ok()
    }

    /// The form used as the host part of a URL: IPv6 addresses in brackets.
    pub fn url_host(&self) -> String {
        match self.ip() {
            Some(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => self.0.clone(),
        }
    }
}

/// A MySQL database name or character set: `[A-Za-z0-9_]{1,64}`. Safe to interpolate into SQL
/// (still quote it with backticks).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DbIdent(String);
validated_string!(DbIdent);

impl DbIdent {
    /// Validates `text` as a database identifier.
    pub fn parse(text: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "invalid database identifier `{text}`: expected 1-64 characters of `A-Z`, `a-z`, `0-9` and `_`"
            ))
        }
    }
}

/// A user name (SSH login, Unix service user, MySQL user, WSO2 admin):
/// `[A-Za-z_][A-Za-z0-9_.-]{0,31}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserName(String);
validated_string!(UserName);

impl UserName {
    /// Validates `text` as a user name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut bytes = text.bytes();
        let first_ok = bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
        let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if first_ok && rest_ok && text.len() <= 32 {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "invalid user name `{text}`: expected 1-32 characters of letters, digits, `_`, `.` \
                 and `-`, starting with a letter or `_`"
            ))
        }
    }
}

/// A MySQL account host pattern for GRANT (`%`, an address, or a pattern such as `10.0.%`):
/// 1-255 characters of letters, digits, `.`, `-`, `:`, `_` and `%`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GrantHost(String);
validated_string!(GrantHost);

impl GrantHost {
    /// Validates `text` as a grant host pattern.
    pub fn parse(text: &str) -> Result<Self, String> {
        let ok = (1..=255).contains(&text.len())
            && text.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_' | b'%')
            });
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "invalid grant host `{text}`: expected `%`, an address or a pattern of letters, \
                 digits, `.`, `-`, `:`, `_` and `%`"
            ))
        }
    }
}

/// A SHA-256 digest: 64 hexadecimal digits, stored in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sha256Hex(String);
validated_string!(Sha256Hex);

impl Sha256Hex {
    /// Validates `text` as a SHA-256 hex digest.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(text.to_ascii_lowercase()))
        } else {
            Err(format!(
                "invalid sha256 `{text}`: expected 64 hexadecimal digits (`sha256sum FILE` prints it)"
            ))
        }
    }
}

/// An absolute path on a remote host that ends up in shell commands and config files:
/// `/` followed by letters, digits, `.`, `_`, `-` and `/`, without `..` or `.` components.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemotePath(String);
validated_string!(RemotePath);

impl RemotePath {
    /// Validates `text` as a remote absolute path.
    pub fn parse(text: &str) -> Result<Self, String> {
        let chars_ok = text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
        let components_ok = Path::new(text)
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
            && !text.split('/').any(|part| part == "." || part == "..");
        if text.starts_with('/') && text.len() > 1 && chars_ok && components_ok {
            Ok(Self(text.trim_end_matches('/').to_owned()))
        } else {
            Err(format!(
                "invalid path `{text}`: expected an absolute path other than `/` of letters, \
                 digits, `.`, `_`, `-` and `/`, without `.` or `..` components"
            ))
        }
    }

    /// `self/child`, for a child that is itself a validated path component.
    pub fn join(&self, child: &str) -> String {
        format!("{}/{child}", self.0)
    }
}

/// An absolute path on the machine running apim-deploy (secret files).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AbsolutePath(PathBuf);

impl AbsolutePath {
    /// Validates `text` as an absolute local path.
    pub fn parse(text: &str) -> Result<Self, String> {
        let path = Path::new(text);
        if path.is_absolute() && !path.components().any(|c| c == Component::ParentDir) {
            Ok(Self(path.to_path_buf()))
        } else {
            Err(format!(
                "invalid file `{text}`: expected an absolute path without `..` components"
            ))
        }
    }

    /// The path.
    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl fmt::Display for AbsolutePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.display().fmt(f)
    }
}

impl<'de> Deserialize<'de> for AbsolutePath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        AbsolutePath::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An `http://` or `https://` URL of RFC 3986 characters only (no whitespace, quotes or `\`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpUrl(String);
validated_string!(HttpUrl);

impl HttpUrl {
    /// Validates `text` as an http(s) URL.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"));
        let safe = |b: u8| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&()*+,;=%".contains(&b);
        match rest {
            Some(rest) if !rest.is_empty() && text.len() <= 2048 && text.bytes().all(safe) => {
                Ok(Self(text.to_owned()))
            }
            _ => Err(format!(
                "invalid URL `{text}`: expected `http://` or `https://` followed by a host and \
                 path, without spaces or quotes"
            )),
        }
    }
}

/// An SSH jump host, written `user@address:port` (`user@` and `:port` optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JumpHost {
    /// Login user on the jump host; `None` means the inventory's default SSH user.
    pub user: Option<UserName>,
    /// Address of the jump host.
    pub address: Address,
    /// SSH port of the jump host.
    pub port: u16,
}

impl JumpHost {
    /// Parses `[user@]address[:port]`; IPv6 addresses must be written in brackets with a port.
    pub fn parse(text: &str) -> Result<Self, String> {
        let err = |why: String| {
            format!("invalid jump host `{text}`: {why}; expected `[user@]address[:port]`")
        };
        let (user, hostport) = match text.split_once('@') {
            Some((user, rest)) => (Some(UserName::parse(user).map_err(err)?), rest),
            None => (None, text),
        };
        let (address, port) = split_host_port(hostport).map_err(err)?;
        Ok(Self {
            user,
            address: Address::parse(address).map_err(err)?,
            port,
        })
    }
}

fn split_host_port(text: &str) -> Result<(&str, u16), String> {
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("port `{p}` is not in 1-65535"))
    };
    if let Some(rest) = text.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed `[`".to_owned())?;
        let port = match after.strip_prefix(':') {
            Some(p) => parse_port(p)?,
            None if after.is_empty() => 22,
            None => return Err(format!("unexpected `{after}` after `]`")),
        };
        return Ok((addr, port));
    }
    match text.rsplit_once(':') {
        Some((addr, p)) if !addr.contains(':') => Ok((addr, parse_port(p)?)),
        _ => Ok((text, 22)),
    }
}

impl<'de> Deserialize<'de> for JumpHost {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        JumpHost::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_accept_ips_and_dns_names_only() {
        assert_eq!(Address::parse("127.0.10.1").unwrap().as_str(), "127.0.10.1");
        assert_eq!(
            Address::parse("Db.Example.org").unwrap().as_str(),
            "db.example.org"
        );
        assert_eq!(Address::parse("::1").unwrap().url_host(), "[::1]");
        for bad in [
            "",
            "a b",
            "127.0.0.1;rm",
            "-x",
            "1.2.3.4.5",
            "999.1.1.1",
            "a..b",
            "$(id)",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn host_names_follow_dns_syntax() {
        assert!(HostName::parse("app1").is_ok());
        assert!(HostName::parse("db-1.lab").is_ok());
        for bad in ["", "app_1", "app 1", "-a", "a-", &"x".repeat(64), "a/b"] {
            assert!(HostName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn database_identifiers_are_word_characters_up_to_64() {
        assert!(DbIdent::parse("apimgtdb").is_ok());
        assert!(DbIdent::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "a-b", "a`b", "db;drop", &"a".repeat(65)] {
            assert!(DbIdent::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn user_names_reject_shell_and_sql_metacharacters() {
        assert!(UserName::parse("wso2carbon").is_ok());
        assert!(UserName::parse("_svc.x-1").is_ok());
        for bad in ["", "1abc", "a b", "a'b", "a;b", "a@b", &"u".repeat(33)] {
            assert!(UserName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn remote_paths_are_absolute_plain_and_without_dot_dot() {
        assert_eq!(
            RemotePath::parse("/opt/wso2/").unwrap().as_str(),
            "/opt/wso2"
        );
        for bad in [
            "/",
            "opt/wso2",
            "/opt/../etc",
            "/opt/./x",
            "/opt/wso 2",
            "/opt/$x",
            "",
        ] {
            assert!(RemotePath::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sha256_is_64_hex_digits() {
        let ok = "AB".repeat(32);
        assert_eq!(Sha256Hex::parse(&ok).unwrap().as_str(), "ab".repeat(32));
        assert!(Sha256Hex::parse(&"g".repeat(64)).is_err());
        assert!(Sha256Hex::parse(&"a".repeat(63)).is_err());
    }

    #[test]
    fn jump_hosts_parse_user_address_and_port() {
        let jump = JumpHost::parse("ops@127.0.0.5:2222").unwrap();
        assert_eq!(jump.user.unwrap().as_str(), "ops");
        assert_eq!((jump.address.as_str(), jump.port), ("127.0.0.5", 2222));
        assert_eq!(JumpHost::parse("bastion").unwrap().port, 22);
        assert_eq!(JumpHost::parse("[::1]:23").unwrap().port, 23);
        assert!(JumpHost::parse("a@b@c").is_err());
        assert!(JumpHost::parse("host:0").is_err());
    }

    #[test]
    fn urls_must_be_http_without_quotes_or_spaces() {
        assert!(HttpUrl::parse("https://example.org/wso2am-1.9.0.zip").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "https://a b",
            "https://a'b",
            "https://a\"b",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
