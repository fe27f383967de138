//! `apim-deploy lab ...`: the local lab of real hosts (crate `apim-lab`).
//!
//! Parses the subcommands and prints; every action is a call into `apim_lab::Lab`. The lab
//! is found again through its state dir (`--state-dir`, default /tmp/apimlab), where `up`
//! records it. `lab dist` belongs to the stand-in distribution (crate `apim-standin`) and only
//! passes through here.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use apim_lab::{
    DistFiles, HostKeyType, HostStatus, JdkVersion, KillScope, Lab, LabSpec, Layout, Shape,
};
use apim_standin::jdk::ArchiveFormat;

use super::dist;
use crate::engine::shell::Shell;

/// Where `lab up` puts the lab unless told otherwise.
pub const DEFAULT_STATE_DIR: &str = "/tmp/apimlab";
pub const DEFAULT_PREFIX: &str = "127.0.10";

#[derive(Debug, clap::Subcommand)]
pub enum LabCommand {
    /// Build the lab: app hosts and a database host, each a real sshd in its own
    /// namespaces at a loopback address (root on Linux). Writes an inventory for it.
    #[command(
        after_help = "Examples:\n  apim-deploy lab up\n  apim-deploy lab up --prefix 127.0.11"
    )]
    Up(UpArgs),
    /// Stop every process of the lab and remove its mounts, namespaces, links, rules and state dir.
    #[command(after_help = "Examples:\n  apim-deploy lab down")]
    Down(StateArgs),
    /// Each host's address, roles, processes, sshd/db state and faults.
    #[command(after_help = "Examples:\n  apim-deploy lab status")]
    Status(StateArgs),
    /// SIGSTOP every process of HOST (ssh then times out in the banner exchange).
    #[command(after_help = "Examples:\n  apim-deploy lab freeze app2")]
    Freeze(HostArgs),
    /// SIGCONT every process of HOST.
    #[command(after_help = "Examples:\n  apim-deploy lab thaw app2")]
    Thaw(HostArgs),
    /// SIGKILL HOST's sshd and its sessions (connections are refused); --all: every process but init.
    #[command(
        after_help = "Examples:\n  apim-deploy lab kill app3\n  apim-deploy lab kill app3 --all"
    )]
    Kill(KillArgs),
    /// Restart what `kill` stopped (sshd; mariadbd on the database host).
    #[command(after_help = "Examples:\n  apim-deploy lab revive app3")]
    Revive(HostArgs),
    /// Drop all of HOST's traffic, both directions (connections time out).
    #[command(after_help = "Examples:\n  apim-deploy lab cut app4")]
    Cut(HostArgs),
    /// Undo `cut`.
    #[command(after_help = "Examples:\n  apim-deploy lab heal app4")]
    Heal(HostArgs),
    /// Shape the links between the controller and the hosts: delay and rate (user-space relay).
    #[command(
        after_help = "Examples:\n  apim-deploy lab shape --delay-ms 20 --rate-mbit 100 --shared-uplink\n  apim-deploy lab shape --off"
    )]
    Shape(ShapeArgs),
    /// Run a command inside HOST (its namespaces, as root), without SSH.
    #[command(after_help = "Examples:\n  apim-deploy lab exec app1 -- ss -ltnp")]
    Exec(ExecArgs),
    /// Log in to HOST with OpenSSH, the lab key and strict host key checking (optionally run CMD).
    #[command(
        after_help = "Examples:\n  apim-deploy lab ssh app1\n  apim-deploy lab ssh db -- mysql -e \"show databases\""
    )]
    Ssh(SshArgs),
    /// Print shell exports for the lab (eval "$(apim-deploy lab env)").
    #[command(after_help = "Examples:\n  eval \"$(apim-deploy lab env)\"")]
    Env(StateArgs),
    /// Write the stand-in WSO2 API Manager 1.9.0 distribution and JDBC jar.
    #[command(after_help = "Examples:\n  apim-deploy lab dist")]
    Dist(dist::Args),
    /// Write a stand-in JDK archive (as the vendor ships it) and print its sha256 and path.
    #[command(after_help = "Examples:\n  apim-deploy lab jdk --version 1.7")]
    Jdk(JdkArgs),
}

#[derive(Debug, clap::Args)]
pub struct JdkArgs {
    /// Which JDK: 1.7 (jdk1.7.0_80), 1.8 (jdk1.8.0_202) or 17 (jdk-17.0.2).
    #[arg(long, value_name = "1.7|1.8|17")]
    pub version: JdkVersion,
    /// Archive format: tar.gz or zip (one top directory either way).
    #[arg(long, default_value = "tar.gz", value_name = "tar.gz|zip")]
    pub format: ArchiveFormat,
    /// Directory to write the archive into.
    #[arg(long, default_value = "dist")]
    pub out: PathBuf,
}

/// `--jdk`: a stand-in JDK version, or `none`.
#[derive(Debug, Clone, Copy)]
pub struct JdkChoice(pub Option<JdkVersion>);

impl std::str::FromStr for JdkChoice {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if text == "none" {
            return Ok(JdkChoice(None));
        }
        text.parse()
            .map(|v| JdkChoice(Some(v)))
            .map_err(|e| format!("{e}, or none"))
    }
}

#[derive(Debug, clap::Args)]
pub struct StateArgs {
    /// The lab's state dir (keys, inventory, host files).
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Number of app hosts (app1..appN); default: what the layout needs (4, 1 or 3).
    #[arg(long)]
    pub app_hosts: Option<usize>,
    /// First three octets of the lab's /24, inside 127.0.0.0/8.
    #[arg(long, default_value = DEFAULT_PREFIX)]
    pub prefix: String,
    /// How the roles are spread in the inventory: one-per-host, all-in-one, two-gateways.
    #[arg(long, default_value = "one-per-host")]
    pub layout: Layout,
    /// Leave out the database host.
    #[arg(long)]
    pub no_db: bool,
    /// Do not write the stand-in distribution into <state-dir>/dist (the inventory then
    /// carries placeholder sha256 digests).
    #[arg(long)]
    pub no_dist: bool,
    /// SSH host key types of every host, comma-separated (ed25519, ecdsa, rsa). RSA keys
    /// take about 0.1-1 s of CPU each to generate.
    #[arg(long, value_delimiter = ',', default_value = "ed25519,ecdsa")]
    pub host_keys: Vec<HostKeyType>,
    /// Also let the deploy user log in with a generated password (file under
    /// <state-dir>/secrets); root always needs the key.
    #[arg(long)]
    pub password_login: bool,
    /// Short name ([a-z0-9], at most 6) in link and netns names; default derived from --prefix.
    #[arg(long)]
    pub tag: Option<String>,
    /// The stand-in JDK each app host gets under /usr/lib/jvm (1.7 is what WSO2 API
    /// Manager 1.9.0 documents; none: no JDK). JAVA_HOME is not set on the hosts.
    #[arg(long, default_value = "1.7", value_name = "1.7|1.8|17|none")]
    pub jdk: JdkChoice,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, clap::Args)]
pub struct HostArgs {
    /// A lab host: app1..appN or db.
    pub host: String,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, clap::Args)]
pub struct ShapeArgs {
    /// Delay each way in milliseconds (a round trip costs twice this).
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u32,
    /// Rate from the controller to the hosts, in Mbit/s (0: unlimited).
    #[arg(long, default_value_t = 0.0)]
    pub rate_mbit: f64,
    /// Rate from the hosts to the controller, in Mbit/s; default: --rate-mbit.
    #[arg(long)]
    pub down_rate_mbit: Option<f64>,
    /// One link shared by all hosts (each direction), instead of one link per host.
    #[arg(long)]
    pub shared_uplink: bool,
    /// Remove the shaping.
    #[arg(long, conflicts_with_all = ["delay_ms", "rate_mbit", "down_rate_mbit", "shared_uplink"])]
    pub off: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// A lab host: app1..appN or db.
    pub host: String,
    /// Kill every process of the host except its init, not only sshd.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// A lab host: app1..appN or db.
    pub host: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, clap::Args)]
pub struct SshArgs {
    /// A lab host: app1..appN or db.
    pub host: String,
    /// Login user: root, or the deploy user (passwordless sudo).
    #[arg(long, default_value = "root")]
    pub user: String,
    /// A command to run instead of a login shell, after `--`.
    #[arg(last = true)]
    pub command: Vec<String>,
    #[command(flatten)]
    pub state: StateArgs,
}

pub fn exec(cmd: LabCommand, shell: &Shell) -> anyhow::Result<ExitCode> {
    match cmd {
        LabCommand::Dist(args) => return dist::exec(args, shell),
        LabCommand::Jdk(args) => return jdk_archive(args, shell),
        _ => {}
    }
    apim_lab::ensure_root()?;
    let cmd = with_absolute_state_dir(cmd)?;
    match cmd {
        LabCommand::Up(args) => up(args, shell),
        LabCommand::Down(args) => {
            Lab::down_dir(&args.state_dir)?;
            shell.print(&format!("lab in {} is down\n", args.state_dir.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Status(args) => {
            let lab = Lab::open(&args.state_dir)?;
            shell.print(&status_table(&lab.status()?))?;
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Freeze(args) => fault(shell, &args, "frozen", |lab, host| lab.freeze(host)),
        LabCommand::Thaw(args) => fault(shell, &args, "thawed", |lab, host| lab.thaw(host)),
        LabCommand::Revive(args) => fault(shell, &args, "revived", |lab, host| lab.revive(host)),
        LabCommand::Cut(args) => fault(shell, &args, "cut off", |lab, host| lab.cut(host)),
        LabCommand::Heal(args) => fault(shell, &args, "healed", |lab, host| lab.heal(host)),
        LabCommand::Kill(args) => {
            let scope = if args.all {
                KillScope::All
            } else {
                KillScope::Sshd
            };
            let lab = Lab::open(&args.state.state_dir)?;
            lab.kill(&args.host, scope)?;
            let what = if args.all {
                "every process but init"
            } else {
                "sshd"
            };
            shell.print(&format!("{}: killed {what}\n", args.host))?;
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Shape(args) => shape(args, shell),
        LabCommand::Exec(args) => exec_in(args),
        LabCommand::Ssh(args) => ssh(args),
        LabCommand::Env(args) => {
            let lab = Lab::open(&args.state_dir)?;
            shell.print(&env_exports(&lab)?)?;
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Dist(_) | LabCommand::Jdk(_) => unreachable!("handled above"),
    }
}

/// `--state-dir lab` means `$PWD/lab`: the lab records absolute paths (keys, inventory).
fn with_absolute_state_dir(mut cmd: LabCommand) -> anyhow::Result<LabCommand> {
    let state = match &mut cmd {
        LabCommand::Up(args) => &mut args.state,
        LabCommand::Down(args) | LabCommand::Status(args) | LabCommand::Env(args) => args,
        LabCommand::Freeze(args)
        | LabCommand::Thaw(args)
        | LabCommand::Revive(args)
        | LabCommand::Cut(args)
        | LabCommand::Heal(args) => &mut args.state,
        LabCommand::Kill(args) => &mut args.state,
        LabCommand::Shape(args) => &mut args.state,
        LabCommand::Exec(args) => &mut args.state,
        LabCommand::Ssh(args) => &mut args.state,
        LabCommand::Dist(_) | LabCommand::Jdk(_) => return Ok(cmd),
    };
    state.state_dir = std::path::absolute(&state.state_dir)
        .with_context(|| format!("--state-dir {}", state.state_dir.display()))?;
    Ok(cmd)
}

fn shape(args: ShapeArgs, shell: &Shell) -> anyhow::Result<ExitCode> {
    let lab = Lab::open(&args.state.state_dir)?;
    if args.off {
        lab.unshape()?;
        shell.print("links unshaped\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    let shape = Shape {
        delay_ms: args.delay_ms,
        up_mbit: args.rate_mbit,
        down_mbit: args.down_rate_mbit.unwrap_or(args.rate_mbit),
        shared_uplink: args.shared_uplink,
    };
    lab.shape(&shape)?;
    let rate = |mbit: f64| {
        if mbit > 0.0 {
            format!("{mbit} Mbit/s")
        } else {
            "unlimited".to_string()
        }
    };
    shell.print(&format!(
        "links shaped: {} ms each way, up {}, down {}, {}\n",
        shape.delay_ms,
        rate(shape.up_mbit),
        rate(shape.down_mbit),
        if shape.shared_uplink {
            "one shared uplink"
        } else {
            "one link per host"
        }
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn up(args: UpArgs, shell: &Shell) -> anyhow::Result<ExitCode> {
    let mut spec = LabSpec::new(&args.prefix, &args.state.state_dir);
    spec.layout = args.layout;
    spec.with_db = !args.no_db;
    spec.host_key_types = args.host_keys;
    spec.password_login = args.password_login;
    spec.jdk = args.jdk.0;
    spec.app_hosts = args.app_hosts.unwrap_or(args.layout.min_app_hosts());
    if let Some(tag) = args.tag {
        spec.tag = tag;
    }
    if spec.app_hosts < args.layout.min_app_hosts() {
        anyhow::bail!(
            "--layout {} needs at least {} app hosts (got --app-hosts {}); use --layout all-in-one for fewer",
            args.layout.as_str(),
            args.layout.min_app_hosts(),
            spec.app_hosts
        );
    }
    let started = std::time::Instant::now();
    let lab = Lab::up(&spec)
        .with_context(|| format!("bringing up the lab in {}", spec.state_dir.display()))?;
    if !args.no_dist {
        write_standin_dist(&lab)?;
    }
    let header = format!(
        "lab {} up in {:.1} s ({} app hosts, layout {})\n\n",
        spec.prefix,
        started.elapsed().as_secs_f64(),
        spec.app_hosts,
        spec.layout.as_str()
    );
    shell.print(&(header + &hosts_table(&lab) + &summary(&lab)))?;
    Ok(ExitCode::SUCCESS)
}

/// `lab jdk`: one stand-in JDK archive, printed as `sha256  path` (sha256sum's format).
fn jdk_archive(args: JdkArgs, shell: &Shell) -> anyhow::Result<ExitCode> {
    let artifact = apim_standin::jdk::write_jdk_archive(&args.out, args.version, args.format)
        .with_context(|| format!("writing the stand-in JDK {}", args.version))?;
    shell.print(&format!(
        "{}  {}\n",
        artifact.sha256,
        artifact.path.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the stand-in distribution into the lab and points the inventory at it.
fn write_standin_dist(lab: &Lab) -> anyhow::Result<()> {
    let dist = apim_standin::write_dist(&lab.dist_dir(), &apim_standin::DistOptions::default())
        .context("writing the stand-in distribution")?;
    lab.write_inventory(&DistFiles {
        zip: dist.zip.path,
        zip_sha256: dist.zip.sha256,
        jdbc_jar: dist.jdbc_jar.path,
        jdbc_jar_sha256: dist.jdbc_jar.sha256,
    })?;
    Ok(())
}

fn fault(
    shell: &Shell,
    args: &HostArgs,
    done: &str,
    action: impl Fn(&Lab, &str) -> apim_lab::Result<()>,
) -> anyhow::Result<ExitCode> {
    let lab = Lab::open(&args.state.state_dir)?;
    action(&lab, &args.host)?;
    shell.print(&format!("{}: {done}\n", args.host))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the command with this terminal's stdio and exits with its status.
fn exec_in(args: ExecArgs) -> anyhow::Result<ExitCode> {
    let lab = Lab::open(&args.state.state_dir)?;
    let argv: Vec<&str> = args.command.iter().map(String::as_str).collect();
    let mut cmd = lab.exec_command(&args.host, &argv)?;
    cmd.stdin(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit());
    let status = cmd
        .status()
        .with_context(|| format!("running {argv:?} in {}", args.host))?;
    Ok(ExitCode::from(status.code().map_or(128, |c| c as u8)))
}

/// Runs OpenSSH with this terminal and exits with its status (255: ssh's own failure).
fn ssh(args: SshArgs) -> anyhow::Result<ExitCode> {
    let lab = Lab::open(&args.state.state_dir)?;
    let mut cmd = lab.ssh_command(&args.host, &args.user, 5)?;
    if args.command.is_empty() {
        cmd.arg("-t");
    } else {
        cmd.arg("--").args(&args.command);
    }
    let status = cmd.status().context("running ssh")?;
    Ok(ExitCode::from(status.code().map_or(255, |c| c as u8)))
}

/// NAME / ADDRESS / PORT / ROLES, plus the controller's own address.
pub fn hosts_table(lab: &Lab) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "ADDRESS".into(),
        "PORT".into(),
        "ROLES".into(),
    ]];
    for host in lab.hosts() {
        let roles: Vec<&str> = host.roles.iter().map(|r| r.as_str()).collect();
        let roles = if roles.is_empty() {
            "(spare: not in the inventory)".to_string()
        } else {
            roles.join(",")
        };
        rows.push([
            host.name.clone(),
            host.address.to_string(),
            "22".into(),
            roles,
        ]);
    }
    rows.push([
        "controller".into(),
        lab.controller_address().to_string(),
        "-".into(),
        "(this machine)".into(),
    ]);
    super::table::aligned(&rows, "")
}

/// Where everything is, and what to run next.
pub fn summary(lab: &Lab) -> String {
    let dir = lab.state_dir().display();
    let mut out = String::new();
    let _ = writeln!(out, "\ninventory:   {}", lab.inventory_path().display());
    let _ = writeln!(
        out,
        "ansible:     {}",
        lab.ansible_inventory_path().display()
    );
    if lab.dist_dir().exists() {
        let _ = writeln!(
            out,
            "dist:        {} (stand-in WSO2 API Manager 1.9.0)",
            lab.dist_dir().display()
        );
    }
    let _ = writeln!(
        out,
        "ssh config:  {} (ssh -F {} app1)",
        lab.ssh_config_path().display(),
        lab.ssh_config_path().display()
    );
    let _ = writeln!(out, "ssh key:     {}", lab.ssh_key_path().display());
    match lab.spec().jdk {
        Some(jdk) => {
            let _ = writeln!(
                out,
                "jdk:         {}/{} on the app hosts (stand-in JDK {jdk}; JAVA_HOME is set nowhere)",
                apim_lab::JVM_DIR,
                jdk.dir_name()
            );
        }
        None => {
            let _ = writeln!(
                out,
                "jdk:         none (every host's {} is empty)",
                apim_lab::JVM_DIR
            );
        }
    }
    let _ = writeln!(out, "known_hosts: {}", lab.known_hosts_path().display());
    let _ = writeln!(
        out,
        "users:       root, and {} (passwordless sudo), both with the lab key",
        lab.deploy_user()
    );
    if let Some(file) = lab.deploy_password_file() {
        let _ = writeln!(
            out,
            "             {} may also log in with the password in {}",
            lab.deploy_user(),
            file.display()
        );
    }
    if let Some(db) = lab.db_admin() {
        let _ = writeln!(
            out,
            "database:    {}:{} user {}, password in {}",
            db.address,
            db.port,
            db.user,
            db.password_file.display()
        );
    }
    let _ = writeln!(out, "logs:        {dir}/hosts/<host>/log/");
    let _ = writeln!(
        out,
        "\nnext:        apim-deploy check {}",
        lab.inventory_path().display()
    );
    let _ = writeln!(out, "             apim-deploy lab down --state-dir {dir}");
    out
}

/// The `lab status` table.
pub fn status_table(report: &[HostStatus]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "ADDRESS".into(),
        "ROLES".into(),
        "PROCS".into(),
        "SSHD".into(),
        "DB".into(),
        "FAULTS".into(),
    ]];
    for s in report {
        let roles: Vec<&str> = s.host.roles.iter().map(|r| r.as_str()).collect();
        let mut faults = Vec::new();
        if s.frozen {
            faults.push("frozen");
        }
        if s.cut {
            faults.push("cut");
        }
        if s.processes == 0 {
            faults.push("down");
        }
        rows.push([
            s.host.name.clone(),
            s.host.address.to_string(),
            if roles.is_empty() {
                "-".into()
            } else {
                roles.join(",")
            },
            s.processes.to_string(),
            if s.sshd_running { "running" } else { "stopped" }.into(),
            match s.db_running {
                Some(true) => "running",
                Some(false) => "stopped",
                None => "-",
            }
            .into(),
            if faults.is_empty() {
                "-".into()
            } else {
                faults.join(",")
            },
        ]);
    }
    super::table::aligned(&rows, "")
}

/// `export NAME=value` lines (values quoted where the shell needs it); values are
/// paths and addresses, never secrets.
pub fn env_exports(lab: &Lab) -> anyhow::Result<String> {
    let mut vars = vec![
        ("LAB_DIR", lab.state_dir().display().to_string()),
        ("LAB_PREFIX", lab.spec().prefix.clone()),
        (
            "LAB_SSH_CONFIG",
            lab.ssh_config_path().display().to_string(),
        ),
        ("LAB_SSH_KEY", lab.ssh_key_path().display().to_string()),
        (
            "LAB_KNOWN_HOSTS",
            lab.known_hosts_path().display().to_string(),
        ),
        ("LAB_INVENTORY", lab.inventory_path().display().to_string()),
        ("LAB_DEPLOY_USER", lab.deploy_user().to_string()),
    ];
    if let Some(db) = lab.db_admin() {
        vars.push(("LAB_DB_HOST", db.address.to_string()));
        vars.push(("LAB_DB_PORT", db.port.to_string()));
        vars.push(("LAB_DB_ADMIN_USER", db.user));
        vars.push((
            "LAB_DB_ADMIN_PASSWORD_FILE",
            db.password_file.display().to_string(),
        ));
    }
    vars.iter()
        .map(|(k, v)| {
            let v = apim_transport::quote(v).with_context(|| format!("{k}: {v:?}"))?;
            Ok(format!("export {k}={v}\n"))
        })
        .collect()
}
