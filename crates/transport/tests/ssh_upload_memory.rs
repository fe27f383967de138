//! A 200 MB upload over SSH, verified by hash on the far side, with the controller's
//! peak memory measured in-process (VmHWM). Its own test binary, so no other test's
//! allocations count against the peak. Needs `APIM_LAB_TESTS=1`.

mod common;

use apim_transport::{SshTransport, Transport};

const SIZE: usize = 200 << 20;

fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[tokio::test]
async fn large_upload_is_streamed_and_verified() {
    // Should: 200 MB arrive byte-identical (far-side sha256) while the controller's peak
    // memory stays far below the file size.
    let Some(lab) = common::lab("large_upload_is_streamed_and_verified", 1) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("wso2am.zip");
    let sha = common::write_pattern_file(&src, SIZE);
    let host = SshTransport::connect(common::target(&lab, "app1", "root"))
        .await
        .unwrap();
    let before = peak_rss_bytes();

    host.upload(&src, "/opt/wso2am.zip", &sha, None, None)
        .await
        .unwrap();

    let peak = peak_rss_bytes();
    eprintln!(
        "peak RSS before upload {} MiB, after {} MiB (file {} MiB)",
        before >> 20,
        peak >> 20,
        SIZE >> 20
    );
    assert!(
        peak < (SIZE as u64) / 4,
        "peak RSS {} MiB is not well under the file size",
        peak >> 20
    );
    let landed = std::fs::metadata(lab.host_path("app1", "/opt/wso2am.zip").unwrap()).unwrap();
    assert_eq!(landed.len(), SIZE as u64);
}
