"""Password logins through the real libpam, pam_warden.so and wardend."""

import concurrent.futures
import statistics
import unittest

from warden_env import (EnvTestCase, MODULE, PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL, PAM_PERM_DENIED,
                        PAM_SERVICE_ERR, PAM_SUCCESS, PAM_USER_UNKNOWN, requires_root)

P1 = "correct horse battery staple"

# Argon2id strings with known passwords, made with libsodium 1.0.18.
H1 = "$argon2id$v=19$m=65536,t=2,p=1$d2FyZGVuLXRlc3Qtc2FsdA$vyWOjCjAG4mmKz4s4gvCWeQiOt39aBWvcQsbMQRQK2U"
H7 = "$argon2id$v=19$m=65536,t=3,p=1$d2FyZGVuLXRlc3Qtc2FsdA$Q7/vQliY15oRgz40MDmvBjovnVQEqg/7z9kXiTNwxO8"
H6 = "$argon2id$v=19$m=1048576,t=1,p=1$d2FyZGVuLXRlc3Qtc2FsdA$57rzdZ9GyfkS4vCaiY53+DnIjWC1n2COpN9YtUOok2I"
H8 = "$argon2i$v=19$m=65536,t=3,p=1$d2FyZGVuLXRlc3Qtc2FsdA$ZNa4osW+A/k+/B9YXdUbGSawk5RGGkYuVoDdlaBkMVE"
H9 = "$6$wardentest$E0vJ0XdnzPyU/9MxUOEaHsXbAlZCz1aLYqdNCbiDDnAM10x.t9faghSY5prQtku//wBMfdnBgQp0.Bj0Hcz4Z."
T0 = "$argon2id$v=19$m=4096,t=0,p=1$X1NhbHQAAAAAAAAAAAAAAA$bWh++MKN1OiFHKgIWTLvIi1iHicmHH7+Fv3K88ifFfI"
SODIUM_P3_PASSWORD = "K3S=KyH#)36_?]LxeR8QNKw6X=gFbxai$C%29V*"
SODIUM_P3 = ("$argon2id$v=19$m=4096,t=1,p=3$PkEgcHJldHR5IGxvbmcgc2FsdA$"
             "HUqx5Z1b/ZypnUrvvJ5UC2Q+T6Q1WwASK/Kr9dRbGA0")

PRODUCTION_COST = {"password": {"argon2_memory_kib": "65536", "argon2_iterations": "3"}}


class PasswordLoginTest(EnvTestCase):
    def setUp(self):
        self.env = self.make_env()
        self.env.start_daemon()
        self.env.plant_user("alice", P1)

    def test_right_password(self):
        r = self.env.pam("alice", [P1])
        self.assertCode(r, PAM_SUCCESS)
        self.assertEqual(r.prompt_texts(), ["Password: "])

    def test_wrong_password(self):
        r = self.env.pam("alice", ["correct horse battery stapl"])
        self.assertCode(r, PAM_AUTH_ERR)
        self.assertIn(("error", "Authentication failed"), r.prompts)

    def test_unknown_user_same_prompts(self):
        known = self.env.pam("alice", ["wrong password here"])
        unknown = self.env.pam("nobody-here", ["wrong password here"])
        self.assertCode(unknown, PAM_USER_UNKNOWN)
        self.assertEqual(unknown.prompts, known.prompts)

    def test_empty_password_rejected(self):
        self.assertCode(self.env.pam("alice", [""]), PAM_AUTH_ERR)

    def test_password_at_pam_limit(self):
        password = "p" * 512
        self.env.plant_user("bob", password)
        self.assertCode(self.env.pam("bob", [password]), PAM_SUCCESS)

    def test_password_over_pam_limit_fails(self):
        """A 513-byte answer is a failed attempt, never cut to a valid one."""
        password = "p" * 512
        self.env.plant_user("bob", password)
        self.assertCode(self.env.pam("bob", [password + "p"]), PAM_AUTH_ERR)
        self.assertCode(self.env.pam("bob", [password + "q" * 600]), PAM_AUTH_ERR)

    def test_utf8_and_space_password(self):
        password = "pässwörd mit Leerzeichen ✓"
        self.env.plant_user("carol", password)
        self.assertCode(self.env.pam("carol", [password]), PAM_SUCCESS)
        # Compared as bytes: the decomposed form of the same text differs.
        decomposed = password.replace("ä", "a\u0308")
        self.assertCode(self.env.pam("carol", [decomposed]), PAM_AUTH_ERR)

    def test_user_name_at_limit(self):
        name = "a" * 31 + "$"
        self.env.plant_user(name, P1)
        self.assertCode(self.env.pam(name, [P1]), PAM_SUCCESS)

    def test_user_names_useradd_rejects(self):
        for name in ["Alice", "al ice", "a:b", "a" * 33, "-dash", "1abc", "über", "a\tb", "alice\u202e"]:
            with self.subTest(name=name):
                r = self.env.pam(name, [P1])
                self.assertCode(r, PAM_USER_UNKNOWN, name)
                self.assertEqual(r.prompt_texts(), ["Password: "])

    def test_account_and_session(self):
        r = self.env.pam("alice", [P1], ops=["auth", "setcred", "acct", "open", "close"])
        self.assertCode(r, PAM_SUCCESS)
        self.assertEqual(r.results, {"auth": 0, "setcred": 0, "acct": 0, "open": 0, "close": 0})
        self.assertCode(self.env.pam("nobody-here", ops=["acct"]), PAM_USER_UNKNOWN)

    def test_two_hundred_parallel_logins(self):
        self.env.plant_user("bob", "bob's long password")

        def login(i):
            if i % 3 == 0:
                return "alice", P1, PAM_SUCCESS
            if i % 3 == 1:
                return "bob", "not bob's password", PAM_AUTH_ERR
            return "ghost%d" % i, "whatever", PAM_USER_UNKNOWN

        with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
            futures = []
            for i in range(200):
                user, password, expected = login(i)
                futures.append((pool.submit(self.env.pam, user, [password], timeout=120), expected))
            outcomes = [(f.result().code, expected) for f, expected in futures]
        wrong = [o for o in outcomes if o[0] != o[1]]
        self.assertEqual(wrong, [], "mismatched results (got, expected)")
        self.assertEqual(len(outcomes), 200)


class StackedPasswordTest(EnvTestCase):
    """use_first_pass and try_first_pass, and what later modules see."""

    def setUp(self):
        self.env = self.make_env()
        e = self.env
        self.record_line, self.record_file = e.probe_record("after")
        e.write_stack("first-good", e.probe_set("good", P1) + e.stack_line("auth", "use_first_pass"))
        e.write_stack("first-none", e.stack_line("auth", "use_first_pass"))
        e.write_stack("try-stale", e.probe_set("stale", "stale password") + e.stack_line("auth", "try_first_pass"))
        e.write_stack("try-good", e.probe_set("good2", P1) + e.stack_line("auth", "try_first_pass"))
        e.write_stack("record", e.stack_line("auth") + self.record_line)
        e.start_daemon()
        e.plant_user("alice", P1)

    def test_use_first_pass_no_prompt(self):
        r = self.env.pam("alice", [], service="first-good")
        self.assertCode(r, PAM_SUCCESS)
        self.assertEqual(r.prompt_texts(), [])

    def test_use_first_pass_without_token(self):
        r = self.env.pam("alice", [], service="first-none")
        self.assertCode(r, PAM_AUTH_ERR)
        self.assertEqual(r.prompt_texts(), [])

    def test_try_first_pass_then_prompt(self):
        r = self.env.pam("alice", [P1], service="try-stale")
        self.assertCode(r, PAM_SUCCESS)
        self.assertEqual(r.prompt_texts(), ["Password: "])

    def test_try_first_pass_good_token(self):
        r = self.env.pam("alice", [], service="try-good")
        self.assertCode(r, PAM_SUCCESS)
        self.assertEqual(r.prompt_texts(), [])

    def test_authtok_set_for_later_modules(self):
        import hashlib
        r = self.env.pam("alice", [P1], service="record")
        self.assertCode(r, PAM_SUCCESS)
        with open(self.record_file) as f:
            self.assertEqual(f.read().strip(), hashlib.sha256(P1.encode()).hexdigest())


class CallerRuleTest(EnvTestCase):
    """Root may ask about anyone; another uid only about its own user."""

    def setUp(self):
        self.env = self.make_env()
        self.env.start_daemon()
        self.env.plant_user("alice", P1)
        self.env.plant_user("nobody", "nobody's long password")

    @requires_root
    def test_non_root_for_other_user_denied(self):
        r = self.env.pam("alice", [P1], as_user="nobody")
        self.assertCode(r, PAM_PERM_DENIED)
        self.assertEqual(r.prompt_texts(), [], "no prompt before the caller is checked")
        self.assertIn("non-root caller may only ask about its own user", self.env.log())

    @requires_root
    def test_non_root_for_own_user(self):
        r = self.env.pam("nobody", ["nobody's long password"], as_user="nobody")
        self.assertCode(r, PAM_SUCCESS)
        r = self.env.pam("nobody", ["wrong"], as_user="nobody")
        self.assertCode(r, PAM_AUTH_ERR)

    @requires_root
    def test_non_root_session_for_other_user_denied(self):
        self.assertCode(self.env.pam("alice", ops=["open"], as_user="nobody"), PAM_PERM_DENIED)


class StoredHashTest(EnvTestCase):
    """What the daemon does with each kind of stored hash."""

    def test_rehash_to_configured_cost(self):
        env = self.make_env(config=PRODUCTION_COST)
        env.start_daemon()
        env.plant_user("alice", phc=H1)
        self.assertCode(env.pam("alice", [P1]), PAM_SUCCESS)
        new = env.stored_hash("alice")
        self.assertNotEqual(new, H1)
        self.assertTrue(new.startswith("$argon2id$v=19$m=65536,t=3,p=1$"), new)
        self.assertCode(env.pam("alice", [P1]), PAM_SUCCESS)

    def test_hash_at_cost_kept(self):
        env = self.make_env(config=PRODUCTION_COST)
        env.start_daemon()
        env.plant_user("alice", phc=H7)
        self.assertCode(env.pam("alice", [P1]), PAM_SUCCESS)
        self.assertEqual(env.stored_hash("alice"), H7)

    def test_libsodium_p3_string_rehashed(self):
        env = self.make_env(config={"password": {"argon2_memory_kib": "8192", "argon2_iterations": "2"}})
        env.start_daemon()
        env.plant_user("dave", phc=SODIUM_P3)
        self.assertCode(env.pam("dave", [SODIUM_P3_PASSWORD]), PAM_SUCCESS)
        self.assertTrue(env.stored_hash("dave").startswith("$argon2id$v=19$m=8192,t=2,p=1$"))

    def test_refused_hashes(self):
        env = self.make_env(config=PRODUCTION_COST)
        env.start_daemon()
        env.plant_user("alice", phc=H7)
        for name, phc in [("argoni", H8), ("shacrypt", H9), ("tzero", T0), ("huge", H6)]:
            with self.subTest(hash=name):
                env.plant_user(name, phc=phc)
                r = env.pam(name, [P1])
                self.assertCode(r, PAM_AUTHINFO_UNAVAIL, name)
                self.assertEqual(env.stored_hash(name), phc, "a refused hash is left alone")
        self.assertIn("Refused to verify the stored hash of user 'argoni'", env.log())
        self.assertCode(env.pam("alice", [P1]), PAM_SUCCESS, "other users are unaffected")

    def test_unknown_user_timing(self):
        """An unknown user's failure takes about as long as a known one's."""
        env = self.make_env(config={"password": {"argon2_memory_kib": "65536", "argon2_iterations": "2"}})
        env.start_daemon()
        env.plant_user("alice", P1)
        env.pam("alice", ["warm up"])
        known, unknown = [], []
        for _ in range(20):
            known.append(env.pam("alice", ["wrong password"]).elapsed)
            unknown.append(env.pam("ghost", ["wrong password"]).elapsed)
        k, u = statistics.median(known), statistics.median(unknown)
        self.assertLess(abs(u - k) / k, 0.20, "median known %.4fs, unknown %.4fs" % (k, u))


class ModuleArgumentTest(EnvTestCase):
    """A broken stack line fails closed with PAM_SERVICE_ERR."""

    def setUp(self):
        self.env = self.make_env()
        self.env.start_daemon()
        self.env.plant_user("alice", P1)

    def run_stack(self, args):
        self.env.write_stack("args", "auth required %s socket=%s %s\n" % (MODULE, self.env.socket, args))
        return self.env.pam("alice", [P1], service="args")

    def test_invalid_values(self):
        for args in ["timeout=", "timeout=-1", "timeout=99999999999999999999", "timeout=10s", "timeout=5 timeout=6",
                     "prompt=both", "factors=", "factors=sms", "use_first_pass try_first_pass",
                     "socket=relative/path", "socket=/" + "x" * 2000]:
            with self.subTest(args=args[:40]):
                self.assertCode(self.run_stack(args), PAM_SERVICE_ERR, args[:40])

    def test_unknown_argument_ignored(self):
        self.assertCode(self.run_stack("foo=bar"), PAM_SUCCESS)

    def test_ten_kilobyte_argument_fails_closed(self):
        """libpam itself splits stack lines this long; whatever part reaches
        the module, the login must fail."""
        for args in ["x" * 10240, "socket=/" + "x" * 10240, "timeout=" + "9" * 10240]:
            with self.subTest(args=args[:20]):
                r = self.run_stack(args)
                self.assertIn(r.code, (PAM_SERVICE_ERR, PAM_PERM_DENIED), r)


if __name__ == "__main__":
    unittest.main()
