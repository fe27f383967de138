//! apim-lab: a throwaway cluster of real hosts on one Linux machine, for rehearsing a
//! deployment and for apim-deploy's end-to-end tests.
//!
//! Each host is a real OpenSSH `sshd` in its own mount, UTS, PID and network namespace, at a
//! loopback-range address (default 127.0.10.1..N, database 127.0.10.250, port 22). The
//! database host runs MariaDB with a private datadir. Root on Linux is required; only
//! 127.0.0.0/8 addresses are ever used. The design and its pitfalls are in docs/lab.md and
//! in `notes/lab-notes.md` of the `shared/` folder beside the checkout.
//!
//! # Brief overview
//! * [`LabSpec`]: what to build (prefix, app hosts, db, state dir, tag, layout, JDK).
//! * [`Lab`]: `up`, `down`, `status`, `host`, `exec`, the fault helpers (`freeze`, `thaw`,
//!   `kill`, `revive`, `cut`, `heal`) and the paths of the SSH key, known_hosts, ssh_config,
//!   inventory and db admin password file.
//! * [`testing::TestLab`]: a lab per test with its own prefix, torn down on drop.
//!
//! # Example
//! ```no_run
//! use apim_lab::{Lab, LabSpec};
//! let lab = Lab::up(&LabSpec::new("127.0.10", "/tmp/apimlab"))?;
//! let out = lab.exec("app1", &["hostname"])?;
//! assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "app1");
//! lab.freeze("app2")?;
//! lab.thaw("app2")?;
//! lab.down()?;
//! # Ok::<(), apim_lab::LabError>(())
//! ```

mod db;
mod error;
mod faults;
mod host;
mod inventory;
mod keys;
mod lab;
mod net;
mod procs;
mod run;
mod shape;
mod spec;
mod teardown;
pub mod testing;

/// The stand-in JDK versions a [`LabSpec`] names (from `apim_standin::jdk`).
pub use apim_standin::jdk::JdkVersion;
pub use db::ADMIN_USER as DB_ADMIN_USER;
pub use error::{LabError, Result};
pub use faults::KillScope;
pub use inventory::DistFiles;
pub use lab::{DbAdmin, HostStatus, Lab, ensure_root};
pub use shape::{LinkBytes, Shape};
pub use spec::{
    CONTROLLER_OCTET, DB_OCTET, DEFAULT_JDK, Host, HostKeyType, JVM_DIR, LabSpec, Layout,
    MAX_APP_HOSTS, Role, tag_for_prefix,
};
