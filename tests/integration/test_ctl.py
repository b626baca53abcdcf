"""wardenctl against wardend on a private dbus-daemon."""

import json
import os
import subprocess
import time
import unittest

from warden_env import (ROOT, EnvTestCase, PAM_AUTH_ERR, PAM_SUCCESS, PAM_USER_UNKNOWN, WARDENCTL, requires_root)

P1 = "correct horse battery staple"
NEW = "plum kettle orbit lantern 42"


class UserCommandsTest(EnvTestCase):
    def setUp(self):
        self.env = self.make_env(bus=True)
        self.env.start_daemon()

    def add(self, name, password=P1):
        return self.env.ctl("user", "add", name, "--password-stdin", input=password + "\n")

    def test_add_then_login(self):
        r = self.add("alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.env.pam("alice", [P1]).code, PAM_SUCCESS)
        self.assertEqual(self.env.pam("alice", [P1 + "!"]).code, PAM_AUTH_ERR)
        phc = self.env.stored_hash("alice")
        self.assertTrue(phc.startswith("$argon2id$v=19$m=8192,t=1,p=1$"), phc)

    def test_add_twice_refused(self):
        self.assertEqual(self.add("alice").returncode, 0)
        r = self.add("alice", NEW)
        self.assertEqual(r.returncode, 1)
        self.assertIn("already enrolled", r.stderr)
        self.assertEqual(self.env.pam("alice", [P1]).code, PAM_SUCCESS, "the first password still works")

    def test_passwd(self):
        self.add("alice")
        r = self.env.ctl("user", "passwd", "alice", "--password-stdin", input=NEW + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.env.pam("alice", [NEW]).code, PAM_SUCCESS)
        self.assertEqual(self.env.pam("alice", [P1]).code, PAM_AUTH_ERR)

    def test_remove(self):
        self.add("alice")
        self.assertEqual(self.env.ctl("user", "remove", "alice").returncode, 0)
        self.assertEqual(self.env.pam("alice", [P1]).code, PAM_USER_UNKNOWN)
        r = self.env.ctl("user", "remove", "alice")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not enrolled", r.stderr)

    def test_list_and_show(self):
        self.add("alice")
        self.add("bob", NEW)
        self.assertEqual(self.env.ctl("user", "list").stdout.split(), ["alice", "bob"])
        listed = json.loads(self.env.ctl("--json", "user", "list").stdout)
        self.assertEqual(listed, {"users": ["alice", "bob"]})
        self.env.pam("alice", [P1])
        shown = json.loads(self.env.ctl("user", "show", "alice", "--json").stdout)
        self.assertEqual(shown["name"], "alice")
        self.assertEqual(shown["password"], "argon2id m=8192 t=1 p=1")
        self.assertGreater(shown["last_login"], 0)
        self.assertEqual(shown["failures"], 0)
        text = self.env.ctl("user", "show", "alice").stdout
        self.assertIn("argon2id m=8192 t=1 p=1", text)
        self.assertNotIn("$argon2id$", text, "the hash itself is never shown")

    def test_status(self):
        self.add("alice")
        self.env.pam("alice", [P1])
        self.env.pam("alice", ["wrong"])
        status = json.loads(self.env.ctl("--json", "status").stdout)
        self.assertEqual(status["mode"], "development")
        self.assertEqual(status["auth_success"], 1)
        self.assertEqual(status["auth_failure"], 1)
        self.assertEqual(status["workers"], 2 if os.cpu_count() == 2 else status["workers"])

    def test_password_policy(self):
        cases = {
            "empty": ("", "empty"),
            "short": ("short", "at least 12"),
            "oversized": ("x" * 513, "512"),
            "simplistic": ("abcdefghijkl", "simplistic"),
        }
        for name, (password, message) in cases.items():
            with self.subTest(case=name):
                r = self.add("carol", password)
                self.assertEqual(r.returncode, 1, r.stdout)
                self.assertIn(message, r.stderr)
        self.assertEqual(self.env.ctl("user", "list").stdout, "")
        import base64
        at_limit = base64.b64encode(os.urandom(384)).decode()
        self.assertEqual(len(at_limit), 512)
        r = self.add("carol", at_limit)
        self.assertEqual(r.returncode, 0, "512 bytes is the limit, not over it: " + r.stderr)

    def test_usage_errors(self):
        for args in [[], ["user"], ["user", "add"], ["user", "frob", "x"], ["--bogus"], ["status", "extra"],
                     ["user", "show", "Bad Name"]]:
            with self.subTest(args=args):
                r = self.env.ctl(*args)
                self.assertEqual(r.returncode, 2, r.stderr)

    def test_bad_name_names_rule(self):
        r = self.env.ctl("user", "add", "Bad:Name", "--password-stdin", input=P1 + "\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn("[a-z_][a-z0-9_-]*", r.stderr)

    @requires_root
    def test_non_root_refused_by_daemon(self):
        self.add("alice")
        for args in [["user", "list"], ["user", "show", "alice"], ["status"], ["user", "remove", "alice"]]:
            with self.subTest(args=args):
                r = self.env.ctl(*args, as_user="nobody")
                self.assertEqual(r.returncode, 1)
                self.assertIn("Only root may call", r.stderr)
        self.assertEqual(self.env.ctl("user", "list").stdout.split(), ["alice"], "nothing was removed")
        self.assertIn("only root may administer wardend", self.env.log())

    def test_password_not_in_process_list(self):
        """A password typed on standard input never shows in argv."""
        proc = subprocess.Popen([WARDENCTL, "user", "add", "dave", "--password-stdin"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env.env(), text=True)
        time.sleep(0.2)
        with open("/proc/%d/cmdline" % proc.pid, "rb") as f:
            cmdline = f.read()
        out, err = proc.communicate(P1 + "\n", timeout=30)
        self.assertEqual(proc.returncode, 0, err)
        self.assertNotIn(P1.encode(), cmdline)

    def test_daemon_unreachable(self):
        self.env.stop_daemon()
        r = self.env.ctl("user", "list")
        self.assertEqual(r.returncode, 1)
        self.assertIn("wardend is not running", r.stderr)


class BusPolicyTest(EnvTestCase):
    """The shipped policy file, loaded into a private bus, keeps non-root
    callers away from the admin API."""

    @requires_root
    def test_shipped_policy_denies_non_root(self):
        env = self.make_env()
        policy = os.path.join(ROOT, "systemd", "net.warden.Admin1.conf")
        conf = os.path.join(env.dir, "bus.conf")
        bus_socket = os.path.join(env.dir, "system_bus_socket")
        with open(conf, "w") as f:
            # The default-deny policy of Debian's system bus, then the shipped file.
            f.write("""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>%s</include>
</busconfig>
""" % (bus_socket, policy))
        read_fd, write_fd = os.pipe()
        env.bus = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork", "--nopidfile",
                                    "--print-address=%d" % write_fd], pass_fds=(write_fd,),
                                   stderr=subprocess.DEVNULL)
        os.close(write_fd)
        with os.fdopen(read_fd) as f:
            self.assertTrue(f.readline().strip())
        os.chmod(bus_socket, 0o777)
        env.bus_address = "unix:path=" + bus_socket
        env.config["daemon"]["dbus"] = "system"
        env.write_config()
        env.start_daemon()
        r = env.ctl("user", "add", "alice", "--password-stdin", input=P1 + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = env.ctl("user", "list", as_user="nobody")
        self.assertEqual(r.returncode, 1)
        self.assertIn("Rejected send message", r.stderr)
        self.assertNotIn("Only root may call", r.stderr, "the bus refused before wardend saw the call")
        # A non-root process may not take the name either.
        proc = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "busctl",
                               "--system", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "RequestName", "su", "net.warden.Admin1", "0"],
                              env=env.env(), capture_output=True, text=True)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("Access denied", proc.stderr)


if __name__ == "__main__":
    unittest.main()


class TotpCommandsTest(EnvTestCase):
    """wardenctl's TOTP and recovery commands, checked through real logins."""

    def setUp(self):
        self.env = self.make_env(config={"mfa": {"mode": "required"}}, bus=True)
        self.env.set_clock(59)
        self.env.start_daemon()
        r = self.env.ctl("user", "add", "alice", "--password-stdin", input=P1 + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)

    def import_secret(self, text, *extra):
        return self.env.ctl("totp", "import", "alice", "--secret-stdin", *extra, input=text + "\n")

    def totp_state(self):
        return json.loads(self.env.ctl("--json", "user", "show", "alice").stdout).get("totp")

    def test_import_forms(self):
        # Lower case with spaces: the RFC 6238 key, confirmed and used.
        r = self.import_secret("gezd gnbv gy3t qojq gezd gnbv gy3t qojq")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.totp_state(), "pending")
        self.assertEqual(self.env.ctl("totp", "confirm", "alice", "755224").returncode, 0)
        self.assertEqual(self.env.pam("alice", [P1, "287082"]).code, PAM_SUCCESS)

    def test_import_padding_optional(self):
        for text in ["AEBAGBAFAYDQQCIKBMGA2DQPCA", "AEBAGBAFAYDQQCIKBMGA2DQPCA======"]:
            with self.subTest(text=text):
                r = self.import_secret(text, "--force")
                self.assertEqual(r.returncode, 0, r.stderr)
                with self.env.db() as db:
                    db.execute("UPDATE users SET totp_last_used = NULL")
                self.assertEqual(self.env.ctl("totp", "confirm", "alice", "369668").returncode, 0, text)

    def test_import_rejects_bad_secrets(self):
        cases = {
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ====": "padding",
            "GEZDGNBVGY3TQOJ0GEZDGNBVGY3TQOJ1": "'0' at position 16",
            "GEZDGNBVG": "impossible",
            "JBSWY3DPEHPK3PXP": "at least 128 bits",
        }
        for text, message in cases.items():
            with self.subTest(text=text):
                r = self.import_secret(text)
                self.assertEqual(r.returncode, 1, r.stdout)
                self.assertIn(message, r.stderr)
                self.assertNotIn(text, r.stderr + r.stdout, "the secret is not echoed back")
        self.assertEqual(self.totp_state(), "none", "nothing was stored")

    def test_enroll_uri_confirms(self):
        r = self.env.ctl("--json", "totp", "enroll", "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        enrolled = json.loads(r.stdout)
        self.assertEqual(sorted(enrolled), ["secret", "uri"])
        uri = enrolled["uri"]
        self.assertTrue(uri.startswith("otpauth://totp/"), uri)
        for part in ["secret=" + enrolled["secret"], "algorithm=SHA1", "digits=6", "period=30", "issuer="]:
            self.assertIn(part, uri)
        self.assertEqual(len(enrolled["secret"]), 32, "160 bits in base32")
        code = subprocess.run(["oathtool", "--totp", "-b", "-N", "@59", enrolled["secret"]], capture_output=True,
                              text=True, check=True).stdout.strip()
        self.assertEqual(self.env.ctl("totp", "confirm", "alice", code).returncode, 0)
        self.assertEqual(self.totp_state(), "active")
        r = self.env.ctl("totp", "enroll", "alice")
        self.assertEqual(r.returncode, 1, "an active factor is not replaced without --force")

    def test_enroll_text_has_no_qr_without_terminal(self):
        r = self.env.ctl("totp", "enroll", "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("otpauth://totp/", r.stdout)
        self.assertNotIn("\u2580", r.stdout, "no QR code when output is not a terminal")
        self.assertIn("wardenctl totp confirm alice", r.stdout + r.stderr)

    def test_recovery_codes_log_in_once(self):
        self.import_secret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
        self.env.ctl("totp", "confirm", "alice", "287082")
        r = self.env.ctl("--json", "recovery", "generate", "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        codes = json.loads(r.stdout)["codes"]
        self.assertEqual(len(codes), 10)
        self.assertEqual(len(set(codes)), 10)
        for code in codes:
            self.assertRegex(code, r"^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$")
        self.assertEqual(self.env.pam("alice", [P1, codes[0]]).code, PAM_SUCCESS)
        self.assertEqual(self.env.pam("alice", [P1, codes[0]]).code, PAM_AUTH_ERR)
        shown = json.loads(self.env.ctl("--json", "user", "show", "alice").stdout)
        self.assertEqual(shown["recovery_codes"], 9)
        r = self.env.ctl("recovery", "generate", "alice")
        self.assertEqual(self.env.pam("alice", [P1, codes[1]]).code, PAM_AUTH_ERR, "the old set is gone")

    def test_remove_factor(self):
        self.import_secret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
        self.assertEqual(self.env.ctl("totp", "remove", "alice").returncode, 0)
        self.assertEqual(self.totp_state(), "none")
        r = self.env.ctl("totp", "remove", "alice")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no TOTP factor", r.stderr)
