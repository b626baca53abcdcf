"""The TOTP second factor and recovery codes, end to end, with a fixed
clock and the RFC 6238 test secret."""

import concurrent.futures
import hashlib
import os
import signal
import subprocess
import unittest

from warden_env import (EnvTestCase, PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL, PAM_SUCCESS, PAM_USER_UNKNOWN, WARDEND)

P1 = "correct horse battery staple"
S1 = b"12345678901234567890"                      # RFC 6238 SHA1 key, base32 GEZDGNBVGY3TQOJQ...
S256 = b"12345678901234567890123456789012"
S512 = b"1234567890" * 6 + b"1234"
# Six-digit codes of S1 for the steps 0..4 (RFC 4226 HOTP vectors).
CODE = {0: "755224", 1: "287082", 2: "359152", 3: "969429", 4: "338314"}


def oathtool(secret, t, digits=6, period=30, algorithm="SHA1"):
    """A code from the reference tool, independent of the code under test."""
    args = ["oathtool", "--totp=" + algorithm, "-d", str(digits), "-s", "%ds" % period, "-N", "@%d" % t,
            secret.hex()]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()


class TotpEnvTestCase(EnvTestCase):
    mfa = {"mode": "required"}

    def make_totp_env(self, mfa=None, t=59, stacks=None, config=None):
        config = dict({"mfa": dict(self.mfa, **(mfa or {})), "daemon": {"dbus": "system"}}, **(config or {}))
        env = self.make_env(config=config, bus=True, stacks=stacks)
        env.set_clock(t)
        env.start_daemon()
        env.plant_user("alice", P1)
        return env

    def login(self, env, code, t=None, password=P1, **kwargs):
        if t is not None:
            env.set_clock(t)
        return env.pam("alice", [password, code], **kwargs)

    def last_step(self, env, period=30):
        """The last accepted time step; the store keeps its start time."""
        used = env.user_row("alice")["totp_last_used"]
        return None if used is None else used // period


class ReplayTest(TotpEnvTestCase):
    def test_one_code_one_login(self):
        env = self.make_totp_env()
        env.enroll_totp("alice", S1)
        r = self.login(env, "287082", t=59)
        self.assertCode(r, PAM_SUCCESS)
        self.assertEqual(r.prompt_texts(), ["Password: ", "Verification code: "])
        self.assertEqual(self.last_step(env), 1)
        self.assertCode(self.login(env, "287082", t=61), PAM_AUTH_ERR)
        self.assertCode(self.login(env, "359152", t=62), PAM_SUCCESS)
        self.assertEqual(self.last_step(env), 2)
        self.assertCode(self.login(env, "287082", t=63), PAM_AUTH_ERR, "an older step after a newer one")
        self.assertEqual(env.failure_reasons(), ["replay", "replay"])

    def test_parallel_logins_one_code(self):
        env = self.make_totp_env(t=95)
        env.enroll_totp("alice", S1)
        for attempt in range(3):
            code = CODE[3] if attempt == 0 else oathtool(S1, 95 + 30 * attempt)
            env.set_clock(95 + 30 * attempt)
            with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
                results = list(pool.map(lambda _: env.pam("alice", [P1, code]).code, range(2)))
            self.assertEqual(sorted(results), [PAM_SUCCESS, PAM_AUTH_ERR], "attempt %d" % attempt)
        self.assertEqual(env.failure_reasons(), ["replay"] * 3)

    def test_replay_with_right_password_counts(self):
        """A replayed code counts as a failure even with the right
        password, so replaying a watched code cannot confirm a password:
        the count, and with it the next delay, is the same either way."""
        env = self.make_totp_env(t=95, config={"lockout": {"deny": "10"}})
        env.enroll_totp("alice", S1)
        self.assertEqual(env.pam("alice", [P1, CODE[3]]).code, PAM_SUCCESS)
        self.assertEqual(env.pam("alice", [P1, CODE[3]]).code, PAM_AUTH_ERR)
        self.assertEqual(env.user_row("alice")["failures"], 1)
        self.assertEqual(env.pam("alice", ["a wrong password", CODE[3]]).code, PAM_AUTH_ERR)
        self.assertEqual(env.user_row("alice")["failures"], 2)

    def test_replay_after_restart(self):
        env = self.make_totp_env()
        env.enroll_totp("alice", S1)
        t = 95
        code = None
        for _ in range(1000):
            t += 30
            env.set_clock(t)
            code = oathtool(S1, t)
            self.assertCode(env.pam("alice", [P1, code]), PAM_SUCCESS)
        self.assertEqual(self.last_step(env), t // 30)
        env.stop_daemon(signal.SIGKILL)
        env.start_daemon()
        self.assertCode(env.pam("alice", [P1, code]), PAM_AUTH_ERR)
        self.assertEqual(env.failure_reasons()[-1], "replay")
        with env.db() as db:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")

    def test_wrong_password_consumes_code(self):
        env = self.make_totp_env()
        env.enroll_totp("alice", S1)
        r = self.login(env, "287082", t=59, password="wrong password")
        self.assertCode(r, PAM_AUTH_ERR)
        self.assertEqual(r.prompt_texts(), ["Password: ", "Verification code: "], "both prompts always shown")
        self.assertEqual(self.last_step(env), 1, "the watched code is used up")
        self.assertCode(self.login(env, "287082", t=60), PAM_AUTH_ERR)
        self.assertEqual(env.failure_reasons(), ["password", "replay"])


class WindowTest(TotpEnvTestCase):
    """Each row on a fresh store, because every success moves the watermark."""

    def check(self, mfa, t, code, expected, step=None):
        env = self.make_totp_env(mfa=mfa, t=t)
        env.enroll_totp("alice", S1)
        r = self.login(env, code)
        self.assertCode(r, expected, "t=%d code=%s %r" % (t, code, mfa))
        if step is not None:
            self.assertEqual(self.last_step(env, int(mfa.get("totp_period", 30))), step)
        if expected == PAM_AUTH_ERR:
            self.assertEqual(env.failure_reasons(), ["code"])
        return env

    def test_window_one(self):
        self.check({}, 0, "287082", PAM_SUCCESS, step=1)     # step 1 = T+1
        self.check({}, 29, "287082", PAM_SUCCESS, step=1)
        self.check({}, 89, "287082", PAM_SUCCESS, step=1)    # step 1 = T-1
        self.check({}, 90, "287082", PAM_AUTH_ERR)           # T-2
        self.check({}, 59, "755224", PAM_SUCCESS, step=0)
        self.check({}, 60, "755224", PAM_AUTH_ERR)

    def test_window_zero(self):
        self.check({"totp_window": "0"}, 60, "287082", PAM_AUTH_ERR)
        self.check({"totp_window": "0"}, 45, "287082", PAM_SUCCESS)

    def test_period_sixty(self):
        self.check({"totp_period": "60"}, 100, "287082", PAM_SUCCESS, step=1)
        self.check({"totp_period": "30"}, 100, "287082", PAM_AUTH_ERR)

    def test_times_past_2038(self):
        self.check({}, 2000000000, "279037", PAM_SUCCESS)
        self.check({}, 20000000000, "353130", PAM_SUCCESS, step=666666666)

    def test_drift_recorded(self):
        env = self.check({}, 89, "287082", PAM_SUCCESS, step=1)
        self.assertEqual(env.user_row("alice")["totp_drift"], -1)


class CodeFormTest(TotpEnvTestCase):
    def check(self, t, code, expected, digits="6"):
        env = self.make_totp_env(mfa={"totp_digits": digits}, t=t)
        env.enroll_totp("alice", S1)
        self.assertCode(self.login(env, code), expected, repr(code))

    def test_leading_zero(self):
        self.check(1111111109, "081804", PAM_SUCCESS)
        self.check(1234567890, "005924", PAM_SUCCESS)
        self.check(1111111109, "81804", PAM_AUTH_ERR)

    def test_length_must_match_digits(self):
        self.check(1111111109, "07081804", PAM_AUTH_ERR)
        self.check(1111111109, "7081804", PAM_AUTH_ERR)
        self.check(1111111109, "07081804", PAM_SUCCESS, digits="8")

    def test_not_digits(self):
        for code in ["08180a", " 081804", "٠٨١٨٠٤", "081804 ", "+81804", "0818\u00a04"]:
            with self.subTest(code=code):
                self.check(1111111109, code, PAM_AUTH_ERR)

    def test_other_algorithms(self):
        for secret, algorithm, t, code in [(S256, "SHA256", 59, "46119246"), (S512, "SHA512", 59, "90693936"),
                                           (S256, "SHA256", 1111111109, "68084774"),
                                           (S512, "SHA512", 1111111109, "25091201")]:
            with self.subTest(algorithm=algorithm, t=t):
                env = self.make_totp_env(mfa={"totp_digits": "8"}, t=t)
                env.enroll_totp("alice", secret, algorithm=algorithm)
                self.assertCode(self.login(env, code), PAM_SUCCESS)
                self.assertEqual(oathtool(secret, t, digits=8, algorithm=algorithm), code)


class MissingFactorTest(TotpEnvTestCase):
    def test_empty_code(self):
        env = self.make_totp_env()
        env.enroll_totp("alice", S1)
        r = self.login(env, "")
        self.assertCode(r, PAM_AUTH_ERR)
        self.assertEqual(r.prompt_texts(), ["Password: ", "Verification code: "])
        self.assertEqual(env.failure_reasons(), ["no_second_factor"])

    def test_required_without_factor(self):
        env = self.make_totp_env()
        r = self.login(env, "287082")
        self.assertCode(r, PAM_AUTH_ERR)
        self.assertEqual(r.prompt_texts(), ["Password: ", "Verification code: "])
        self.assertEqual(env.failure_reasons(), ["no_second_factor"])

    def test_pending_factor(self):
        env = self.make_totp_env()
        env.enroll_totp("alice", S1, active=False)
        self.assertCode(self.login(env, "287082"), PAM_AUTH_ERR, "required: a pending factor does not count")
        env2 = self.make_totp_env(mfa={"mode": "optional"})
        env2.enroll_totp("alice", S1, active=False)
        r = env2.pam("alice", [P1])
        self.assertCode(r, PAM_SUCCESS, "optional: a pending factor does not block a password login")
        self.assertEqual(r.prompt_texts(), ["Password: "])

    def test_optional_mode(self):
        env = self.make_totp_env(mfa={"mode": "optional"})
        env.plant_user("bob", P1)
        self.assertCode(env.pam("bob", [P1]), PAM_SUCCESS, "no factor: password alone")
        env.enroll_totp("alice", S1)
        self.assertCode(self.login(env, ""), PAM_AUTH_ERR, "an enrolled factor is never optional")
        self.assertCode(self.login(env, "287082"), PAM_SUCCESS)

    def test_unknown_user_same_prompts(self):
        env = self.make_totp_env()
        env.enroll_totp("alice", S1)
        r = env.pam("ghost", [P1, "287082"])
        self.assertCode(r, PAM_USER_UNKNOWN)
        self.assertEqual(r.prompt_texts(), ["Password: ", "Verification code: "])


class CombinedModeTest(TotpEnvTestCase):
    def setUp(self):
        self.stacks = None

    def make(self, **kwargs):
        env = self.make_totp_env(**kwargs)
        env.write_stack("combined", env.stack_line("auth", "prompt=combined"))
        env.write_stack("totponly", env.stack_line("auth", "factors=totp"))
        env.enroll_totp("alice", S1)
        return env

    def test_password_and_code_in_one_answer(self):
        env = self.make()
        r = env.pam("alice", [P1 + "287082"], service="combined")
        self.assertCode(r, PAM_SUCCESS)
        self.assertEqual(r.prompt_texts(), ["Password and verification code: "])

    def test_password_only_or_code_only(self):
        env = self.make()
        self.assertCode(env.pam("alice", [P1], service="combined"), PAM_AUTH_ERR)
        self.assertCode(env.pam("alice", ["287082"], service="combined"), PAM_AUTH_ERR)

    def test_code_is_always_the_last_digits(self):
        env = self.make()
        env.plant_user("alice", "hunter123456pw12")
        self.assertCode(env.pam("alice", ["hunter123456pw12287082"], service="combined"), PAM_SUCCESS)

    def test_recovery_code_in_combined_answer(self):
        env = self.make()
        env.set_recovery_codes("alice", ["0a1b2-c3d4e"] + ["zzzz%d-zzzzz" % i for i in range(9)])
        self.assertCode(env.pam("alice", [P1 + "0a1b2-c3d4e"], service="combined"), PAM_SUCCESS)
        self.assertCode(env.pam("alice", [P1 + "0a1b2-c3d4e"], service="combined"), PAM_AUTH_ERR)

    def test_totp_only_factor(self):
        env = self.make()
        r = env.pam("alice", ["287082"], service="totponly")
        self.assertCode(r, PAM_SUCCESS)
        self.assertEqual(r.prompt_texts(), ["Verification code: "])
        self.assertCode(env.pam("alice", ["287082"], service="totponly"), PAM_AUTH_ERR, "replay")


class StackedTokenTest(TotpEnvTestCase):
    """What the next module sees in PAM_AUTHTOK: the password, never the code."""

    def test_authtok_is_password_only(self):
        env = self.make_totp_env()
        line, record = env.probe_record("after")
        env.write_stack("probe", env.stack_line("auth") + line)
        env.write_stack("probe-combined", env.stack_line("auth", "prompt=combined") + line)
        env.write_stack("first", env.probe_set("p1", P1) + env.stack_line("auth", "use_first_pass") + line)
        env.write_stack("first-none", env.stack_line("auth", "use_first_pass"))
        env.enroll_totp("alice", S1)
        p1_hash = hashlib.sha256(P1.encode()).hexdigest()

        self.assertCode(self.login(env, "287082", t=59, service="probe"), PAM_SUCCESS)
        with open(record) as f:
            self.assertEqual(f.read().strip(), p1_hash)

        env.set_clock(89)
        r = env.pam("alice", ["359152"], service="first")
        self.assertCode(r, PAM_SUCCESS)
        self.assertEqual(r.prompt_texts(), ["Verification code: "], "no password prompt with use_first_pass")

        env.set_clock(119)
        self.assertCode(env.pam("alice", [P1 + "969429"], service="probe-combined"), PAM_SUCCESS)
        with open(record) as f:
            self.assertNotEqual(f.read().strip(), hashlib.sha256((P1 + "969429").encode()).hexdigest())

        before = env.user_row("alice")["totp_last_used"]
        r = env.pam("alice", [], service="first-none")
        self.assertCode(r, PAM_AUTH_ERR)
        self.assertEqual(r.prompt_texts(), [])
        self.assertEqual(env.user_row("alice")["totp_last_used"], before)


class RecoveryCodeTest(TotpEnvTestCase):
    CODES = ["0abcd-efghj", "1kmnp-qrstv"] + ["w%dxyz-23456" % i for i in range(8)]

    def test_each_code_once(self):
        env = self.make_totp_env()
        env.enroll_totp("alice", S1)
        env.set_recovery_codes("alice", self.CODES)
        self.assertCode(self.login(env, "0abcd-efghj"), PAM_SUCCESS)
        self.assertCode(self.login(env, "0abcd-efghj"), PAM_AUTH_ERR, "second use")
        self.assertCode(self.login(env, "abcd-efghj"), PAM_AUTH_ERR, "without its leading zero")
        self.assertCode(self.login(env, "1KMNP QRSTV"), PAM_SUCCESS, "case and spacing are forgiven")
        self.assertEqual(env.log().count("used a recovery code"), 2)
        with env.db() as db:
            left = db.execute("SELECT count(*) FROM recovery_codes WHERE used IS NULL").fetchone()[0]
        self.assertEqual(left, 8)

    def test_codes_stored_only_as_keyed_hashes(self):
        env = self.make_totp_env()
        env.set_recovery_codes("alice", self.CODES)
        with env.db() as db:
            hashes = [row[0] for row in db.execute("SELECT code_hash FROM recovery_codes")]
        self.assertEqual(len(hashes), 10)
        for code in self.CODES:
            normalized = code.replace("-", "").encode()
            for h in hashes:
                self.assertNotIn(normalized, h)
                self.assertNotEqual(h, hashlib.blake2b(normalized, digest_size=32).digest())

    def test_regenerate_invalidates_old_set(self):
        env = self.make_totp_env()
        env.enroll_totp("alice", S1)
        env.set_recovery_codes("alice", self.CODES)
        env.set_recovery_codes("alice", ["zzzz%d-zzzzz" % i for i in range(10)])
        self.assertCode(self.login(env, "0abcd-efghj"), PAM_AUTH_ERR)
        self.assertCode(self.login(env, "zzzz3-zzzzz"), PAM_SUCCESS)

    def test_recovery_codes_alone_satisfy_required_mode(self):
        env = self.make_totp_env()
        env.set_recovery_codes("alice", self.CODES)
        self.assertCode(self.login(env, "0abcd-efghj"), PAM_SUCCESS)


class EnrollmentTest(TotpEnvTestCase):
    def confirm(self, env, code):
        return env.busctl("ConfirmTotp", "ss", "alice", code, check=False)

    def test_confirmation_code_cannot_log_in(self):
        env = self.make_totp_env(t=30)
        env.enroll_totp("alice", S1, active=False)
        self.assertIn("pending", env.ctl("user", "show", "alice").stdout.lower())
        env.set_clock(59)
        r = self.confirm(env, "287082")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last_step(env), 1)
        self.assertCode(self.login(env, "287082", t=61), PAM_AUTH_ERR)
        self.assertEqual(env.failure_reasons(), ["replay"])
        self.assertCode(self.login(env, "359152", t=62), PAM_SUCCESS)
        self.assertCode(self.login(env, "969429", t=95), PAM_SUCCESS)
        self.assertCode(self.login(env, "969429", t=100), PAM_AUTH_ERR)
        self.assertEqual(self.last_step(env), 3)

    def test_watermark_survives_removal(self):
        env = self.make_totp_env(t=95)
        env.enroll_totp("alice", S1)
        self.assertCode(self.login(env, "969429"), PAM_SUCCESS)
        env.busctl("RemoveTotp", "s", "alice")
        env.enroll_totp("alice", S1, active=False)
        env.set_clock(100)
        r = self.confirm(env, "969429")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("That code was already used", r.stderr)
        self.assertEqual(self.last_step(env), 3)

    def test_period_change_keeps_enrolled_factors(self):
        """Digits and period are fixed at enrollment; a later change of the
        defaults affects new factors only, and no watermark goes stale."""
        env = self.make_totp_env(t=59)
        env.enroll_totp("alice", S1)
        self.assertCode(self.login(env, "287082"), PAM_SUCCESS)
        env.stop_daemon()
        env.config["mfa"]["totp_period"] = "60"
        env.config["mfa"]["totp_digits"] = "8"
        env.write_config()
        env.start_daemon()
        self.assertCode(self.login(env, "359152", t=62), PAM_SUCCESS)
        self.assertEqual(self.last_step(env), 2)
        env.plant_user("bob", P1)
        env.enroll_totp("bob", S1)
        env.set_clock(179)
        self.assertCode(env.pam("bob", [P1, oathtool(S1, 179, digits=8, period=60)]), PAM_SUCCESS)

    def test_active_factor_not_replaced_without_force(self):
        env = self.make_totp_env()
        env.enroll_totp("alice", S1)
        r = env.busctl("EnrollTotp", "saysb", "alice", 20, *range(1, 21), "SHA1", "false", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("already has an active TOTP factor", r.stderr)
        self.assertCode(self.login(env, "287082"), PAM_SUCCESS, "the old factor still works")


class SealedSecretTest(TotpEnvTestCase):
    def test_tampered_ciphertext(self):
        env = self.make_totp_env()
        env.enroll_totp("alice", S1)
        with env.db() as db:
            sealed = bytearray(db.execute("SELECT sealed_secret FROM totp").fetchone()[0])
            sealed[-1] ^= 1
            db.execute("UPDATE totp SET sealed_secret = ?", (bytes(sealed),))
        self.assertCode(self.login(env, "287082"), PAM_AUTHINFO_UNAVAIL)
        self.assertIn("Failed to decrypt the TOTP secret of user 'alice'", env.log())
        self.assertIsNone(self.last_step(env), "nothing accepted")

    def test_record_moved_to_another_user(self):
        env = self.make_totp_env()
        env.plant_user("bob", P1)
        env.enroll_totp("alice", S1)
        with env.db() as db:
            db.execute("INSERT INTO totp (user, sealed_secret, algorithm, digits, period, state, created, confirmed)"
                       " SELECT 'bob', sealed_secret, algorithm, digits, period, state, created, confirmed"
                       " FROM totp WHERE user = 'alice'")
        self.assertCode(env.pam("bob", [P1, "287082"]), PAM_AUTHINFO_UNAVAIL)
        self.assertCode(self.login(env, "287082"), PAM_SUCCESS)

    def test_wrong_key_file(self):
        env = self.make_totp_env()
        env.enroll_totp("alice", S1)
        env.stop_daemon()
        os.unlink(env.key)
        subprocess.run([WARDEND, "--generate-key", env.key], check=True)
        env.start_daemon()
        self.assertCode(self.login(env, "287082"), PAM_AUTHINFO_UNAVAIL)
        self.assertIn("wrong key file or altered record", env.log())

    def test_secret_not_stored_in_clear(self):
        env = self.make_totp_env()
        env.enroll_totp("alice", S1)
        env.stop_daemon()
        for name in os.listdir(env.state):
            with open(os.path.join(env.state, name), "rb") as f:
                data = f.read()
            self.assertNotIn(S1, data, name)
            self.assertNotIn(b"GEZDGNBVGY3TQOJQ", data, name)


if __name__ == "__main__":
    unittest.main()
