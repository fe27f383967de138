//! The inventory: the operator's TOML file, parsed and validated before anything else runs,
//! so a mistake is reported with its file:line:column and never reaches a host.
//!
//! This module owns the schema (documented in `docs/inventory.md`) and every check that
//! can be made from the file alone: syntax, unknown keys, value syntax (see [`values`]),
//! secret references (see [`secret`]), duplicate hosts and addresses, and the presence of
//! the roles a deployment needs. Everything derived (ports, offsets, URLs, who talks to
//! whom) belongs to `crate::topology`, which takes a validated [`Inventory`].
//!
//! Parsing is strict (`deny_unknown_fields` everywhere) and keeps the byte spans of the
//! values later checks may need to point at ([`toml::Spanned`]), so that a semantic error
//! found in the topology can still underline the offending value in the file.
//!
//! Entry points: [`Inventory::load`] (read, parse, check, resolve every secret once to prove
//! it is there) and [`Inventory::parse`] (pure: no file system, no environment).

pub mod error;
pub mod secret;
mod semantic;
pub mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

pub use error::{InventoryError, Origin, Problem, ProblemKind};
pub use secret::{Secret, SecretError, SecretRef};
pub use values::{
    Address, DbIdent, DnsName, GrantHost, HostName, HttpUrl, JumpHost, RemotePath, Sha256Hex,
    UserName,
};

/// A role a host can play. The four WSO2 roles each become one server instance (a node);
/// `database` marks the MySQL/MariaDB host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Key Manager: OAuth endpoints, key validation (Thrift or web service).
    KeyManager,
    /// Gateway: the API traffic (NIO pass-through ports 8280/8243 + offset).
    Gateway,
    /// Publisher: API design and publishing to the gateways.
    Publisher,
    /// Store: the developer portal.
    Store,
    /// The database server (not a WSO2 node).
    Database,
}

impl Role {
    /// The WSO2 roles in their canonical order, which is also the order of automatic port
    /// offsets on a shared host and the start order (KM, GW, Publisher, Store).
    pub const WSO2: [Role; 4] = [
        Role::KeyManager,
        Role::Gateway,
        Role::Publisher,
        Role::Store,
    ];

    /// Whether this role runs a WSO2 server.
    pub fn is_wso2(self) -> bool {
        self != Role::Database
    }

    /// The name used in the inventory (`keymanager`, ...).
    pub fn key(self) -> &'static str {
        match self {
            Role::KeyManager => "keymanager",
            Role::Gateway => "gateway",
            Role::Publisher => "publisher",
            Role::Store => "store",
            Role::Database => "database",
        }
    }

    /// The directory of the unpacked distribution under the install root (as in the
    /// WSO2 clustering guide): `KeyManager`, `Gateway`, `Publisher`, `Store`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Role::KeyManager => "KeyManager",
            Role::Gateway => "Gateway",
            Role::Publisher => "Publisher",
            Role::Store => "Store",
            Role::Database => "Database",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A parsed inventory. Construct with [`Inventory::load`] or [`Inventory::parse`]; both
/// return only inventories that passed every file-level check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// How to reach the hosts.
    #[serde(default)]
    pub ssh: Ssh,
    /// The WSO2 API Manager 1.9.0 zip.
    pub distribution: Artifact,
    /// The MySQL Connector/J jar copied into `repository/components/lib`.
    pub jdbc_driver: Artifact,
    /// A JDK archive (`.tar.gz` or `.zip`, one top folder) installed on every app host
    /// and used as the nodes' JAVA_HOME; without it a supported JDK is found on each host.
    #[serde(default)]
    pub java: Option<Artifact>,
    /// Where and as whom WSO2 is installed on the hosts.
    #[serde(default)]
    pub install: Install,
    /// The shared databases.
    pub database: Database,
    /// The WSO2 admin account.
    pub admin: Admin,
    /// Deployment options.
    #[serde(default)]
    pub options: Options,
    /// The hosts and their roles.
    pub hosts: Vec<Host>,
    /// The file this came from (for error messages that point into it).
    #[serde(skip)]
    pub origin: Origin,
    /// The directory relative local paths are resolved against (the inventory's directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[ssh]`: defaults for every host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ssh {
    /// Take each host's address, user, port, identity files, known_hosts, host key policy,
    /// jump host and connect timeout from OpenSSH's configuration (`ssh -G <host name>`):
    /// `true` for `~/.ssh/config`, or a path for that file. Keys also set here win.
    pub config: Option<Spanned<SshConfigSource>>,
    /// Login user (default `root`); a host's `user` overrides it.
    pub user: Option<UserName>,
    /// SSH port (default 22); a host's `port` overrides it.
    pub port: Option<u16>,
    /// Private key file on the machine running apim-deploy.
    pub identity_file: Option<PathBuf>,
    /// known_hosts file to check host keys against (and to add to with `accept-new`).
    pub known_hosts: Option<PathBuf>,
    /// Host key checking (default `strict`).
    pub host_key_policy: Option<HostKeyPolicy>,
    /// Passphrase of the identity file.
    pub passphrase: Option<Spanned<SecretRef>>,
    /// Password authentication.
    pub password: Option<Spanned<SecretRef>>,
    /// A jump host, `user@address:port`.
    pub jump: Option<JumpHost>,
    /// Run privileged commands through `sudo -n`.
    pub sudo: bool,
    /// Seconds to wait for a TCP connection and SSH handshake (default 10).
    pub connect_timeout_secs: Option<u64>,
    /// Seconds a single remote command may run.
    pub command_timeout_secs: u64,
}

impl Default for Ssh {
    fn default() -> Self {
        Self {
            config: None,
            user: None,
            port: None,
            identity_file: None,
            known_hosts: None,
            host_key_policy: None,
            passphrase: None,
            password: None,
            jump: None,
            sudo: false,
            connect_timeout_secs: None,
            command_timeout_secs: 600,
        }
    }
}

impl Ssh {
    pub const DEFAULT_PORT: u16 = 22;
    pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;

    /// The login user of hosts that do not name their own (`root` unless set).
    pub fn default_user(&self) -> UserName {
        self.user
            .clone()
            .unwrap_or_else(|| UserName::parse("root").expect("valid"))
    }

    /// The OpenSSH configuration file to read, when `config` is on (`None` inside: the
    /// user's own `~/.ssh/config`).
    pub fn config_file(&self) -> Option<Option<&Path>> {
        match self.config.as_ref().map(Spanned::get_ref) {
            Some(SshConfigSource::Enabled(true)) => Some(None),
            Some(SshConfigSource::File(path)) => Some(Some(path.as_path())),
            Some(SshConfigSource::Enabled(false)) | None => None,
        }
    }
}

/// `ssh.config`: `true` (the user's `~/.ssh/config`), `false`, or a file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SshConfigSource {
    Enabled(bool),
    File(PathBuf),
}

/// How unknown SSH host keys are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// The host key must already be in `known_hosts`.
    Strict,
    /// Unknown hosts are added to `known_hosts`; changed keys are still refused.
    AcceptNew,
}

/// A file to install: from a local path or a URL, checked against its SHA-256.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// Local file (relative paths are relative to the inventory's directory).
    pub path: Option<Spanned<PathBuf>>,
    /// Download URL.
    pub url: Option<Spanned<HttpUrl>>,
    /// Expected SHA-256 of the file.
    pub sha256: Sha256Hex,
    /// Who fetches the file (default `push`).
    pub mode: Option<Spanned<ArtifactMode>>,
}

impl Artifact {
    /// Who fetches the file.
    pub fn mode(&self) -> ArtifactMode {
        self.mode
            .as_ref()
            .map_or(ArtifactMode::Push, |m| *m.get_ref())
    }
}

/// Who fetches an artifact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactMode {
    /// apim-deploy reads (or downloads) the file and uploads it to each host.
    #[default]
    Push,
    /// Each host downloads `url` itself (needs `url`).
    Remote,
}

/// `[install]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Install {
    /// Directory holding one unpacked distribution per role (default `/opt/wso2`).
    pub root: RemotePath,
    /// Unix user that owns the files and runs the servers (default `wso2carbon`).
    pub service_user: UserName,
    /// JAVA_HOME on the hosts; `None` means: detect it.
    pub java_home: Option<RemotePath>,
}

impl Default for Install {
    fn default() -> Self {
        Self {
            root: RemotePath::parse("/opt/wso2").expect("valid"),
            service_user: UserName::parse("wso2carbon").expect("valid"),
            java_home: None,
        }
    }
}

/// `[database]`: one MySQL/MariaDB server holding the three WSO2 databases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// Name of the `[[hosts]]` entry with the `database` role.
    pub host: Spanned<HostName>,
    /// Server port (default 3306).
    #[serde(default = "default_db_port")]
    pub port: u16,
    /// Account that may create databases and users.
    pub admin_user: UserName,
    /// Its password.
    pub admin_password: Spanned<SecretRef>,
    /// Account the WSO2 nodes connect as.
    pub app_user: UserName,
    /// Its password.
    pub app_password: Spanned<SecretRef>,
    /// Character set of the created databases (default `latin1`: MySQL's key length limits).
    #[serde(default = "default_charset")]
    pub charset: DbIdent,
    /// Host part of the app account; default: one account per connecting node address.
    pub grant_host: Option<GrantHost>,
    /// Database names.
    #[serde(default)]
    pub names: DatabaseNames,
    /// The DNS names the nodes use in their JDBC URLs (mapped in `/etc/hosts`).
    #[serde(default)]
    pub hostnames: DatabaseHostnames,
}

fn default_db_port() -> u16 {
    3306
}

fn default_charset() -> DbIdent {
    DbIdent::parse("latin1").expect("valid")
}

/// `[database.names]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseNames {
    /// API Manager database (default `apimgtdb`).
    pub apimgt: DbIdent,
    /// User store database (default `userdb`).
    pub user: DbIdent,
    /// Shared registry database (default `regdb`).
    pub reg: DbIdent,
}

impl Default for DatabaseNames {
    fn default() -> Self {
        let id = |s| DbIdent::parse(s).expect("valid");
        Self {
            apimgt: id("apimgtdb"),
            user: id("userdb"),
            reg: id("regdb"),
        }
    }
}

/// `[database.hostnames]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseHostnames {
    /// Default `apimgtdb.mysql-wso2.com`.
    pub apimgt: DnsName,
    /// Default `userdb.mysql-wso2.com`.
    pub user: DnsName,
    /// Default `regdb.mysql-wso2.com`.
    pub reg: DnsName,
}

impl Default for DatabaseHostnames {
    fn default() -> Self {
        let name = |s| DnsName::parse(s).expect("valid");
        Self {
            apimgt: name("apimgtdb.mysql-wso2.com"),
            user: name("userdb.mysql-wso2.com"),
            reg: name("regdb.mysql-wso2.com"),
        }
    }
}

/// `[admin]`: the WSO2 super admin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Default `admin`.
    #[serde(default = "default_admin_user")]
    pub username: UserName,
    /// The admin password.
    pub password: Spanned<SecretRef>,
}

fn default_admin_user() -> UserName {
    UserName::parse("admin").expect("valid")
}

/// `[options]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Tenants in use: the gateway also gets the user store, gateway and key manager the
    /// shared registry.
    pub multi_tenancy: bool,
    /// The key managers sit behind a load balancer: key validation switches to WSClient
    /// (Thrift cannot be balanced) and every node uses `key_manager_url`.
    pub key_manager_behind_lb: Option<Spanned<bool>>,
    /// The load balancer's admin-services URL, e.g. `https://km-lb:9443/services/`.
    pub key_manager_url: Option<Spanned<HttpUrl>>,
    /// Generate JWTs for back ends (`APIConsumerAuthentication/EnableTokenGeneration`).
    pub jwt: bool,
    /// Well-known members per cluster domain (default 3, at least 2).
    pub wka_members: Option<usize>,
}

/// Well-known members per cluster domain unless `[options] wka_members` says otherwise.
pub const DEFAULT_WKA_MEMBERS: usize = 3;

impl Options {
    /// Well-known members per cluster domain: never fewer than 2, so that with any one of
    /// them down every node still lists one that is up.
    pub fn wka_members(&self) -> usize {
        self.wka_members.unwrap_or(DEFAULT_WKA_MEMBERS).max(2)
    }

    /// Whether the key managers sit behind a load balancer.
    pub fn key_manager_behind_lb(&self) -> bool {
        self.key_manager_behind_lb
            .as_ref()
            .is_some_and(|b| *b.get_ref())
    }
}

/// A `[[hosts]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// Unique name of the host.
    pub name: Spanned<HostName>,
    /// Unique address (what SSH connects to and what the other nodes use).
    pub address: Spanned<Address>,
    /// Roles on this host; each WSO2 role is one node.
    pub roles: Spanned<Vec<Spanned<Role>>>,
    /// SSH port override.
    pub port: Option<u16>,
    /// SSH user override.
    pub user: Option<UserName>,
    /// Port offset per role, overriding the automatic ones.
    #[serde(default)]
    pub offsets: BTreeMap<Role, Spanned<u16>>,
    /// Hazelcast `localMemberPort` per clustering role, overriding the automatic 4000, 4001, ...
    #[serde(default)]
    pub member_ports: BTreeMap<Role, Spanned<u16>>,
}

impl Host {
    /// The host's name.
    pub fn name(&self) -> &HostName {
        self.name.get_ref()
    }

    /// The host's address.
    pub fn address(&self) -> &Address {
        self.address.get_ref()
    }

    /// The roles, in inventory order.
    pub fn roles(&self) -> impl Iterator<Item = Role> + '_ {
        self.roles.get_ref().iter().map(|r| *r.get_ref())
    }

    /// Whether the host has `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles().any(|r| r == role)
    }

    /// The span of `role` in this host's `roles` list (or of the list).
    pub fn role_span(&self, role: Role) -> std::ops::Range<usize> {
        self.roles
            .get_ref()
            .iter()
            .find(|r| *r.get_ref() == role)
            .map_or_else(|| self.roles.span(), |r| r.span())
    }
}

/// Whether loading resolves the secret references (to prove they resolve).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// Resolve each reference once and report those that fail.
    Resolve,
    /// Leave them alone (no environment or file access).
    Skip,
}

/// The largest port offset accepted (keeps every offset port below 65536 with room to spare).
pub const MAX_OFFSET: u16 = 1000;

impl Inventory {
    /// Reads `path`, parses it, runs every file-level check and resolves every secret
    /// reference once (the values are dropped; callers resolve again where they need them).
    /// All semantic problems, secret ones included, are reported together.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        Self::load_with(path, Secrets::Resolve)
    }

    /// Like [`Inventory::load`] but without resolving secrets (for tools that only need the
    /// layout, such as `check --skip-secrets` in CI without the secrets at hand).
    pub fn load_unresolved(path: &Path) -> Result<Inventory, InventoryError> {
        Self::load_with(path, Secrets::Skip)
    }

    /// [`Inventory::load`] or [`Inventory::load_unresolved`].
    pub fn load_with(path: &Path, secrets: Secrets) -> Result<Inventory, InventoryError> {
        let (inventory, problems) = Self::load_with_problems(path, secrets)?;
        match problems.is_empty() {
            true => Ok(inventory),
            false => Err(inventory.error(problems)),
        }
    }

    /// Reads and parses `path`, returning the inventory together with its semantic (and,
    /// with [`Secrets::Resolve`], secret) problems; `Err` only when it cannot be read or
    /// parsed. The inventory is unchecked when problems are returned: derive nothing from
    /// it unless they are all [`ProblemKind::UnresolvedSecret`].
    pub fn load_with_problems(
        path: &Path,
        secrets: Secrets,
    ) -> Result<(Inventory, Vec<Problem>), InventoryError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|err| {
            let problem = Problem {
                kind: ProblemKind::Read,
                message: format!("cannot read the inventory: {err}"),
                span: None,
                label: String::new(),
                help: None,
            };
            InventoryError::new(Origin::new(name.clone(), ""), vec![problem])
        })?;
        let text = String::from_utf8(bytes).map_err(|err| {
            // Point at the first bad byte, as every other error points at its place:
            // the text before it is valid, so its offset is the same in the lossy copy.
            let at = err.utf8_error().valid_up_to();
            let lossy = String::from_utf8_lossy(err.as_bytes()).into_owned();
            let end = lossy[at..].chars().next().map_or(at, |c| at + c.len_utf8());
            let problem = Problem::new(
                ProblemKind::Read,
                "the inventory is not UTF-8 text",
                at..end,
            )
            .label("not UTF-8")
            .help("TOML files are UTF-8; convert it, e.g. `iconv -f latin1 -t utf-8`");
            InventoryError::new(Origin::new(name.clone(), lossy), vec![problem])
        })?;
        let (mut inventory, problems) = Self::parse_with_problems(&text, &name, secrets)?;
        inventory.base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Ok((inventory, problems))
    }

    /// Parses and checks inventory `text` (named `name` in messages). Pure: it reads no
    /// files and no environment; secrets are checked by [`Inventory::check_secrets`].
    pub fn parse(text: &str, name: &str) -> Result<Inventory, InventoryError> {
        let (inventory, problems) = Self::parse_with_problems(text, name, Secrets::Skip)?;
        match problems.is_empty() {
            true => Ok(inventory),
            false => Err(inventory.error(problems)),
        }
    }

    /// The text counterpart of [`Inventory::load_with_problems`] (relative local paths
    /// resolve against the current directory).
    pub fn parse_with_problems(
        text: &str,
        name: &str,
        secrets: Secrets,
    ) -> Result<(Inventory, Vec<Problem>), InventoryError> {
        let origin = Origin::new(name, text);
        let mut inventory: Inventory = toml::from_str(text)
            .map_err(|err| InventoryError::new(origin.clone(), vec![Problem::from_toml(&err)]))?;
        inventory.origin = origin;
        inventory.base_dir = PathBuf::from(".");
        let mut problems = inventory.semantic_problems();
        if secrets == Secrets::Resolve {
            problems.extend(inventory.secret_problems());
        }
        Ok((inventory, problems))
    }

    /// Resolves every secret reference once and reports those that fail.
    pub fn check_secrets(&self) -> Result<(), InventoryError> {
        let problems = self.secret_problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(self.error(problems))
        }
    }

    /// The problems of every secret reference that does not resolve.
    pub fn secret_problems(&self) -> Vec<Problem> {
        self.secret_refs()
            .into_iter()
            .filter_map(|(field, reference)| {
                let err = reference.get_ref().resolve().err()?;
                Some(
                    Problem::new(
                        ProblemKind::UnresolvedSecret,
                        format!("{field}: {err}"),
                        reference.span(),
                    )
                    .label("this secret does not resolve")
                    .help(err.help()),
                )
            })
            .collect()
    }

    /// Warnings about secrets that resolve to a well-known default (`admin`, `root`, ...)
    /// or to fewer than [`secret::MIN_STRONG_CHARS`] characters, naming each by its field,
    /// never by its value. A reference that does not resolve is
    /// [`Inventory::secret_problems`]'s, not a warning.
    pub fn weak_secret_warnings(&self) -> Vec<String> {
        self.secret_refs()
            .into_iter()
            .filter_map(|(field, reference)| {
                let value = reference.get_ref().resolve().ok()?;
                secret::weakness(value.expose()).map(|why| format!("{field} {why}"))
            })
            .collect()
    }

    /// Every secret reference with its dotted field name.
    pub fn secret_refs(&self) -> Vec<(&'static str, &Spanned<SecretRef>)> {
        let mut refs = vec![
            ("database.admin_password", &self.database.admin_password),
            ("database.app_password", &self.database.app_password),
            ("admin.password", &self.admin.password),
        ];
        if let Some(passphrase) = &self.ssh.passphrase {
            refs.push(("ssh.passphrase", passphrase));
        }
        if let Some(password) = &self.ssh.password {
            refs.push(("ssh.password", password));
        }
        refs.sort_by_key(|(_, r)| r.span().start);
        refs
    }

    /// An [`InventoryError`] about this inventory's file.
    pub fn error(&self, problems: Vec<Problem>) -> InventoryError {
        InventoryError::new(self.origin.clone(), problems)
    }

    /// A local path from the inventory, resolved against the inventory's directory.
    pub fn local_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The host named `name`.
    pub fn host(&self, name: &HostName) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name() == name)
    }

    /// The host `database.host` names (present in every checked inventory).
    pub fn database_host(&self) -> &Host {
        self.host(self.database.host.get_ref())
            .expect("checked by Inventory::parse")
    }
}
