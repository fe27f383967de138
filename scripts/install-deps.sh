#!/usr/bin/env bash
# Installs everything apim-deploy's lab and test suite need on a Debian machine (run as root).
# Called by the README quick start and by .ci/run, so both stay in step.
set -euo pipefail

packages=(
  openssh-server openssh-client   # the lab's hosts are real sshd processes
  mariadb-server mariadb-client   # the lab's database host
  iproute2 nftables               # lab networking (veth, netns) and `lab cut`
  util-linux procps psmisc        # unshare, nsenter, setsid, pkill
  sudo openssl                    # the lab's non-root deploy user (openssl: its password hash)
  python3                         # the lab hosts' reaping init and the stand-in Carbon server
  zip unzip curl ca-certificates  # archives and downloads on hosts
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (apt-get needs it)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps Debian's postinst scripts from starting system-wide sshd/mariadb:
  # the lab starts its own, per host.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  rm -f /usr/sbin/policy-rc.d
fi
echo "install-deps.sh: all packages present"
