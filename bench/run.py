#!/usr/bin/env python3
"""Run Warden's benchmark and print the report.

Starts a private dbus-daemon and development-mode wardend instances at the
production Argon2 cost under a temporary directory and enrolls users through
wardenctl. Logins go through the real libpam, driven by build/bench/warden_bench.
pam_unix (yescrypt) and pam_oath are measured in a private mount namespace as
a reference stack. Every process it starts is stopped again, also on Ctrl-C
or SIGTERM.

Usage: python3 bench/run.py --build BUILD_DIR [--quick] [--json FILE] [--keep] [--quiet-wait SECONDS]
"""

import argparse
import base64
import ctypes
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

# Names of the PAM return codes in security/_pam_types.h (Linux-PAM 1.5).
PAM_CODE_NAMES = {0: "SUCCESS", 6: "PERM_DENIED", 7: "AUTH_ERR", 9: "AUTHINFO_UNAVAIL", 10: "USER_UNKNOWN",
                  19: "CONV_ERR"}

# The production defaults of wardend.conf, which the benchmark keeps.
ARGON2_MEMORY_KIB = 65536
ARGON2_ITERATIONS = 3

SCENARIOS = ("latency", "throughput", "memory", "flood", "reference")
LEGITIMATE_RHOST = "192.0.2.10"   # TEST-NET-1: a name only, no traffic is sent
FLOOD_RHOST = "198.51.100.20"     # TEST-NET-2
MIB = 1024.0


class BenchError(Exception):
    """A step of the benchmark failed. The message names the step and the cause."""


def die_with_parent():
    """Runs in each child before exec: the kernel sends it SIGTERM when the
    runner dies, so nothing outlives an interrupted benchmark."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_process(proc, timeout=40):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- machine ---------------------------------------------------------------

def cpu_count():
    return len(os.sched_getaffinity(0))


def machine_facts(work_dir):
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    hypervisor = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Hypervisor vendor:"):
                hypervisor = line.split(":", 1)[1].strip()
    except OSError:
        pass
    fs_type = subprocess.run(["findmnt", "--noheadings", "--output", "FSTYPE", "--target", work_dir],
                             capture_output=True, text=True).stdout.strip()

    def package_version(name):
        proc = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", name], capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else "not installed"

    revision = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "describe", "--always",
                               "--dirty"], capture_output=True, text=True).stdout.strip()
    return {
        "source_revision": revision or "unknown",
        "cpu_model": model,
        "cpus": cpu_count(),
        "kernel": platform.release(),
        "memory_mib": mem_kib // 1024,
        "hypervisor": hypervisor or "none",
        "state_filesystem": fs_type,
        "libsodium": package_version("libsodium23"),
        "libpam": package_version("libpam0g"),
        "liboath": package_version("liboath0"),
        "libcrypt": package_version("libcrypt1"),
    }


class CpuMeter:
    """Splits the CPU time used during a scenario into this benchmark's own
    (runner, driver, wardend, dbus-daemon) and everyone else's, from
    /proc/stat, so a disturbed measurement shows in the report."""

    def __init__(self, pids):
        self.pids = pids
        self.ticks_per_second = os.sysconf("SC_CLK_TCK")

    def snapshot(self):
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
        busy = (user + nice + system + irq + softirq) / self.ticks_per_second
        own = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)
            own += usage.ru_utime + usage.ru_stime
        for pid in self.pids():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    stat = f.read().rsplit(")", 1)[1].split()
                own += (int(stat[11]) + int(stat[12])) / self.ticks_per_second
            except (OSError, IndexError, ValueError):
                pass
        return time.monotonic(), busy, own, steal / self.ticks_per_second

    def since(self, start):
        end = self.snapshot()
        elapsed = end[0] - start[0]
        capacity = max(elapsed * cpu_count(), 1e-9)
        foreign = max(0.0, (end[1] - start[1]) - (end[2] - start[2]))
        return {"seconds": elapsed, "foreign_cpu_share": foreign / capacity,
                "steal_share": (end[3] - start[3]) / capacity}


# -- processes -------------------------------------------------------------

class PrivateBus:
    """A dbus-daemon of the system-bus type on a socket in the work dir."""

    def __init__(self, work_dir):
        self.socket = os.path.join(work_dir, "system_bus_socket")
        self.config = os.path.join(work_dir, "bus.conf")
        with open(self.config, "w") as f:
            f.write('<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"\n'
                    ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
                    "<busconfig>\n  <type>system</type>\n"
                    "  <listen>unix:path=%s</listen>\n  <auth>EXTERNAL</auth>\n"
                    '  <policy context="default">\n    <allow user="*"/>\n    <allow own="*"/>\n'
                    '    <allow send_destination="*"/>\n    <allow receive_sender="*"/>\n'
                    "  </policy>\n</busconfig>\n" % self.socket)
        self.address = "unix:path=" + self.socket
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["dbus-daemon", "--config-file=" + self.config, "--nofork", "--nopidfile"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError("dbus-daemon did not create its socket '%s'" % self.socket)
            time.sleep(0.02)

    def stop(self):
        stop_process(self.proc)


class Wardend:
    """One development-mode wardend with its own key, config, store, socket
    and PAM service file, at the production Argon2 cost."""

    def __init__(self, build, work_dir, name, overrides, clock_file=None):
        self.build = build
        self.dir = os.path.join(work_dir, name)
        os.mkdir(self.dir, 0o700)
        self.bus = PrivateBus(self.dir)
        self.socket = os.path.join(self.dir, "wardend.sock")
        self.key = os.path.join(self.dir, "secret.key")
        self.config_path = os.path.join(self.dir, "wardend.conf")
        self.log_path = os.path.join(self.dir, "wardend.log")
        self.confdir = os.path.join(self.dir, "pam.d")
        self.service = "warden-bench"
        self.clock_file = clock_file
        self.proc = None

        self.config = {
            "daemon": {"mode": "development", "socket": self.socket,
                       "state_directory": os.path.join(self.dir, "state"), "key_file": self.key, "dbus": "system",
                       "log_level": "info"},
            "password": {"argon2_memory_kib": str(ARGON2_MEMORY_KIB),
                         "argon2_iterations": str(ARGON2_ITERATIONS)},
            "mfa": {"mode": "off"},
            "lockout": {"fail_delay": "0"},
        }
        for section, values in overrides.items():
            self.config.setdefault(section, {}).update(values)
        self.state = self.config["daemon"]["state_directory"]

        self.run([os.path.join(build, "wardend"), "--generate-key", self.key])
        with open(self.config_path, "w") as f:
            for section, values in self.config.items():
                f.write("[%s]\n" % section)
                f.writelines("%s = %s\n" % item for item in values.items())
        os.chmod(self.config_path, 0o600)

        os.mkdir(self.confdir, 0o755)
        with open(os.path.join(self.confdir, self.service), "w") as f:
            f.write("auth required %s socket=%s\n" % (os.path.join(build, "pam_warden.so"), self.socket))

    def env(self):
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus.address)
        if self.clock_file:
            env["WARDEN_TEST_CLOCK_FILE"] = self.clock_file
        return env

    def run(self, args, input_text=None):
        proc = subprocess.run(args, input=input_text, capture_output=True, text=True, env=self.env(), timeout=120)
        if proc.returncode != 0:
            raise BenchError("'%s' failed with status %d: %s" % (" ".join(args[:3]), proc.returncode,
                                                                 proc.stderr.strip()))
        return proc.stdout

    def ctl(self, *args, input_text=None):
        return self.run([os.path.join(self.build, "wardenctl")] + list(args), input_text)

    def start(self):
        self.bus.start()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([os.path.join(self.build, "wardend"), "--config", self.config_path],
                                     stdout=log, stderr=log, env=self.env(), preexec_fn=die_with_parent)
        log.close()
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise BenchError("wardend exited with status %d:\n%s" % (self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                raise BenchError("wardend did not become ready within 60 s:\n" + self.log_tail())
            if self.socket_accepts() and self.bus_name_owned():
                return
            time.sleep(0.05)

    def socket_accepts(self):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
                s.connect(self.socket)
            return True
        except OSError:
            return False

    def bus_name_owned(self):
        proc = subprocess.run(["busctl", "--system", "status", "net.warden.Admin1"], capture_output=True,
                              env=self.env())
        return proc.returncode == 0

    def stop(self):
        stop_process(self.proc)
        self.bus.stop()

    def pids(self):
        return [p.pid for p in (self.proc, self.bus.proc) if p and p.poll() is None]

    def log_tail(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def status(self):
        return json.loads(self.ctl("--json", "status"))

    def rss_per_idle_connection_kib(self, count):
        """Opens count connections that send nothing, so that wardend keeps
        a thread and a receive buffer for each, and returns the growth of its
        VmRSS per connection."""
        before = self.proc_status_kib("VmRSS")
        connections = []
        try:
            for _ in range(count):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                connections.append(s)
                s.connect(self.socket)
            time.sleep(1)
            grown = self.proc_status_kib("VmRSS") - before
        finally:
            for s in connections:
                s.close()
        time.sleep(1)
        return grown / float(count)

    def log_size(self):
        return os.path.getsize(self.log_path)

    def scheduling_failures(self, user, offset):
        """Counts, by reason, the password checks of user that wardend
        logged as not scheduled on its hash pool after byte offset of its log."""
        marker = "Failed to schedule a password check for '%s' from pid " % user
        reasons = {}
        with open(self.log_path, errors="replace") as f:
            f.seek(offset)
            for line in f:
                if marker in line:
                    reason = line.rsplit(": ", 1)[-1].strip()
                    reasons[reason] = reasons.get(reason, 0) + 1
        return reasons

    def proc_status_kib(self, key):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def add_user(self, name, password=None):
        """Enrolls name through wardenctl and returns its password. Without
        a password, tries random ones until the host's libpwquality policy
        accepts one, because its dictionary check rejects a few random
        strings as too systematic."""
        for _ in range(20):
            candidate = password or secrets.token_urlsafe(24)
            try:
                self.ctl("user", "add", name, "--password-stdin", input_text=candidate + "\n")
                return candidate
            except BenchError as e:
                if password or "quality" not in str(e):
                    raise
        raise BenchError("the host's password quality policy rejected 20 random passwords for '%s'" % name)

    def stored_hash(self, name):
        """Reads name's PHC string from the store, read-only, because the
        admin API never returns a hash."""
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.state, "warden.db"), uri=True, timeout=10)
        try:
            row = db.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()
        finally:
            db.close()
        if not row:
            raise BenchError("user '%s' is not in the store after 'wardenctl user add'" % name)
        return row[0]

    def workers(self):
        return int(self.status()["workers"])


def set_process_affinity(pid, cpus):
    """Moves every thread of pid onto cpus. Threads it starts later
    inherit the affinity of the thread that starts them."""
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:
            pass  # the thread ended meanwhile


def counter_deltas(before, after):
    """Differences of wardend's GetStatus counters over a scenario."""
    keys = ("connections", "connections_refused", "queue_rejected", "unavailable", "auth_success", "auth_failure")
    return {key: int(after.get(key, 0)) - int(before.get(key, 0)) for key in keys}


def write_secret_file(directory, name, text):
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return path


class Driver:
    """Calls build/bench/warden_bench and returns its JSON result."""

    def __init__(self, build):
        self.path = os.path.join(build, "bench", "warden_bench")
        if not os.access(self.path, os.X_OK):
            raise BenchError("'%s' is missing; run 'make bench'" % self.path)

    def command(self, scenario, options):
        args = [self.path, scenario]
        for key, value in options.items():
            args += ["--" + key, str(value)]
        return args

    def run(self, scenario, options, prefix=()):
        args = list(prefix) + self.command(scenario, options)
        proc = subprocess.run(args, capture_output=True, text=True, preexec_fn=die_with_parent)
        if proc.returncode != 0:
            raise BenchError("warden_bench %s failed with status %d: %s" % (scenario, proc.returncode,
                                                                            proc.stderr.strip()))
        return json.loads(proc.stdout.strip().splitlines()[-1])


# -- scenarios -------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.only = args.only
        self.build = os.path.abspath(args.build)
        self.quick = args.quick
        self.driver = Driver(self.build)
        self.work_dir = tempfile.mkdtemp(prefix="warden-bench-")
        os.chmod(self.work_dir, 0o755)
        self.daemons = []
        self.tmpfs_dir = None
        self.meter = CpuMeter(self.live_pids)
        self.results = {"parameters": {}, "machine": machine_facts(self.work_dir)}
        self.password = None
        self.password_file = os.path.join(self.work_dir, "password")

        cpus = cpu_count()
        self.params = {
            "argon2_memory_kib": ARGON2_MEMORY_KIB,
            "argon2_iterations": ARGON2_ITERATIONS,
            "pinned_cpu": min(os.sched_getaffinity(0)),
            "latency_samples": 10 if self.quick else 120,
            "latency_warmup": 2 if self.quick else 3,
            "tmpfs_latency_samples": 10 if self.quick else 60,
            "throughput_clients": [2 * cpus, 4 * cpus, 16 * cpus],
            "throughput_warmup_s": 2 if self.quick else 3,
            "throughput_window_s": 6 if self.quick else 20,
            "verify_rate_window_s": 4 if self.quick else 10,
            "burst_clients": 200 if self.quick else 1000,
            "flood_clients": 100 if self.quick else 500,
            "flood_samples": 3 if self.quick else 8,
            "flood_warmup_s": 5,
            "flood_retry_pause_s": 0.1,
            "idle_samples": 5 if self.quick else 15,
            "reference_samples": 10 if self.quick else 120,
        }
        self.results["parameters"] = self.params

    def live_pids(self):
        return [pid for daemon in self.daemons for pid in daemon.pids()]

    def close(self):
        for daemon in self.daemons:
            daemon.stop()
        if self.tmpfs_dir:
            shutil.rmtree(self.tmpfs_dir, ignore_errors=True)
        if self.args.keep:
            print("Kept the work directory '%s'." % self.work_dir)
        else:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def start_daemon(self, name, overrides, clock_file=None):
        daemon = Wardend(self.build, self.work_dir, name, overrides, clock_file)
        self.daemons.append(daemon)
        daemon.start()
        return daemon

    def stop_daemon(self, daemon):
        daemon.stop()
        self.daemons.remove(daemon)

    def wait_until_quiet(self):
        """Waits up to --quiet-wait seconds until other processes use less
        than 10 % of the CPUs over one second, so that they disturb the next
        scenario less. Returns the last share seen."""
        deadline = time.monotonic() + self.args.quiet_wait
        while True:
            start = self.meter.snapshot()
            time.sleep(1)
            share = self.meter.since(start)["foreign_cpu_share"]
            if share < 0.10 or time.monotonic() >= deadline:
                return share

    def measured(self, name, function):
        """Runs one scenario, records its result with the CPU share that
        other processes took meanwhile, and prints progress."""
        busy = self.wait_until_quiet()
        note = " (other processes still use %s of the CPUs)" % percent(busy) if busy >= 0.10 else ""
        print("  %s ...%s" % (name, note), flush=True)
        start = self.meter.snapshot()
        result = function()
        result["cpu"] = self.meter.since(start)
        self.results[name] = result
        return result

    def load_overrides(self):
        """Returns config keys for the load scenarios. The per-peer cap is
        raised because all clients of one driver process are one peer for
        wardend, where sshd would be one process per client.
        max_connections (256), queue_size (256) and queue_timeout (10 s)
        keep their defaults."""
        return {
            "daemon": {"max_connections_per_peer": "4000"},
            "lockout": {"deny": "1000", "rhost_deny": "100000", "fail_delay": "0"},
        }

    def login_options(self, daemon, **extra):
        options = {"confdir": daemon.confdir, "service": daemon.service, "password-file": self.password_file}
        options.update(extra)
        return options

    def pinned_latency(self, options, daemon=None, prefix=()):
        """Runs the latency scenario with the driver and every wardend
        thread on one CPU, so that the in-process hash and wardend's hash run
        on the same CPU. On a virtual machine the speed of each CPU changes
        by several per cent from minute to minute, more than the overhead
        being measured. Logins are sequential, so one CPU is enough."""
        cpu = {self.params["pinned_cpu"]}
        everywhere = os.sched_getaffinity(0)
        if daemon:
            set_process_affinity(daemon.proc.pid, cpu)
        try:
            return self.driver.run("latency", options, prefix=["taskset", "--cpu-list", str(min(cpu))] + list(prefix))
        finally:
            if daemon:
                set_process_affinity(daemon.proc.pid, everywhere)

    # 1. latency of a password login and of a password and TOTP login,
    # against the in-process hash.
    def start_clocked_daemon(self, name, mfa_mode, state_parent=None):
        """Starts a wardend that reads the time from a test clock file, with
        the user "bench" enrolled, and returns it with the clock's path and
        start time. state_parent moves its store to another file system."""
        clock_file = os.path.join(self.work_dir, name + "-clock")
        clock_start = int(time.time()) // 30 * 30
        with open(clock_file, "w") as f:
            f.write("%d\n" % clock_start)
        overrides = {"mfa": {"mode": mfa_mode}}
        if state_parent:
            overrides["daemon"] = {"state_directory": os.path.join(state_parent, name)}
        daemon = self.start_daemon(name, overrides, clock_file=clock_file)
        daemon.add_user("bench", self.password)
        return daemon, clock_file, clock_start

    def run_latency(self, result_name, with_totp, samples, state_parent=None):
        name = result_name.replace("_", "-")
        daemon, clock_file, clock_start = self.start_clocked_daemon(name, "required" if with_totp else "off",
                                                                    state_parent)
        options = self.login_options(daemon, user="bench", rhost=LEGITIMATE_RHOST, baseline="argon2id",
                                     samples=samples, warmup=self.params["latency_warmup"],
                                     **{"clock-file": clock_file, "clock-start": clock_start})
        if with_totp:
            enrollment = json.loads(daemon.ctl("--json", "totp", "enroll", "bench"))
            secret = base64.b32decode(enrollment["secret"].upper() + "=" * (-len(enrollment["secret"]) % 8))
            options["totp-secret-file"] = write_secret_file(daemon.dir, "totp.hex", secret.hex())
            code = subprocess.run(["oathtool", "--totp", "-d", "6", "-N", "@%d" % clock_start, secret.hex()],
                                  capture_output=True, text=True, check=True).stdout.strip()
            daemon.ctl("totp", "confirm", "bench", code)
        options["hash-file"] = write_secret_file(daemon.dir, "bench.phc", daemon.stored_hash("bench"))
        self.measured(result_name, lambda: self.pinned_latency(options, daemon))
        self.stop_daemon(daemon)

    def run_latencies(self):
        self.run_latency("latency_password", False, self.params["latency_samples"])
        self.run_latency("latency_totp", True, self.params["latency_samples"])
        # The same logins with the store on tmpfs, where a commit needs no
        # disk flush: the difference is the cost of the durable commits.
        if os.path.isdir("/dev/shm"):
            self.tmpfs_dir = tempfile.mkdtemp(prefix="warden-bench-", dir="/dev/shm")
            samples = self.params["tmpfs_latency_samples"]
            self.run_latency("latency_password_tmpfs", False, samples, self.tmpfs_dir)
            self.run_latency("latency_totp_tmpfs", True, samples, self.tmpfs_dir)

    # 2. throughput against CPUs / verify time.
    def run_throughput(self, daemon, hash_file):
        for threads in sorted({1, cpu_count()}):
            self.measured("verify_rate_%d" % threads, lambda: self.driver.run("verify-rate", {
                "hash-file": hash_file, "password-file": self.password_file, "threads": threads,
                "duration": self.params["verify_rate_window_s"]}))
        for clients in self.params["throughput_clients"]:
            self.measured("throughput_%d" % clients, lambda: self.driver.run("throughput", self.login_options(
                daemon, user="bench", rhost=LEGITIMATE_RHOST, clients=clients,
                warmup=self.params["throughput_warmup_s"], duration=self.params["throughput_window_s"])))

    # 3. peak memory under a burst of clients, on a fresh daemon.
    def run_burst(self):
        daemon = self.start_daemon("burst", self.load_overrides())
        daemon.add_user("bench", self.password)
        workers = daemon.workers()

        def burst():
            idle_kib = daemon.rss_per_idle_connection_kib(200)
            before = daemon.status()
            result = self.driver.run("burst", self.login_options(
                daemon, user="bench", rhost=LEGITIMATE_RHOST, clients=self.params["burst_clients"],
                **{"daemon-pid": daemon.proc.pid}))
            result["workers"] = workers
            result["daemon"] = counter_deltas(before, daemon.status())
            result["rss_per_idle_connection_kib"] = idle_kib
            result["hwm_final_kib"] = daemon.proc_status_kib("VmHWM")
            return result

        self.measured("burst", burst)
        self.stop_daemon(daemon)

    # 4. a legitimate login while a flood of wrong passwords arrives.
    def run_flood(self, daemon):
        daemon.add_user("target")
        self.measured("flood_idle", lambda: self.driver.run("latency", self.login_options(
            daemon, user="bench", rhost=LEGITIMATE_RHOST, baseline="argon2id",
            samples=self.params["idle_samples"], warmup=1,
            **{"hash-file": os.path.join(self.work_dir, "bench.phc")})))
        def flood():
            before = daemon.status()
            log_start = daemon.log_size()
            result = self.driver.run("flood", self.login_options(
                daemon, user="bench", rhost=LEGITIMATE_RHOST, samples=self.params["flood_samples"],
                warmup=self.params["flood_warmup_s"],
                **{"flood-user": "target", "flood-rhost": FLOOD_RHOST, "flood-clients": self.params["flood_clients"],
                   "retry-pause": self.params["flood_retry_pause_s"]}))
            result["daemon"] = counter_deltas(before, daemon.status())
            result["legitimate_not_scheduled"] = daemon.scheduling_failures("bench", log_start)
            return result

        self.measured("flood", flood)

    # 5. pam_unix (yescrypt) and pam_oath in a private mount namespace.
    def run_reference(self):
        reference = ReferenceStack(self.work_dir, self.password, self.params["reference_samples"] +
                                   self.params["latency_warmup"])
        missing = reference.missing()
        if missing:
            self.results["reference_skipped"] = missing
            print("  reference stack skipped: " + missing, flush=True)
            return
        reference.prepare()
        common = {"confdir": reference.confdir, "password-file": self.password_file, "baseline": "yescrypt",
                  "hash-file": reference.hash_file, "rhost": LEGITIMATE_RHOST,
                  "samples": self.params["reference_samples"], "warmup": self.params["latency_warmup"]}
        self.results["reference_hash_prefix"] = reference.hash_prefix()
        self.measured("reference_password", lambda: self.pinned_latency(dict(
            common, service="ref-unix", user=reference.user(0)), prefix=reference.namespace_prefix()))
        self.measured("reference_totp", lambda: self.pinned_latency(dict(
            common, service="ref-unix-oath", **{"user-prefix": reference.user_prefix,
                                                 "totp-secret-file": reference.secret_file}),
            prefix=reference.namespace_prefix()))

    def run(self):
        print("Warden benchmark: work directory %s" % self.work_dir, flush=True)
        self.results["load_before"] = os.getloadavg()
        main = self.start_daemon("main", self.load_overrides())
        self.password = main.add_user("bench")
        write_secret_file(self.work_dir, "password", self.password)
        self.results["workers"] = main.workers()
        hash_file = write_secret_file(self.work_dir, "bench.phc", main.stored_hash("bench"))
        if "latency" in self.only:
            self.run_latencies()
        if "throughput" in self.only:
            self.run_throughput(main, hash_file)
        if "memory" in self.only:
            self.run_burst()
        if "flood" in self.only:
            self.run_flood(main)
        self.stop_daemon(main)
        if "reference" in self.only:
            self.run_reference()
        self.results["load_after"] = os.getloadavg()


class ReferenceStack:
    """pam_unix with yescrypt and pam_oath, for users that exist only in a
    private mount namespace. unshare(1) bind-mounts copies of /etc/passwd,
    /etc/shadow and /etc/group over the real ones. The PAM service files are
    passed to libpam with pam_start_confdir."""

    MODULE_DIR = "/lib/x86_64-linux-gnu/security"

    def __init__(self, work_dir, password, users):
        self.dir = os.path.join(work_dir, "reference")
        self.confdir = os.path.join(self.dir, "pam.d")
        self.password = password
        self.users = users
        self.user_prefix = "wbref"
        self.hash_file = None
        self.secret_file = None

    def missing(self):
        if os.geteuid() != 0:
            return "needs root for 'unshare --mount'"
        for tool, package in (("mkpasswd", "whois"), ("unshare", "util-linux")):
            if not shutil.which(tool):
                return "'%s' not found (Debian package %s)" % (tool, package)
        for module, package in (("pam_unix.so", "libpam-modules"), ("pam_oath.so", "libpam-oath")):
            if not os.path.exists(os.path.join(self.MODULE_DIR, module)):
                return "%s not found (Debian package %s)" % (module, package)
        return ""

    def user(self, index):
        return "%s%d" % (self.user_prefix, index)

    def prepare(self):
        os.mkdir(self.dir, 0o755)
        os.mkdir(self.confdir, 0o755)
        proc = subprocess.run(["mkpasswd", "--method=yescrypt", "--stdin"], input=self.password + "\n",
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise BenchError("mkpasswd failed: " + proc.stderr.strip())
        self.yescrypt = proc.stdout.strip()
        self.hash_file = write_secret_file(self.dir, "yescrypt", self.yescrypt)
        secret = secrets.token_bytes(20)
        self.secret_file = write_secret_file(self.dir, "totp.hex", secret.hex())

        for name in ("passwd", "shadow", "group"):
            shutil.copy2("/etc/" + name, os.path.join(self.dir, name))
        used_ids = set()
        with open("/etc/passwd") as f:
            used_ids.update(int(line.split(":")[2]) for line in f if line.count(":") >= 6)
        with open("/etc/group") as f:
            used_ids.update(int(line.split(":")[2]) for line in f if line.count(":") >= 3)
        first_id = next(i for i in range(61000, 65000) if all(i + k not in used_ids for k in range(self.users + 1)))
        days = int(time.time() // 86400)
        with open(os.path.join(self.dir, "group"), "a") as f:
            f.write("%s:x:%d:\n" % (self.user_prefix, first_id))
        with open(os.path.join(self.dir, "passwd"), "a") as passwd, \
                open(os.path.join(self.dir, "shadow"), "a") as shadow, \
                open(os.path.join(self.dir, "users.oath"), "w") as oath:
            for i in range(self.users):
                passwd.write("%s:x:%d:%d:Warden benchmark:/nonexistent:/usr/sbin/nologin\n"
                             % (self.user(i), first_id + 1 + i, first_id))
                shadow.write("%s:%s:%d:0:99999:7:::\n" % (self.user(i), self.yescrypt, days))
                oath.write("HOTP/T30/6 %s - %s\n" % (self.user(i), secret.hex()))
        os.chmod(os.path.join(self.dir, "users.oath"), 0o600)
        os.chmod(os.path.join(self.dir, "shadow"), 0o640)
        with open(os.path.join(self.confdir, "ref-unix"), "w") as f:
            f.write("auth required pam_unix.so nodelay\n")
        with open(os.path.join(self.confdir, "ref-unix-oath"), "w") as f:
            f.write("auth requisite pam_unix.so nodelay\n"
                    "auth required pam_oath.so usersfile=%s window=3 digits=6\n"
                    % os.path.join(self.dir, "users.oath"))

    def hash_prefix(self):
        return self.yescrypt.rsplit("$", 2)[0] + "$..."

    def namespace_prefix(self):
        """unshare and a shell that bind-mounts the copies, then execs the
        driver command that follows."""
        script = ('mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/shadow && '
                  'mount --bind "$3" /etc/group && shift 3 && exec "$@"')
        return ["unshare", "--mount", "--fork", "--kill-child", "--propagation", "private", "--",
                "/bin/sh", "-c", script, "sh"] + [os.path.join(self.dir, n) for n in ("passwd", "shadow", "group")]


# -- report ----------------------------------------------------------------

def ms(seconds):
    return "%.1f ms" % (seconds * 1000)


def percent(value):
    return "%.1f %%" % (value * 100)


def verdict(ok):
    return "met" if ok else "MISSED"


def codes_text(codes):
    return ", ".join("%s %s" % (count, PAM_CODE_NAMES.get(int(code), "code " + code))
                     for code, count in sorted(codes.items(), key=lambda kv: int(kv[0])))


def disturbance(result):
    share = result.get("cpu", {}).get("foreign_cpu_share", 0)
    steal = result.get("cpu", {}).get("steal_share", 0)
    notes = []
    if share > 0.05:
        notes.append("other processes used %s of the CPUs" % percent(share))
    if steal > 0.05:
        notes.append("the hypervisor took %s" % percent(steal))
    return "    (disturbed: %s)\n" % "; ".join(notes) if notes else ""


def latency_block(title, result, hash_label):
    h = result["hash"]
    a = result["auth"]
    t = result["total"]
    median_overhead = a["median"] - h["median"]
    p99_overhead = a["p99"] - h["p99"]
    lines = [title + " (%d samples, each paired with an in-process check)" % h["count"],
             "    %-44s median %10s   p99 %10s" % (hash_label, ms(h["median"]), ms(h["p99"])),
             "    %-44s median %10s   p99 %10s" % ("pam_authenticate", ms(a["median"]), ms(a["p99"])),
             "    %-44s median %10s   p99 %10s" % ("pam_start_confdir to pam_end", ms(t["median"]), ms(t["p99"])),
             "    %-44s median %10s   p99 %10s" % ("overhead of pam_authenticate over the hash",
                                                    "%+.2f ms" % (median_overhead * 1000),
                                                    "%+.2f ms" % (p99_overhead * 1000)),
             "    %-44s median %10s   p99 %10s" % ("  in percent of the median hash time",
                                                    percent(median_overhead / h["median"]),
                                                    percent(p99_overhead / h["median"])),
             "    %-44s median %10s" % ("paired overhead (login minus its own hash)",
                                        "%+.2f ms" % (result["auth_overhead"]["median"] * 1000)),
             "    %-44s median %10s" % ("  of which: pam_authenticate to first prompt",
                                        ms(result["first_prompt"]["median"])),
             "    %-44s median %10s" % ("  last answer to result, minus the hash",
                                        "%+.2f ms" % (result["after_answers_overhead"]["median"] * 1000))]
    if set(result["codes"]) != {"0"}:
        lines.append("    FAILED LOGINS: " + codes_text(result["codes"]))
    return "\n".join(lines) + "\n" + disturbance(result)


def report(results):
    out = []
    m = results["machine"]
    p = results["parameters"]
    cpus = m["cpus"]
    out.append("=" * 78)
    out.append("Warden benchmark report")
    out.append("Source: %s" % m["source_revision"])
    out.append("Machine: %s, %d CPUs, hypervisor %s, kernel %s, %d MiB RAM"
               % (m["cpu_model"], cpus, m["hypervisor"], m["kernel"], m["memory_mib"]))
    out.append("Store on %s. libsodium %s, libpam %s, liboath %s, libcrypt %s"
               % (m["state_filesystem"], m["libsodium"], m["libpam"], m["liboath"], m["libcrypt"]))
    out.append("Argon2id m=%d KiB t=%d p=1 (production default), %d hash workers, 1-minute load average "
               "%.2f at start, %.2f at end" % (p["argon2_memory_kib"], p["argon2_iterations"], results["workers"],
                                               results["load_before"][0], results["load_after"][0]))
    out.append("")

    pw = results.get("latency_password")
    totp = results.get("latency_totp")
    hash_time = None
    if "verify_rate_1" in results:
        hash_time = results["verify_rate_1"]["check"]["median"]
    elif pw:
        hash_time = pw["hash"]["median"]
    elif "flood_idle" in results:
        hash_time = results["flood_idle"]["hash"]["median"]
    if pw:
        out.extend(latency_section(results, pw, totp))
    if "verify_rate_1" in results:
        out.extend(throughput_section(results, hash_time))
    if "burst" in results:
        out.extend(memory_section(results))
    if "flood" in results:
        out.extend(flood_section(results, hash_time))
    if pw and ("reference_password" in results or "reference_skipped" in results):
        out.extend(reference_section(results, pw, totp))
    out.append("=" * 78)
    return "\n".join(out)


def latency_section(results, pw, totp):
    out = []
    out.append("1. Login latency against crypto_pwhash_argon2id_str_verify of the same hash")
    out.append(latency_block("  Password only, [mfa] mode = off", pw, "argon2id verify, in-process"))
    out.append(latency_block("  Password and TOTP, [mfa] mode = required", totp, "argon2id verify, in-process"))
    if "latency_password_tmpfs" in results:
        fast = [(name, results[key]) for name, key in (("password", "latency_password_tmpfs"),
                                                       ("password and TOTP", "latency_totp_tmpfs"))]
        out.append("  The same logins with the store on tmpfs, where a commit needs no disk flush (%d samples):"
                   % fast[0][1]["hash"]["count"])
        for name, r in fast:
            out.append("    %-44s median %10s   (%s of the hash)" % (
                "paired overhead, " + name, "%+.2f ms" % (r["auth_overhead"]["median"] * 1000),
                percent(r["auth_overhead"]["median"] / r["hash"]["median"])))
    for name, result in (("password only", pw), ("password and TOTP", totp)):
        share = result["auth_overhead"]["median"] / result["hash"]["median"]
        out.append("  Target: paired overhead under 2 %% of the hash time, %s: %s (%s)"
                   % (name, verdict(share < 0.02), percent(share)))
    out.append("")
    return out


def throughput_section(results, hash_time):
    out = []
    p = results["parameters"]
    cpus = results["machine"]["cpus"]
    limit = cpus / hash_time
    out.append("2. Throughput: successful logins per second, many concurrent clients")
    out.append("  Physical limit: %d CPUs / %s per verification (median, one thread, in-process) = %.2f logins/s"
               % (cpus, ms(hash_time), limit))
    vr = results["verify_rate_%d" % cpus]
    out.append("    %-24s %10s %10s %12s %12s %10s" % ("", "per second", "of limit", "median", "p99", "other CPU"))
    for threads in sorted({1, cpus}):
        r = results["verify_rate_%d" % threads]
        out.append("    %-24s %10.2f %10s %12s %12s %10s" % ("in-process, %d thread%s" % (threads, "s" * (threads > 1)),
                                                           r["rate"], percent(r["rate"] / limit),
                                                           ms(r["check"]["median"]), ms(r["check"]["p99"]),
                                                           percent(r["cpu"]["foreign_cpu_share"])))
    throughput_ok = True
    for clients in p["throughput_clients"]:
        r = results["throughput_%d" % clients]
        ratio = r["rate"] / limit
        throughput_ok = throughput_ok and ratio >= 0.9
        out.append("    %-24s %10.2f %10s %12s %12s %10s" % ("wardend, %d clients" % clients, r["rate"], percent(ratio),
                                                           ms(r["latency"]["median"]), ms(r["latency"]["p99"]),
                                                           percent(r["cpu"]["foreign_cpu_share"])))
        if set(r["codes"]) - {"0"}:
            out.append("      other answers: " + codes_text(r["codes"]))
    out.append("  wardend with %d clients reaches %s of what %d threads verify in-process"
               % (p["throughput_clients"][-1], percent(results["throughput_%d" % p["throughput_clients"][-1]]["rate"]
                                                       / vr["rate"]), cpus))
    out.append("  Target: at least 90 %% of the physical limit: %s" % verdict(throughput_ok))
    out.append("")
    return out


def memory_section(results):
    out = []
    p = results["parameters"]
    b = results["burst"]
    budget_kib = b["workers"] * p["argon2_memory_kib"]
    hwm = max(b["hwm_after_kib"], b["hwm_final_kib"])
    out.append("3. Memory: %d clients start one login each at the same moment" % b["clients"])
    out.append("  workers x argon2_memory = %d x %d MiB = %.0f MiB" % (b["workers"], p["argon2_memory_kib"] // 1024,
                                                                     budget_kib / MIB))
    out.append("  wardend VmHWM before %.1f MiB, after %.1f MiB (%+.1f MiB over the budget); peak VmRSS seen "
               "%.1f MiB, peak threads %d" % (b["hwm_before_kib"] / MIB, hwm / MIB, (hwm - budget_kib) / MIB,
                                              b["peak_rss_kib"] / MIB, b["peak_threads"]))
    per_thread = (b["peak_rss_kib"] - b["rss_before_kib"] - budget_kib) / max(1, b["peak_threads"] - b["threads_before"])
    out.append("  Outside the hashes: VmRSS %.1f MiB idle; %.0f KiB per idle connection (measured with 200); "
               "about %.0f KiB per conversation thread at the peak (estimate)"
               % (b["rss_before_kib"] / MIB, b["rss_per_idle_connection_kib"], per_thread))
    out.append("  Clients: %d succeeded, %d answered 'unavailable' within 1 s, %d after waiting (timed out), %d other;"
               " all done in %.1f s" % (b["successes"], b["refused"], b["timed_out"], b["other"], b["wall"]))
    s = b["daemon"]
    out.append("  wardend accepted %d connections: %d refused at the connection cap, %d refused or timed out in the "
               "hash queue" % (s["connections"], s["connections_refused"], s["queue_rejected"]))
    out.append("  %d clients never got a connection: their connect() failed while the listen backlog was full"
               % max(0, b["clients"] - s["connections"]))
    out.append("  Target: VmHWM within 16 MiB of the budget: %s" % verdict(hwm - budget_kib <= 16 * 1024))
    if disturbance(b):
        out.append(disturbance(b).rstrip("\n"))
    out.append("")
    return out


def flood_section(results, hash_time):
    out = []
    idle = results["flood_idle"]
    f = results["flood"]
    bound = 2 * idle["total"]["median"] + hash_time
    out.append("4. A legitimate login (root caller, rhost %s) while %d clients send wrong passwords from %s"
               % (LEGITIMATE_RHOST, f["flood_clients"], FLOOD_RHOST))
    out.append("  Idle: median %s, p99 %s over %d logins" % (ms(idle["total"]["median"]), ms(idle["total"]["p99"]),
                                                           idle["total"]["count"]))
    out.append("  Bound: 2 x idle + one hash = %s" % ms(bound))
    out.append("  Under the flood: %d logins, %s; latency median %s, max %s"
               % (f["latency"]["count"], codes_text(f["codes"]), ms(f["latency"]["median"]),
                  ms(f["latency"]["max"])))
    out.append("  Flood answers over %.0f s: %s" % (f["flood_seconds"], codes_text(f["flood_codes"])))
    if f["legitimate_not_scheduled"]:
        out.append("  wardend did not schedule the legitimate password check: " + ", ".join(
            "%d x %s" % (count, reason) for reason, count in sorted(f["legitimate_not_scheduled"].items())))
    d = f["daemon"]
    out.append("  wardend meanwhile: %d connections, %d verified failures, %d refused or timed out in the hash queue"
               % (d["connections"], d["auth_failure"], d["queue_rejected"]))
    ok = f["codes"] == {"0": f["latency"]["count"]} and f["latency"]["max"] <= bound
    out.append("  Target: every legitimate login succeeds within the bound: %s" % verdict(ok))
    if disturbance(f):
        out.append(disturbance(f).rstrip("\n"))
    out.append("")
    return out


def reference_section(results, pw, totp):
    out = []
    out.append("5. Reference stack: the same logins through pam_unix (yescrypt) and pam_oath")
    if "reference_skipped" in results:
        out.append("  Skipped: " + results["reference_skipped"])
    else:
        out.append("  yescrypt hash %s made by mkpasswd (libcrypt default cost)" % results["reference_hash_prefix"])
        out.append("    %-34s %12s %12s %12s %12s %10s" % ("stack", "hash median", "login median", "login p99",
                                                          "paired ovh.", "of hash"))
        rows = (("pam_warden, password", pw), ("pam_unix, password", results["reference_password"]),
                ("pam_warden, password + TOTP", totp), ("pam_unix + pam_oath", results["reference_totp"]))
        for name, r in rows:
            overhead = r["auth_overhead"]["median"]
            out.append("    %-34s %12s %12s %12s %12s %10s" % (name, ms(r["hash"]["median"]), ms(r["auth"]["median"]),
                                                              ms(r["auth"]["p99"]), "%+.2f ms" % (overhead * 1000),
                                                              percent(overhead / r["hash"]["median"])))
            if set(r["codes"]) != {"0"}:
                out.append("      FAILED LOGINS: " + codes_text(r["codes"]))
    return out


def main():
    parser = argparse.ArgumentParser(description="Run Warden's benchmark and print the report.")
    parser.add_argument("--build", required=True, help="build directory with wardend, wardenctl, pam_warden.so")
    parser.add_argument("--quick", action="store_true", help="fewer samples and clients: a smoke test, not figures")
    parser.add_argument("--json", help="also write every measured value to this file as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work directory with the daemon logs")
    parser.add_argument("--only", default=",".join(SCENARIOS), metavar="LIST",
                        help="comma-separated scenarios to run, of: %s (default: all)" % ", ".join(SCENARIOS))
    parser.add_argument("--quiet-wait", type=float, default=20, metavar="SECONDS",
                        help="before each scenario, wait at most this long for other processes to leave the "
                             "CPUs (default 20)")
    args = parser.parse_args()
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(SCENARIOS))
    if unknown or not args.only:
        parser.error("--only takes a comma-separated list of: %s" % ", ".join(SCENARIOS))
    if os.geteuid() != 0:
        # wardend lets a non-root caller log in only its own user, and the
        # reference stack needs `unshare --mount`.
        print("warden benchmark: run as root, as sshd and login are (for example 'sudo make bench')",
              file=sys.stderr)
        return 2

    # SIGTERM and SIGHUP end the run through the same clean-up as Ctrl-C.
    def interrupted(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 16384):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 16384), hard))

    bench = Bench(args)
    try:
        bench.run()
    except BenchError as e:
        print("warden benchmark: %s" % e, file=sys.stderr)
        bench.close()
        return 1
    except KeyboardInterrupt:
        print("warden benchmark: interrupted; stopping the processes it started", file=sys.stderr)
        bench.close()
        return 130
    bench.close()
    print(report(bench.results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(bench.results, f, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
