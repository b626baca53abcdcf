#!/bin/bash
# A throw-away Warden: private D-Bus bus, wardend in development mode with
# everything under a temporary directory, one enrolled user, and logins
# through the real libpam with pam_wrapper and pamtester. Cleans up after
# itself.
set -euo pipefail
export LC_ALL=C.UTF-8

BUILD=${BUILD:-build}
BUILD=$(cd "$BUILD" && pwd)
W=$(mktemp -d /tmp/warden-demo.XXXXXX)
chmod 755 "$W"
BUS_PID=""
DAEMON_PID=""
cleanup() {
    [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
    [ -n "$BUS_PID" ] && kill "$BUS_PID" 2>/dev/null && wait "$BUS_PID" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "Private system bus"
cat > "$W/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$W/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
CONF
dbus-daemon --config-file="$W/bus.conf" --nofork --nopidfile --print-address=3 3>"$W/bus.addr" 2>/dev/null &
BUS_PID=$!
for _ in $(seq 100); do [ -s "$W/bus.addr" ] && break; sleep 0.05; done
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$W/bus.sock"
echo "bus at $DBUS_SYSTEM_BUS_ADDRESS"

step "wardend in development mode"
"$BUILD/wardend" --generate-key "$W/secret.key"
cat > "$W/wardend.conf" <<CONF
[daemon]
mode = development
socket = $W/wardend.sock
state_directory = $W/state
key_file = $W/secret.key
[password]
argon2_memory_kib = 8192
argon2_iterations = 1
[mfa]
mode = required
[lockout]
fail_delay = 0
CONF
chmod 600 "$W/wardend.conf"
"$BUILD/wardend" --config "$W/wardend.conf" --check-config && echo "configuration valid"
"$BUILD/wardend" --config "$W/wardend.conf" 2>"$W/wardend.log" &
DAEMON_PID=$!
for _ in $(seq 200); do
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
        echo "wardend exited:" >&2
        cat "$W/wardend.log" >&2
        exit 1
    fi
    busctl --system status net.warden.Admin1 >/dev/null 2>&1 && break
    sleep 0.05
done
"$BUILD/wardenctl" status

step "Enroll user 'demo' with a random password"
PASSWORD="pw-$(head -c 15 /dev/urandom | base64 | tr -d '/+=')"
printf '%s\n' "$PASSWORD" | "$BUILD/wardenctl" user add demo --password-stdin

step "Enroll a TOTP factor (as an authenticator app would scan it)"
"$BUILD/wardenctl" --json totp enroll demo > "$W/enroll.json"
SECRET=$(jq -r .secret "$W/enroll.json")
echo "otpauth URI: $(jq -r .uri "$W/enroll.json" | sed 's/secret=[A-Z2-7]*/secret=(hidden)/')"
# Confirm with the previous step's code (inside the window), so the
# current step's code is still unused for the first login.
"$BUILD/wardenctl" totp confirm demo "$(oathtool --totp -b "$SECRET" -N "now - 30 seconds")"
"$BUILD/wardenctl" user show demo

mkdir -p "$W/pam"
cat > "$W/pam/warden-demo" <<CONF
auth     required $BUILD/pam_warden.so socket=$W/wardend.sock
account  required $BUILD/pam_warden.so socket=$W/wardend.sock
session  required $BUILD/pam_warden.so socket=$W/wardend.sock
CONF
cat > "$W/pam/other" <<CONF
auth required pam_deny.so
CONF
PAMTESTER="env LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$W/pam pamtester"

CODE=$(oathtool --totp -b "$SECRET")
WRONG=$(printf '%06d' $(( (10#$CODE + 1) % 1000000 )))

step "Login with the right password and code"
printf '%s\n%s\n' "$PASSWORD" "$CODE" | $PAMTESTER warden-demo demo authenticate acct_mgmt open_session close_session

step "Login with the right password and a wrong code (refused)"
if printf '%s\n%s\n' "$PASSWORD" "$WRONG" | $PAMTESTER warden-demo demo authenticate; then
    echo "unexpected: a wrong code was accepted" >&2
    exit 1
fi

step "Login replaying the code that was just used (refused)"
if printf '%s\n%s\n' "$PASSWORD" "$CODE" | $PAMTESTER warden-demo demo authenticate; then
    echo "unexpected: a replayed code was accepted" >&2
    exit 1
fi

step "Login for a user Warden does not know (refused as unknown)"
printf 'anything\n' | $PAMTESTER warden-demo mallory authenticate || true

step "Audit events"
if [ -n "${WARDEN_PRIVATE_JOURNAL:-}" ]; then
    journalctl --sync
    journalctl -o json --no-pager SYSLOG_IDENTIFIER=wardend _PID="$DAEMON_PID" |
        jq -r 'select(.WARDEN_EVENT) | [.WARDEN_EVENT, .WARDEN_RESULT, (.WARDEN_REASON // "-"), (.WARDEN_USER // "-"), .MESSAGE] | @tsv' |
        sed 's/^/  /'
else
    echo "  (run as root for a private journald; showing the operational log instead)"
    sed 's/^/  /' "$W/wardend.log"
fi
step "Done; everything under $W is removed"
