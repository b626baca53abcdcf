"""Attacks on the lockout and on the daemon's socket, each with the answer
it must get."""

import json
import os
import pwd
import socket
import struct
import subprocess
import time
import unittest

from warden_env import (EnvTestCase, FAKE_DAEMON, MODULE, PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL, PAM_PERM_DENIED,
                        PAM_SUCCESS, WARDEND, requires_root)

P1 = "correct horse battery staple"
NEW = "plum kettle orbit lantern 42"

AUTHENTICATE, CHANGE_PASSWORD, PROMPT, ANSWER, RESULT = 1, 3, 0x10, 0x11, 0x12
SERVICE, USER, AUTHTOK, OLD_AUTHTOK, FLAGS, ANSWER_TAG, STATUS, CALLER_UID = 1, 2, 6, 7, 8, 11, 12, 14
FLAG_PASSWORD, FLAG_REQUIRE_OLD, FLAG_AUTHTOK_ONLY = 2, 16, 64


def field(tag, value):
    value = value.encode() if isinstance(value, str) else value
    return struct.pack(">BH", tag, len(value)) + value


def frame(frame_type, *fields):
    return bytes([1, frame_type]) + b"".join(field(t, v) for t, v in fields)


def request(frame_type, user, flags, *extra):
    return frame(frame_type, (SERVICE, "wtest"), (USER, user), (FLAGS, struct.pack(">I", flags)), *extra)


def read(sock):
    data = sock.recv(8192)
    if not data:
        return None, {}
    fields, offset = {}, 2
    while offset + 3 <= len(data):
        tag, length = struct.unpack(">BH", data[offset:offset + 3])
        fields[tag] = data[offset + 3:offset + 3 + length]
        offset += 3 + length
    return data[1], fields


def status_of(fields):
    return struct.unpack(">I", fields[STATUS])[0]


class Client:
    """A raw client of the daemon's socket, as a hostile program would write."""

    def __init__(self, path, payload):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.sock.send(payload)

    def next(self):
        return read(self.sock)

    def answer(self, text):
        self.sock.send(frame(ANSWER, (ANSWER_TAG, text)))

    def finish(self, *answers):
        """Answers each prompt in turn and returns the final PAM code, or
        None when the daemon hangs up."""
        answers = list(answers)
        while True:
            kind, fields = self.next()
            if kind is None:
                return None
            if kind == RESULT:
                return status_of(fields)
            if fields[9][0] in (1, 2):
                if not answers:
                    self.sock.close()
                    return "hung up"
                self.answer(answers.pop(0))


class LockRaceTest(EnvTestCase):
    def test_conversation_opened_before_lock_cannot_guess_after(self):
        env = self.make_env(config={"lockout": {"deny": "3"}})
        env.start_daemon()
        env.plant_user("alice", P1)
        early = [Client(env.socket, request(AUTHENTICATE, "alice", FLAG_PASSWORD)) for _ in range(10)]
        for client in early:
            kind, _ = client.next()
            self.assertEqual(kind, PROMPT)
        for i in range(3):
            self.assertEqual(env.pam("alice", ["wrong %d" % i]).code, PAM_AUTH_ERR)
        results = []
        for i, client in enumerate(early[:-1]):
            client.answer("another wrong %d" % i)
            results.append(client.finish())
        early[-1].answer(P1)
        last = early[-1].finish()
        self.assertEqual(results, [PAM_AUTH_ERR] * 9)
        self.assertEqual(last, PAM_AUTH_ERR, "the right password after the lock does not log in")
        self.assertEqual(env.failure_reasons()[3:], ["locked"] * 10)
        self.assertEqual(env.user_row("alice")["failures"], 3, "no guess was tested past the limit")

    def test_password_change_reaches_open_conversations(self):
        env = self.make_env(bus=True, config={"daemon": {"dbus": "system"}})
        env.start_daemon()
        env.plant_user("alice", P1)
        client = Client(env.socket, request(AUTHENTICATE, "alice", FLAG_PASSWORD))
        self.assertEqual(client.next()[0], PROMPT)
        r = env.ctl("user", "passwd", "alice", "--password-stdin", input=NEW + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        client.answer(P1)
        self.assertEqual(client.finish(), PAM_AUTH_ERR, "the old password no longer works, even here")


class FreeGuessTest(EnvTestCase):
    def test_try_first_pass_hang_up_still_counts(self):
        env = self.make_env(config={"lockout": {"deny": "3"}})
        env.start_daemon()
        env.plant_user("alice", P1)
        for i in range(5):
            client = Client(env.socket, request(AUTHENTICATE, "alice", FLAG_PASSWORD, (AUTHTOK, "guess %d" % i)))
            self.assertIn(client.finish(), ("hung up", PAM_AUTH_ERR))
        self.assertEqual(env.user_row("alice")["failures"], 3)
        client = Client(env.socket, request(AUTHENTICATE, "alice", FLAG_PASSWORD, (AUTHTOK, P1)))
        self.assertEqual(client.finish(), PAM_AUTH_ERR, "locked: the stacked right password is not tested")

    def test_try_first_pass_both_guesses_count(self):
        """A wrong stacked password and a wrong typed one are two guesses
        and count twice. Once the stacked one has locked the user, the
        typed one is not tested: the right password then fails too."""
        env = self.make_env(config={"lockout": {"deny": "3"}})
        env.start_daemon()
        env.plant_user("alice", P1)
        client = Client(env.socket, request(AUTHENTICATE, "alice", FLAG_PASSWORD, (AUTHTOK, "stacked 1")))
        self.assertEqual(client.next()[0], PROMPT)
        client.answer("typed 1")
        self.assertEqual(client.finish(), PAM_AUTH_ERR)
        self.assertEqual(env.user_row("alice")["failures"], 2)
        client = Client(env.socket, request(AUTHENTICATE, "alice", FLAG_PASSWORD, (AUTHTOK, "stacked 2")))
        kind, fields = client.next()
        self.assertEqual(kind, RESULT, "no prompt once the stacked guess has locked alice")
        self.assertEqual(status_of(fields), PAM_AUTH_ERR)
        self.assertEqual(env.user_row("alice")["failures"], 3)
        self.assertIsNotNone(env.user_row("alice")["locked_until"])

    def test_password_change_guesses_count(self):
        env = self.make_env(config={"lockout": {"deny": "3"}})
        env.start_daemon()
        env.plant_user("alice", P1)
        for i in range(3):
            client = Client(env.socket, request(CHANGE_PASSWORD, "alice", FLAG_REQUIRE_OLD,
                                                (OLD_AUTHTOK, "guess %d" % i), (AUTHTOK, NEW)))
            self.assertEqual(client.finish(), PAM_AUTH_ERR)
        self.assertEqual(env.user_row("alice")["failures"], 3)
        client = Client(env.socket, request(CHANGE_PASSWORD, "alice", FLAG_REQUIRE_OLD, (OLD_AUTHTOK, P1),
                                            (AUTHTOK, NEW)))
        self.assertEqual(client.finish(), PAM_AUTH_ERR, "a locked user cannot change the password either")
        self.assertEqual(env.pam("alice", [NEW]).code, PAM_AUTH_ERR)

    def test_caller_uid_of_setuid_program_limited(self):
        """su and sudo reach the daemon as root but pass the user's real
        uid; that uid gets the tighter local limit."""
        env = self.make_env(config={"lockout": {"deny": "50", "local_deny": "2"}})
        env.start_daemon()
        env.plant_user("root", P1)
        uid = struct.pack(">I", 4321)
        for i in range(2):
            client = Client(env.socket, request(AUTHENTICATE, "root", FLAG_PASSWORD | FLAG_AUTHTOK_ONLY,
                                                (AUTHTOK, "guess %d" % i), (CALLER_UID, uid)))
            self.assertEqual(client.finish(), PAM_AUTH_ERR)
        client = Client(env.socket, request(AUTHENTICATE, "root", FLAG_PASSWORD | FLAG_AUTHTOK_ONLY, (AUTHTOK, P1),
                                            (CALLER_UID, uid)))
        self.assertEqual(client.finish(), PAM_AUTH_ERR)
        self.assertEqual(env.failure_reasons()[-1], "throttled")
        self.assertEqual(env.pam("root", [P1]).code, PAM_SUCCESS, "root's own logins are not affected")


class UnlockTest(EnvTestCase):
    @requires_root
    def test_unlock_lifts_local_throttle(self):
        env = self.make_env(bus=True, config={"daemon": {"dbus": "system"},
                                              "lockout": {"deny": "5", "local_deny": "2"}})
        env.start_daemon()
        env.plant_user("nobody", P1)
        for i in range(2):
            self.assertEqual(env.pam("nobody", ["wrong %d" % i], as_user="nobody").code, PAM_AUTH_ERR)
        self.assertEqual(env.pam("nobody", [P1], as_user="nobody").code, PAM_AUTH_ERR)
        self.assertEqual(env.ctl("unlock", "nobody").returncode, 0)
        self.assertEqual(env.pam("nobody", [P1], as_user="nobody").code, PAM_SUCCESS)

    @requires_root
    def test_unlock_unenrolled_caller(self):
        """A user who is not enrolled and fails su or a screen locker twice is
        held by the caller limit; unlocking the name clears it."""
        env = self.make_env(bus=True, config={"daemon": {"dbus": "system"},
                                              "lockout": {"deny": "5", "local_deny": "2"}})
        env.start_daemon()
        uid = pwd.getpwnam("nobody").pw_uid
        for i in range(2):
            env.pam("nobody", ["wrong %d" % i], as_user="nobody")
        bucket = "uid:%d" % uid
        rows = env.db().execute("SELECT failures FROM throttle WHERE bucket = ?", (bucket,)).fetchall()
        self.assertEqual(rows, [(2,)])
        r = env.ctl("unlock", "nobody")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(),
                         "Cleared the limit on su, sudo and screen lockers run by 'nobody' (not enrolled).")
        self.assertEqual(env.db().execute("SELECT 1 FROM throttle WHERE bucket = ?", (bucket,)).fetchall(), [])
        r = env.ctl("unlock", "nobody")
        self.assertEqual(r.stdout.strip(), "'nobody' is not enrolled and had no failures to clear.")
        r = env.ctl("--json", "unlock", "nobody")
        self.assertEqual(json.loads(r.stdout), {"ok": True, "user": "nobody", "enrolled": False, "cleared": False})
        r = env.ctl("unlock", "no-such-user-here")
        self.assertNotEqual(r.returncode, 0)

    def test_unlock_host(self):
        env = self.make_env(bus=True, config={"daemon": {"dbus": "system"},
                                              "lockout": {"deny": "50", "rhost_deny": "2"}})
        env.start_daemon()
        env.plant_user("alice", P1)
        for i in range(2):
            env.pam("alice", ["wrong %d" % i], rhost="203.0.113.4")
        self.assertEqual(env.pam("alice", [P1], rhost="203.0.113.4").code, PAM_AUTH_ERR)
        r = env.ctl("unlock-host", "203.0.113.4")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "Cleared the failure count of remote host '203.0.113.4'.")
        self.assertEqual(env.pam("alice", [P1], rhost="203.0.113.4").code, PAM_SUCCESS)
        r = env.ctl("unlock-host", "203.0.113.4")
        self.assertEqual(r.stdout.strip(), "Remote host '203.0.113.4' had no failures to clear.")
        r = env.ctl("--json", "unlock-host", "203.0.113.4")
        self.assertEqual(json.loads(r.stdout), {"ok": True, "host": "203.0.113.4", "cleared": False})
        for bad in ("not a host!", "-", "..."):
            r = env.ctl("unlock-host", bad)
            self.assertEqual(r.returncode, 1, bad)
            self.assertIn("Not an IP address or host name", r.stderr)


class SocketTrustTest(EnvTestCase):
    def test_second_daemon_refused(self):
        env = self.make_env()
        env.start_daemon()
        env.plant_user("alice", P1)
        second = subprocess.run([WARDEND, "--config", env.config_path], capture_output=True, text=True, timeout=30)
        self.assertEqual(second.returncode, 1)
        self.assertIn("another wardend is running", second.stderr)
        self.assertEqual(env.pam("alice", [P1]).code, PAM_SUCCESS, "the first daemon still serves")

    @requires_root
    def test_module_refuses_unprivileged_daemon(self):
        env = self.make_env()
        path = os.path.join(env.dir, "impostor", "wardend.sock")
        os.makedirs(os.path.dirname(path))
        os.chmod(os.path.dirname(path), 0o777)
        proc = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", FAKE_DAEMON,
                                 path, "odd-status"], stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (proc.kill(), proc.wait()))
        self.assertEqual(proc.stdout.readline().strip(), "ready")
        env.write_stack("impostor", "auth required %s socket=%s timeout=3\n" % (MODULE, path))
        r = env.pam("root", [P1], service="impostor")
        self.assertEqual(r.code, PAM_AUTHINFO_UNAVAIL, r)


if __name__ == "__main__":
    unittest.main()
