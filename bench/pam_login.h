/* One login through the real libpam: pam_start_confdir, pam_authenticate
 * and pam_end on a handle of its own, answering each prompt from a list, as
 * sshd or login would. Safe to call from many threads at once because no
 * state is shared between calls. */
#pragma once

#include <string>
#include <vector>

namespace warden::bench {

struct LoginRequest {
    std::string confdir; /* directory of PAM service files */
    std::string service;
    std::string user;
    std::string rhost; /* PAM_RHOST; empty leaves it unset */
    /* Answers to the echo-on and echo-off prompts, in order. A prompt
     * beyond the list fails the conversation with PAM_CONV_ERR. */
    std::vector<std::string> answers;
};

struct LoginOutcome {
    int status = 0;           /* pam_authenticate's return code, or pam_start's if that failed */
    double auth_seconds = 0;  /* pam_authenticate alone */
    double total_seconds = 0; /* pam_start_confdir to pam_end */
    int prompts = 0;          /* prompts that asked for an answer */
    /* Split of auth_seconds around the conversation: from pam_authenticate
     * to the first prompt, and from the last answer back to
     * pam_authenticate's return, which contains the daemon's hash. */
    double first_prompt_seconds = 0;
    double after_answers_seconds = 0;
};

LoginOutcome run_login(const LoginRequest &request);

} // namespace warden::bench
