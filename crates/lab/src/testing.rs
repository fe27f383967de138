//! Labs for tests: each test gets its own prefix, state dir and tag (so labs in parallel
//! threads and test binaries never collide), and the lab is torn down on drop, also when
//! the test panics.
//!
//! ```no_run
//! use apim_lab::testing::{TestLab, lab_tests_enabled};
//! // should: reach app1 over the lab network
//! if !lab_tests_enabled("reach_app1") { return; }
//! let lab = TestLab::up(|spec| spec.app_hosts = 2).unwrap();
//! let app1 = lab.host("app1").unwrap();
//! assert_eq!(app1.address.octets()[0], 127);
//! ```

use std::fs::{self, File, TryLockError};
use std::ops::Deref;
use std::path::PathBuf;

use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::spec::LabSpec;

/// Third octets handed out to tests (127.0.100.0/24 .. 127.0.199.0/24); the CLI default is
/// 127.0.10, so a developer's own lab is never touched by a test run.
const TEST_OCTETS: std::ops::RangeInclusive<u8> = 100..=199;
const LOCK_DIR: &str = "/tmp/apimlab-test-locks";

/// True when lab tests should run (`APIM_LAB_TESTS=1`). Otherwise prints a visible skip
/// line naming the test and returns false. When enabled without root it panics, because
/// then the tests were asked for and cannot run.
pub fn lab_tests_enabled(test: &str) -> bool {
    if std::env::var("APIM_LAB_TESTS").as_deref() != Ok("1") {
        // Straight to the stderr handle: libtest captures `eprintln!` and shows it
        // only for failing tests, and a skip must be visible.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: lab test (set APIM_LAB_TESTS=1 and run as root)"
        );
        return false;
    }
    if let Err(err) = crate::lab::ensure_root() {
        panic!("APIM_LAB_TESTS=1 but {err}");
    }
    true
}

/// A prefix, state dir and tag no other test holds, reserved by an exclusive lock on a
/// file for as long as this value lives (across threads and processes).
#[derive(Debug)]
pub struct Lease {
    pub prefix: String,
    pub state_dir: PathBuf,
    _lock: File,
}

/// Reserves a free test prefix.
pub fn lease() -> Result<Lease> {
    fs::create_dir_all(LOCK_DIR).map_err(LabError::io(LOCK_DIR))?;
    for octet in TEST_OCTETS {
        let prefix = format!("127.0.{octet}");
        let path = PathBuf::from(LOCK_DIR).join(format!("{prefix}.lock"));
        let file = File::create(&path).map_err(LabError::io(&path))?;
        match file.try_lock() {
            Ok(()) => {
                let state_dir = PathBuf::from(format!("/tmp/apimlab-test-{octet}"));
                if used_by_another_lab(&prefix, &state_dir) {
                    continue;
                }
                return Ok(Lease {
                    state_dir,
                    prefix,
                    _lock: file,
                });
            }
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(err)) => return Err(LabError::io(&path)(err)),
        }
    }
    Err(LabError::State {
        path: LOCK_DIR.into(),
        problem: format!("all {} test prefixes are in use", TEST_OCTETS.count()),
    })
}

/// A lab someone started by hand on a test prefix (its bridge exists, but the test state
/// dir records no lab). A crashed test's lab, in contrast, is cleaned up by the next `up`.
fn used_by_another_lab(prefix: &str, state_dir: &std::path::Path) -> bool {
    let bridge = LabSpec::new(prefix, state_dir).bridge_name();
    std::path::Path::new("/sys/class/net").join(bridge).exists()
        && !state_dir.join("lab.json").exists()
}

/// The spec a test lab starts from: the defaults of [`LabSpec::new`] (4 app hosts, a db,
/// ed25519 and ecdsa host keys) on a leased prefix and state dir.
pub fn test_spec(lease: &Lease) -> LabSpec {
    LabSpec::new(&lease.prefix, &lease.state_dir)
}

/// A lab that belongs to one test and is torn down when dropped.
#[derive(Debug)]
pub struct TestLab {
    lab: Option<Lab>,
    lease: Lease,
}

impl TestLab {
    /// Leases a prefix, lets `edit` adjust the spec (hosts, db, layout...), and brings it up.
    pub fn up(edit: impl FnOnce(&mut LabSpec)) -> Result<TestLab> {
        let lease = lease()?;
        let mut spec = test_spec(&lease);
        edit(&mut spec);
        spec.prefix = lease.prefix.clone();
        spec.tag = crate::spec::tag_for_prefix(&lease.prefix);
        spec.state_dir = lease.state_dir.clone();
        let lab = Lab::up(&spec)?;
        Ok(TestLab {
            lab: Some(lab),
            lease,
        })
    }

    /// Tears the lab down now (reporting errors); dropping afterwards does nothing more.
    pub fn down(mut self) -> Result<()> {
        match self.lab.take() {
            Some(lab) => lab.down(),
            None => Ok(()),
        }
    }

    /// The leased prefix and state dir (still reserved after `down`, until drop).
    pub fn lease(&self) -> &Lease {
        &self.lease
    }
}

impl Deref for TestLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        self.lab.as_ref().expect("TestLab used after down")
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        if let Some(lab) = self.lab.take()
            && let Err(err) = lab.down()
        {
            eprintln!(
                "apim-lab: tearing down test lab {}: {err}",
                self.lease.prefix
            );
        }
    }
}
