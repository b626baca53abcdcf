"""A private mount, network and PID namespace in which the real login
programs (sshd, login, su, sudo, passwd) run against a test wardend.

Inside the namespace, copies of /etc/passwd, /etc/shadow, /etc/group,
/etc/gshadow and /etc/sudoers, and a directory of PAM service files, are
bind-mounted over the host's. Throw-away users therefore exist only
there. /run and /var/log are fresh tmpfs mounts, so
sshd's privilege separation directory, sudo's timestamps and login's
utmp and wtmp records never reach the host. /run/systemd is carried over,
so audit entries still reach the journal that the test suite reads. The
loopback interface is the only network, and every sshd listens on it.

The namespace's first process is a shell that starts the sshd instances
and then waits. Stopping the unshare process that owns it kills the whole
PID namespace, so no sshd or session process outlives the test.
Programs that tests run are entered into the mount and network namespaces
with nsenter, but stay in the caller's PID namespace, so wardend's journal
entries carry PIDs that the test suite can match.
"""

import grp
import json
import os
import pwd
import re
import select
import subprocess
import time

# Debian's own interpreter, which has python3-paramiko. A python3 earlier on
# PATH (pyenv, a virtualenv) usually lacks it.
SYSTEM_PYTHON = "/usr/bin/python3"
SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
HERE = os.path.dirname(os.path.abspath(__file__))
SSH_CLIENT = os.path.join(HERE, "ssh_client.py")

# The programs the sandbox and the tests run, by package, for skip messages.
REQUIRED_PROGRAMS = {
    "/usr/sbin/sshd": "openssh-server",
    "/usr/bin/ssh-keygen": "openssh-client",
    "/usr/bin/unshare": "util-linux",
    "/usr/bin/nsenter": "util-linux",
    "/usr/bin/setpriv": "util-linux",
    "/usr/bin/setsid": "util-linux",
    "/usr/sbin/ip": "iproute2",
    "/usr/bin/ss": "iproute2",
    "/usr/bin/openssl": "openssl",
    "/usr/bin/oathtool": "oathtool",
    "/bin/login": "login",
    "/bin/su": "util-linux",
    "/usr/bin/sudo": "sudo",
    "/usr/bin/passwd": "passwd",
}

# Environment of every program run inside the sandbox: English messages, no
# settings leaking in from the test runner.
PROGRAM_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "LANG": "C", "TERM": "dumb"}


def missing_requirements():
    """Returns a skip reason naming each missing program and its package,
    or None when everything is installed."""
    missing = ["%s (package %s)" % (path, package) for path, package in REQUIRED_PROGRAMS.items()
               if not os.access(path, os.X_OK)]
    proc = subprocess.run([SYSTEM_PYTHON, "-c", "import paramiko"], capture_output=True) \
        if os.access(SYSTEM_PYTHON, os.X_OK) else None
    if proc is None or proc.returncode != 0:
        missing.append("paramiko for %s (package python3-paramiko)" % SYSTEM_PYTHON)
    if not missing:
        return None
    return "missing: " + ", ".join(missing)


def crypt_sha512(password):
    """Returns a SHA-512 crypt(3) hash for /etc/shadow, made by openssl."""
    proc = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password + "\n", capture_output=True,
                          text=True, check=True)
    return proc.stdout.strip()


def free_ids(count, start=4200):
    """Returns count ids that are neither a uid nor a gid on the host."""
    used_ids = {p.pw_uid for p in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}
    ids = []
    candidate = start
    while len(ids) < count:
        if candidate not in used_ids:
            ids.append(candidate)
        candidate += 1
    return ids


class User:
    """A user that exists only inside the sandbox."""

    def __init__(self, name, uid, home, password=None):
        self.name = name
        self.uid = uid
        self.gid = uid
        self.home = home
        self.password = password


class PtySession:
    """A program on a pseudo-terminal, driven like a person at a keyboard.

    The transcript contains everything the program wrote to the terminal,
    which is what its user sees. Answers typed at a prompt with echo off
    never appear in it.
    """

    def __init__(self, args, env, timeout):
        self.master, slave = os.openpty()
        self.transcript = ""
        self.deadline = time.monotonic() + timeout
        # setsid --ctty makes the terminal the controlling one, as getty
        # does for login; su, passwd and login all expect one.
        self.proc = subprocess.Popen(["setsid", "--ctty"] + args, stdin=slave, stdout=slave, stderr=slave,
                                     env=env, close_fds=True)
        os.close(slave)

    def _read(self, wait):
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return False
        try:
            data = os.read(self.master, 4096)
        except OSError:  # EIO: every process holding the terminal has exited
            return None
        if not data:
            return None
        self.transcript += data.decode(errors="replace").replace("\r\n", "\n")
        return True

    def expect(self, pattern):
        """Waits until the transcript matches pattern (a regex) and returns
        the match; raises AssertionError with the transcript on timeout or
        when the program ends first."""
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.transcript)
            if match:
                return match
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("timed out waiting for %r; the terminal shows:\n%s" % (pattern, self.transcript))
            if self._read(remaining) is None:
                match = regex.search(self.transcript)
                if match:
                    return match
                raise AssertionError("the program ended before %r; the terminal shows:\n%s" % (pattern,
                                                                                             self.transcript))

    def send_line(self, text):
        os.write(self.master, text.encode() + b"\n")

    def finish(self):
        """Reads until the program exits and returns its exit status."""
        while self._read(max(0.0, self.deadline - time.monotonic())) and time.monotonic() < self.deadline:
            pass
        try:
            code = self.proc.wait(max(0.1, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("the program did not exit in time; the terminal shows:\n" + self.transcript)
        self._close_master()
        return code

    def kill(self):
        """Kills the program if it still runs and closes the terminal."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_master()

    def _close_master(self):
        if self.master is not None:
            os.close(self.master)
            self.master = None


class LoginSandbox:
    """Files, users and sshd instances for one test, and the namespace that
    runs them. Configure with add_user, write_pam, write_sudoers and
    add_sshd, then call start."""

    def __init__(self, base_dir):
        self.dir = os.path.join(base_dir, "sandbox")
        self.etc = os.path.join(self.dir, "etc")
        self.pam_dir = os.path.join(self.etc, "pam.d")
        os.makedirs(self.pam_dir)
        os.makedirs(os.path.join(self.dir, "home"))
        os.makedirs(os.path.join(self.dir, "keep-run-systemd"))
        # Each user must reach a home directory below this one.
        os.chmod(self.dir, 0o755)
        os.chmod(os.path.join(self.dir, "home"), 0o755)
        self.users = {}
        self.sshd = {}
        self.holder = None
        # Terminal sessions run outside the sandbox's PID namespace, so
        # close() kills any that a failed test left waiting for input.
        self.sessions = []
        self.sudoers = "Defaults !syslog\n"
        self._ids = iter(free_ids(16))
        # PAM uses "other" for a service without a file of its own, so
        # everything is denied there.
        self.write_pam("other", "auth required pam_deny.so\naccount required pam_deny.so\n"
                                "password required pam_deny.so\nsession required pam_deny.so\n")
        self.host_key = os.path.join(self.dir, "ssh_host_ed25519_key")
        subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "warden-test-host", "-f", self.host_key],
                       check=True)
        self.client_key = os.path.join(self.dir, "client_ed25519_key")
        subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "warden-test-client", "-f",
                        self.client_key], check=True)
        self.known_hosts = os.path.join(self.dir, "known_hosts")

    # -- configuration ---------------------------------------------------

    def add_user(self, name, password=None, authorized_key=False):
        """Adds a user with a home directory. password goes into the copied
        /etc/shadow for pam_unix; without one the shadow entry is '*', so
        only Warden can authenticate the user."""
        try:
            pwd.getpwnam(name)
        except KeyError:
            pass
        else:
            raise RuntimeError("user %r exists on this host; the sandbox needs a name of its own" % name)
        uid = next(self._ids)
        home = os.path.join(self.dir, "home", name)
        os.makedirs(home)
        if authorized_key:
            ssh_dir = os.path.join(home, ".ssh")
            os.makedirs(ssh_dir)
            with open(self.client_key + ".pub") as f:
                public_key = f.read()
            with open(os.path.join(ssh_dir, "authorized_keys"), "w") as f:
                f.write(public_key)
            os.chmod(ssh_dir, 0o700)
            os.chmod(os.path.join(ssh_dir, "authorized_keys"), 0o600)
            for path in (ssh_dir, os.path.join(ssh_dir, "authorized_keys")):
                os.chown(path, uid, uid)
        os.chmod(home, 0o755)
        os.chown(home, uid, uid)
        user = User(name, uid, home, password)
        self.users[name] = user
        return user

    def write_pam(self, service, text):
        path = os.path.join(self.pam_dir, service)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)

    def write_sudoers(self, text):
        self.sudoers = text

    def add_sshd(self, name, port, options):
        """Adds an sshd instance on 127.0.0.1:port; options are
        sshd_config lines that follow the common ones."""
        config = os.path.join(self.dir, "sshd_config-" + name)
        common = ["ListenAddress 127.0.0.1", "Port %d" % port, "HostKey " + self.host_key, "PidFile none",
                  "UsePAM yes", "PermitRootLogin no", "UseDNS no", "PrintMotd no", "PrintLastLog no",
                  "X11Forwarding no", "AllowTcpForwarding no", "LogLevel VERBOSE"]
        with open(config, "w") as f:
            f.write("\n".join(common + list(options)) + "\n")
        self.sshd[name] = {"port": port, "config": config, "log": os.path.join(self.dir, "sshd-%s.log" % name)}
        with open(self.host_key + ".pub") as f:
            key_type, key_data = f.read().split()[:2]
        with open(self.known_hosts, "a") as f:
            f.write("[127.0.0.1]:%d %s %s\n" % (port, key_type, key_data))

    def sshd_log(self, name):
        with open(self.sshd[name]["log"], errors="replace") as f:
            return f.read()

    def _write_etc(self):
        def copy_with(name, extra_lines, mode):
            with open("/etc/" + name) as f:
                text = f.read()
            if text and not text.endswith("\n"):
                text += "\n"
            path = os.path.join(self.etc, name)
            with open(path, "w") as f:
                f.write(text + "".join(line + "\n" for line in extra_lines))
            os.chmod(path, mode)

        users = list(self.users.values())
        copy_with("passwd", ["%s:x:%d:%d:Warden test user:%s:/bin/sh" % (u.name, u.uid, u.gid, u.home)
                             for u in users], 0o644)
        copy_with("group", ["%s:x:%d:" % (u.name, u.gid) for u in users], 0o644)
        # Day 19000 (2022) as the last change and no maximum age, so
        # pam_unix treats the account as valid and unexpired.
        copy_with("shadow", ["%s:%s:19000:0:99999:7:::" % (u.name, crypt_sha512(u.password) if u.password else "*")
                             for u in users], 0o640)
        copy_with("gshadow", ["%s:!::" % u.name for u in users], 0o640)
        sudoers = os.path.join(self.etc, "sudoers")
        with open(sudoers, "w") as f:
            f.write(self.sudoers)
        os.chmod(sudoers, 0o440)

    def _setup_script(self):
        binds = ["passwd", "shadow", "group", "gshadow", "sudoers"]
        lines = [
            "set -eu",
            "ip link set lo up",
            # Keep the journal's sockets: move /run/systemd aside, cover
            # /run with a tmpfs, and move it back.
            "[ -d /run/systemd ] && keep=1 || keep=0",
            '[ $keep = 0 ] || mount --rbind /run/systemd "$1/keep-run-systemd"',
            "mount -t tmpfs -o mode=755 tmpfs /run",
            "mkdir -m 755 /run/sshd /run/systemd",
            '[ $keep = 0 ] || mount --move "$1/keep-run-systemd" /run/systemd',
            "mount -t tmpfs -o mode=755 tmpfs /var/log",
        ]
        for name in binds:
            if os.path.exists("/etc/" + name):
                lines.append('mount --bind "$1/etc/%s" /etc/%s' % (name, name))
        lines.append('mount --bind "$1/etc/pam.d" /etc/pam.d')
        for name, sshd in self.sshd.items():
            lines.append("%s -t -f %s" % (SSHD, sshd["config"]))
            # -D keeps sshd in the foreground as a child of this shell;
            # -e sends its log to the file instead of syslog.
            lines.append("%s -D -e -f %s </dev/null >/dev/null 2>%s &" % (SSHD, sshd["config"], sshd["log"]))
        for sshd in self.sshd.values():
            lines.append("for i in $(seq 100); do ss -Hltn 'sport = :%d' | grep -q . && break; sleep 0.05; done"
                         % sshd["port"])
            lines.append("ss -Hltn 'sport = :%d' | grep -q . || { echo 'sshd is not listening on port %d' >&2; "
                         "exit 1; }" % (sshd["port"], sshd["port"]))
        lines.append("echo ready")
        # Stay as the namespace's first process until the test stops it.
        lines.append("exec 1>/dev/null")
        lines.append("while :; do sleep 3600 & wait $!; done")
        return "\n".join(lines) + "\n"

    # -- lifetime --------------------------------------------------------

    def start(self, timeout=20):
        self._write_etc()
        script = os.path.join(self.dir, "setup.sh")
        with open(script, "w") as f:
            f.write(self._setup_script())
        errors = open(os.path.join(self.dir, "setup.log"), "wb")
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--net", "--pid", "--fork", "--kill-child", "--propagation", "private",
             "/bin/sh", script, self.dir],
            stdout=subprocess.PIPE, stderr=errors, env=PROGRAM_ENV)
        errors.close()
        ready, _, _ = select.select([self.holder.stdout], [], [], timeout)
        line = self.holder.stdout.readline().decode().strip() if ready else ""
        if line != "ready":
            self.close()
            with open(os.path.join(self.dir, "setup.log"), errors="replace") as f:
                raise RuntimeError("the login sandbox did not start:\n" + f.read())

    def close(self):
        """Stops the namespace. unshare ignores SIGTERM while it waits for
        its child, so it gets SIGKILL; --kill-child then kills the first
        process, and with it every process in the PID namespace."""
        for session in self.sessions:
            session.kill()
        self.sessions = []
        if self.holder is None:
            return
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait()
        self.holder.stdout.close()
        self.holder = None

    # -- running programs inside -----------------------------------------

    def enter(self, args, as_user=None):
        """Returns the command line that runs args inside the namespace,
        as as_user (a user name) when given."""
        prefix = ["nsenter", "--target", str(self.holder.pid), "--mount", "--net", "--"]
        if as_user:
            # Names resolve through the sandbox's /etc/passwd, since setpriv
            # runs inside the namespace.
            prefix += ["setpriv", "--reuid=" + as_user, "--regid=" + as_user, "--init-groups"]
        return prefix + list(args)

    def run(self, args, as_user=None, input=None, timeout=60, env=None):
        return subprocess.run(self.enter(args, as_user), input=input, capture_output=True, text=True,
                              timeout=timeout, env=dict(PROGRAM_ENV, **(env or {})))

    def popen(self, args, **kwargs):
        return subprocess.Popen(self.enter(args), **kwargs)

    def terminal(self, args, as_user=None, timeout=30, env=None):
        """Starts args on a pseudo-terminal inside the namespace."""
        session = PtySession(self.enter(args, as_user), dict(PROGRAM_ENV, **(env or {})), timeout)
        self.sessions.append(session)
        return session

    def ssh(self, sshd, user, method, answers=(), timeout=30):
        """Logs in to an sshd instance with the paramiko client and runs
        `id`. Returns the client's report (see ssh_client.py)."""
        args = [SYSTEM_PYTHON, SSH_CLIENT, "--port", str(self.sshd[sshd]["port"]), "--user", user,
                "--method", method, "--known-hosts", self.known_hosts, "--key", self.client_key]
        start = time.monotonic()
        proc = self.run(args, input=json.dumps(list(answers)), timeout=timeout)
        elapsed = time.monotonic() - start
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError("the ssh client failed (exit %d):\n%s\n%s" % (proc.returncode, proc.stdout,
                                                                             proc.stderr))
        report["elapsed"] = elapsed
        return report
