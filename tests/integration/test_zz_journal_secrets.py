"""Runs after every other test module (discovery order is alphabetical):
the whole private journal must hold none of the passwords, codes and
secrets the suite typed."""

import re
import subprocess
import unittest

from warden_env import SECRETS_USED, requires_journal


@requires_journal
class JournalSecretsTest(unittest.TestCase):
    def test_no_secret_in_journal(self):
        if len(SECRETS_USED) < 10:
            self.skipTest("run with the whole suite: only %d secrets were recorded" % len(SECRETS_USED))
        subprocess.run(["journalctl", "--sync"], check=True)
        proc = subprocess.run(["journalctl", "-o", "export", "--no-pager"], capture_output=True, check=True)
        # Only fields the senders wrote: journald's own fields (leading "_")
        # hold timestamps and ids whose digits could match a code by chance.
        values = []
        for line in proc.stdout.split(b"\n"):
            if b"=" in line and not line.startswith(b"_"):
                values.append(line.split(b"=", 1)[1].decode(errors="replace"))
        text = "\n".join(values)
        self.assertGreater(len(values), 100, "the journal holds the suite's entries")
        found = []
        for secret in SECRETS_USED:
            if secret.isdigit():
                if re.search(r"(?<!\d)%s(?!\d)" % secret, text):
                    found.append(secret)
            elif secret in text:
                found.append(secret)
        self.assertEqual(found, [], "secrets found in the journal")
        self.assertNotIn("$argon2id$", text)


if __name__ == "__main__":
    unittest.main()
