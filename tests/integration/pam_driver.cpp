/* Drives the real libpam through pam_start_confdir, as login, su or a
 * screen locker would, for the integration tests.
 *
 *   pam_driver --confdir DIR --service NAME --user NAME [--rhost H] [--tty T]
 *              [--ruser U] [--silent] OP...
 *
 * OP is one of auth, setcred, acct, open, close, chauthtok. Answers to
 * prompts are read from standard input, one line each; when input runs
 * out the conversation fails, as a client that hangs up would. Each prompt
 * is printed as "prompt <style> <text>" and each operation's outcome as
 * "result <op> <code> <text>". The exit status is the last operation's
 * PAM code. */
#include <security/pam_appl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int conversation(int count, const struct pam_message **messages, struct pam_response **ret_responses, void *) {
    auto *responses = static_cast<struct pam_response *>(std::calloc(static_cast<std::size_t>(count),
                                                                     sizeof(struct pam_response)));
    if (!responses)
        return PAM_BUF_ERR;
    for (int i = 0; i < count; i++) {
        const struct pam_message *m = messages[i];
        const char *style = m->msg_style == PAM_PROMPT_ECHO_OFF  ? "echo_off"
                            : m->msg_style == PAM_PROMPT_ECHO_ON ? "echo_on"
                            : m->msg_style == PAM_ERROR_MSG      ? "error"
                                                                 : "info";
        std::printf("prompt %s %s\n", style, m->msg ? m->msg : "");
        std::fflush(stdout);
        if (m->msg_style != PAM_PROMPT_ECHO_OFF && m->msg_style != PAM_PROMPT_ECHO_ON)
            continue;
        /* Lines may be long: the tests send answers over the PAM limit. */
        std::string line;
        int c;
        bool got = false;
        while ((c = std::getchar()) != EOF) {
            got = true;
            if (c == '\n')
                break;
            line.push_back(static_cast<char>(c));
        }
        if (!got) {
            for (int j = 0; j < i; j++)
                std::free(responses[j].resp);
            std::free(responses);
            return PAM_CONV_ERR;
        }
        responses[i].resp = strdup(line.c_str());
    }
    *ret_responses = responses;
    return PAM_SUCCESS;
}

void usage() {
    std::fprintf(stderr, "usage: pam_driver --confdir DIR --service NAME --user NAME [options] OP...\n");
}

} // namespace

int main(int argc, char **argv) {
    std::string confdir, service, user, rhost, tty, ruser;
    bool silent = false;
    std::vector<std::string> ops;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&](std::string &into) {
            if (i + 1 >= argc) {
                usage();
                std::exit(2);
            }
            into = argv[++i];
        };
        if (a == "--confdir")
            next(confdir);
        else if (a == "--service")
            next(service);
        else if (a == "--user")
            next(user);
        else if (a == "--rhost")
            next(rhost);
        else if (a == "--tty")
            next(tty);
        else if (a == "--ruser")
            next(ruser);
        else if (a == "--silent")
            silent = true;
        else if (!a.empty() && a[0] == '-') {
            usage();
            return 2;
        } else
            ops.push_back(a);
    }
    if (service.empty() || ops.empty()) {
        usage();
        return 2;
    }

    struct pam_conv conv = {conversation, nullptr};
    pam_handle_t *pamh = nullptr;
    int r = pam_start_confdir(service.c_str(), user.empty() ? nullptr : user.c_str(), &conv,
                              confdir.empty() ? nullptr : confdir.c_str(), &pamh);
    if (r != PAM_SUCCESS) {
        std::printf("result start %d %s\n", r, pam_strerror(pamh, r));
        return r;
    }
    if (!rhost.empty())
        pam_set_item(pamh, PAM_RHOST, rhost.c_str());
    if (!tty.empty())
        pam_set_item(pamh, PAM_TTY, tty.c_str());
    if (!ruser.empty())
        pam_set_item(pamh, PAM_RUSER, ruser.c_str());

    int flags = silent ? PAM_SILENT : 0;
    for (const std::string &op : ops) {
        if (op == "auth")
            r = pam_authenticate(pamh, flags);
        else if (op == "setcred")
            r = pam_setcred(pamh, flags | PAM_ESTABLISH_CRED);
        else if (op == "acct")
            r = pam_acct_mgmt(pamh, flags);
        else if (op == "open")
            r = pam_open_session(pamh, flags);
        else if (op == "close")
            r = pam_close_session(pamh, flags);
        else if (op == "chauthtok")
            r = pam_chauthtok(pamh, flags);
        else {
            usage();
            pam_end(pamh, PAM_SUCCESS);
            return 2;
        }
        std::printf("result %s %d %s\n", op.c_str(), r, pam_strerror(pamh, r));
        std::fflush(stdout);
        if (r != PAM_SUCCESS)
            break;
    }
    pam_end(pamh, r);
    return r;
}
