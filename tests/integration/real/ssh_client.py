"""Logs in to sshd on 127.0.0.1 with paramiko and runs `id`, for the
integration tests. Run it with /usr/bin/python3, which has Debian's
python3-paramiko.

    ssh_client.py --port N --user NAME --method METHOD --known-hosts FILE
                  [--key FILE] < answers.json

METHOD is keyboard-interactive, password, publickey or
publickey+keyboard-interactive. Standard input is a JSON list of strings:
the answers to the server's prompts in order, or for password the password
as the first element. Standard output is one JSON object:

    result        "success", "rejected" or "error"
    prompts       every keyboard-interactive prompt text, in order
    instructions  every non-empty name or instruction text the server sent
    error         the client-side error message, when not a success
    id            what `id` printed, after a success
    exit_status   the exit status of `id`
    partial       methods the server still wanted after the public key
"""

import argparse
import json
import socket
import sys

import paramiko

HOST = "127.0.0.1"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--method", required=True,
                        choices=["keyboard-interactive", "password", "publickey", "publickey+keyboard-interactive"])
    parser.add_argument("--known-hosts", required=True)
    parser.add_argument("--key")
    parser.add_argument("--timeout", type=float, default=20)
    args = parser.parse_args()
    answers = list(json.load(sys.stdin))
    report = {"result": "error", "prompts": [], "instructions": [], "error": None, "id": None,
              "exit_status": None, "partial": None}

    def handler(title, instructions, prompts):
        for text in (title, instructions):
            if text:
                report["instructions"].append(text)
        replies = []
        for text, _echo in prompts:
            report["prompts"].append(text)
            replies.append(answers.pop(0) if answers else "")
        return replies

    transport = None
    try:
        transport = paramiko.Transport(socket.create_connection((HOST, args.port), timeout=args.timeout))
        transport.banner_timeout = args.timeout
        transport.auth_timeout = args.timeout
        transport.start_client(timeout=args.timeout)
        expected = paramiko.HostKeys(args.known_hosts).lookup("[%s]:%d" % (HOST, args.port))
        if not expected or transport.get_remote_server_key() not in expected.values():
            report["error"] = "the server's host key is not in %s" % args.known_hosts
            print(json.dumps(report))
            return 1
        try:
            if args.method == "password":
                transport.auth_password(args.user, answers[0], fallback=False)
            elif args.method == "keyboard-interactive":
                transport.auth_interactive(args.user, handler)
            else:
                key = paramiko.Ed25519Key.from_private_key_file(args.key)
                remaining = transport.auth_publickey(args.user, key)
                report["partial"] = list(remaining)
                if args.method == "publickey+keyboard-interactive":
                    transport.auth_interactive(args.user, handler)
        except paramiko.AuthenticationException as e:
            report["result"] = "rejected"
            report["error"] = str(e)
            print(json.dumps(report))
            return 0
        if not transport.is_authenticated():
            report["result"] = "rejected"
            report["error"] = "the server still wants more methods: %s" % report["partial"]
            print(json.dumps(report))
            return 0
        channel = transport.open_session(timeout=args.timeout)
        channel.settimeout(args.timeout)
        channel.exec_command("id")
        report["id"] = channel.makefile().read().decode(errors="replace").strip()
        report["exit_status"] = channel.recv_exit_status()
        report["result"] = "success"
    except (OSError, paramiko.SSHException) as e:
        report["result"] = "error"
        report["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        if transport is not None:
            transport.close()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
