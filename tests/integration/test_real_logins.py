"""The real login programs with Warden in their PAM stacks: OpenSSH sshd,
login, su, sudo, passwd, and a screen locker's own pam_authenticate.

Each test builds a private mount, network and PID namespace (see
real/sandbox.py) in which throw-away users exist, /etc/pam.d contains the
stacks under test, and sshd listens on 127.0.0.1 only. wardend runs in the
same mount namespace, so it can resolve those users' uids, with the test
clock, so each login types a fresh TOTP code. Clients drive the programs as
a person would: paramiko for sshd, a pseudo-terminal for login, su and
passwd, and standard input for `sudo -S`.
"""

import os
import signal
import subprocess
import sys
import unittest

from warden_env import (Env, EnvTestCase, IS_ROOT, MODULE, PAM_AUTH_ERR, PAM_DRIVER, PAM_PERM_DENIED, PAM_SUCCESS,
                        SANITIZED, WARDEND, remember_secret, requires_journal, sanitizer_env)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "real"))
from sandbox import LoginSandbox, missing_requirements  # noqa: E402

SKIP_REASON = "needs root for namespaces, bind mounts and setuid programs" if not IS_ROOT else missing_requirements()
requires_sandbox = unittest.skipIf(SKIP_REASON, SKIP_REASON)
# sshd, login, su, sudo and passwd are not built with AddressSanitizer, so
# they cannot load a sanitizer build of pam_warden.so. pam_driver is built
# with it and still runs.
requires_plain_module = unittest.skipIf(SANITIZED, "the system's login programs cannot load a sanitizer build "
                                                   "of pam_warden.so")

P_ALICE = "alice warden passphrase"      # alice: enrolled in Warden, with a TOTP factor
P_BOB = "bob unix passphrase"            # bob: not enrolled, a password in the sandbox's /etc/shadow
P_CAROL = "carol warden passphrase"      # carol: enrolled, runs the screen locker
NEW_PASSWORD = "plum kettle orbit lantern 42"
S1 = b"12345678901234567890"             # the RFC 6238 SHA1 test key
T0 = 59                                  # RFC 6238 vector time: the code is 287082
MODULE_TIMEOUT = 3                       # pam_warden timeout= in every stack here
GENERIC = "Authentication failed"

# Stack lines, where {m} becomes pam_warden.so by absolute path with the
# socket and timeout. Users Warden does not know fall through to pam_unix, as the
# README's stack for mixed hosts does.
AUTH_WITH_FALLBACK = ("auth     [success=done user_unknown=ignore default=die] {m} pass_unknown\n"
                      "auth     required pam_unix.so nodelay\n")
ACCOUNT_WITH_FALLBACK = ("account  [success=done user_unknown=ignore default=die] {m}\n"
                         "account  required pam_unix.so\n")
SESSION = "session  optional {m}\n"
NO_PASSWORD_CHANGE = "password required pam_deny.so\n"

SSHD_STACK = AUTH_WITH_FALLBACK + ACCOUNT_WITH_FALLBACK + SESSION + NO_PASSWORD_CHANGE
SSHD_COMBINED_STACK = SSHD_STACK.replace("{m} pass_unknown\n", "{m} pass_unknown prompt=combined\n", 1)
SSHD_KEY_THEN_CODE_STACK = ("auth     required {m} factors=totp\n" + ACCOUNT_WITH_FALLBACK + SESSION +
                            NO_PASSWORD_CHANGE)
WARDEN_ONLY_STACK = ("auth     required {m}\n"
                     "account  required {m}\n"
                     "session  optional {m}\n"
                     "password required {m}\n")
SU_STACK = ("auth     sufficient pam_rootok.so\n"
            "auth     required {m}\n"
            "account  required {m}\n"
            "session  optional {m}\n")
SUDO_STACK = ("auth     required {m} prompt=combined\n"
              "account  required {m}\n"
              "session  optional {m}\n")
PASSWD_STACK = "password required {m}\n"
SCREEN_LOCKER_STACK = "auth     required {m}\n"
SUDOERS = ("Defaults !syslog, timestamp_timeout=0, passwd_tries=1\n"
           "alice ALL=(ALL:ALL) ALL\n")

# sshd instances: name -> (port, sshd_config lines).
SSHD_TWO_PROMPTS = {"kbdint": (2201, ["KbdInteractiveAuthentication yes", "PasswordAuthentication no",
                                      "PubkeyAuthentication no", "AuthenticationMethods keyboard-interactive"])}
SSHD_PASSWORD = {"password": (2202, ["KbdInteractiveAuthentication no", "PasswordAuthentication yes",
                                     "PubkeyAuthentication no", "AuthenticationMethods password"])}
SSHD_KEY_THEN_CODE = {"keycode": (2203, ["KbdInteractiveAuthentication yes", "PasswordAuthentication no",
                                         "PubkeyAuthentication yes",
                                         "AuthenticationMethods publickey,keyboard-interactive"])}
SSHD_KEY_ONLY = {"keyonly": (2204, ["KbdInteractiveAuthentication no", "PasswordAuthentication no",
                                    "PubkeyAuthentication yes", "AuthenticationMethods publickey"])}


def oathtool(t):
    """The code of S1 at time t, from the reference tool."""
    proc = subprocess.run(["oathtool", "--totp", "-d", "6", "-N", "@%d" % t, S1.hex()], capture_output=True,
                          text=True, check=True)
    return proc.stdout.strip()


def wrong_code(t):
    """A six-digit code that no step in the default window around t accepts."""
    window = {oathtool(t + 30 * step) for step in (-1, 0, 1)}
    candidate = int(oathtool(t))
    while "%06d" % candidate in window:
        candidate = (candidate + 1) % 1000000
    remember_secret("%06d" % candidate)
    return "%06d" % candidate


class SandboxEnv(Env):
    """An Env whose wardend runs inside the sandbox's mount and network
    namespaces, where it resolves the throw-away users' uids."""

    sandbox = None

    def start_daemon(self, expect_ready=True, extra_env=None):
        extra_env = dict(extra_env or {})
        if getattr(self, "clock_path", None):
            extra_env["WARDEN_TEST_CLOCK_FILE"] = self.clock_path
        with open(self.log_path, "ab") as log:
            # nsenter execs wardend without forking, so this PID is the
            # daemon's and its journal entries match daemon_pids.
            self.daemon = self.sandbox.popen([WARDEND, "--config", self.config_path], stdout=log, stderr=log,
                                             env=self.env(extra_env))
        self.daemon_pids.add(self.daemon.pid)
        if expect_ready:
            self.wait_ready()
        return self.daemon


@requires_sandbox
class RealLoginTestCase(EnvTestCase):
    """Starts a sandbox and its wardend. alice and carol are enrolled with
    a password and S1, and bob only has a pam_unix password."""

    def start(self, stacks, sshd=None, config=None, sudoers=None):
        settings = {"mfa": {"mode": "required"}, "daemon": {"dbus": "system"}}
        for section, values in (config or {}).items():
            settings.setdefault(section, {}).update(values)
        env = SandboxEnv(config=settings, bus=True)
        self.addCleanup(env.close)
        sandbox = LoginSandbox(env.dir)
        self.addCleanup(sandbox.close)  # runs before env.close

        self.users = {
            "alice": sandbox.add_user("alice", authorized_key=True),
            "bob": sandbox.add_user("bob", password=P_BOB),
            "carol": sandbox.add_user("carol"),
        }
        module = "%s socket=%s timeout=%d" % (MODULE, env.socket, MODULE_TIMEOUT)
        for service, text in stacks.items():
            sandbox.write_pam(service, text.format(m=module))
        for name, (port, options) in (sshd or {}).items():
            sandbox.add_sshd(name, port, options)
        if sudoers:
            sandbox.write_sudoers(sudoers)
        sandbox.start()

        env.sandbox = sandbox
        self.t = T0
        env.set_clock(self.t)
        env.start_daemon()
        env.plant_user("alice", P_ALICE)
        env.enroll_totp("alice", S1)
        env.plant_user("carol", P_CAROL)
        env.enroll_totp("carol", S1)

        for secret in (P_ALICE, P_BOB, P_CAROL, NEW_PASSWORD):
            remember_secret(secret)
        self.env = env
        self.sandbox = sandbox
        return env, sandbox

    def fresh_code(self):
        """Moves the test clock to the next TOTP step and returns its code."""
        self.t += 30
        self.env.set_clock(self.t)
        code = oathtool(self.t)
        remember_secret(code)
        return code

    def uid_text(self, name):
        return "uid=%d(%s)" % (self.users[name].uid, name)

    def end_failed_session(self, terminal):
        """Kills a terminal session that waits for input after a failure
        and returns what it showed."""
        terminal.kill()
        return terminal.transcript

    def assertUnknownUserPassedOn(self, user):
        """Checks that Warden saw the user and passed it on with
        pass_unknown: a line in its debug log, and no failure in the
        journal, since pam_unix judged the login."""
        self.assertIn("User '%s' is not enrolled; passed on to the next module" % user, self.env.log())
        if self.env.journal_available():
            self.assertEqual(self.env.journal(WARDEN_EVENT="auth", WARDEN_USER=user), [])

    def assertNoReasonShown(self, text):
        """Only the generic message may tell the user why a login failed."""
        for word in ("code", "replay", "locked", "throttled", "unknown", "enrolled"):
            self.assertNotIn(word, text.lower().replace("verification code: ", ""), text)


@requires_plain_module
class SshdTwoPromptTest(RealLoginTestCase):
    """sshd with keyboard-interactive: `Password: `, then `Verification
    code: `, in two rounds."""

    def setUp(self):
        self.start({"sshd": SSHD_STACK}, sshd=SSHD_TWO_PROMPTS)

    def login(self, user, answers):
        return self.sandbox.ssh("kbdint", user, "keyboard-interactive", answers)

    def test_right_answers_log_in(self):
        r = self.login("alice", [P_ALICE, self.fresh_code()])
        self.assertEqual(r["result"], "success", r)
        self.assertEqual(r["prompts"], ["Password: ", "Verification code: "])
        self.assertEqual(r["instructions"], [])
        self.assertEqual(r["exit_status"], 0)
        self.assertIn(self.uid_text("alice"), r["id"])
        self.assertIn("Accepted keyboard-interactive/pam for alice from 127.0.0.1", self.sandbox.sshd_log("kbdint"))

    def test_wrong_code_replay_or_password_fail(self):
        used = self.fresh_code()
        self.assertEqual(self.login("alice", [P_ALICE, used])["result"], "success")
        self.env.set_clock(self.t + 1)  # the same step: the used code is still current
        reports = {
            "wrong code": self.login("alice", [P_ALICE, wrong_code(self.t)]),
            "replayed code": self.login("alice", [P_ALICE, used]),
            "wrong password": self.login("alice", ["not alice's passphrase", self.fresh_code()]),
        }
        for case, r in reports.items():
            with self.subTest(case=case):
                self.assertEqual(r["result"], "rejected", r)
                self.assertEqual(r["prompts"], ["Password: ", "Verification code: "], "the same prompts")
                self.assertEqual(r["instructions"], [GENERIC + "\n"], "only the generic message")
                self.assertEqual(r["error"], "Authentication failed.")
                self.assertIsNone(r["id"])
        self.assertEqual(self.env.failure_reasons(), ["code", "replay", "password"])
        self.assertEqual(self.sandbox.sshd_log("kbdint").count("Failed keyboard-interactive/pam for alice"), 3)

    def test_unenrolled_user_falls_through_to_pam_unix(self):
        # pam_warden hands the password typed at its prompt on as
        # PAM_AUTHTOK, which pam_unix checks without asking again.
        r = self.login("bob", [P_BOB, ""])
        self.assertEqual(r["result"], "success", r)
        self.assertEqual(r["prompts"], ["Password: ", "Verification code: "], "Warden's prompts only")
        self.assertIn(self.uid_text("bob"), r["id"])
        self.assertUnknownUserPassedOn("bob")
        rejected = self.login("bob", ["not bob's passphrase", "", "not bob's passphrase"])
        self.assertEqual(rejected["result"], "rejected", rejected)

    def test_enrolled_user_never_reaches_pam_unix(self):
        r = self.login("alice", ["not alice's passphrase", self.fresh_code(), P_ALICE])
        self.assertEqual(r["result"], "rejected", r)
        self.assertEqual(r["prompts"], ["Password: ", "Verification code: "], "no third prompt: default=die")

    def test_daemon_stopped_rejects_at_once(self):
        self.env.stop_daemon()
        for user, answers in (("alice", [P_ALICE, self.fresh_code()]), ("bob", [P_BOB, "", P_BOB])):
            with self.subTest(user=user):
                r = self.login(user, answers)
                self.assertEqual(r["result"], "rejected", r)
                self.assertEqual(r["prompts"], [], "nothing is asked without the daemon")
                self.assertLess(r["elapsed"], MODULE_TIMEOUT, "rejected well within the module's timeout")

    def test_daemon_frozen_rejects_within_timeout(self):
        self.env.daemon.send_signal(signal.SIGSTOP)
        try:
            r = self.login("alice", [P_ALICE, self.fresh_code()])
        finally:
            self.env.daemon.send_signal(signal.SIGCONT)
        self.assertEqual(r["result"], "rejected", r)
        self.assertGreater(r["elapsed"], MODULE_TIMEOUT - 0.5, "the module waited for the daemon")
        self.assertLess(r["elapsed"], MODULE_TIMEOUT + 5, "and gave up after its timeout")
        self.assertEqual(r["prompts"], [])

    @requires_journal
    def test_audit_entries_name_sshd_and_remote_host(self):
        self.assertEqual(self.login("alice", [P_ALICE, self.fresh_code()])["result"], "success")
        self.assertEqual(self.login("alice", [P_ALICE, wrong_code(self.t)])["result"], "rejected")
        success = self.env.journal(WARDEN_EVENT="auth", WARDEN_RESULT="success")
        failure = self.env.journal(WARDEN_EVENT="auth", WARDEN_RESULT="failure")
        sessions = self.env.journal(WARDEN_EVENT="session_open")
        self.assertEqual(len(success), 1)
        self.assertEqual(len(failure), 1)
        self.assertEqual(len(sessions), 1)
        for e in success + failure + sessions:
            with self.subTest(event=e["WARDEN_EVENT"], result=e["WARDEN_RESULT"]):
                self.assertEqual(e["WARDEN_SERVICE"], "sshd")
                self.assertEqual(e["WARDEN_RHOST"], "127.0.0.1")
                self.assertEqual(e["WARDEN_USER"], "alice")
                self.assertEqual(e["WARDEN_PEER_UID"], "0")
        self.assertEqual(success[0]["WARDEN_TTY"], "ssh", "sshd's PAM_TTY before a terminal is allocated")
        self.assertEqual(failure[0]["WARDEN_REASON"], "code")
        self.assertIn("rhost=127.0.0.1 user=alice", failure[0]["MESSAGE"])


@requires_plain_module
class SshdCombinedPromptTest(RealLoginTestCase):
    """sshd with PasswordAuthentication, which answers every hidden prompt
    with the typed password, and pam_warden.so prompt=combined."""

    def setUp(self):
        self.start({"sshd": SSHD_COMBINED_STACK}, sshd=SSHD_PASSWORD)

    def login(self, user, password):
        return self.sandbox.ssh("password", user, "password", [password])

    def test_password_then_code_in_one_answer(self):
        r = self.login("alice", P_ALICE + self.fresh_code())
        self.assertEqual(r["result"], "success", r)
        self.assertIn(self.uid_text("alice"), r["id"])
        self.assertIn("Accepted password for alice from 127.0.0.1", self.sandbox.sshd_log("password"))

    def test_wrong_or_missing_code_fails(self):
        self.env.set_clock(self.t + 30)
        r = self.login("alice", P_ALICE + wrong_code(self.t + 30))
        self.assertEqual(r["result"], "rejected", r)
        self.assertEqual(self.env.failure_reasons(), ["code"])
        r = self.login("alice", P_ALICE)
        self.assertEqual(r["result"], "rejected", "the password alone: %r" % r)
        self.assertEqual(len(self.env.failure_reasons()), 2)

    def test_unenrolled_user_types_only_the_password(self):
        r = self.login("bob", P_BOB)
        self.assertEqual(r["result"], "success", r)
        self.assertIn(self.uid_text("bob"), r["id"])
        self.assertUnknownUserPassedOn("bob")


@requires_plain_module
class SshdPublicKeyThenCodeTest(RealLoginTestCase):
    """AuthenticationMethods publickey,keyboard-interactive with
    pam_warden.so factors=totp: the key, then only the code."""

    def setUp(self):
        self.start({"sshd": SSHD_KEY_THEN_CODE_STACK}, sshd=SSHD_KEY_THEN_CODE)

    def test_key_and_code_log_in(self):
        r = self.sandbox.ssh("keycode", "alice", "publickey+keyboard-interactive", [self.fresh_code()])
        self.assertEqual(r["result"], "success", r)
        self.assertEqual(r["partial"], ["keyboard-interactive"], "the key alone is not enough")
        self.assertEqual(r["prompts"], ["Verification code: "], "no password is asked")
        self.assertIn(self.uid_text("alice"), r["id"])

    def test_key_and_wrong_code_fail(self):
        r = self.sandbox.ssh("keycode", "alice", "publickey+keyboard-interactive", [wrong_code(self.t)])
        self.assertEqual(r["result"], "rejected", r)
        self.assertEqual(r["prompts"], ["Verification code: "])
        self.assertEqual(self.env.failure_reasons(), ["code"])

    def test_code_without_key_fails(self):
        r = self.sandbox.ssh("keycode", "alice", "keyboard-interactive", [self.fresh_code()])
        self.assertEqual(r["result"], "rejected", r)
        self.assertEqual(r["prompts"], [], "sshd asks for the key first")


@requires_plain_module
class SshdLockoutTest(RealLoginTestCase):
    def setUp(self):
        self.start({"sshd": SSHD_STACK}, sshd=dict(SSHD_TWO_PROMPTS, **SSHD_KEY_ONLY),
                   config={"lockout": {"deny": "3"}})

    def login(self, answers):
        return self.sandbox.ssh("kbdint", "alice", "keyboard-interactive", answers)

    def test_lock_after_deny_failures(self):
        for i in range(3):
            self.assertEqual(self.login(["wrong passphrase %d" % i, self.fresh_code()])["result"], "rejected")
        r = self.login([P_ALICE, self.fresh_code()])
        self.assertEqual(r["result"], "rejected", "the right answers while locked: %r" % r)
        self.assertEqual(r["prompts"], ["Password: ", "Verification code: "], "the same prompts as always")
        self.assertEqual(r["instructions"], [GENERIC + "\n"], "only the generic message")
        self.assertEqual(self.env.failure_reasons(), ["password"] * 3 + ["locked"])

        key = self.sandbox.ssh("keyonly", "alice", "publickey")
        self.assertEqual(key["result"], "rejected", "a key login of a locked user: %r" % key)
        self.assertIn("Access denied for user alice by PAM account configuration", self.sandbox.sshd_log("keyonly"))

        unlock = self.env.ctl("unlock", "alice")
        self.assertEqual(unlock.returncode, 0, unlock.stderr)
        r = self.login([P_ALICE, self.fresh_code()])
        self.assertEqual(r["result"], "success", "after wardenctl unlock: %r" % r)
        key = self.sandbox.ssh("keyonly", "alice", "publickey")
        self.assertEqual(key["result"], "success", key)


@requires_plain_module
class ConsoleLoginTest(RealLoginTestCase):
    """/bin/login on a pseudo-terminal, as getty would start it."""

    def setUp(self):
        self.start({"login": WARDEN_ONLY_STACK}, config={"lockout": {"deny": "2"}})

    def test_two_prompts_shell_and_session(self):
        code = self.fresh_code()
        term = self.sandbox.terminal(["login", "alice"])
        term.expect("Password: ")
        term.send_line(P_ALICE)
        term.expect("Verification code: ")
        term.send_line(code)
        term.expect(r"\$ ")
        term.send_line("id; exit")
        self.assertEqual(term.finish(), 0, term.transcript)
        self.assertIn(self.uid_text("alice"), term.transcript)
        self.assertNotIn(P_ALICE, term.transcript, "the password is not echoed")
        self.assertNotIn(code, term.transcript, "the code is not echoed")
        log = self.env.log()
        for request in ("authenticate", "account", "open_session", "close_session"):
            self.assertIn("Request %s for user 'alice' service 'login'" % request, log)
        if self.env.journal_available():
            sessions = self.env.journal(WARDEN_SERVICE="login", WARDEN_EVENT="session_open")
            self.assertEqual(len(sessions), 1)
            self.assertTrue(sessions[0]["WARDEN_TTY"].startswith("/dev/pts/"), sessions[0]["WARDEN_TTY"])
            self.assertEqual(len(self.env.journal(WARDEN_SERVICE="login", WARDEN_EVENT="session_close")), 1)

    def test_wrong_code_rejected(self):
        term = self.sandbox.terminal(["login", "alice"])
        term.expect("Password: ")
        term.send_line(P_ALICE)
        term.expect("Verification code: ")
        term.send_line(wrong_code(self.t))
        term.expect("Login incorrect")
        # Up to the next "HOST login: " prompt, which names the host.
        shown = self.end_failed_session(term).split("Login incorrect")[0]
        self.assertIn(GENERIC, shown)
        self.assertNoReasonShown(shown)
        self.assertEqual(self.env.failure_reasons(), ["code"])
        self.assertNotIn("Request account", self.env.log(), "no account phase after a failed authentication")

    def test_locked_account_rejected_in_account(self):
        for i in range(2):
            self.assertCode(self.env.pam("alice", ["wrong passphrase %d" % i, self.fresh_code()]), PAM_AUTH_ERR)
        # login -f: root vouches for the user, so only account and session run.
        term = self.sandbox.terminal(["login", "-f", "alice"])
        self.assertEqual(term.finish(), 1, term.transcript)
        self.assertIn("Account locked.", term.transcript)
        self.assertIn("Permission denied", term.transcript)
        self.assertNotIn("Password: ", term.transcript)
        self.assertIn("Refused account access to locked user 'alice'", self.env.log())
        self.assertNotIn("Request open_session", self.env.log(), "no session for a rejected account")

        self.assertEqual(self.env.ctl("unlock", "alice").returncode, 0)
        term = self.sandbox.terminal(["login", "-f", "alice"])
        term.expect(r"\$ ")
        term.send_line("id; exit")
        self.assertEqual(term.finish(), 0, term.transcript)
        self.assertIn(self.uid_text("alice"), term.transcript)


@requires_plain_module
class SuTest(RealLoginTestCase):
    """/bin/su on a pseudo-terminal, run by bob to become alice, and by
    root, whom pam_rootok lets through without a password."""

    def setUp(self):
        self.start({"su": SU_STACK}, config={"lockout": {"deny": "2"}})

    def su_as_bob(self, answers):
        term = self.sandbox.terminal(["su", "alice", "-c", "id"], as_user="bob")
        for prompt, answer in zip(["Password: ", "Verification code: "], answers):
            term.expect(prompt)
            term.send_line(answer)
        return term.finish(), term.transcript

    def test_user_switches_with_password_and_code(self):
        code, shown = self.su_as_bob([P_ALICE, self.fresh_code()])
        self.assertEqual(code, 0, shown)
        self.assertIn(self.uid_text("alice"), shown)
        log = self.env.log()
        for request in ("authenticate", "account", "open_session", "close_session"):
            self.assertIn("Request %s for user 'alice' service 'su'" % request, log)

    def test_wrong_code_rejected(self):
        code, shown = self.su_as_bob([P_ALICE, wrong_code(self.t)])
        self.assertEqual(code, 1, shown)
        self.assertIn("su: Authentication failure", shown)
        self.assertIn(GENERIC, shown)
        self.assertNoReasonShown(shown)
        self.assertNotIn(self.uid_text("alice"), shown)
        self.assertEqual(self.env.failure_reasons(), ["code"])

    def test_root_rejected_for_locked_account(self):
        for i in range(2):
            self.assertCode(self.env.pam("alice", ["wrong passphrase %d" % i, self.fresh_code()]), PAM_AUTH_ERR)
        term = self.sandbox.terminal(["su", "alice", "-c", "id"])
        self.assertEqual(term.finish(), 1, term.transcript)
        self.assertIn("Account locked.", term.transcript)
        self.assertIn("su: Permission denied", term.transcript)
        self.assertNotIn("Password: ", term.transcript, "pam_rootok let root skip authentication")
        self.assertIn("Refused account access to locked user 'alice'", self.env.log())

        self.assertEqual(self.env.ctl("unlock", "alice").returncode, 0)
        term = self.sandbox.terminal(["su", "alice", "-c", "id"])
        self.assertEqual(term.finish(), 0, term.transcript)
        self.assertIn(self.uid_text("alice"), term.transcript)


@requires_plain_module
class SudoTest(RealLoginTestCase):
    """sudo -S, which reads one line from standard input, with
    pam_warden.so prompt=combined."""

    def setUp(self):
        self.start({"sudo": SUDO_STACK}, sudoers=SUDOERS)

    def sudo(self, answer):
        return self.sandbox.run(["sudo", "-S", "id"], as_user="alice", input=answer + "\n", timeout=30)

    def test_password_and_code_in_one_line(self):
        r = self.sudo(P_ALICE + self.fresh_code())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "uid=0(root) gid=0(root) groups=0(root)")
        self.assertEqual(r.stderr, "Password and verification code: ", "sudo shows Warden's prompt, once")
        log = self.env.log()
        self.assertIn("Request authenticate for user 'alice' service 'sudo'", log)
        self.assertIn("Request account for user 'alice' service 'sudo'", log)
        self.assertIn("Request open_session for user 'root' service 'sudo'", log, "the session is the target's")

    def test_wrong_replayed_or_missing_code(self):
        used = self.fresh_code()
        self.assertEqual(self.sudo(P_ALICE + used).returncode, 0)
        self.env.set_clock(self.t + 1)
        cases = {
            "wrong code": P_ALICE + wrong_code(self.t),
            "replayed code": P_ALICE + used,
            "no code": P_ALICE,
        }
        for case, answer in cases.items():
            with self.subTest(case=case):
                r = self.sudo(answer)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertIn("sudo: 1 incorrect password attempt", r.stderr)
                self.assertNoReasonShown(r.stderr.replace("Password and verification code: ", ""))
        self.assertEqual(self.env.failure_reasons()[:2], ["code", "replay"])
        self.assertEqual(len(self.env.failure_reasons()), 3)


@requires_plain_module
class PasswdTest(RealLoginTestCase):
    """/usr/bin/passwd (set-uid root) on a pseudo-terminal."""

    def setUp(self):
        self.start({"passwd": PASSWD_STACK})

    def passwd(self, answers, user="alice", as_user="alice"):
        args = ["passwd"] if as_user == user else ["passwd", user]
        term = self.sandbox.terminal(args, as_user=as_user)
        for prompt, answer in answers:
            term.expect(prompt)
            term.send_line(answer)
        return term.finish(), term.transcript

    def can_log_in(self, password):
        return self.env.pam("alice", [password, self.fresh_code()]).code == PAM_SUCCESS

    def shadow_text(self):
        with open(os.path.join(self.sandbox.etc, "shadow")) as f:
            return f.read()

    def test_user_changes_own_password(self):
        shadow = self.shadow_text()
        code, shown = self.passwd([("Current password: ", P_ALICE), ("New password: ", NEW_PASSWORD),
                                   ("Retype new password: ", NEW_PASSWORD)])
        self.assertEqual(code, 0, shown)
        self.assertIn("Changing password for alice.", shown)
        self.assertIn("passwd: password updated successfully", shown)
        self.assertNotIn(NEW_PASSWORD, shown, "nothing typed is echoed")
        self.assertTrue(self.can_log_in(NEW_PASSWORD), "the new password works at once")
        self.assertFalse(self.can_log_in(P_ALICE), "the old one no longer works")
        self.assertEqual(self.shadow_text(), shadow, "/etc/shadow is not touched")

    def test_wrong_current_password_rejected(self):
        term = self.sandbox.terminal(["passwd"], as_user="alice")
        term.expect("Current password: ")
        term.send_line("not alice's passphrase")
        code = term.finish()
        self.assertNotEqual(code, 0, term.transcript)
        self.assertNotIn("New password: ", term.transcript, "no new password without the current one")
        self.assertIn("passwd: Authentication failure", term.transcript)
        self.assertIn("passwd: password unchanged", term.transcript)
        self.assertIn(GENERIC, term.transcript)
        self.assertTrue(self.can_log_in(P_ALICE), "nothing changed")

    def test_short_new_password_rejected(self):
        code, shown = self.passwd([("Current password: ", P_ALICE), ("New password: ", "short pw"),
                                   ("Retype new password: ", "short pw")])
        self.assertNotEqual(code, 0, shown)
        self.assertIn("shorter than 12 bytes", shown)
        self.assertIn("passwd: password unchanged", shown)
        self.assertTrue(self.can_log_in(P_ALICE), "nothing changed")

    def test_root_sets_password_without_current(self):
        code, shown = self.passwd([("New password: ", NEW_PASSWORD), ("Retype new password: ", NEW_PASSWORD)],
                                  as_user=None)
        self.assertEqual(code, 0, shown)
        self.assertNotIn("Current password: ", shown)
        self.assertTrue(self.can_log_in(NEW_PASSWORD))


class ScreenLockerTest(RealLoginTestCase):
    """A screen locker runs as the logged-in user and calls
    pam_authenticate for that user; pam_driver plays it, run as carol."""

    def setUp(self):
        self.start({"xscreensaver": SCREEN_LOCKER_STACK}, config={"lockout": {"deny": "5", "local_deny": "2"}})

    def unlock(self, user, answers, as_user="carol"):
        args = [PAM_DRIVER, "--service", "xscreensaver", "--user", user, "auth"]
        proc = self.sandbox.run(args, as_user=as_user, input="".join(a + "\n" for a in answers), timeout=30,
                                env=sanitizer_env())
        if SANITIZED and proc.returncode in (86, 87):
            raise AssertionError("sanitizer report in pam_driver:\n" + proc.stderr)
        prompts = [line.split(" ", 2)[2] for line in proc.stdout.splitlines()
                   if line.startswith("prompt echo_off ")]
        return proc.returncode, prompts

    def test_own_user_unlocks(self):
        code, prompts = self.unlock("carol", [P_CAROL, self.fresh_code()])
        self.assertEqual(code, PAM_SUCCESS)
        self.assertEqual(prompts, ["Password: ", "Verification code: "])
        self.assertIn("service 'xscreensaver' from pid", self.env.log())
        self.assertRegex(self.env.log(), r"Request authenticate for user 'carol' service 'xscreensaver' from pid "
                                         r"\d+ uid %d\b" % self.users["carol"].uid)

    def test_other_user_rejected(self):
        code, prompts = self.unlock("alice", [P_ALICE, self.fresh_code()])
        self.assertEqual(code, PAM_PERM_DENIED)
        self.assertEqual(prompts, [], "rejected before any prompt")
        self.assertIn("Rejected pid", self.env.log())
        self.assertEqual(self.env.user_row("alice")["failures"] or 0, 0, "alice's tally is untouched")

    @requires_journal
    def test_other_user_rejection_audited(self):
        self.unlock("alice", [P_ALICE, self.fresh_code()])
        entries = self.env.journal(WARDEN_EVENT="peer_rejected")
        self.assertEqual(len(entries), 1)
        self.assertEqual(entries[0]["WARDEN_USER"], "alice")
        self.assertEqual(entries[0]["WARDEN_SERVICE"], "xscreensaver")
        self.assertEqual(entries[0]["WARDEN_PEER_UID"], str(self.users["carol"].uid))
        self.assertLessEqual(int(entries[0]["PRIORITY"]), 4)

    def test_stricter_rate_limit(self):
        for i in range(2):
            code, _ = self.unlock("carol", ["wrong passphrase %d" % i, self.fresh_code()])
            self.assertEqual(code, PAM_AUTH_ERR)
        code, prompts = self.unlock("carol", [P_CAROL, self.fresh_code()])
        self.assertEqual(code, PAM_AUTH_ERR, "local_deny reached: the right answers are rejected")
        self.assertEqual(prompts, ["Password: ", "Verification code: "], "the same prompts as always")
        self.assertEqual(self.env.failure_reasons(), ["password", "password", "throttled"])
        code, _ = self.unlock("carol", [P_CAROL, self.fresh_code()], as_user=None)
        self.assertEqual(code, PAM_SUCCESS, "a root caller still has carol's own limit, deny = 5")
        if self.env.journal_available():
            throttled = self.env.journal(WARDEN_EVENT="auth", WARDEN_REASON="throttled")
            self.assertEqual(len(throttled), 1)
            self.assertEqual(throttled[0]["WARDEN_PEER_UID"], str(self.users["carol"].uid))


if __name__ == "__main__":
    unittest.main()
