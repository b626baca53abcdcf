#!/bin/sh
# Installs the Debian 12 packages that building and testing Warden need.
# As root it runs apt-get; otherwise it prints the command to run.
set -eu

PACKAGES="build-essential pkg-config g++ make python3
libpam0g-dev libsodium-dev liboath-dev libsystemd-dev libspdlog-dev libfmt-dev
libinih-dev libsqlite3-dev libqrencode-dev libpwquality-dev libcmocka-dev
cracklib-runtime sqlite3 dbus dbus-daemon systemd util-linux oathtool
pamtester libpam-wrapper jq fail2ban clang-14 libclang-rt-14-dev
openssh-server openssh-client python3-paramiko sudo login passwd iproute2 openssl
whois libpam-oath libcrypt-dev"

# openssh-server, sudo, login and passwd are the real programs that
# test_real_logins.py runs inside a private namespace. On a host without
# /usr/sbin/policy-rc.d, installing openssh-server also enables and starts
# the system's sshd on port 22, which the tests never use.

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "All build and test packages are installed."
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "Missing packages. Run as root:"
    echo "  apt-get update && apt-get install -y --no-install-recommends$missing"
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
