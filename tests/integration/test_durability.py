"""The store under a full disk and under kills: no success is reported
that was not recorded, and nothing recorded is lost."""

import os
import random
import signal
import subprocess
import time
import unittest

from warden_env import EnvTestCase, PAM_AUTHINFO_UNAVAIL, PAM_SUCCESS, PRIVATE_JOURNAL, requires_root

P1 = "correct horse battery staple"
S1 = b"12345678901234567890"


class FullDiskTest(EnvTestCase):
    @requires_root
    @unittest.skipUnless(PRIVATE_JOURNAL, "needs the private mount namespace of tests/integration/with_journal.sh")
    def test_full_disk_refuses_code_then_recovers(self):
        env = self.make_env(config={"mfa": {"mode": "required"}}, bus=True)
        os.mkdir(env.state, 0o700)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=700", "tmpfs", env.state], check=True)
        self.addCleanup(lambda: subprocess.run(["umount", "-l", env.state]))
        env.set_clock(59)
        env.start_daemon()
        env.plant_user("alice", P1)
        env.enroll_totp("alice", S1)
        filler = os.path.join(env.state, "filler")
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        r = env.pam("alice", [P1, "287082"])
        self.assertEqual(r.code, PAM_AUTHINFO_UNAVAIL, r)
        self.assertIn("disk", env.log().lower())
        os.unlink(filler)
        r = env.pam("alice", [P1, "287082"])
        self.assertEqual(r.code, PAM_SUCCESS, "the code was not used up, and no restart is needed")
        self.assertEqual(env.user_row("alice")["totp_last_used"], 30)


class KillDuringLoginTest(EnvTestCase):
    def test_sigkill_at_random_points(self):
        env = self.make_env(config={"mfa": {"mode": "required"}}, bus=True)
        env.set_clock(59)
        env.start_daemon()
        env.plant_user("alice", P1)
        env.enroll_totp("alice", S1)
        rng = random.Random(7)
        accepted = {}
        t = 59
        for _ in range(40):
            t += 30
            env.set_clock(t)
            code = subprocess.run(["oathtool", "--totp", "-N", "@%d" % t, S1.hex()], capture_output=True,
                                  text=True, check=True).stdout.strip()
            proc = subprocess.Popen([env_driver(), "--confdir", env.pam_dir, "--service", "wtest", "--user",
                                     "alice", "auth"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                    env=env.env())
            proc.stdin.write("%s\n%s\n" % (P1, code))
            proc.stdin.flush()
            time.sleep(rng.uniform(0.0, 0.06))
            env.daemon.send_signal(signal.SIGKILL)
            env.daemon.wait()
            out, _ = proc.communicate(timeout=30)
            if proc.returncode == PAM_SUCCESS:
                accepted[t // 30] = code
            env.start_daemon()
            # Whatever was reported as a success must be on disk.
            last = env.user_row("alice")["totp_last_used"]
            for step in accepted:
                self.assertIsNotNone(last)
                self.assertGreaterEqual(last // 30, step, "a success was reported before it was recorded")
        with env.db() as db:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        # The kill points must cover both sides of the commit.
        self.assertGreater(len(accepted), 0)
        self.assertLess(len(accepted), 40)
        for step, code in accepted.items():
            env.set_clock(step * 30 + 5)
            self.assertNotEqual(env.pam("alice", [P1, code]).code, PAM_SUCCESS, "replay after a crash")


def env_driver():
    from warden_env import PAM_DRIVER
    return PAM_DRIVER


if __name__ == "__main__":
    unittest.main()
