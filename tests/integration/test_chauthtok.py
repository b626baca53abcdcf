"""Password changes through the PAM password stack, as passwd does them."""

import unittest

from warden_env import (EnvTestCase, PAM_AUTH_ERR, PAM_AUTHTOK_ERR, PAM_SUCCESS, PAM_USER_UNKNOWN, requires_root)

P1 = "correct horse battery staple"
NEW = "plum kettle orbit lantern 42"


class ChangePasswordTest(EnvTestCase):
    def setUp(self):
        self.env = self.make_env()
        self.env.start_daemon()
        self.env.plant_user("alice", P1)

    def test_root_changes_password(self):
        r = self.env.pam("alice", [NEW, NEW], ops=["chauthtok"])
        self.assertCode(r, PAM_SUCCESS)
        self.assertEqual(r.prompt_texts(), ["New password: ", "Retype new password: "])
        self.assertCode(self.env.pam("alice", [NEW]), PAM_SUCCESS, "new password works at once")
        self.assertCode(self.env.pam("alice", [P1]), PAM_AUTH_ERR, "old password no longer works")
        self.assertTrue(self.env.stored_hash("alice").startswith("$argon2id$v=19$m=8192,t=1,p=1$"))

    def test_retype_mismatch(self):
        r = self.env.pam("alice", [NEW, NEW + "x"], ops=["chauthtok"])
        self.assertCode(r, PAM_AUTHTOK_ERR)
        self.assertIn(("error", "Sorry, passwords do not match."), r.prompts)
        self.assertCode(self.env.pam("alice", [P1]), PAM_SUCCESS, "nothing changed")

    def test_policy_rejections(self):
        cases = {
            "short": ("short pw", "shorter than 12 bytes"),
            "empty": ("", "The new password is empty."),
            "oversized": ("x" * 513, "longer than 512 bytes"),
            "simplistic": ("zzzzzzzzzzzzzzzz", "fails the host's quality policy"),
        }
        for name, (password, message) in cases.items():
            with self.subTest(case=name):
                r = self.env.pam("alice", [password, password], ops=["chauthtok"])
                self.assertCode(r, PAM_AUTHTOK_ERR, name)
                errors = [text for style, text in r.prompts if style == "error"]
                self.assertTrue(any(message in e for e in errors), errors)
        self.assertCode(self.env.pam("alice", [P1]), PAM_SUCCESS, "nothing changed")

    def test_unknown_user(self):
        self.assertCode(self.env.pam("ghost", [NEW, NEW], ops=["chauthtok"]), PAM_USER_UNKNOWN)

    @requires_root
    def test_user_must_give_current_password(self):
        env = self.env
        env.plant_user("nobody", P1)
        r = env.pam("nobody", [P1, NEW, NEW], ops=["chauthtok"], as_user="nobody")
        self.assertCode(r, PAM_SUCCESS)
        self.assertEqual(r.prompt_texts(), ["Current password: ", "New password: ", "Retype new password: "])
        self.assertCode(env.pam("nobody", [NEW]), PAM_SUCCESS)

    @requires_root
    def test_wrong_current_password(self):
        env = self.env
        env.plant_user("nobody", P1)
        r = env.pam("nobody", ["not the password", NEW, NEW], ops=["chauthtok"], as_user="nobody")
        self.assertCode(r, PAM_AUTH_ERR)
        self.assertEqual(r.prompt_texts(), ["Current password: "])
        self.assertCode(env.pam("nobody", [P1]), PAM_SUCCESS, "nothing changed")

    @requires_root
    def test_user_cannot_change_another(self):
        r = self.env.pam("alice", [P1, NEW, NEW], ops=["chauthtok"], as_user="nobody")
        self.assertCode(r, 6)  # PAM_PERM_DENIED
        self.assertCode(self.env.pam("alice", [P1]), PAM_SUCCESS)


if __name__ == "__main__":
    unittest.main()
