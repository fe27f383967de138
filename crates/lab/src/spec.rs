//! What a lab should look like: the spec a caller writes, its validation, and the
//! host plan derived from it (names, addresses, roles, interface names). Pure data: no IO,
//! so every naming and addressing rule is unit-tested without root.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use apim_standin::jdk::JdkVersion;
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};

/// Last octet of the database host's address.
pub const DB_OCTET: u8 = 250;
/// Last octet of the controller's address on the lab bridge.
pub const CONTROLLER_OCTET: u8 = 254;
/// Most app hosts a lab may have (addresses .1 to .200 stay clear of the db and controller).
pub const MAX_APP_HOSTS: usize = 200;

/// A WSO2 API Manager role a host carries in the generated inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Keymanager,
    Gateway,
    Publisher,
    Store,
    Database,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Keymanager => "keymanager",
            Role::Gateway => "gateway",
            Role::Publisher => "publisher",
            Role::Store => "store",
            Role::Database => "database",
        }
    }
}

/// How the four API Manager roles are spread over the app hosts in the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// app1 keymanager, app2 gateway, app3 publisher, app4 store; further hosts are gateways.
    #[default]
    OnePerHost,
    /// Every role on app1; further hosts are spares (in the lab, not in the inventory).
    AllInOne,
    /// Key Manager, Publisher and Store on app1, gateways on app2 and app3 (and any further host).
    TwoGateways,
}

impl Layout {
    /// The roles of app host `index` (0-based) in a lab of `app_hosts` hosts.
    pub fn roles_of(self, index: usize) -> Vec<Role> {
        use Role::*;
        match (self, index) {
            (Layout::OnePerHost, 0) => vec![Keymanager],
            (Layout::OnePerHost, 2) => vec![Publisher],
            (Layout::OnePerHost, 3) => vec![Store],
            (Layout::AllInOne, 0) => vec![Keymanager, Gateway, Publisher, Store],
            (Layout::AllInOne, _) => Vec::new(),
            (Layout::TwoGateways, 0) => vec![Keymanager, Publisher, Store],
            // Every other host is one more gateway.
            _ => vec![Gateway],
        }
    }

    /// The fewest app hosts that carry every role.
    pub fn min_app_hosts(self) -> usize {
        match self {
            Layout::OnePerHost => 4,
            Layout::AllInOne => 1,
            Layout::TwoGateways => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Layout::OnePerHost => "one-per-host",
            Layout::AllInOne => "all-in-one",
            Layout::TwoGateways => "two-gateways",
        }
    }
}

impl std::str::FromStr for HostKeyType {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        HostKeyType::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| format!("unknown host key type `{text}` (allowed: ed25519, ecdsa, rsa)"))
    }
}

impl std::str::FromStr for Layout {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "one-per-host" => Ok(Layout::OnePerHost),
            "all-in-one" => Ok(Layout::AllInOne),
            "two-gateways" => Ok(Layout::TwoGateways),
            other => Err(format!(
                "unknown layout `{other}` (allowed: one-per-host, all-in-one, two-gateways)"
            )),
        }
    }
}

/// SSH host key types a lab host gets. RSA costs about 0.5 s of CPU per host to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostKeyType {
    Ed25519,
    Ecdsa,
    Rsa,
}

impl HostKeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            HostKeyType::Ed25519 => "ed25519",
            HostKeyType::Ecdsa => "ecdsa",
            HostKeyType::Rsa => "rsa",
        }
    }
    pub const ALL: [HostKeyType; 3] = [HostKeyType::Ed25519, HostKeyType::Ecdsa, HostKeyType::Rsa];

    /// What a lab gets unless asked for more: RSA generation is CPU-bound and took 1-4 s
    /// of a 4-host `up` on the busy 2-core test machine, and every client in use
    /// (OpenSSH, russh) prefers ed25519 or ecdsa host keys anyway.
    pub const DEFAULT: [HostKeyType; 2] = [HostKeyType::Ed25519, HostKeyType::Ecdsa];
}

/// What to build. `LabSpec::new` fills the defaults; adjust fields, then `Lab::up(&spec)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabSpec {
    /// First three octets of the lab's /24, inside 127.0.0.0/8 (e.g. "127.0.10").
    pub prefix: String,
    /// Number of app hosts (app1..appN at .1..N).
    pub app_hosts: usize,
    /// Whether to add the database host `db` (.250) running MariaDB.
    pub with_db: bool,
    /// Where everything of this lab lives; deleted by `down`.
    pub state_dir: PathBuf,
    /// Short name ([a-z0-9], at most 6) in the lab's link and netns names, so labs never collide.
    pub tag: String,
    pub layout: Layout,
    pub host_key_types: Vec<HostKeyType>,
    /// Name of the non-root login user with passwordless sudo on every host.
    pub deploy_user: String,
    /// Also let the deploy user log in with a generated password (stored in
    /// `<state>/secrets/deploy_password`, mode 0600), for testing password authentication.
    /// root always needs the key.
    #[serde(default)]
    pub password_login: bool,
    /// The stand-in JDK every app host gets under its own `/usr/lib/jvm` (the db host gets
    /// an empty one); `None`: no JDK at all. JAVA_HOME is set for nobody, as on a fresh host.
    #[serde(default = "default_jdk")]
    pub jdk: Option<JdkVersion>,
}

/// The JDK 1.9.0 documents (JDK 1.7): what a lab gets unless asked otherwise.
pub const DEFAULT_JDK: JdkVersion = JdkVersion::V1_7;

fn default_jdk() -> Option<JdkVersion> {
    Some(DEFAULT_JDK)
}

/// Where a host's JDKs live: a per-host directory bound over the controller's.
pub const JVM_DIR: &str = "/usr/lib/jvm";

impl LabSpec {
    /// Defaults: 4 app hosts, a db host, one role per host, ed25519 and ecdsa host keys,
    /// user `deploy`, JDK 1.7 on the app hosts, and a tag derived from the prefix.
    pub fn new(prefix: &str, state_dir: impl Into<PathBuf>) -> LabSpec {
        LabSpec {
            prefix: prefix.to_string(),
            app_hosts: 4,
            with_db: true,
            state_dir: state_dir.into(),
            tag: tag_for_prefix(prefix),
            layout: Layout::OnePerHost,
            host_key_types: HostKeyType::DEFAULT.to_vec(),
            deploy_user: "deploy".to_string(),
            password_login: false,
            jdk: default_jdk(),
        }
    }

    /// Checks every field; the error names the field and what is allowed.
    pub fn validate(&self) -> Result<()> {
        let octets = parse_prefix(&self.prefix)?;
        if octets[2] == 0 && octets[1] == 0 {
            return Err(spec_err(
                "prefix",
                "127.0.0 holds 127.0.0.1; pick another /24 such as 127.0.10",
            ));
        }
        if self.app_hosts == 0 || self.app_hosts > MAX_APP_HOSTS {
            return Err(spec_err(
                "app_hosts",
                format!(
                    "{} is out of range (allowed: 1..={MAX_APP_HOSTS})",
                    self.app_hosts
                ),
            ));
        }
        if self.tag.is_empty()
            || self.tag.len() > 6
            || !self
                .tag
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(spec_err(
                "tag",
                format!("`{}`: allowed are 1 to 6 of [a-z0-9]", self.tag),
            ));
        }
        let dir = self.state_dir.to_string_lossy();
        if !self.state_dir.is_absolute()
            || dir
                .chars()
                .any(|c| c.is_whitespace() || c == '\\' || c == '"')
            || dir == "/"
        {
            return Err(spec_err(
                "state_dir",
                format!(
                    "`{dir}`: must be an absolute path without whitespace, quotes or backslashes, not /"
                ),
            ));
        }
        if self.host_key_types.is_empty() {
            return Err(spec_err(
                "host_key_types",
                "at least one key type is needed",
            ));
        }
        if !self
            .deploy_user
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            || self.deploy_user.is_empty()
            || self.deploy_user == "root"
        {
            return Err(spec_err(
                "deploy_user",
                format!("`{}`: a non-root name of [a-z0-9_]", self.deploy_user),
            ));
        }
        Ok(())
    }

    /// The hosts this spec builds, app hosts first.
    pub fn plan(&self) -> Vec<Host> {
        let mut hosts: Vec<Host> = (0..self.app_hosts)
            .map(|i| Host {
                name: format!("app{}", i + 1),
                address: self.address(i as u8 + 1),
                roles: self.layout.roles_of(i),
                is_db: false,
            })
            .collect();
        if self.with_db {
            hosts.push(Host {
                name: "db".to_string(),
                address: self.address(DB_OCTET),
                roles: vec![Role::Database],
                is_db: true,
            });
        }
        hosts
    }

    /// JAVA_HOME of the spec's JDK on `host` (`/usr/lib/jvm/jdk1.7.0_80`), if it gets one.
    pub fn java_home(&self, host: &Host) -> Option<String> {
        let jdk = self.jdk.filter(|_| !host.is_db)?;
        Some(format!("{JVM_DIR}/{}", jdk.dir_name()))
    }

    /// `<prefix>.<last>`; only call after `validate`.
    pub fn address(&self, last: u8) -> Ipv4Addr {
        let o = parse_prefix(&self.prefix).expect("validated prefix");
        Ipv4Addr::new(o[0], o[1], o[2], last)
    }

    pub fn controller_address(&self) -> Ipv4Addr {
        self.address(CONTROLLER_OCTET)
    }

    /// The bridge on the controller joining this lab's hosts.
    pub fn bridge_name(&self) -> String {
        format!("al{}-br", self.tag)
    }

    /// The controller's end of a host's veth pair (at most 15 characters).
    pub fn veth_name(&self, host: &str) -> String {
        format!("al{}-{host}", self.tag)
    }

    /// The link group of the lab's bridge and veths on the controller: one `ip link del
    /// group` removes them all in one batch. Derived from the prefix, like the tag.
    pub fn link_group(&self) -> u32 {
        let o = parse_prefix(&self.prefix).expect("validated prefix");
        // 0x61 0x6c ("al") marks apim-lab groups; the low 16 bits are the prefix's /24.
        0x616c_0000 | (u32::from(o[1]) << 8) | u32::from(o[2])
    }

    /// Prefix shared by this lab's veths (and only by them).
    pub fn veth_prefix(&self) -> String {
        format!("al{}-", self.tag)
    }

    /// The host's named network namespace (`/run/netns/<name>`).
    pub fn netns_name(&self, host: &str) -> String {
        format!("{}{host}", self.netns_prefix())
    }

    pub fn netns_prefix(&self) -> String {
        format!("apimlab-{}-", self.tag)
    }
}

/// One host of a lab: what a test or the inventory needs to reach it. SSH is on port 22.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    pub address: Ipv4Addr,
    pub roles: Vec<Role>,
    pub is_db: bool,
}

/// "127.0.10" -> "000a": unique per prefix, so two labs with different prefixes never share names.
pub fn tag_for_prefix(prefix: &str) -> String {
    match parse_prefix(prefix) {
        Ok(o) => format!("{:02x}{:02x}", o[1], o[2]),
        Err(_) => "lab".to_string(),
    }
}

fn parse_prefix(prefix: &str) -> Result<[u8; 3]> {
    let parts: Vec<&str> = prefix.split('.').collect();
    let octets: Vec<u8> = parts.iter().filter_map(|p| p.parse().ok()).collect();
    if parts.len() != 3 || octets.len() != 3 {
        return Err(spec_err(
            "prefix",
            format!("`{prefix}`: expected three octets such as 127.0.10"),
        ));
    }
    if octets[0] != 127 {
        return Err(spec_err(
            "prefix",
            format!("`{prefix}`: only 127.0.0.0/8 (loopback) addresses may be used by the lab"),
        ));
    }
    Ok([octets[0], octets[1], octets[2]])
}

fn spec_err(field: &'static str, problem: impl Into<String>) -> LabError {
    LabError::Spec {
        field,
        problem: problem.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LabSpec {
        LabSpec::new("127.0.10", "/tmp/apimlab")
    }

    #[test]
    fn default_plan_has_four_apps_and_db() {
        let plan = spec().plan();
        let names: Vec<_> = plan
            .iter()
            .map(|h| (h.name.as_str(), h.address.to_string()))
            .collect();
        assert_eq!(
            names,
            [
                ("app1", "127.0.10.1".to_string()),
                ("app2", "127.0.10.2".to_string()),
                ("app3", "127.0.10.3".to_string()),
                ("app4", "127.0.10.4".to_string()),
                ("db", "127.0.10.250".to_string()),
            ]
        );
        assert_eq!(plan[0].roles, [Role::Keymanager]);
        assert_eq!(plan[3].roles, [Role::Store]);
        assert_eq!(plan[4].roles, [Role::Database]);
    }

    #[test]
    fn rejects_addresses_outside_loopback() {
        let mut s = spec();
        s.prefix = "10.0.10".into();
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("only 127.0.0.0/8"), "{err}");
    }

    #[test]
    fn rejects_long_tags_and_relative_state_dirs() {
        let mut s = spec();
        s.tag = "toolongtag".into();
        assert!(s.validate().unwrap_err().to_string().contains("tag"));
        let mut s = spec();
        s.state_dir = "rel/dir".into();
        assert!(s.validate().unwrap_err().to_string().contains("state_dir"));
    }

    #[test]
    fn link_names_fit_the_kernel_limit() {
        let mut s = spec();
        s.tag = "abcdef".into();
        assert!(s.veth_name("app200").len() <= 15);
        assert!(s.bridge_name().len() <= 15);
    }

    #[test]
    fn labs_with_different_prefixes_get_different_tags() {
        assert_ne!(tag_for_prefix("127.0.10"), tag_for_prefix("127.0.11"));
        assert_ne!(tag_for_prefix("127.1.0"), tag_for_prefix("127.0.1"));
    }

    #[test]
    fn app_hosts_get_the_jdk_and_the_db_host_none() {
        let mut s = spec();
        let plan = s.plan();
        assert_eq!(
            s.java_home(&plan[0]).as_deref(),
            Some("/usr/lib/jvm/jdk1.7.0_80")
        );
        assert_eq!(s.java_home(&plan[4]), None);
        s.jdk = Some(JdkVersion::V17);
        assert_eq!(
            s.java_home(&plan[1]).as_deref(),
            Some("/usr/lib/jvm/jdk-17.0.2")
        );
        s.jdk = None;
        assert_eq!(s.java_home(&plan[1]), None);
    }

    #[test]
    fn jdk_in_lab_json_defaults_to_1_7_and_null_means_none() {
        let mut value = serde_json::to_value(spec()).unwrap();
        assert_eq!(value["jdk"], "1.7");
        value.as_object_mut().unwrap().remove("jdk");
        let read: LabSpec = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(read.jdk, Some(JdkVersion::V1_7));
        value["jdk"] = serde_json::Value::Null;
        let read: LabSpec = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(read.jdk, None);
        value["jdk"] = "17".into();
        let read: LabSpec = serde_json::from_value(value).unwrap();
        assert_eq!(read.jdk, Some(JdkVersion::V17));
    }

    #[test]
    fn layouts_spread_roles() {
        assert_eq!(
            Layout::TwoGateways.roles_of(0),
            [Role::Keymanager, Role::Publisher, Role::Store]
        );
        assert_eq!(Layout::TwoGateways.roles_of(2), [Role::Gateway]);
        assert_eq!(Layout::AllInOne.roles_of(0).len(), 4);
        assert!(Layout::AllInOne.roles_of(1).is_empty());
        assert_eq!(Layout::OnePerHost.roles_of(7), [Role::Gateway]);
    }
}
