"""Lockout and throttling, with the development-mode test clock instead of
sleeps."""

import concurrent.futures
import signal
import unittest

from warden_env import (EnvTestCase, MODULE, PAM_AUTH_ERR, PAM_PERM_DENIED, PAM_SUCCESS, PAM_USER_UNKNOWN,
                        requires_root)

P1 = "correct horse battery staple"
S1 = b"12345678901234567890"
T0 = 1_800_000_000


class LockoutTestCase(EnvTestCase):
    def make_lock_env(self, lockout=None, mfa="off", bus=True):
        config = {"lockout": dict({"deny": "3", "fail_interval": "900", "unlock_time": "600"}, **(lockout or {})),
                  "mfa": {"mode": mfa}, "daemon": {"dbus": "system" if bus else "off"}}
        env = self.make_env(config=config, bus=bus)
        env.set_clock(T0)
        env.start_daemon()
        env.plant_user("alice", P1)
        return env

    def tally(self, env, name="alice"):
        row = env.user_row(name)
        return row["failures"], row["locked_until"]

    def fail_logins(self, env, n, user="alice", **kwargs):
        """n failed logins, each with a different wrong password, since a
        repeated one counts once."""
        self.wrong = getattr(self, "wrong", 0)
        for _ in range(n):
            self.wrong += 1
            self.assertCode(env.pam(user, ["wrong password %d" % self.wrong], **kwargs), PAM_AUTH_ERR)


class LockoutTest(LockoutTestCase):
    def test_lock_after_deny_failures(self):
        env = self.make_lock_env()
        self.fail_logins(env, 2)
        self.assertEqual(self.tally(env), (2, None))
        self.fail_logins(env, 1)
        self.assertEqual(self.tally(env), (3, T0 + 600))
        import json
        shown = json.loads(env.ctl("--json", "user", "show", "alice").stdout)
        self.assertEqual((shown["failures"], shown["locked_until"]), (3, T0 + 600))
        r = env.pam("alice", [P1])
        self.assertCode(r, PAM_AUTH_ERR, "the right password while locked")
        self.assertEqual(r.prompt_texts(), ["Password: "], "the same prompts as always")
        self.assertIn(("error", "Authentication failed"), r.prompts, "only the generic message")
        self.assertEqual(self.tally(env), (3, T0 + 600), "a refusal while locked counts nothing")
        self.assertEqual(env.failure_reasons(), ["password"] * 3 + ["locked"])
        self.assertIn("Locked user 'alice' after 3 failures", env.log())

    def test_lock_expires(self):
        env = self.make_lock_env()
        self.fail_logins(env, 3)
        env.set_clock(T0 + 599)
        self.assertCode(env.pam("alice", [P1]), PAM_AUTH_ERR)
        env.set_clock(T0 + 600)
        self.assertCode(env.pam("alice", [P1]), PAM_SUCCESS)
        self.assertEqual(self.tally(env), (0, None))

    def test_unlock_time_zero_waits_for_admin(self):
        env = self.make_lock_env({"unlock_time": "0"})
        self.fail_logins(env, 3)
        env.set_clock(T0 + 10 * 365 * 86400)
        self.assertCode(env.pam("alice", [P1]), PAM_AUTH_ERR)
        show = env.ctl("user", "show", "alice").stdout
        self.assertRegex(show, r"Failed attempts:\s+3\n")
        self.assertRegex(show, r"Locked until:\s+until unlocked with 'wardenctl unlock'")
        r = env.ctl("unlock", "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Unlocked user 'alice'", r.stdout)
        self.assertEqual(self.tally(env), (0, None))
        self.assertCode(env.pam("alice", [P1]), PAM_SUCCESS)

    def test_success_resets_count(self):
        env = self.make_lock_env()
        self.fail_logins(env, 2)
        self.assertCode(env.pam("alice", [P1]), PAM_SUCCESS)
        self.assertEqual(self.tally(env), (0, None))
        self.fail_logins(env, 2)
        self.assertEqual(self.tally(env), (2, None), "the count started again")

    def test_window_ends(self):
        env = self.make_lock_env({"fail_interval": "60"})
        self.fail_logins(env, 2)
        env.set_clock(T0 + 61)
        self.fail_logins(env, 1)
        self.assertEqual(self.tally(env), (1, None))

    def test_repeated_password_counts_once(self):
        env = self.make_lock_env()
        for _ in range(5):
            self.assertCode(env.pam("alice", ["the same wrong one"]), PAM_AUTH_ERR)
        self.assertEqual(self.tally(env), (1, None))
        self.fail_logins(env, 2)
        self.assertEqual(self.tally(env)[0], 3)

    def test_root_exempt_unless_configured(self):
        env = self.make_lock_env()
        env.plant_user("root", P1)
        self.fail_logins(env, 5, user="root")
        self.assertCode(env.pam("root", [P1]), PAM_SUCCESS)
        strict = self.make_lock_env({"even_deny_root": "true"})
        strict.plant_user("root", P1)
        self.fail_logins(strict, 3, user="root")
        self.assertCode(strict.pam("root", [P1]), PAM_AUTH_ERR)

    def test_lock_survives_restart(self):
        env = self.make_lock_env()
        self.fail_logins(env, 3)
        env.stop_daemon(signal.SIGKILL)
        env.start_daemon()
        self.assertCode(env.pam("alice", [P1]), PAM_AUTH_ERR)
        self.assertEqual(env.failure_reasons()[-1], "locked")

    def test_clock_backwards_never_lengthens_lock(self):
        env = self.make_lock_env({"unlock_time": "60"})
        self.fail_logins(env, 3)
        env.set_clock(T0 - 86400)
        self.assertCode(env.pam("alice", [P1]), PAM_AUTH_ERR, "still locked right after the jump")
        env.set_clock(T0 - 86400 + 61)
        self.assertCode(env.pam("alice", [P1]), PAM_SUCCESS, "free within unlock_time of the jump")

    def test_clock_forwards(self):
        env = self.make_lock_env()
        self.fail_logins(env, 3)
        env.set_clock(T0 + 10 * 86400)
        self.assertCode(env.pam("alice", [P1]), PAM_SUCCESS)

    def test_growing_delay(self):
        env = self.make_lock_env({"deny": "10", "fail_delay": "2"})
        times = [env.pam("alice", ["wrong %d" % i]).elapsed for i in range(4)]
        self.assertGreater(times[0], 0.2)
        self.assertGreater(times[2], times[0] + 0.5, times)
        self.assertLess(times[3], 3.0, "capped at fail_delay: %r" % times)

    def test_unknown_name_delay_matches_enrolled(self):
        """Failures of other unknown names do not slow a new unknown name
        down: the response to each name comes after the delay an enrolled
        user with its count of failures would get, including once locked."""
        env = self.make_lock_env({"deny": "3", "fail_delay": "2"})
        for i in range(6):
            self.assertCode(env.pam("nobody%d" % i, ["wrong %d" % i]), PAM_USER_UNKNOWN)
        enrolled, unknown = [], []
        for i in range(4):
            enrolled.append(env.pam("alice", ["alice wrong %d" % i]).elapsed)
            unknown.append(env.pam("carol", ["carol wrong %d" % i]).elapsed)
        for attempt in range(4):
            self.assertAlmostEqual(unknown[attempt], enrolled[attempt], delta=0.4,
                                   msg="attempt %d: enrolled %r, unknown %r" % (attempt + 1, enrolled, unknown))
        # The third failure locks alice; the fourth attempt is refused
        # after the short delay, and so is carol's.
        self.assertGreater(enrolled[2], enrolled[0] + 0.5, enrolled)
        self.assertLess(enrolled[3], enrolled[2], enrolled)
        self.assertEqual(self.tally(env)[0], 3)

    def test_unknown_name_repeat_counts_once(self):
        """The same wrong password sent again counts once for an unknown
        name too, so repeating it cannot tell the two kinds of name apart
        by a growing delay."""
        env = self.make_lock_env({"deny": "5", "fail_delay": "2"})
        enrolled = [env.pam("alice", ["the same wrong one"]).elapsed for _ in range(4)]
        unknown = [env.pam("carol", ["the same wrong one"]).elapsed for _ in range(4)]
        self.assertEqual(self.tally(env)[0], 1)
        for attempt in range(4):
            self.assertLess(enrolled[attempt], 0.7, enrolled)
            self.assertLess(unknown[attempt], 0.7, unknown)


class LockedCodeTest(LockoutTestCase):
    def test_locked_user_code_not_consumed(self):
        env = self.make_lock_env(mfa="required")
        env.set_clock(59)
        env.enroll_totp("alice", S1)
        for i in range(3):
            self.assertCode(env.pam("alice", ["wrong %d" % i, "000000"]), PAM_AUTH_ERR)
        r = env.pam("alice", [P1, "287082"])
        self.assertCode(r, PAM_AUTH_ERR)
        self.assertEqual(r.prompt_texts(), ["Password: ", "Verification code: "])
        self.assertIsNone(env.user_row("alice")["totp_last_used"], "the code was not used up")
        env.ctl("unlock", "alice")
        self.assertCode(env.pam("alice", [P1, "287082"]), PAM_SUCCESS)


class NoSideDoorTest(LockoutTestCase):
    """Only a credential check inside wardend clears failures."""

    def test_other_phases_do_not_reset(self):
        env = self.make_lock_env()
        self.fail_logins(env, 3)
        for service in ["wtest"]:
            for op in [["acct"], ["setcred"], ["open"], ["close"]]:
                env.pam("alice", [], service=service, ops=op)
        self.assertEqual(self.tally(env), (3, T0 + 600))
        r = env.pam("alice", [], ops=["acct"])
        self.assertCode(r, PAM_PERM_DENIED, "a locked account is refused in account management")
        self.assertCode(env.pam("alice", [P1]), PAM_AUTH_ERR)
        env.ctl("unlock", "alice")
        self.assertCode(env.pam("alice", [P1], ops=["auth", "acct"]), PAM_SUCCESS)
        unlock = env.journal(MESSAGE_ID="94860c94b7e34c83b1f0ec3291ba161b") if env.journal_available() else None
        if unlock is not None:
            self.assertEqual(len(unlock), 1)

    def test_count_is_per_user_not_per_service(self):
        env = self.make_lock_env()
        env.write_stack("sshd", env.stack_line("auth"))
        env.write_stack("screenlock", env.stack_line("auth"))
        self.fail_logins(env, 2, service="sshd")
        self.fail_logins(env, 1, service="screenlock")
        self.assertCode(env.pam("alice", [P1], service="wtest"), PAM_AUTH_ERR)


class ThrottleTest(LockoutTestCase):
    def test_remote_host_throttled_across_users(self):
        env = self.make_lock_env({"deny": "100", "rhost_deny": "4"})
        env.plant_user("bob", P1)
        self.fail_logins(env, 2, user="alice", rhost="203.0.113.9")
        self.fail_logins(env, 1, user="bob", rhost="203.0.113.9")
        self.assertCode(env.pam("ghost", ["x"], rhost="203.0.113.9"), PAM_USER_UNKNOWN, "unknown users count too")
        self.assertCode(env.pam("bob", [P1], rhost="203.0.113.9"), PAM_AUTH_ERR)
        self.assertEqual(env.failure_reasons()[-1], "throttled")
        self.assertCode(env.pam("bob", [P1], rhost="198.51.100.1"), PAM_SUCCESS, "another host is unaffected")
        self.assertCode(env.pam("alice", [P1]), PAM_SUCCESS, "no remote host, no shared bucket")
        env.set_clock(T0 + 600)
        self.assertCode(env.pam("bob", [P1], rhost="203.0.113.9"), PAM_SUCCESS, "the throttle ends")

    @requires_root
    def test_non_root_caller_names_no_host(self):
        """A non-root caller may pass any PAM_RHOST. Its failures must not
        throttle that host for sshd's users, nor name it in the journal
        where fail2ban would ban it."""
        env = self.make_lock_env({"deny": "100", "rhost_deny": "2", "local_deny": "100"})
        env.plant_user("nobody", P1)
        self.fail_logins(env, 3, user="nobody", as_user="nobody", rhost="203.0.113.4")
        self.assertEqual(env.db().execute("SELECT bucket FROM throttle WHERE bucket LIKE 'rhost:%'").fetchall(), [])
        self.assertCode(env.pam("alice", [P1], rhost="203.0.113.4"), PAM_SUCCESS, "the host is not throttled")
        if env.journal_available():
            hosts = {e.get("WARDEN_RHOST") for e in env.journal(WARDEN_EVENT="auth", WARDEN_USER="nobody")}
            self.assertEqual(hosts, {None})

    def test_pass_unknown_counts_nothing(self):
        """With pass_unknown, as on a host where pam_unix serves the users
        Warden does not know, their logins go on to the next module and
        count nothing: many of them from one host leave it unthrottled."""
        env = self.make_lock_env({"deny": "100", "rhost_deny": "3"})
        env.write_stack("mixed", "auth [success=done user_unknown=ignore default=die] %s socket=%s pass_unknown\n"
                                 "auth required pam_permit.so\n" % (MODULE, env.socket))
        for i in range(5):
            r = env.pam("localuser", ["unix password %d" % i], service="mixed", rhost="203.0.113.9")
            self.assertCode(r, PAM_SUCCESS, "pam_permit stands in for pam_unix")
        self.assertEqual(env.db().execute("SELECT bucket FROM throttle").fetchall(), [])
        self.assertCode(env.pam("alice", [P1], service="mixed", rhost="203.0.113.9"), PAM_SUCCESS)
        self.fail_logins(env, 3, user="alice", service="mixed", rhost="203.0.113.9")
        self.assertCode(env.pam("alice", [P1], service="mixed", rhost="203.0.113.9"), PAM_AUTH_ERR,
                        "an enrolled user's failures still throttle the host")
        self.assertCode(env.pam("localuser", ["unix password"], service="mixed", rhost="203.0.113.9"), PAM_SUCCESS,
                        "pam_unix alone judges users Warden does not know, even from a throttled host")

    @requires_root
    def test_non_root_caller_stricter_limit(self):
        env = self.make_lock_env({"deny": "5", "local_deny": "2"})
        env.plant_user("nobody", P1)
        self.fail_logins(env, 2, user="nobody", as_user="nobody")
        r = env.pam("nobody", [P1], as_user="nobody")
        self.assertCode(r, PAM_AUTH_ERR)
        self.assertEqual(env.failure_reasons()[-1], "throttled")
        self.assertCode(env.pam("nobody", [P1]), PAM_SUCCESS, "root callers have the normal limit")


class ParallelTest(LockoutTestCase):
    def test_parallel_failures_lose_no_count(self):
        env = self.make_lock_env({"deny": "5"}, bus=False)
        env.config["daemon"]["workers"] = "2"
        env.stop_daemon()
        env.write_config()
        env.start_daemon()
        env.write_stack("sshd", env.stack_line("auth"))
        with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
            codes = list(pool.map(lambda i: env.pam("alice", ["wrong %d" % i],
                                                    service="sshd" if i % 2 else "wtest").code, range(40)))
        self.assertEqual(codes, [PAM_AUTH_ERR] * 40)
        failures, locked_until = self.tally(env)
        reasons = env.failure_reasons()
        self.assertIsNotNone(locked_until)
        self.assertGreaterEqual(failures, 5)
        self.assertEqual(failures, reasons.count("password"), "every verified failure was counted")
        self.assertEqual(reasons.count("locked"), 40 - failures)

    def test_parallel_right_logins_never_lock(self):
        env = self.make_lock_env({"deny": "5"}, bus=False)
        with concurrent.futures.ThreadPoolExecutor(max_workers=44) as pool:
            answers = [P1] * 40 + ["wrong %d" % i for i in range(4)]
            codes = list(pool.map(lambda a: env.pam("alice", [a]).code, answers))
        self.assertEqual(codes[:40].count(PAM_SUCCESS) + codes[:40].count(9), 40)
        self.assertNotIn("locked", env.failure_reasons())
        self.assertLessEqual(self.tally(env)[0], 4)
        self.assertIsNone(self.tally(env)[1])


if __name__ == "__main__":
    unittest.main()
