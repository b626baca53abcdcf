#!/bin/bash
# Runs a command with a private systemd-journald: inside new mount and PID
# namespaces, with tmpfs over /run/systemd and /run/log so the host's
# journal is neither read nor written. Everything the command logs through
# sd_journal_send lands in that journal, where journalctl finds it.
# Without root (no namespaces), runs the command as it is.
set -euo pipefail

if [ "$(id -u)" != 0 ] || [ ! -x /lib/systemd/systemd-journald ] || [ -n "${WARDEN_NO_JOURNAL:-}" ]; then
    exec "$@"
fi

exec timeout --kill-after=10 3600 unshare --mount --pid --fork --mount-proc --kill-child --propagation private \
    bash -c '
    set -euo pipefail
    mount -t tmpfs -o mode=755 tmpfs /run/systemd
    mount -t tmpfs -o mode=755 tmpfs /run/log
    mkdir -p /run/systemd/journald.conf.d
    # Volatile storage only: nothing under /var/log/journal is touched.
    # Rate limiting off: the whole suite shares one journal client
    # context; wardend limits its own repeats.
    printf "[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\nForwardToKMsg=no\nForwardToConsole=no\nForwardToWall=no\nRateLimitIntervalSec=0\n" \
        > /run/systemd/journald.conf.d/warden-test.conf
    SYSTEMD_LOG_TARGET=console /lib/systemd/systemd-journald 2>/run/log/journald.log &
    journald=$!
    for _ in $(seq 200); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
    if [ ! -S /run/systemd/journal/socket ]; then
        echo "with_journal: systemd-journald did not start" >&2
        cat /run/log/journald.log >&2 || true
        exit 1
    fi
    export WARDEN_PRIVATE_JOURNAL=1
    rc=0
    "$@" || rc=$?
    kill "$journald" 2>/dev/null || true
    wait "$journald" 2>/dev/null || true
    exit "$rc"
' with_journal "$@"
