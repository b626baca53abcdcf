"""Floods and stalled clients: the daemon stays up and keeps serving the
legitimate login."""

import concurrent.futures
import os
import socket
import struct
import subprocess
import sys
import time
import unittest

from warden_env import EnvTestCase, PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL, PAM_SUCCESS, requires_root

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
        refusal_lines = [line for line in env.log().splitlines() if "Refused a connection" in line]
        self.assertEqual(len(refusal_lines), 1, "468 refusals in a burst make one line, not one each")
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
        idle, r, codes = flood_other_host(self, {"workers": "1"}, flood=60, head_start=1.0)
        self.assertEqual(set(codes), {PAM_AUTH_ERR})
        self.assertEqual(r.code, PAM_SUCCESS)
        # Served after at most one flood job ahead of it, plus its own hash.
        self.assertLess(r.elapsed, 4 * idle + 1.0, "idle %.3fs, under flood %.3fs" % (idle, r.elapsed))


def flood_other_host(test, daemon_config, flood, head_start):
    """Starts a daemon with a small Argon2 cost and sends `flood` wrong
    passwords at once from one remote host, then, after head_start
    seconds, the right one from another host. Returns the idle latency of
    that login, its result under the flood and the flood's PAM codes."""
    env = test.make_env(config={"daemon": daemon_config,
                                "password": {"argon2_memory_kib": "32768", "argon2_iterations": "2"},
                                "lockout": {"deny": "1000", "rhost_deny": "100000"}})
    env.start_daemon()
    env.plant_user("alice", P1)
    idle = min(env.pam("alice", [P1], rhost="192.0.2.1").elapsed for _ in range(3))
    with concurrent.futures.ThreadPoolExecutor(max_workers=flood) as pool:
        futures = [pool.submit(env.pam, "alice", ["wrong %d" % i], rhost="198.51.100.66") for i in range(flood)]
        time.sleep(head_start)
        r = env.pam("alice", [P1], rhost="192.0.2.1")
        codes = [f.result().code for f in futures]
    return idle, r, codes

def authenticate_request(user, rhost=""):
    """An authenticate request as pam_warden.so sends it, without a
    password on the stack, so the daemon answers with a prompt."""
    def field(tag, value):
        value = value.encode()
        return struct.pack(">BH", tag, len(value)) + value
    body = field(1, "wtest") + field(2, user) + (field(3, rhost) if rhost else b"")
    body += struct.pack(">BH", 8, 4) + struct.pack(">I", 2)
    return bytes([1, 1]) + body


class ThreadSampler:
    """Samples the daemon's thread count while a block runs."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self.running = True

    def __enter__(self):
        import threading
        self.thread = threading.Thread(target=self.sample)
        self.thread.start()
        return self

    def sample(self):
        while self.running:
            self.peak = max(self.peak, thread_count(self.pid))
            time.sleep(0.002)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


class ConnectionSlotTest(EnvTestCase):
    """max_connections bounds the conversations that run at once, each on
    a thread. Connections beyond it wait without one, and the free slots go
    to waiting sources in turn."""

    def send_request(self, env):
        """Connects a raw client and sends alice's authenticate request."""
        client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(client.close)
        client.settimeout(5)
        client.connect(env.socket)
        client.send(authenticate_request("alice"))
        return client

    def hold_only_slot(self, env):
        """Opens a conversation for alice and leaves it at its password
        prompt, so it keeps a slot until the socket is closed."""
        holder = self.send_request(env)
        prompt = holder.recv(4096)
        self.assertEqual(prompt[1], 0x10, "the holder is in its conversation, at the password prompt")
        return holder

    def test_over_cap_connections_wait(self):
        env = self.make_env(config={"daemon": {"max_connections": "2", "workers": "1"}})
        env.start_daemon()
        env.plant_user("alice", P1)
        time.sleep(0.3)
        idle_threads = thread_count(env.daemon.pid)
        with ThreadSampler(env.daemon.pid) as sampler:
            with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
                results = list(pool.map(lambda _: env.pam("alice", [P1]), range(12)))
        self.assertEqual([r.code for r in results], [PAM_SUCCESS] * 12, "no connection is refused at the cap")
        # Two conversation threads, plus two that have ended and are still
        # exiting while their successors start; twelve without the cap.
        self.assertLessEqual(sampler.peak, idle_threads + 4, "at most two conversation threads at once")
        self.assertNotIn("Refused a connection", env.log())

    def test_slot_goes_to_other_host_first(self):
        """200 wrong passwords from one remote host fill both slots and
        wait for them. A login from another host takes the next free slot
        instead of waiting behind all of them (about 4 s here)."""
        idle, r, codes = flood_other_host(self, {"max_connections": "2", "workers": "1"}, flood=200,
                                          head_start=0.5)
        self.assertEqual(r.code, PAM_SUCCESS, r)
        self.assertLess(r.elapsed, 4 * idle + 1.0, "idle %.3fs, under flood %.3fs" % (idle, r.elapsed))
        self.assertEqual(set(codes) - {PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL}, set(), codes)

    def test_hash_workers_named(self):
        """The hash workers carry a name that top -H and ps -L show, one
        thread per worker, at the daemon's own priority."""
        env = self.make_env(config={"daemon": {"workers": "2"}})
        env.start_daemon()
        task_dir = "/proc/%d/task" % env.daemon.pid
        deadline = time.monotonic() + 5
        while True:
            names, nice = [], set()
            for tid in os.listdir(task_dir):
                with open(os.path.join(task_dir, tid, "stat")) as f:
                    stat = f.read()
                names.append(stat[stat.index("(") + 1:stat.rindex(")")])
                nice.add(int(stat[stat.rindex(")") + 2:].split()[16]))
            # A worker names itself once it runs, which may be after the
            # daemon accepts its first connection.
            if names.count("wardend-hash") == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(names.count("wardend-hash"), 2, names)
        self.assertEqual(nice, {os.getpriority(os.PRIO_PROCESS, env.daemon.pid)})

    def test_one_source_cannot_hold_every_slot(self):
        """su run many times by one user: each is its own root process, so
        the per-peer cap does not stop them, but their caller uid is one
        source. It gets at most max_conversations_per_source running
        conversations, and another source still gets a slot."""
        env = self.make_env(config={"daemon": {"max_connections": "8", "max_conversations_per_source": "2"}})
        env.start_daemon()
        env.plant_user("alice", P1)
        holder_code = ("import socket, struct, sys, time\n"
                       "def field(tag, value):\n"
                       "    return struct.pack('>BH', tag, len(value)) + value\n"
                       "s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
                       "s.connect(sys.argv[1])\n"
                       "s.send(bytes([1, 1]) + field(1, b'su') + field(2, b'alice') + field(8, struct.pack('>I', 2))"
                       " + field(14, struct.pack('>I', 4321)))\n"
                       "s.settimeout(2)\n"
                       "try:\n"
                       "    print('prompted' if s.recv(4096)[1] == 0x10 else 'other', flush=True)\n"
                       "except socket.timeout:\n"
                       "    print('waiting', flush=True)\n"
                       "time.sleep(30)\n")

        holders = []
        for _ in range(3):
            proc = subprocess.Popen([sys.executable, "-c", holder_code, env.socket], stdout=subprocess.PIPE, text=True)
            self.addCleanup(lambda p=proc: (p.kill(), p.wait()))
            holders.append(proc)
        states = sorted(p.stdout.readline().strip() for p in holders)
        self.assertEqual(states, ["prompted", "prompted", "waiting"])

        r = env.pam("alice", [P1], rhost="192.0.2.8")
        self.assertEqual(r.code, PAM_SUCCESS, r)
        self.assertLess(r.elapsed, 3.0)

    def test_waiting_bounded_per_source(self):
        """One source may have at most 512 connections waiting for a slot.
        Further ones from it are refused at once, and another source's
        connection still waits its turn."""
        env = self.make_env(config={"daemon": {"max_connections": "1", "max_connections_per_peer": "2000",
                                               "queue_timeout": "30"}})
        env.start_daemon()
        env.plant_user("alice", P1)
        self.hold_only_slot(env)
        clients = []
        for _ in range(520):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            self.addCleanup(client.close)
            client.connect(env.socket)
            client.send(authenticate_request("alice", rhost="198.51.100.1"))
            clients.append(client)
        time.sleep(1.0)
        refused = 0
        for client in clients:
            try:
                frame = client.recv(4096, socket.MSG_DONTWAIT)
                refused += frame[1] == 0x12 and struct.unpack(">I", frame[5:9])[0] == PAM_AUTHINFO_UNAVAIL
            except BlockingIOError:
                pass
        self.assertEqual(refused, 8)
        other = self.send_request(env)
        other.settimeout(1)
        with self.assertRaises(socket.timeout, msg="another source still waits for a slot"):
            other.recv(4096)

    def test_no_slot_within_queue_timeout(self):
        """A conversation left at its prompt occupies the only slot; the next
        client gets PAM_AUTHINFO_UNAVAIL after queue_timeout, not at the
        module's timeout."""
        env = self.make_env(config={"daemon": {"max_connections": "1", "queue_timeout": "1"}})
        env.start_daemon()
        env.plant_user("alice", P1)
        holder = self.hold_only_slot(env)
        r = env.pam("alice", [P1])
        self.assertEqual(r.code, PAM_AUTHINFO_UNAVAIL, r)
        self.assertGreaterEqual(r.elapsed, 0.9)
        self.assertLess(r.elapsed, 3.0, "answered at queue_timeout, before the module's own timeout of 5 s")
        self.assertIn("timed out after 1 s waiting for a conversation slot: all 1 slots are in use (max_connections)",
                      env.log())
        result = self.send_request(env).recv(4096)
        self.assertEqual(result[1], 0x12, "a RESULT frame, not a reset")
        self.assertEqual(struct.unpack(">I", result[5:9])[0], PAM_AUTHINFO_UNAVAIL)
        holder.close()
        self.assertEqual(env.pam("alice", [P1]).code, PAM_SUCCESS, "the slot is free again once the holder left")

    def test_waiting_keeps_request(self):
        """The request a connection sent while it waited stays in the
        socket for its conversation: the login that waited succeeds once
        the slot is free."""
        env = self.make_env(config={"daemon": {"max_connections": "1"}})
        env.start_daemon()
        env.plant_user("alice", P1)
        holder = self.hold_only_slot(env)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(env.pam, "alice", [P1], rhost="192.0.2.7")
            time.sleep(0.5)
            self.assertFalse(waiting.done(), "the second login waits while the slot is held")
            holder.close()
            r = waiting.result()
        self.assertEqual(r.code, PAM_SUCCESS, r)


if __name__ == "__main__":
    unittest.main()
