"""No password, hash or password length reaches the operational log, the
process list or the store in clear, at every log level."""

import os
import re
import unittest

from warden_env import MODULE, EnvTestCase, PAM_AUTH_ERR, PAM_SUCCESS

CANARY = "Canary-Pw-7f3a9c5e11"


class NoSecretsInLogsTest(EnvTestCase):
    def test_canary_never_logged(self):
        env = self.make_env(config={"daemon": {"log_level": "trace"}})
        env.write_stack("debug", "auth required %s socket=%s debug\n" % (MODULE, env.socket))
        env.start_daemon()
        phc = env.plant_user("alice", CANARY)
        self.assertEqual(env.pam("alice", [CANARY], service="debug").code, PAM_SUCCESS)
        self.assertEqual(env.pam("alice", [CANARY + "x"], service="debug").code, PAM_AUTH_ERR)
        self.assertEqual(env.pam("alice", [CANARY * 40], service="debug").code, PAM_AUTH_ERR)
        self.assertEqual(env.pam("ghost", [CANARY], service="debug").code, 10)
        # A malformed frame that carries the canary: a NUL inside the user field.
        import socket
        import struct
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(env.socket)
        user = b"ali\x00ce"
        body = bytes([1, 2]) + struct.pack(">BH", 1, 4) + b"test" + struct.pack(">BH", 2, len(user)) + user
        body += struct.pack(">BH", 8, 4) + b"\x00\x00\x00\x02" + struct.pack(">BH", 6, len(CANARY)) + CANARY.encode()
        s.send(body)
        s.recv(100)
        s.close()
        env.stop_daemon()

        log = env.log()
        self.assertIn("Failed to decode request", log, "the malformed frame was seen")
        for needle in [CANARY, CANARY.encode().hex(), "$argon2id$", phc.split("$")[-1]]:
            with self.subTest(needle=needle[:24]):
                self.assertNotIn(needle, log)
        self.assertIsNone(re.search(r"(length|len|bytes|size)\D{0,5}(20|21|800)\b", log), "a password length")
        for name in os.listdir(env.state):
            with open(os.path.join(env.state, name), "rb") as f:
                self.assertNotIn(CANARY.encode(), f.read(), name)


if __name__ == "__main__":
    unittest.main()
