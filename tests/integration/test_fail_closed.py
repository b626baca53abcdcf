"""The module fails closed: a missing, silent, frozen or broken daemon
gives PAM_AUTHINFO_UNAVAIL within the timeout, never PAM_SUCCESS, and the
calling process survives."""

import os
import signal
import socket
import subprocess
import time
import unittest

from warden_env import (EnvTestCase, MODULE, PAM_AUTHINFO_UNAVAIL, PAM_DRIVER, PAM_SUCCESS)

P1 = "correct horse battery staple"
TIMEOUT = 3


class MissingDaemonTest(EnvTestCase):
    def setUp(self):
        self.env = self.make_env()

    def stack_for(self, path, name):
        self.env.write_stack(name, "auth required %s socket=%s timeout=%d\n"
                                   "account required %s socket=%s timeout=%d\n" % (MODULE, path, TIMEOUT, MODULE,
                                                                                     path, TIMEOUT))
        return name

    def test_socket_absent(self):
        r = self.env.pam("alice", [P1])
        self.assertEqual(r.code, PAM_AUTHINFO_UNAVAIL, r)
        self.assertLess(r.elapsed, 1.0)
        self.assertEqual(r.prompt_texts(), [], "nothing is asked when the daemon is away")

    def test_nobody_listening(self):
        path = os.path.join(self.env.dir, "stale.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.bind(path)
        s.close()  # the file stays, nobody listens: ECONNREFUSED
        r = self.env.pam("alice", [P1], service=self.stack_for(path, "stale"))
        self.assertEqual(r.code, PAM_AUTHINFO_UNAVAIL, r)
        self.assertLess(r.elapsed, 1.0)

    def test_nonexistent_socket_argument(self):
        r = self.env.pam("alice", [P1], service=self.stack_for("/nonexistent", "nonexistent"))
        self.assertEqual(r.code, PAM_AUTHINFO_UNAVAIL, r)

    def test_account_without_daemon(self):
        r = self.env.pam("alice", ops=["acct"])
        self.assertEqual(r.code, PAM_AUTHINFO_UNAVAIL, r)


class BrokenDaemonTest(EnvTestCase):
    """Each way a daemon can misbehave, played by a fake one."""

    def setUp(self):
        self.env = self.make_env()

    def run_mode(self, mode):
        path = self.env.start_fake(mode)
        self.env.write_stack(mode, "auth required %s socket=%s timeout=%d\n" % (MODULE, path, TIMEOUT))
        return self.env.pam("alice", [P1] * 20, service=mode)

    def test_malformed_replies(self):
        for mode in ["bad-version", "unknown-type", "truncated", "garbage", "oversized", "odd-status",
                     "close-mid", "prompt-flood"]:
            with self.subTest(mode=mode):
                r = self.run_mode(mode)
                self.assertEqual(r.code, PAM_AUTHINFO_UNAVAIL, r)
                self.assertLess(r.elapsed, TIMEOUT, "a broken reply is refused at once")

    def test_silent_daemon_times_out(self):
        for mode in ["silent", "no-accept"]:
            with self.subTest(mode=mode):
                r = self.run_mode(mode)
                self.assertEqual(r.code, PAM_AUTHINFO_UNAVAIL, r)
                self.assertGreater(r.elapsed, TIMEOUT - 0.5)
                self.assertLess(r.elapsed, TIMEOUT + 1.0)


class RealDaemonFailureTest(EnvTestCase):
    def setUp(self):
        self.env = self.make_env()
        self.env.write_stack("short", "auth required %s socket=%s timeout=%d\n" % (MODULE, self.env.socket, TIMEOUT))
        self.env.start_daemon()
        self.env.plant_user("alice", P1)

    def failures(self):
        with self.env.db() as db:
            return db.execute("SELECT failures FROM users WHERE name = 'alice'").fetchone()[0]

    def test_frozen_daemon(self):
        self.env.daemon.send_signal(signal.SIGSTOP)
        try:
            r = self.env.pam("alice", [P1], service="short")
        finally:
            self.env.daemon.send_signal(signal.SIGCONT)
        self.assertEqual(r.code, PAM_AUTHINFO_UNAVAIL, r)
        self.assertGreater(r.elapsed, TIMEOUT - 0.5)
        self.assertLess(r.elapsed, TIMEOUT + 1.0)
        self.assertEqual(self.env.pam("alice", [P1], service="short").code, PAM_SUCCESS)

    def test_killed_between_prompt_and_result(self):
        proc = subprocess.Popen([PAM_DRIVER, "--confdir", self.env.pam_dir, "--service", "short", "--user", "alice",
                                 "auth"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env=self.env.env())
        line = proc.stdout.readline()
        self.assertTrue(line.startswith("prompt echo_off Password:"), line)
        self.env.daemon.kill()
        self.env.daemon.wait()
        out, _ = proc.communicate(P1 + "\n", timeout=TIMEOUT + 5)
        self.assertEqual(proc.returncode, PAM_AUTHINFO_UNAVAIL, out)
        self.env.start_daemon()
        self.assertEqual(self.failures(), 0, "an interrupted conversation counts as nothing")
        self.assertEqual(self.env.pam("alice", [P1]).code, PAM_SUCCESS)


if __name__ == "__main__":
    unittest.main()
