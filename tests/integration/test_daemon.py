"""wardend's configuration checks, signals, store and socket handling."""

import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
import unittest

from warden_env import (EnvTestCase, PAM_AUTHINFO_UNAVAIL, PAM_DRIVER, PAM_SUCCESS, WARDEND, requires_root)

P1 = "correct horse battery staple"


def check_config(env):
    return subprocess.run([WARDEND, "--config", env.config_path, "--check-config"], capture_output=True, text=True)


class CheckConfigTest(EnvTestCase):
    def setUp(self):
        self.env = self.make_env()

    def test_valid_config(self):
        r = check_config(self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")

    def test_every_problem_listed(self):
        text = open(self.env.config_path).read()
        text += "[password]\ncolour = blue\n"
        text = text.replace("[mfa]\n", "[mfa]\ntotp_window = -1\ntotp_digits = 9\n")
        text = text.replace("[lockout]\n", "[lockout]\ndeny = 0\nunlock_time = forever\n")
        self.env.write_config(text)
        r = check_config(self.env)
        self.assertEqual(r.returncode, 1)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 5, r.stdout)
        path = self.env.config_path
        self.assertTrue(any(l.startswith(path + ": [password] colour: unknown key") for l in lines), r.stdout)
        self.assertTrue(any(l.startswith(path + ": [mfa] totp_window: invalid value '-1', expected an integer "
                                                "from 0 to 10") for l in lines), r.stdout)
        self.assertTrue(any(l.startswith(path + ": [mfa] totp_digits: invalid value '9'") for l in lines))
        self.assertTrue(any(l.startswith(path + ": [lockout] deny: invalid value '0'") for l in lines))
        self.assertTrue(any(l.startswith(path + ": [lockout] unlock_time: invalid value 'forever'") for l in lines))

    def test_problem_names_its_line(self):
        self.env.write_config("[daemon]\nmode = development\nworkers = lots\n")
        r = check_config(self.env)
        self.assertIn("[daemon] workers: invalid value 'lots', expected an integer from 0 to 256 (line 3)", r.stdout)

    def test_production_floors(self):
        env = self.env
        env.config["daemon"]["mode"] = "production"
        env.config["password"] = {"argon2_memory_kib": "16384", "argon2_iterations": "1"}
        env.write_config()
        r = check_config(env)
        self.assertEqual(r.returncode, 1)
        self.assertIn(": [password] argon2_memory_kib: 16384 is below the minimum of 19456 in production mode",
                      r.stdout)
        self.assertIn(": [password] argon2_iterations: 1 is below the minimum of 2 in production mode", r.stdout)
        self.assertIn(": [mfa] mode: off is allowed only with [daemon] mode = development", r.stdout)

    def test_hostile_bytes(self):
        cases = {
            "nul": b"[daemon]\nmode = devel\x00opment\n",
            "long line": b"[daemon]\nsocket = /" + b"x" * (1024 * 1024) + b"\n",
            "truncated": b"[daemon]\nmode = development\n[mf",
            "not ini": b"\xff\xfe garbage without an equals sign\n",
        }
        for name, data in cases.items():
            with self.subTest(case=name):
                with open(self.env.config_path, "wb") as f:
                    f.write(data)
                r = check_config(self.env)
                self.assertEqual(r.returncode, 1, r.stdout)
                self.assertTrue(r.stdout.startswith(self.env.config_path + ":"), r.stdout[:300])
                self.assertLess(len(r.stdout), 2000, "the offending bytes are not echoed back whole")

    def test_key_file_problems(self):
        env = self.env
        os.chmod(env.key, 0o644)
        r = check_config(env)
        self.assertIn("is accessible by group or others, expected mode 0600 or 0400", r.stdout)
        with open(env.key, "wb") as f:
            f.write(b"x" * 31)
        os.chmod(env.key, 0o600)
        self.assertIn("holds 31 bytes, expected 32", check_config(env).stdout)
        os.unlink(env.key)
        r = check_config(env)
        self.assertIn("[daemon] key_file: cannot open '%s': No such file or directory" % env.key, r.stdout)
        self.assertIn("wardend --generate-key", r.stdout)

    def test_writable_state_and_config(self):
        env = self.env
        os.mkdir(env.state, 0o700)
        os.chmod(env.state, 0o777)
        os.chmod(env.config_path, 0o666)
        r = check_config(env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("[daemon] state_directory: '%s' is writable by group or others" % env.state, r.stdout)
        self.assertIn("%s: '%s' is writable by group or others" % (env.config_path, env.config_path), r.stdout)

    def test_writable_parent_directory(self):
        """A directory above the config or key file that others may write
        lets them swap the file: refused, naming the directory. A sticky
        one such as /tmp is accepted."""
        env = self.env
        parent = os.path.dirname(os.path.realpath(env.config_path))
        original = os.stat(parent).st_mode & 0o7777
        self.addCleanup(os.chmod, parent, original)
        self.assertEqual(check_config(env).returncode, 0, "the test directory starts out safe")
        os.chmod(parent, 0o777)
        r = check_config(env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("directory '%s' is writable by group or others (mode 0777)" % parent, r.stdout)
        os.chmod(parent, 0o1777)
        self.assertEqual(check_config(env).returncode, 0, check_config(env).stdout)

    @requires_root
    def test_link_in_foreign_directory(self):
        """A config reached through a symbolic link that sits in a
        directory another user owns: that user could point the link
        elsewhere, so the check names the directory, whatever the link
        resolves to."""
        env = self.env
        parent = os.path.dirname(os.path.realpath(env.config_path))
        foreign = os.path.join(env.dir, "foreign")
        os.mkdir(foreign)
        os.chown(foreign, pwd.getpwnam("nobody").pw_uid, -1)
        os.symlink(parent, os.path.join(foreign, "etc"))
        linked = os.path.join(foreign, "etc", os.path.basename(env.config_path))
        r = subprocess.run([WARDEND, "--config", linked, "--check-config"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("directory '%s' is owned by uid %d" % (foreign, pwd.getpwnam("nobody").pw_uid), r.stdout)
        r = subprocess.run([WARDEND, "--config", os.path.join("etc", os.path.basename(env.config_path)),
                            "--check-config"], capture_output=True, text=True, cwd=foreign)
        self.assertEqual(r.returncode, 1, "the same through a relative path")
        self.assertIn("directory '%s' is owned by uid" % foreign, r.stdout)

        # Two links: a root-owned one in a root-owned directory, pointing at
        # a link owned by the user nobody, in that user's directory.
        nobody = pwd.getpwnam("nobody").pw_uid
        hop = os.path.join(foreign, "hop")
        os.symlink(parent, hop)
        os.lchown(hop, nobody, -1)
        rooted = os.path.join(env.dir, "rooted")
        os.mkdir(rooted)
        os.symlink(hop, os.path.join(rooted, "etc"))
        chained = os.path.join(rooted, "etc", os.path.basename(env.config_path))
        r = subprocess.run([WARDEND, "--config", chained, "--check-config"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("'%s' is a symbolic link owned by uid %d" % (hop, nobody), r.stdout)
        self.assertIn("directory '%s' is owned by uid %d" % (foreign, nobody), r.stdout)

    def test_refuses_to_start(self):
        self.env.write_config(open(self.env.config_path).read() + "bogus = 1\n")
        self.env.start_daemon(expect_ready=False)
        self.assertEqual(self.env.daemon.wait(10), 1)
        self.assertIn("unknown key", self.env.log())
        self.assertFalse(os.path.exists(self.env.socket))
        self.assertEqual(self.env.pam("alice", [P1]).code, PAM_AUTHINFO_UNAVAIL)


class KeyGenerationTest(EnvTestCase):
    def test_generate_key(self):
        env = self.make_env()
        path = os.path.join(env.dir, "new.key")
        r = subprocess.run([WARDEND, "--generate-key", path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        st = os.stat(path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_size, 32)
        with open(path, "rb") as f:
            first = f.read()
        r = subprocess.run([WARDEND, "--generate-key", path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("already exists; refusing to overwrite a host key", r.stderr)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), first)


class SignalTest(EnvTestCase):
    def setUp(self):
        self.env = self.make_env()
        self.env.start_daemon()
        self.env.plant_user("alice", P1)

    def test_sighup_keeps_old_config_when_invalid(self):
        env = self.env
        good = open(env.config_path).read()
        env.write_config(good + "min_length = 0\n")
        env.daemon.send_signal(signal.SIGHUP)
        self.wait_for_log("Keeping the configuration in force")
        self.assertIn("Rejected reloaded configuration", env.log())
        self.assertEqual(env.pam("alice", [P1]).code, PAM_SUCCESS)
        self.assertIsNone(env.daemon.poll())

    def test_sighup_applies_valid_config(self):
        env = self.env
        env.config["daemon"]["log_level"] = "info"
        env.write_config()
        env.daemon.send_signal(signal.SIGHUP)
        self.wait_for_log("Reloaded configuration from")
        self.assertEqual(env.pam("alice", [P1]).code, PAM_SUCCESS)

    def test_sigterm_stops_cleanly(self):
        env = self.env
        proc = subprocess.Popen([PAM_DRIVER, "--confdir", env.pam_dir, "--service", "wtest", "--user", "alice",
                                 "auth"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env.env())
        self.assertTrue(proc.stdout.readline().startswith("prompt"))
        start = time.monotonic()
        self.assertEqual(env.stop_daemon(), 0)
        self.assertLess(time.monotonic() - start, 5)
        out, _ = proc.communicate(P1 + "\n", timeout=10)
        self.assertEqual(proc.returncode, PAM_AUTHINFO_UNAVAIL, "a conversation cut by shutdown fails closed")
        self.assertFalse(os.path.exists(env.socket), "the socket file is removed")
        self.assertIn("wardend stopped", env.log())

    def wait_for_log(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.env.log():
                return
            time.sleep(0.05)
        self.fail("%r not logged:\n%s" % (text, self.env.log()))


class StoreTest(EnvTestCase):
    def test_modes_of_new_store(self):
        env = self.make_env()
        env.start_daemon()
        self.assertEqual(stat.S_IMODE(os.stat(env.state).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(env.state, "warden.db")).st_mode), 0o600)
        with env.db() as db:
            self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 3)

    def test_migrates_version_one_store(self):
        """A store written by the first schema is migrated in place and its
        users keep logging in."""
        env = self.make_env()
        os.mkdir(env.state, 0o700)
        path = os.path.join(env.state, "warden.db")
        import sqlite3
        db = sqlite3.connect(path)
        db.executescript("""
            CREATE TABLE users (name TEXT PRIMARY KEY NOT NULL, password_hash TEXT NOT NULL,
              created INTEGER NOT NULL, updated INTEGER NOT NULL, last_login INTEGER,
              failures INTEGER NOT NULL DEFAULT 0, first_failure INTEGER, locked_until INTEGER) STRICT;
            PRAGMA user_version = 1;""")
        db.execute("INSERT INTO users (name, password_hash, created, updated) VALUES (?, ?, 1, 1)",
                   ("alice", env.hash(P1)))
        db.commit()
        db.close()
        os.chmod(path, 0o600)
        env.start_daemon()
        self.assertEqual(env.pam("alice", [P1]).code, PAM_SUCCESS)
        with env.db() as db:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 3)
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        self.assertTrue({"users", "totp", "recovery_codes"} <= tables, tables)

    def test_corrupt_store_refused(self):
        env = self.make_env()
        os.mkdir(env.state, 0o700)
        with open(os.path.join(env.state, "warden.db"), "wb") as f:
            f.write(b"this is not a database" * 100)
        os.chmod(os.path.join(env.state, "warden.db"), 0o600)
        env.start_daemon(expect_ready=False)
        self.assertEqual(env.daemon.wait(10), 1)
        self.assertIn("Refusing to start", env.log())
        self.assertIn("warden.db", env.log())

    def test_newer_schema_refused(self):
        env = self.make_env()
        env.start_daemon()
        env.stop_daemon()
        with env.db() as db:
            db.execute("PRAGMA user_version = 99")
        env.start_daemon(expect_ready=False)
        self.assertEqual(env.daemon.wait(10), 1)
        self.assertIn("store schema version 99 is newer than this wardend supports", env.log())

    def test_users_survive_restart(self):
        env = self.make_env()
        env.start_daemon()
        env.plant_user("alice", P1)
        self.assertEqual(env.pam("alice", [P1]).code, PAM_SUCCESS)
        env.stop_daemon(signal.SIGKILL)
        env.start_daemon()
        self.assertEqual(env.pam("alice", [P1]).code, PAM_SUCCESS)
        with env.db() as db:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")


class SocketActivationTest(EnvTestCase):
    @unittest.skipUnless(shutil.which("systemd-socket-activate"), "systemd-socket-activate not installed")
    def test_socket_from_systemd(self):
        env = self.make_env()
        env.plant_user_later = True
        log = open(env.log_path, "ab")
        env.daemon = subprocess.Popen(["systemd-socket-activate", "--seqpacket", "-l", env.socket, WARDEND,
                                       "--config", env.config_path], stdout=log, stderr=log, env=env.env())
        log.close()
        deadline = time.monotonic() + 10
        while not os.path.exists(env.socket) and time.monotonic() < deadline:
            time.sleep(0.02)
        # The first connection starts wardend, which must find the passed socket.
        r = env.pam("alice", [P1])
        self.assertEqual(r.code, 10, r)  # PAM_USER_UNKNOWN: nobody enrolled yet
        self.assertIn("Using the socket passed by systemd", env.log())


if __name__ == "__main__":
    unittest.main()
