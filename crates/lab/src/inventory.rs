//! The inventory `up` writes for the lab (`<state>/inventory.toml`) and the generated
//! secrets it references (`<state>/secrets/*`, mode 0600). The inventory follows the
//! schema in docs/inventory.md: secrets only as `{ file = ... }` references, strict host
//! key checking against the lab's known_hosts.

use std::fs;
use std::io::Read;
use std::path::PathBuf;

use crate::error::{LabError, Result};
use crate::host;
use crate::spec::{Host, LabSpec};

pub(crate) const DB_ADMIN_PASSWORD: &str = "db_admin_password";
pub(crate) const DB_APP_PASSWORD: &str = "db_app_password";
pub(crate) const ADMIN_PASSWORD: &str = "admin_password";
pub(crate) const DEPLOY_PASSWORD: &str = "deploy_password";

/// Passwords generated for one lab (kept in memory only as long as `up` needs them).
pub(crate) struct Secrets {
    pub db_admin_password: String,
}

pub(crate) fn path(spec: &LabSpec) -> PathBuf {
    spec.state_dir.join("inventory.toml")
}

pub(crate) fn secret_path(spec: &LabSpec, name: &str) -> PathBuf {
    spec.state_dir.join("secrets").join(name)
}

/// Generates and stores the lab's passwords, each in its own 0600 file.
pub(crate) fn write_secrets(spec: &LabSpec) -> Result<Secrets> {
    let db_admin_password = random_password()?;
    for (name, value) in [
        (DB_ADMIN_PASSWORD, db_admin_password.clone()),
        (DB_APP_PASSWORD, random_password()?),
        (ADMIN_PASSWORD, random_password()?),
    ] {
        host::write(&secret_path(spec, name), &value, 0o600)?;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = spec.state_dir.join("secrets");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(LabError::io(&dir))?;
    Ok(Secrets { db_admin_password })
}

/// 24 characters of [A-Za-z0-9]: safe inside SQL quotes and shells, about 140 bits.
pub(crate) fn random_password() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 64];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(LabError::io("/dev/urandom"))?;
    // Rejection sampling keeps the distribution uniform (248 = 4 * 62).
    let password: String = bytes
        .iter()
        .filter(|&&b| b < 248)
        .take(24)
        .map(|&b| ALPHABET[(b % 62) as usize] as char)
        .collect();
    if password.len() < 24 {
        return random_password();
    }
    Ok(password)
}

/// The distribution and JDBC driver an inventory points at, with their digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistFiles {
    pub zip: PathBuf,
    pub zip_sha256: String,
    pub jdbc_jar: PathBuf,
    pub jdbc_jar_sha256: String,
}

impl DistFiles {
    /// Where `up` points the inventory before any distribution exists: `<state>/dist/...`
    /// with all-zero digests.
    pub fn placeholder(spec: &LabSpec) -> DistFiles {
        // `up` itself cannot build the stand-in distribution (apim-standin's
        // tests depend on this crate); `apim-deploy lab up` writes it with apim_standin and
        // calls `Lab::write_inventory` with the real digests. A library user that needs a
        // deployable inventory does the same. The zeros make `check` pass and any real
        // transfer fail its checksum, so a placeholder is never deployed by accident.
        let dist = spec.state_dir.join("dist");
        DistFiles {
            zip: dist.join("wso2am-1.9.0.zip"),
            zip_sha256: "0".repeat(64),
            jdbc_jar: dist.join("mysql-connector-java-5.1.49-bin.jar"),
            jdbc_jar_sha256: "0".repeat(64),
        }
    }
}

/// Writes `<state>/inventory.toml` for the lab's hosts and layout.
pub(crate) fn write(spec: &LabSpec, hosts: &[Host], dist: &DistFiles) -> Result<()> {
    host::write(&path(spec), &render(spec, hosts, dist), 0o644)
}

/// The inventory text. Pure, so its shape is unit-tested.
pub(crate) fn render(spec: &LabSpec, hosts: &[Host], dist: &DistFiles) -> String {
    let dir = spec.state_dir.display();
    let secret = |name: &str| format!("{{ file = \"{}\" }}", secret_path(spec, name).display());
    let mut text = format!(
        "# Inventory of the apim-deploy lab {prefix} (written by `apim-deploy lab up`; rewritten on every up).\n\
         # Layout: {layout}. Secrets are generated files (mode 0600) under {dir}/secrets.\n\
         \n[ssh]\nuser = \"root\"\nport = 22\nidentity_file = \"{dir}/id_ed25519\"\n\
         known_hosts = \"{dir}/known_hosts\"\nhost_key_policy = \"strict\"\nsudo = false\n\
         connect_timeout_secs = 5\ncommand_timeout_secs = 600\n\
         \n[distribution]\npath = \"{zip}\"\nsha256 = \"{zip_sha}\"\n\
         \n[jdbc_driver]\npath = \"{jar}\"\nsha256 = \"{jar_sha}\"\n\
         \n[install]\nroot = \"/opt/wso2\"\nservice_user = \"wso2carbon\"\n",
        prefix = spec.prefix,
        layout = spec.layout.as_str(),
        zip = dist.zip.display(),
        zip_sha = dist.zip_sha256,
        jar = dist.jdbc_jar.display(),
        jar_sha = dist.jdbc_jar_sha256,
    );
    if let Some(db_host) = hosts.iter().find(|h| h.is_db) {
        text.push_str(&format!(
            "\n[database]\nhost = \"{name}\"\nport = 3306\nadmin_user = \"{admin}\"\n\
             admin_password = {admin_pw}\napp_user = \"wso2\"\napp_password = {app_pw}\ncharset = \"latin1\"\n",
            name = db_host.name,
            admin = crate::db::ADMIN_USER,
            admin_pw = secret(DB_ADMIN_PASSWORD),
            app_pw = secret(DB_APP_PASSWORD),
        ));
    }
    text.push_str(&format!(
        "\n[admin]\nusername = \"admin\"\npassword = {}\n",
        secret(ADMIN_PASSWORD)
    ));
    // Hosts without a role (spares of the all-in-one layout) are in the lab, not the inventory.
    for host in hosts.iter().filter(|h| !h.roles.is_empty()) {
        let roles: Vec<String> = host
            .roles
            .iter()
            .map(|r| format!("\"{}\"", r.as_str()))
            .collect();
        text.push_str(&format!(
            "\n[[hosts]]\nname = \"{}\"\naddress = \"{}\"\nroles = [{}]\n",
            host.name,
            host.address,
            roles.join(", ")
        ));
    }
    text
}

pub(crate) fn ansible_path(spec: &LabSpec) -> PathBuf {
    spec.state_dir.join("inventory.ini")
}

/// An Ansible inventory of the same hosts, for comparison runs against Ansible: groups
/// `apim` and `database` (not `db`, which is a host), strict host key checking.
pub(crate) fn write_ansible(spec: &LabSpec, hosts: &[Host]) -> Result<()> {
    let dir = spec.state_dir.display();
    let mut text = format!(
        "# Ansible inventory of the apim-deploy lab {} (written by `lab up`).\n",
        spec.prefix
    );
    for (group, is_db) in [("apim", false), ("database", true)] {
        text.push_str(&format!("\n[{group}]\n"));
        for host in hosts.iter().filter(|h| h.is_db == is_db) {
            text.push_str(&format!("{} ansible_host={}\n", host.name, host.address));
        }
    }
    text.push_str(&format!(
        "\n[all:vars]\nansible_user=root\nansible_port=22\nansible_ssh_private_key_file={dir}/id_ed25519\n\
         ansible_ssh_common_args='-o UserKnownHostsFile={dir}/known_hosts -o GlobalKnownHostsFile=/dev/null \
         -o StrictHostKeyChecking=yes'\nansible_python_interpreter=/usr/bin/python3\n"
    ));
    host::write(&ansible_path(spec), &text, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Layout;

    #[test]
    fn inventory_lists_roles_and_secret_references() {
        let spec = LabSpec::new("127.0.10", "/tmp/apimlab");
        let text = render(&spec, &spec.plan(), &DistFiles::placeholder(&spec));
        assert!(
            text.contains("path = \"/tmp/apimlab/dist/wso2am-1.9.0.zip\""),
            "{text}"
        );
        assert!(
            text.contains("name = \"app2\"\naddress = \"127.0.10.2\"\nroles = [\"gateway\"]"),
            "{text}"
        );
        assert!(text.contains("roles = [\"database\"]"));
        assert!(
            text.contains("admin_password = { file = \"/tmp/apimlab/secrets/db_admin_password\" }")
        );
        assert!(text.contains("host_key_policy = \"strict\""));
    }

    #[test]
    fn all_in_one_leaves_spares_out_of_the_inventory() {
        let mut spec = LabSpec::new("127.0.10", "/tmp/apimlab");
        spec.layout = Layout::AllInOne;
        spec.app_hosts = 2;
        let text = render(&spec, &spec.plan(), &DistFiles::placeholder(&spec));
        assert!(text.contains("roles = [\"keymanager\", \"gateway\", \"publisher\", \"store\"]"));
        assert!(!text.contains("name = \"app2\""));
    }

    #[test]
    fn passwords_are_long_and_alphanumeric() {
        let a = random_password().unwrap();
        assert_eq!(a.len(), 24);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, random_password().unwrap());
    }
}
