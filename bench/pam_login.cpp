#include "bench/pam_login.h"

#include "bench/stats.h"

#include <security/pam_appl.h>

#include <cstdlib>
#include <cstring>

namespace warden::bench {
namespace {

struct Conversation {
    const std::vector<std::string> *answers;
    std::size_t next = 0;
    int prompts = 0;
    Clock::time_point first_prompt;
    Clock::time_point last_answer;
};

void free_responses(struct pam_response *responses, int count) {
    for (int i = 0; i < count; i++) {
        if (responses[i].resp) {
            explicit_bzero(responses[i].resp, std::strlen(responses[i].resp));
            std::free(responses[i].resp);
        }
    }
    std::free(responses);
}

/* The PAM conversation function: libpam frees the responses it receives. */
int answer_prompts(int count, const struct pam_message **messages, struct pam_response **ret_responses,
                   void *data) {
    auto *conversation = static_cast<Conversation *>(data);
    if (conversation->prompts == 0)
        conversation->first_prompt = Clock::now();
    if (count <= 0)
        return PAM_CONV_ERR;
    auto *responses = static_cast<struct pam_response *>(
            std::calloc(static_cast<std::size_t>(count), sizeof(struct pam_response)));
    if (!responses)
        return PAM_BUF_ERR;
    for (int i = 0; i < count; i++) {
        int style = messages[i]->msg_style;
        if (style != PAM_PROMPT_ECHO_OFF && style != PAM_PROMPT_ECHO_ON)
            continue;
        conversation->prompts++;
        if (conversation->next >= conversation->answers->size()) {
            free_responses(responses, count);
            return PAM_CONV_ERR;
        }
        responses[i].resp = strdup((*conversation->answers)[conversation->next++].c_str());
        if (!responses[i].resp) {
            free_responses(responses, count);
            return PAM_BUF_ERR;
        }
    }
    *ret_responses = responses;
    conversation->last_answer = Clock::now();
    return PAM_SUCCESS;
}

} // namespace

LoginOutcome run_login(const LoginRequest &request) {
    LoginOutcome outcome;
    Conversation conversation{&request.answers};
    struct pam_conv conv = {answer_prompts, &conversation};
    pam_handle_t *pamh = nullptr;

    Clock::time_point start = Clock::now();
    int r = pam_start_confdir(request.service.c_str(), request.user.c_str(), &conv, request.confdir.c_str(), &pamh);
    if (r != PAM_SUCCESS) {
        outcome.status = r;
        outcome.total_seconds = seconds_between(start, Clock::now());
        return outcome;
    }
    if (!request.rhost.empty())
        (void)pam_set_item(pamh, PAM_RHOST, request.rhost.c_str());

    Clock::time_point auth_start = Clock::now();
    r = pam_authenticate(pamh, 0);
    Clock::time_point auth_end = Clock::now();
    (void)pam_end(pamh, r);
    Clock::time_point end = Clock::now();

    outcome.status = r;
    outcome.auth_seconds = seconds_between(auth_start, auth_end);
    outcome.total_seconds = seconds_between(start, end);
    outcome.prompts = conversation.prompts;
    if (conversation.prompts > 0) {
        outcome.first_prompt_seconds = seconds_between(auth_start, conversation.first_prompt);
        outcome.after_answers_seconds = seconds_between(conversation.last_answer, auth_end);
    }
    return outcome;
}

} // namespace warden::bench
