"""Test environment for Warden's integration tests.

Each Env owns a temporary directory with a host key, a development-mode
wardend.conf, a state directory, PAM service files that load the freshly
built pam_warden.so by absolute path, and optionally a private D-Bus
system bus. Everything it starts it stops again.
"""

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("WARDEN_BUILD", os.path.join(ROOT, "build"))
WARDEND = os.path.join(BUILD, "wardend")
WARDENCTL = os.path.join(BUILD, "wardenctl")
MODULE = os.path.join(BUILD, "pam_warden.so")
PAM_DRIVER = os.path.join(BUILD, "tests", "pam_driver")
FAKE_DAEMON = os.path.join(BUILD, "tests", "fake_daemon")
HASH_TOOL = os.path.join(BUILD, "tests", "hash_tool")
PAM_PROBE = os.path.join(BUILD, "tests", "pam_probe.so")

# PAM return codes from security/_pam_types.h (Linux-PAM 1.5).
PAM_SUCCESS = 0
PAM_SERVICE_ERR = 3
PAM_PERM_DENIED = 6
PAM_AUTH_ERR = 7
PAM_AUTHINFO_UNAVAIL = 9
PAM_USER_UNKNOWN = 10
PAM_CONV_ERR = 19
PAM_AUTHTOK_ERR = 20
PAM_IGNORE = 25

# Low Argon2 cost allowed in development mode: keeps each verification
# around 10 ms so the suite stays fast.
DEV_MEMORY_KIB = 8192
DEV_ITERATIONS = 1

IS_ROOT = os.geteuid() == 0
PRIVATE_JOURNAL = os.environ.get("WARDEN_PRIVATE_JOURNAL") == "1"

requires_journal = unittest.skipUnless(PRIVATE_JOURNAL, "needs the private journald of tests/integration/with_journal.sh")

# Every password, code and secret the tests type, so the last test can
# search the whole journal for them.
SECRETS_USED = set()


def remember_secret(value):
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if value and len(value) >= 6:
        SECRETS_USED.add(value)
SANITIZED = os.environ.get("WARDEN_SANITIZED") == "1"

requires_root = unittest.skipUnless(IS_ROOT, "needs root (run the suite as root, as CI does)")


def sanitizer_env():
    """Environment that lets sanitizer builds report without aborting on
    the known leak in libpam's own modules."""
    env = {}
    if SANITIZED:
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:exitcode=86"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:exitcode=87"
    return env


class PamResult:
    """Outcome of one pam_driver run."""

    def __init__(self, proc, elapsed):
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.elapsed = elapsed
        self.prompts = []
        self.results = {}
        self.authtok_hash = None
        for line in proc.stdout.splitlines():
            parts = line.split(" ", 2)
            if parts[0] == "prompt" and len(parts) >= 2:
                self.prompts.append((parts[1], parts[2] if len(parts) > 2 else ""))
            elif parts[0] == "result" and len(parts) >= 3:
                self.results[parts[1]] = int(parts[2].split(" ")[0])
            elif parts[0] == "authtok-sha256":
                self.authtok_hash = parts[1]

    def prompt_texts(self):
        return [text for style, text in self.prompts if style.startswith("echo")]

    def __repr__(self):
        return "PamResult(code=%d, stdout=%r, stderr=%r)" % (self.code, self.stdout, self.stderr[-2000:])


class Env:
    """A private wardend with its key, config, store and PAM stacks."""

    def __init__(self, config=None, stacks=None, bus=False, config_text=None):
        self.dir = tempfile.mkdtemp(prefix="warden-test-")
        os.chmod(self.dir, 0o755)  # non-root callers must reach the socket
        self.socket = os.path.join(self.dir, "wardend.sock")
        self.state = os.path.join(self.dir, "state")
        self.key = os.path.join(self.dir, "secret.key")
        self.config_path = os.path.join(self.dir, "wardend.conf")
        self.pam_dir = os.path.join(self.dir, "pam.d")
        self.log_path = os.path.join(self.dir, "wardend.log")
        self.daemon = None
        self.bus = None
        self.bus_address = None
        self.fakes = []
        self.daemon_pids = set()
        os.mkdir(self.pam_dir, 0o755)
        subprocess.run([WARDEND, "--generate-key", self.key], check=True)
        self.config = {
            "daemon": {
                "mode": "development",
                "socket": self.socket,
                "state_directory": self.state,
                "key_file": self.key,
                "dbus": "system" if bus else "off",
                "log_level": "debug",
            },
            "password": {
                "argon2_memory_kib": str(DEV_MEMORY_KIB),
                "argon2_iterations": str(DEV_ITERATIONS),
                "min_length": "12",
            },
            "mfa": {"mode": "off"},
            # No growing delay after failures, so the suite stays fast; the
            # lockout tests set it where they measure it.
            "lockout": {"fail_delay": "0"},
        }
        for section, values in (config or {}).items():
            self.config.setdefault(section, {}).update(values)
        self.write_config(config_text)
        self.write_stack("wtest", "auth required %s socket=%s timeout=5\n"
                         "account required %s socket=%s\n"
                         "password required %s socket=%s\n"
                         "session required %s socket=%s\n" % ((MODULE, self.socket) * 4))
        for name, text in (stacks or {}).items():
            self.write_stack(name, text)
        if bus:
            self.start_bus()

    # -- files ---------------------------------------------------------

    def write_config(self, text=None):
        if text is None:
            lines = []
            for section, values in self.config.items():
                lines.append("[%s]" % section)
                lines.extend("%s = %s" % kv for kv in values.items())
            text = "\n".join(lines) + "\n"
        with open(self.config_path, "w") as f:
            f.write(text)
        os.chmod(self.config_path, 0o600)

    def write_stack(self, name, text):
        path = os.path.join(self.pam_dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)

    def probe_set(self, name, token):
        """Returns a stack line that puts token on the stack as PAM_AUTHTOK."""
        path = os.path.join(self.dir, "token-" + name)
        with open(path, "w") as f:
            f.write(token)
        return "auth required %s set=%s\n" % (PAM_PROBE, path)

    def probe_record(self, name):
        """Returns a stack line that records the SHA-256 of PAM_AUTHTOK, and
        the file it writes."""
        path = os.path.join(self.dir, "record-" + name)
        return "auth required %s record=%s\n" % (PAM_PROBE, path), path

    def stack_line(self, kind, args=""):
        return "%s required %s socket=%s %s\n" % (kind, MODULE, self.socket, args)

    # -- processes -----------------------------------------------------

    def start_bus(self):
        conf = os.path.join(self.dir, "bus.conf")
        bus_socket = os.path.join(self.dir, "system_bus_socket")
        with open(conf, "w") as f:
            f.write("""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
""" % bus_socket)
        read_fd, write_fd = os.pipe()
        self.bus = subprocess.Popen(
            ["dbus-daemon", "--config-file=" + conf, "--nofork", "--nopidfile", "--print-address=%d" % write_fd],
            pass_fds=(write_fd,), stderr=subprocess.DEVNULL)
        os.close(write_fd)
        with os.fdopen(read_fd) as f:
            address = f.readline().strip()
        if not address:
            raise RuntimeError("dbus-daemon did not print its address")
        self.bus_address = "unix:path=" + bus_socket
        os.chmod(bus_socket, 0o777)

    def env(self, extra=None):
        env = dict(os.environ)
        env.update(sanitizer_env())
        if self.bus_address:
            env["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus_address
        env.update(extra or {})
        return env

    def set_clock(self, seconds):
        """Sets the development-mode test clock that wardend reads."""
        self.clock_path = os.path.join(self.dir, "clock")
        with open(self.clock_path, "w") as f:
            f.write("%d\n" % seconds)

    def start_daemon(self, expect_ready=True, extra_env=None):
        extra_env = dict(extra_env or {})
        if getattr(self, "clock_path", None):
            extra_env["WARDEN_TEST_CLOCK_FILE"] = self.clock_path
        log = open(self.log_path, "ab")
        self.daemon = subprocess.Popen([WARDEND, "--config", self.config_path], stdout=log, stderr=log,
                                       env=self.env(extra_env))
        self.daemon_pids.add(self.daemon.pid)
        log.close()
        if expect_ready:
            self.wait_ready()
        return self.daemon

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError("wardend exited with %d:\n%s" % (self.daemon.returncode, self.log()))
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.connect(self.socket)
                s.close()
                if self.bus_address is None or self.bus_name_owned():
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("wardend did not become ready:\n" + self.log())

    def bus_name_owned(self):
        proc = subprocess.run(["busctl", "--system", "status", "net.warden.Admin1"], env=self.env(),
                              capture_output=True, text=True)
        return proc.returncode == 0

    def stop_daemon(self, sig=signal.SIGTERM, timeout=30):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.send_signal(sig)
            try:
                self.daemon.wait(timeout)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        code = self.daemon.returncode if self.daemon else None
        self.daemon = None
        return code

    def start_fake(self, mode, path=None):
        path = path or os.path.join(self.dir, "fake-%s.sock" % mode)
        proc = subprocess.Popen([FAKE_DAEMON, path, mode], stdout=subprocess.PIPE, text=True)
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("fake daemon did not start")
        self.fakes.append(proc)
        return path

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def close(self):
        for proc in self.fakes:
            proc.kill()
            proc.wait()
        if self.daemon and self.daemon.poll() is None:
            # A stopped daemon must be resumed before it can act on SIGTERM.
            self.daemon.send_signal(signal.SIGCONT)
        self.stop_daemon()
        if self.bus:
            self.bus.terminate()
            self.bus.wait()
        log = self.log()
        shutil.rmtree(self.dir, ignore_errors=True)
        for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
            if marker in log:
                raise AssertionError("sanitizer report in wardend's log:\n" + log[-6000:])

    # -- store ---------------------------------------------------------

    def hash(self, password, memory_kib=None, iterations=None):
        memory_kib = memory_kib or int(self.config["password"]["argon2_memory_kib"])
        iterations = iterations or int(self.config["password"]["argon2_iterations"])
        proc = subprocess.run([HASH_TOOL, str(memory_kib), str(iterations)], input=password.encode() + b"\n",
                              capture_output=True, check=True)
        return proc.stdout.decode().strip()

    def db(self):
        return sqlite3.connect(os.path.join(self.state, "warden.db"), timeout=10)

    def plant_user(self, name, password=None, phc=None):
        """Writes a user straight into the store, as an older version or a
        restored backup would have left it."""
        phc = phc or self.hash(password)
        now = int(time.time())
        with self.db() as db:
            db.execute("INSERT OR REPLACE INTO users (name, password_hash, created, updated) VALUES (?, ?, ?, ?)",
                       (name, phc, now, now))
        return phc

    def stored_hash(self, name):
        with self.db() as db:
            row = db.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def busctl(self, method, signature, *args, check=True):
        cmd = ["busctl", "--system", "call", "net.warden.Admin1", "/net/warden/Admin1", "net.warden.Admin1",
               method, signature] + [str(a) for a in args]
        proc = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=30)
        if check and proc.returncode != 0:
            raise AssertionError("busctl %s failed: %s" % (method, proc.stderr))
        return proc

    def enroll_totp(self, user, secret, algorithm="SHA1", active=True):
        remember_secret(secret)
        remember_secret(secret.hex())
        """Stores secret (bytes) as the user's TOTP factor through the admin
        API; active=True marks it confirmed without using a code, as a
        factor confirmed long ago would be."""
        self.busctl("EnrollTotp", "saysb", user, len(secret), *secret, algorithm, "true")
        if active:
            with self.db() as db:
                db.execute("UPDATE totp SET state = 'active', confirmed = 1 WHERE user = ?", (user,))

    def set_recovery_codes(self, user, codes):
        return self.busctl("SetRecoveryCodes", "sas", user, len(codes), *codes)

    def user_row(self, name):
        with self.db() as db:
            db.row_factory = sqlite3.Row
            return db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()

    def failure_reasons(self):
        """Reasons of failed authentications, in order, from the debug log."""
        import re
        return re.findall(r"Authentication of user '[^']*' for service '[^']*' failed: (\w+)", self.log())

    def journal_available(self):
        return PRIVATE_JOURNAL

    def journal(self, **fields):
        """Audit and log entries that this Env's wardend processes wrote to
        the private journal, oldest first, optionally filtered by fields."""
        import json
        subprocess.run(["journalctl", "--sync"], check=True)
        proc = subprocess.run(["journalctl", "-o", "json", "--no-pager", "SYSLOG_IDENTIFIER=wardend"],
                              capture_output=True, text=True, check=True)
        entries = []
        for line in proc.stdout.splitlines():
            entry = json.loads(line)
            if int(entry.get("_PID", 0)) not in self.daemon_pids:
                continue
            if all(entry.get(k) == v for k, v in fields.items()):
                entries.append(entry)
        return entries

    # -- clients -------------------------------------------------------

    def pam(self, user, answers=(), service="wtest", ops=("auth",), as_user=None, rhost=None, tty=None,
            extra=(), timeout=60):
        args = [PAM_DRIVER, "--confdir", self.pam_dir, "--service", service, "--user", user]
        if rhost:
            args += ["--rhost", rhost]
        if tty:
            args += ["--tty", tty]
        args += list(extra) + list(ops)
        if as_user:
            args = ["setpriv", "--reuid=" + as_user, "--regid=" + as_user_group(as_user), "--clear-groups"] + args
        for a in answers:
            remember_secret(a)
        data = b"".join((a if isinstance(a, bytes) else a.encode()) + b"\n" for a in answers)
        start = time.monotonic()
        proc = subprocess.run(args, input=data, capture_output=True, timeout=timeout, env=self.env())
        elapsed = time.monotonic() - start
        proc.stdout = proc.stdout.decode(errors="replace")
        proc.stderr = proc.stderr.decode(errors="replace")
        if SANITIZED and proc.returncode in (86, 87):
            raise AssertionError("sanitizer report in pam_driver:\n" + proc.stderr)
        return PamResult(proc, elapsed)

    def ctl(self, *args, input=None, as_user=None):
        if input:
            remember_secret(input.strip())
        cmd = [WARDENCTL] + list(args)
        if as_user:
            cmd = ["setpriv", "--reuid=" + as_user, "--regid=" + as_user_group(as_user), "--clear-groups"] + cmd
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, env=self.env(), timeout=60)
        return proc


def as_user_group(user):
    import grp
    import pwd
    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


class EnvTestCase(unittest.TestCase):
    """Base class: one Env per test, closed afterwards."""

    env_config = None
    env_bus = False

    def make_env(self, **kwargs):
        env = Env(**kwargs)
        self.addCleanup(env.close)
        return env

    def assertCode(self, result, expected, msg=None):
        if result.code != expected:
            raise AssertionError("%s: expected PAM code %d, got %d\n%r" % (msg or "pam", expected, result.code,
                                                                             result))
