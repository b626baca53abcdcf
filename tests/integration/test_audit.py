"""Audit events in a real systemd-journald: one structured entry per
security decision, read back with journalctl -o json."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest

from warden_env import (EnvTestCase, MODULE, PAM_AUTH_ERR, PAM_SUCCESS, ROOT, WARDEND, requires_journal,
                        requires_root)

P1 = "correct horse battery staple"
S1 = b"12345678901234567890"

ID = {
    "auth_success": "f65d1230756b4c6685e0c313f068db94",
    "auth_failure": "c6b96dfc15f1473e9203cbf4fd5d6db8",
    "peer_rejected": "0426f6860b8d4281b4e895aa8261bc48",
    "enroll": "674ca47fb1404ad68ffd71f4719b6027",
    "confirm": "e9c208972a654d709dc69933abcfce64",
    "remove": "cca0e9b0e368492c81eb9bcd2d220619",
    "recovery_used": "97394784ec4e486e9ff12605b5d63219",
    "recovery_generated": "39de3ec41c974f17a910918ef4ba02fd",
    "password_changed": "05d0a1092b9940ea9b409bf96e0ae2bd",
    "session_open": "d89015f8b9e34bda98260527e6cd1483",
    "session_close": "9f476bd6c66e4f6ba1769b36d0975093",
    "config_rejected": "31f36527981c48168c0f9bee6c6481cf",
    "daemon_start": "c1df7c4164b6450a97c18473cd8a51dd",
    "daemon_reload": "598986f82588424ea365ffb15272ae04",
    "daemon_stop": "4fd51b1463e94d05a10da32e00efaf35",
    "summary": "59d50cd31a3d4bab9cd013aa8047cefa",
}

PAM_LINE = re.compile(r"^pam_warden\((\S+):auth\): authentication failure; logname= uid=(\d+) euid=(\d+) "
                      r"tty=(\S*) ruser=(\S*) rhost=(\S*) user=(\S*)$")


@requires_journal
class AuthEventTest(EnvTestCase):
    def setUp(self):
        self.env = self.make_env(config={"mfa": {"mode": "required"}, "daemon": {"dbus": "system"},
                                         "lockout": {"deny": "1000", "rhost_deny": "100000"}}, bus=True)
        self.env.set_clock(59)
        self.env.start_daemon()
        self.env.plant_user("alice", P1)
        self.env.enroll_totp("alice", S1)

    def one(self, **fields):
        entries = self.env.journal(**fields)
        self.assertEqual(len(entries), 1, "expected one entry for %r, got %d" % (fields, len(entries)))
        return entries[0]

    def test_success_fields(self):
        r = self.env.pam("alice", [P1, "287082"], rhost="192.0.2.7", tty="ssh")
        self.assertEqual(r.code, PAM_SUCCESS)
        e = self.one(MESSAGE_ID=ID["auth_success"])
        self.assertEqual(e["WARDEN_EVENT"], "auth")
        self.assertEqual(e["WARDEN_RESULT"], "success")
        self.assertEqual(e["WARDEN_USER"], "alice")
        self.assertEqual(e["WARDEN_SERVICE"], "wtest")
        self.assertEqual(e["WARDEN_RHOST"], "192.0.2.7")
        self.assertEqual(e["WARDEN_TTY"], "ssh")
        self.assertEqual(e["WARDEN_PEER_UID"], str(os.geteuid()))
        self.assertTrue(e["WARDEN_PEER_PID"].isdigit())
        self.assertEqual(e["PRIORITY"], "6")
        self.assertEqual(e["WARDEN_FACTOR"], "password+totp")
        self.assertNotIn("WARDEN_REASON", e)

    def test_failure_reasons(self):
        env = self.env
        cases = [
            (["wrong password", "359152"], "password", 62),
            (["", "359152"], "password", 62),
            (["x" * 600, "969429"], "oversized", 95),
            ([P1, "000000"], "code", 95),
            ([P1, ""], "no_second_factor", 95),
        ]
        for answers, reason, t in cases:
            env.set_clock(t)
            self.assertEqual(env.pam("alice", answers, rhost="192.0.2.7", tty="pts/3").code, PAM_AUTH_ERR)
        env.set_clock(100)
        self.assertEqual(env.pam("alice", [P1, "969429"]).code, PAM_AUTH_ERR)  # consumed above: replay
        self.assertEqual(env.pam("ghost", [P1, "969429"]).code, 10)
        reasons = [e["WARDEN_REASON"] for e in env.journal(MESSAGE_ID=ID["auth_failure"])]
        self.assertEqual(reasons, ["password", "password", "oversized", "code", "no_second_factor", "replay",
                                   "unknown_user"])
        first = env.journal(MESSAGE_ID=ID["auth_failure"])[0]
        self.assertEqual(first["PRIORITY"], "5")
        self.assertEqual(first["WARDEN_RESULT"], "failure")
        m = PAM_LINE.match(first["MESSAGE"])
        self.assertIsNotNone(m, first["MESSAGE"])
        self.assertEqual(m.group(1), "wtest")
        self.assertEqual(m.group(4), "pts/3")
        self.assertEqual(m.group(6), "192.0.2.7")
        self.assertEqual(m.group(7), "alice")

    def test_store_and_key_errors(self):
        env = self.env
        with env.db() as db:
            db.execute("UPDATE totp SET sealed_secret = zeroblob(60)")
        self.assertEqual(env.pam("alice", [P1, "287082"]).code, 9)
        e = self.one(MESSAGE_ID=ID["auth_failure"], WARDEN_REASON="key_error")
        self.assertEqual(e["PRIORITY"], "3")
        env.plant_user("bob", phc="$6$salt$notargon")
        self.assertEqual(env.pam("bob", [P1, "287082"]).code, 9)
        e = self.one(MESSAGE_ID=ID["auth_failure"], WARDEN_REASON="store_error")
        self.assertEqual(e["PRIORITY"], "3")

    @requires_root
    def test_peer_rejected(self):
        self.assertEqual(self.env.pam("alice", [P1], as_user="nobody").code, 6)
        e = self.one(MESSAGE_ID=ID["peer_rejected"])
        self.assertEqual(e["WARDEN_EVENT"], "peer_rejected")
        self.assertEqual(e["WARDEN_PEER_UID"], "65534")
        self.assertEqual(e["WARDEN_USER"], "alice")
        self.assertLessEqual(int(e["PRIORITY"]), 4)

    def test_sessions(self):
        self.assertEqual(self.env.pam("alice", [P1, "287082"], ops=["auth", "open", "close"]).code, PAM_SUCCESS)
        self.assertEqual(self.one(MESSAGE_ID=ID["session_open"])["WARDEN_EVENT"], "session_open")
        self.assertEqual(self.one(MESSAGE_ID=ID["session_close"])["WARDEN_EVENT"], "session_close")

    def test_hostile_strings_escaped(self):
        # "\udcff" reaches the program as the single byte 0xff: invalid UTF-8.
        hostile = ["evil\nuser=root rhost=10.0.0.1", "esc\x1b[31mred", "bad\udcffutf8", "a b"]
        for name in hostile:
            self.env.pam(name, [P1, "287082"], rhost=name, tty=name)
        entries = self.env.journal(MESSAGE_ID=ID["auth_failure"])
        self.assertEqual(len(entries), len(hostile))
        for e in entries:
            self.assertNotIn("\n", e["MESSAGE"])
            self.assertNotIn("\x1b", e["MESSAGE"])
            self.assertIsNotNone(PAM_LINE.match(e["MESSAGE"]), e["MESSAGE"])
            for key in ("WARDEN_USER", "WARDEN_RHOST", "WARDEN_TTY"):
                self.assertIsInstance(e[key], str, "valid UTF-8 text, not a byte array")
                self.assertNotIn("\n", e[key])
                self.assertNotIn("\x1b", e[key])
        users = [e["WARDEN_USER"] for e in entries]
        self.assertEqual(users[0], "evil\\x0auser=root rhost=10.0.0.1")
        self.assertEqual(users[1], "esc\\x1b[31mred")
        self.assertEqual(users[2], "bad\\xffutf8")
        self.assertTrue(entries[3]["MESSAGE"].endswith("user=a\\x20b"), entries[3]["MESSAGE"])


@requires_journal
class AdminEventTest(EnvTestCase):
    def test_factor_lifecycle(self):
        env = self.make_env(config={"mfa": {"mode": "required"}, "daemon": {"dbus": "system"}}, bus=True)
        env.set_clock(59)
        env.start_daemon()
        self.assertEqual(env.ctl("user", "add", "alice", "--password-stdin", input=P1 + "\n").returncode, 0)
        env.enroll_totp("alice", S1, active=False)
        env.busctl("ConfirmTotp", "ss", "alice", "287082")
        env.set_recovery_codes("alice", ["0abcd-efghj"] + ["w%dxyz-23456" % i for i in range(9)])
        env.set_clock(89)
        self.assertEqual(env.pam("alice", [P1, "0abcd-efghj"]).code, PAM_SUCCESS)
        self.assertEqual(env.pam("alice", ["short", "short"], ops=["chauthtok"]).code, 20)
        self.assertEqual(env.pam("alice", ["plum kettle orbit lantern 42"] * 2, ops=["chauthtok"]).code, 0)
        env.busctl("RemoveTotp", "s", "alice")
        self.assertEqual(env.ctl("user", "remove", "alice").returncode, 0)

        enroll = env.journal(MESSAGE_ID=ID["enroll"])
        self.assertEqual([e["WARDEN_FACTOR"] for e in enroll], ["password", "totp"])
        self.assertEqual(enroll[0]["WARDEN_SERVICE"], "wardenctl")
        self.assertEqual(len(env.journal(MESSAGE_ID=ID["confirm"], WARDEN_RESULT="success")), 1)
        self.assertEqual(len(env.journal(MESSAGE_ID=ID["recovery_generated"])), 1)
        used = env.journal(MESSAGE_ID=ID["recovery_used"])
        self.assertEqual(len(used), 1)
        self.assertIn("9 left", used[0]["MESSAGE"])
        self.assertEqual(len(env.journal(MESSAGE_ID=ID["password_changed"], WARDEN_RESULT="success")), 1)
        removed = env.journal(MESSAGE_ID=ID["remove"])
        self.assertEqual([e["WARDEN_FACTOR"] for e in removed], ["totp", "user"])

    def test_daemon_lifecycle_and_config(self):
        env = self.make_env()
        env.start_daemon()
        good = open(env.config_path).read()
        env.write_config(good + "colour = blue\n")
        env.daemon.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not env.journal(MESSAGE_ID=ID["daemon_reload"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        env.write_config(good)
        env.daemon.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while len(env.journal(MESSAGE_ID=ID["daemon_reload"])) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        env.stop_daemon()
        env.write_config(good + "colour = blue\n")
        env.start_daemon(expect_ready=False)
        env.daemon.wait(10)

        self.assertEqual(len(env.journal(MESSAGE_ID=ID["daemon_start"])), 1)
        self.assertEqual([e["WARDEN_RESULT"] for e in env.journal(MESSAGE_ID=ID["daemon_reload"])],
                         ["failure", "success"])
        self.assertEqual(len(env.journal(MESSAGE_ID=ID["daemon_stop"])), 1)
        rejected = env.journal(MESSAGE_ID=ID["config_rejected"])
        self.assertEqual(len(rejected), 2, "one on reload, one at the refused start")
        self.assertIn("colour: unknown key", rejected[0]["MESSAGE"])
        self.assertLessEqual(int(rejected[0]["PRIORITY"]), 4)

    def test_operational_log_reaches_journal_under_systemd(self):
        env = self.make_env()
        env.start_daemon(extra_env={"JOURNAL_STREAM": "8:12345"})
        env.stop_daemon()
        ops = [e for e in env.journal() if "MESSAGE_ID" not in e]
        messages = [e["MESSAGE"] for e in ops]
        self.assertTrue(any(m.startswith("wardend 0.1.0 started") for m in messages), messages)
        self.assertIn("wardend stopped", messages)


@requires_root
class BrokenJournalTest(EnvTestCase):
    """wardend under a journald that refuses entries, through a directory
    mounted over /run/systemd/journal in its own mount namespace."""

    def start_with_journal_dir(self, env, journal_dir):
        if not os.path.isdir("/run/systemd/journal") or not shutil.which("unshare"):
            self.skipTest("needs /run/systemd/journal and unshare")
        log = open(env.log_path, "ab")
        script = 'mount --bind "$1" /run/systemd/journal && exec "$2" --config "$3"'
        env.daemon = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                                       journal_dir, WARDEND, env.config_path], stdout=log, stderr=log, env=env.env())
        env.daemon_pids.add(env.daemon.pid)
        log.close()
        env.wait_ready()
        env.plant_user("alice", P1)

    def assert_entry_in_log(self, env, error):
        lines = [line for line in env.log().splitlines()
                 if "Failed to send audit event 'auth'" in line and "WARDEN_REASON=password" in line]
        self.assertEqual(len(lines), 1, env.log())
        self.assertIn(error, lines[0])
        for field in ("MESSAGE_ID=" + ID["auth_failure"], "WARDEN_RESULT=failure", "WARDEN_RHOST=192.0.2.9",
                      "WARDEN_USER=alice", "WARDEN_PEER_PID=", "rhost=192.0.2.9 user=alice"):
            self.assertIn(field, lines[0])
        self.assertNotIn("not the password", env.log())

    def test_refused_entry_goes_to_log(self):
        """journald's socket file is there but nothing listens on it: the
        audit entry that journald refuses goes whole to the operational
        log."""
        env = self.make_env()
        dead = os.path.join(env.dir, "dead-journal")
        os.mkdir(dead)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(os.path.join(dead, "socket"))
        listener.close()
        self.start_with_journal_dir(env, dead)
        self.assertEqual(env.pam("alice", ["not the password"], rhost="192.0.2.9").code, PAM_AUTH_ERR)
        self.assert_entry_in_log(env, "Connection refused")
        # A space in a value cannot start a field of its own.
        env.pam("x WARDEN_RESULT=success", ["not the password"])
        forged = [line for line in env.log().splitlines() if "Failed to send" in line and "WARDEN_USER=x" in line]
        self.assertEqual(len(forged), 1, env.log())
        self.assertIn("WARDEN_USER=x\\x20WARDEN_RESULT=success ", forged[0])
        self.assertNotIn(" WARDEN_RESULT=success", forged[0])

    def test_stalled_journal_does_not_block_logins(self):
        """A journald that stops reading: its queue fills, and logins go on
        at their usual speed with their entries in the operational log."""
        env = self.make_env()
        stalled = os.path.join(env.dir, "stalled-journal")
        os.mkdir(stalled)
        path = os.path.join(stalled, "socket")
        reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(reader.close)
        reader.bind(path)
        senders = []
        self.addCleanup(lambda: [sender.close() for sender in senders])
        full = False
        while not full and len(senders) < 64:
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            senders.append(sender)
            sent = 0
            while True:
                try:
                    sender.sendto(b"x", socket.MSG_DONTWAIT, path)
                    sent += 1
                except BlockingIOError:
                    break
            full = sent == 0
        self.assertTrue(full, "the reader's queue is full")

        self.start_with_journal_dir(env, stalled)
        start = time.monotonic()
        self.assertEqual(env.pam("alice", ["not the password"], rhost="192.0.2.9").code, PAM_AUTH_ERR)
        self.assertEqual(env.pam("alice", [P1]).code, PAM_SUCCESS)
        self.assertLess(time.monotonic() - start, 3.0, "no login waited for journald")
        self.assert_entry_in_log(env, "Resource temporarily unavailable")


@requires_journal
class RepeatLimitTest(EnvTestCase):
    def test_burst_is_summarised(self):
        env = self.make_env(config={"audit": {"burst": "5", "interval": "2"},
                                    "lockout": {"deny": "1000", "rhost_deny": "100000"}})
        env.start_daemon()
        env.plant_user("alice", P1)
        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            codes = list(pool.map(lambda i: env.pam("alice", ["wrong %d" % i], rhost="198.51.100.9").code,
                                  range(500)))
        self.assertEqual(codes, [PAM_AUTH_ERR] * 500)
        time.sleep(2.5)
        env.stop_daemon()
        failures = env.journal(MESSAGE_ID=ID["auth_failure"])
        summaries = env.journal(MESSAGE_ID=ID["summary"])
        total = len(failures) + sum(int(s["WARDEN_COUNT"]) for s in summaries)
        self.assertEqual(total, 500)
        self.assertLess(len(failures) + len(summaries), 60, "bounded: %d entries" % (len(failures) + len(summaries)))
        self.assertGreaterEqual(len(failures), 5, "the first failures are written one by one")
        for s in summaries:
            self.assertEqual(s["WARDEN_EVENT"], "summary")
            self.assertEqual(s["WARDEN_USER"], "alice")
            self.assertEqual(s["WARDEN_RHOST"], "198.51.100.9")
            self.assertEqual(s["WARDEN_REASON"], "password")


@requires_journal
class Fail2banTest(EnvTestCase):
    @unittest.skipUnless(shutil.which("fail2ban-regex"), "fail2ban is not installed")
    def test_filter_matches_journal_output(self):
        env = self.make_env(config={"audit": {"burst": "3", "interval": "1"},
                                    "lockout": {"deny": "1000", "rhost_deny": "100000"}})
        env.start_daemon()
        env.plant_user("alice", P1)
        for i in range(8):
            env.pam("alice", ["wrong %d" % i], rhost="203.0.113.5")
        env.pam("alice", [P1], rhost="203.0.113.5")
        env.pam("ghost", ["nope"], rhost="203.0.113.6")
        time.sleep(1.5)
        env.stop_daemon()
        pids = " ".join("_PID=%d" % p for p in env.daemon_pids)
        log = os.path.join(env.dir, "auth.log")
        with open(log, "w") as f:
            subprocess.run(["journalctl", "-o", "short", "--no-pager", "SYSLOG_IDENTIFIER=wardend"] + pids.split(),
                           stdout=f, check=True)
        # fail2ban resolves the filter's include of common.conf in its
        # config directory; give it one with the shipped filter beside it.
        confdir = os.path.join(env.dir, "fail2ban")
        os.makedirs(os.path.join(confdir, "filter.d"))
        for name in ("common.conf", "../fail2ban.conf"):
            src = os.path.join("/etc/fail2ban/filter.d", name)
            if os.path.exists(src):
                shutil.copy(src, os.path.join(confdir, "filter.d", name))
        shutil.copy(os.path.join(ROOT, "conf", "fail2ban", "filter.d", "warden.conf"),
                    os.path.join(confdir, "filter.d", "warden.conf"))
        proc = subprocess.run(["fail2ban-regex", "--config", confdir, "--print-all-matched", log,
                               os.path.join(confdir, "filter.d", "warden.conf")],
                              capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        matched = re.search(r"Failregex: (\d+) total", proc.stdout)
        self.assertIsNotNone(matched, proc.stdout)
        # 3 single failures and 1 summary for alice, 1 failure for ghost.
        self.assertEqual(int(matched.group(1)), 5, proc.stdout)
        self.assertIn("203.0.113.5", proc.stdout)
        self.assertIn("203.0.113.6", proc.stdout)


if __name__ == "__main__":
    unittest.main()
