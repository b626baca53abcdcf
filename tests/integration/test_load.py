"""Floods and stalled clients: the daemon stays up and keeps serving the
legitimate login."""

import os
import socket
import subprocess
import sys
import time
import unittest

from warden_env import EnvTestCase, PAM_AUTH_ERR, PAM_SUCCESS, requires_root

P1 = "correct horse battery staple"


def count_open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def thread_count(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


class StalledClientTest(EnvTestCase):
    def test_silent_client_dropped(self):
        env = self.make_env(config={"daemon": {"request_timeout": "2"}})
        env.start_daemon()
        env.plant_user("alice", P1)
        stalled = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        stalled.connect(env.socket)
        self.assertEqual(env.pam("alice", [P1]).code, PAM_SUCCESS, "another login is served meanwhile")
        stalled.settimeout(5)
        start = time.monotonic()
        self.assertEqual(stalled.recv(4096), b"", "the daemon hangs up on the silent client")
        self.assertLess(time.monotonic() - start, 4)
        stalled.close()

    def test_client_abandons_mid_conversation(self):
        env = self.make_env()
        env.start_daemon()
        env.plant_user("alice", P1)
        threads_before = thread_count(env.daemon.pid)
        for _ in range(20):
            # The driver hangs up at the prompt: no answer, no count.
            self.assertNotEqual(env.pam("alice", []).code, PAM_SUCCESS)
        time.sleep(0.5)
        self.assertEqual(env.user_row("alice")["failures"], 0, "an abandoned conversation counts nothing")
        self.assertLessEqual(thread_count(env.daemon.pid), threads_before + 1, "no thread left behind")


class FloodTest(EnvTestCase):
    def flood(self, env, count, as_user=None):
        """Holds count connections open from one process and returns it
        once they are all made."""
        code = ("import socket, sys, time\n"
                "held = []\n"
                "for _ in range(%d):\n"
                "    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
                "    s.connect(%r)\n"
                "    held.append(s)\n"
                "print('ready', flush=True)\n"
                "time.sleep(60)\n") % (count, env.socket)
        cmd = [sys.executable, "-c", code]
        if as_user:
            cmd = ["setpriv", "--reuid=" + as_user, "--regid=nogroup", "--clear-groups"] + cmd
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (proc.kill(), proc.wait()))
        self.assertEqual(proc.stdout.readline().strip(), "ready")
        return proc

    def test_flood_from_one_process(self):
        env = self.make_env()
        env.start_daemon()
        env.plant_user("alice", P1)
        self.flood(env, 500)
        time.sleep(0.5)
        r = env.pam("alice", [P1])
        self.assertEqual(r.code, PAM_SUCCESS, r)
        self.assertLess(r.elapsed, 5)
        self.assertIn("from this peer", env.log(), "the flood hit the per-peer cap")
        self.assertLess(count_open_fds(env.daemon.pid), 200, "connections beyond the cap are closed at once")

    @requires_root
    def test_flood_from_unprivileged_uid(self):
        env = self.make_env()
        env.start_daemon()
        env.plant_user("alice", P1)
        self.flood(env, 500, as_user="nobody")
        time.sleep(0.5)
        r = env.pam("alice", [P1])
        self.assertEqual(r.code, PAM_SUCCESS, r)
        self.assertLess(r.elapsed, 5)

    def test_hash_flood_from_other_host(self):
        """Wrong passwords flood from one remote host; a login from another
        host is served in turn, not after the whole queue."""
        env = self.make_env(config={"daemon": {"workers": "1"},
                                    "password": {"argon2_memory_kib": "32768", "argon2_iterations": "2"},
                                    "lockout": {"deny": "1000", "rhost_deny": "100000"}})
        env.start_daemon()
        env.plant_user("alice", P1)
        idle = min(env.pam("alice", [P1], rhost="192.0.2.1").elapsed for _ in range(3))
        import concurrent.futures
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=60)
        flood = [pool.submit(env.pam, "alice", ["wrong %d" % i], rhost="198.51.100.66") for i in range(60)]
        time.sleep(1.0)
        r = env.pam("alice", [P1], rhost="192.0.2.1")
        for f in flood:
            self.assertEqual(f.result().code, PAM_AUTH_ERR)
        pool.shutdown()
        self.assertEqual(r.code, PAM_SUCCESS)
        # Served after at most one flood job ahead of it, plus its own hash.
        self.assertLess(r.elapsed, 4 * idle + 1.0, "idle %.3fs, under flood %.3fs" % (idle, r.elapsed))


if __name__ == "__main__":
    unittest.main()
