//! The lab network on the controller: one bridge per lab, one veth pair and one named
//! network namespace per host.
//!
//! The key trick (lab-notes "Network"): 127/8 is "local" everywhere, but a more specific
//! /24 route in table `local`, plus `route_localnet=1` on the bridge and on each host's eth0,
//! carries the lab's /24 over the veths. Hosts get their own network stacks and still use
//! loopback-range addresses; when the lab is down the addresses fall back to the
//! controller's own `lo` ("Connection refused") and nothing ever leaves the machine.
//! The in-host half (address, route, sysctl on eth0) runs inside the host's boot script.

use std::fs;
use std::path::Path;

use crate::error::Result;
use crate::run::{command, output_with_input, run, run_with_input};
use crate::spec::{Host, LabSpec};

/// Creates the bridge, its local route, and every host's netns and veth pair.
pub(crate) fn create(spec: &LabSpec, hosts: &[Host]) -> Result<()> {
    let bridge = spec.bridge_name();
    let controller = spec.controller_address();
    let prefix = &spec.prefix;
    let group = spec.link_group();
    let mut batch = format!(
        "link add {bridge} type bridge\n\
         addr add {controller}/24 dev {bridge}\n\
         link set {bridge} group {group} up\n\
         route add table local {prefix}.0/24 dev {bridge} src {controller}\n"
    );
    for host in hosts {
        let netns = spec.netns_name(&host.name);
        let veth = spec.veth_name(&host.name);
        batch.push_str(&format!(
            "netns add {netns}\n\
             link add {veth} type veth peer name eth0 netns {netns}\n\
             link set {veth} master {bridge} group {group} up\n"
        ));
    }
    run_with_input(command("ip").args(["-batch", "-"]), Some(batch.as_bytes()))?;
    // route_localnet lets 127/8 packets cross the bridge; no IPv6 noise on lab links.
    write_sysctl(
        &format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
        "1",
    )?;
    let _ = write_sysctl(
        &format!("/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6"),
        "1",
    );
    Ok(())
}

/// Deletes this lab's veths, netns and bridge, whatever is left of them. Finds them by
/// name (the tag makes them unique to this lab), so a half-built lab is cleaned too.
pub(crate) fn destroy(spec: &LabSpec) -> Result<()> {
    let mut batch = String::new();
    let links = lab_links(spec)?;
    let group = spec.link_group();
    let in_group = names(
        &run(command("ip").args(["-o", "link", "show", "group", &group.to_string()]))?.stdout,
    );
    if !in_group.is_empty()
        && in_group
            .iter()
            .all(|name| name.starts_with(&spec.veth_prefix()))
    {
        // One batched unregister for the whole group (one `link del` per veth waits for
        // the network to settle once per link). Only when every member is ours: a group
        // number is not a name, and another tenant's link must never go with ours.
        batch.push_str(&format!("link del group {group}\n"));
    }
    // Deleting the bridge also removes its address and the table-local route.
    for link in links.iter().filter(|l| !in_group.contains(l)) {
        batch.push_str(&format!("link del {link}\n"));
    }
    for netns in lab_netns(spec) {
        batch.push_str(&format!("netns del {netns}\n"));
    }
    if !batch.is_empty() {
        // -force: keep going past an entry that is already gone; the result is checked below.
        output_with_input(
            command("ip").args(["-force", "-batch", "-"]),
            Some(batch.as_bytes()),
        )?;
    }
    let left_links = lab_links(spec)?;
    let left_netns = lab_netns(spec);
    if !left_links.is_empty() || !left_netns.is_empty() {
        return Err(crate::error::LabError::State {
            path: spec.state_dir.clone(),
            problem: format!("could not delete links {left_links:?} / netns {left_netns:?}"),
        });
    }
    Ok(())
}

/// The controller's links that belong to this lab (its bridge and veths).
pub(crate) fn lab_links(spec: &LabSpec) -> Result<Vec<String>> {
    let out = run(command("ip").args(["-o", "link", "show"]))?;
    let prefix = spec.veth_prefix();
    Ok(names(&out.stdout)
        .into_iter()
        .filter(|name| name.starts_with(&prefix))
        .collect())
}

/// Link names from `ip -o link show` output (`3: name@peer: <...`).
fn names(output: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(output)
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .collect()
}

/// This lab's named network namespaces.
pub(crate) fn lab_netns(spec: &LabSpec) -> Vec<String> {
    let prefix = spec.netns_prefix();
    fs::read_dir("/run/netns")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|name| name.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn netns_path(spec: &LabSpec, host: &str) -> String {
    format!("/run/netns/{}", spec.netns_name(host))
}

fn write_sysctl(path: &str, value: &str) -> Result<()> {
    fs::write(Path::new(path), value).map_err(crate::error::LabError::io(path))
}
