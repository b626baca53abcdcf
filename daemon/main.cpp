/* wardend: the privileged daemon that holds every secret and checks every
 * login for pam_warden.so. */
#include "daemon/audit.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/dbus_api.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "protocol/unique_fd.h"
#include "protocol/version.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <sys/resource.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace warden {
namespace {

constexpr const char *kDefaultConfig = "/etc/warden/wardend.conf";
constexpr int kDrainGraceMs = 30 * 1000;

void print_usage(FILE *out) {
    std::fprintf(out,
                 "Usage: wardend [--config FILE] [--check-config]\n"
                 "       wardend --generate-key FILE\n"
                 "       wardend --version\n"
                 "\n"
                 "  -c, --config FILE        configuration file (default %s)\n"
                 "      --check-config       validate the configuration, print each problem, exit 0 or 1\n"
                 "      --generate-key FILE  write a new 32-byte host key with mode 0600; never overwrites\n"
                 "      --version            print the version and exit\n",
                 kDefaultConfig);
}

int generate_key(const char *path) {
    int fd = ::open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            std::fprintf(stderr, "wardend: '%s' already exists; refusing to overwrite a host key\n", path);
        else
            std::fprintf(stderr, "wardend: failed to create '%s': %s\n", path, std::strerror(errno));
        return 1;
    }
    unsigned char key[32];
    randombytes_buf(key, sizeof key);
    ssize_t n = ::write(fd, key, sizeof key);
    sodium_memzero(key, sizeof key);
    if (n != static_cast<ssize_t>(sizeof key) || ::fsync(fd) < 0) {
        std::fprintf(stderr, "wardend: failed to write '%s': %s\n", path, std::strerror(errno));
        ::close(fd);
        ::unlink(path);
        return 1;
    }
    ::close(fd);
    return 0;
}

void report_problems(const std::vector<std::string> &problems, bool to_audit) {
    for (const std::string &problem : problems) {
        std::fprintf(stderr, "%s\n", problem.c_str());
        if (to_audit)
            audit({AuditEvent::kConfigRejected, false, AuditReason::kNone, {}, problem}, {});
    }
}

/* Argon2 needs workers x argon2_memory bytes at once. Under a smaller
 * address-space limit allocation would fail during verification, which
 * libsodium reports like a wrong password; refuse to start instead. */
bool check_memory_limit(const Config &config, std::string &ret_error) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_AS, &limit) < 0 || limit.rlim_cur == RLIM_INFINITY)
        return true;
    unsigned long long need = static_cast<unsigned long long>(config.effective_workers()) *
                                      config.argon2_memory_kib * 1024 +
                              256ull * 1024 * 1024;
    if (limit.rlim_cur < need) {
        ret_error = "the address-space limit (" + std::to_string(limit.rlim_cur / (1024 * 1024)) +
                    " MiB) is below workers x argon2_memory_kib plus 256 MiB (" +
                    std::to_string(need / (1024 * 1024)) + " MiB); lower [daemon] workers or raise the limit";
        return false;
    }
    return true;
}

void reload(Daemon &daemon, const std::string &path) {
    Config fresh;
    std::vector<std::string> problems;
    if (!load_config(path, fresh, problems)) {
        for (const std::string &problem : problems) {
            log::error("Rejected reloaded configuration: {}", problem);
            audit({AuditEvent::kConfigRejected, false, AuditReason::kNone, {}, problem}, {});
        }
        log::warning("Keeping the configuration in force after a failed reload of '{}'", path);
        audit({AuditEvent::kDaemonReload, false, AuditReason::kNone, {}, "invalid configuration kept out"}, {});
        return;
    }
    auto old = daemon.config();
    if (fresh.socket != old->socket || fresh.state_directory != old->state_directory ||
        fresh.workers != old->workers || fresh.dbus != old->dbus || fresh.queue_size != old->queue_size ||
        fresh.mode != old->mode)
        log::warning("Changes to [daemon] mode, socket, state_directory, workers, dbus or queue_size take "
                     "effect at the next restart, ignoring them until then");
    fresh.socket = old->socket;
    fresh.state_directory = old->state_directory;
    fresh.workers = old->workers;
    fresh.dbus = old->dbus;
    fresh.queue_size = old->queue_size;
    fresh.mode = old->mode;
    log::set_level(fresh.log_level);
    audit_set_limits({fresh.audit_burst, fresh.audit_interval});
    /* Unknown users must keep costing what known ones cost. */
    if (fresh.argon2_memory_kib != old->argon2_memory_kib || fresh.argon2_iterations != old->argon2_iterations) {
        std::string dummy;
        if (make_dummy_hash({fresh.argon2_memory_kib, fresh.argon2_iterations}, dummy))
            daemon.set_dummy_hash(std::move(dummy));
        else
            log::error("Failed to compute a dummy hash at the new Argon2 cost; keeping the old one");
    }
    daemon.set_config(std::make_shared<const Config>(std::move(fresh)));
    log::info("Reloaded configuration from '{}'", path);
    audit({AuditEvent::kDaemonReload, true}, {});
}

int run(const std::string &config_path) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    /* Blocked before any thread starts, so only the signalfd sees them. */
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    signal(SIGPIPE, SIG_IGN);

    Config config;
    std::vector<std::string> problems;
    if (!load_config(config_path, config, problems)) {
        report_problems(problems, true);
        std::fprintf(stderr, "wardend: refusing to start with an invalid configuration\n");
        return 1;
    }
    log::setup(config.log_level);
    ::umask(077);
    audit_start({config.audit_burst, config.audit_interval});
    /* Pending summaries are written on every way out. */
    struct AuditStopper {
        ~AuditStopper() { audit_stop(); }
    } audit_stopper;

    if (!config.development() && geteuid() != 0) {
        log::error("Refusing to start: production mode needs root; set [daemon] mode = development for tests");
        return 1;
    }
    std::string error;
    if (!check_memory_limit(config, error)) {
        log::error("Refusing to start: {}", error);
        return 1;
    }

    /* One wardend per store: a second one started by mistake must not
     * take over the socket or write to the same database. */
    if (::mkdir(config.state_directory.c_str(), 0700) < 0 && errno != EEXIST) {
        log::error("Refusing to start: failed to create '{}': {}", config.state_directory, std::strerror(errno));
        return 1;
    }
    UniqueFd lock(::open((config.state_directory + "/wardend.lock").c_str(),
                         O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!lock || ::flock(lock.get(), LOCK_EX | LOCK_NB) < 0) {
        log::error("Refusing to start: {}",
                   errno == EWOULDBLOCK ? "another wardend is running on '" + config.state_directory + "'"
                                        : "failed to lock '" + config.state_directory + "/wardend.lock': " +
                                                  std::strerror(errno));
        return 1;
    }

    HostKey key;
    if (!HostKey::load(config.key_file, key, error)) {
        log::error("Refusing to start: {}", error);
        return 1;
    }
    std::unique_ptr<Store> store = open_sqlite_store(config.state_directory, error);
    if (!store) {
        log::error("Refusing to start: {}", error);
        return 1;
    }
    std::string dummy;
    if (!make_dummy_hash({config.argon2_memory_kib, config.argon2_iterations}, dummy)) {
        log::error("Refusing to start: failed to compute an Argon2id hash at the configured cost "
                   "(m={} KiB, t={}); is memory short?",
                   config.argon2_memory_kib, config.argon2_iterations);
        return 1;
    }

    auto shared = std::make_shared<const Config>(config);
    Daemon daemon(shared, std::move(store), std::move(key), std::move(dummy));
    Server server(daemon);
    if (!server.open_listener(config, error)) {
        log::error("Refusing to start: {}", error);
        return 1;
    }
    AdminBus bus(daemon);
    if (config.dbus && !bus.start(error)) {
        log::error("Refusing to start: {}", error);
        server.close_listener();
        return 1;
    }

    int signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (signal_fd < 0) {
        log::error("Refusing to start: failed to create a signalfd: {}", std::strerror(errno));
        return 1;
    }

    log::info("wardend {} started in {} mode with {} workers, Argon2id m={} KiB t={}", WARDEN_VERSION,
              config.development() ? "development" : "production", config.effective_workers(),
              config.argon2_memory_kib, config.argon2_iterations);
    audit({AuditEvent::kDaemonStart, true}, {});
    sd_notify(0, "READY=1\nSTATUS=Serving logins");

    for (;;) {
        server.serve(signal_fd);
        struct signalfd_siginfo info;
        ssize_t n = ::read(signal_fd, &info, sizeof info);
        if (n != static_cast<ssize_t>(sizeof info))
            continue;
        if (info.ssi_signo == SIGHUP) {
            sd_notify(0, "RELOADING=1");
            reload(daemon, config_path);
            sd_notify(0, "READY=1");
            continue;
        }
        log::info("Received signal {}, stopping", info.ssi_signo);
        break;
    }

    sd_notify(0, "STOPPING=1");
    server.close_listener();
    bus.stop();
    server.drain(kDrainGraceMs);
    daemon.pool().stop();
    audit_stop();
    audit({AuditEvent::kDaemonStop, true}, {});
    log::info("wardend stopped");
    spdlog::shutdown();
    if (server.active_connections() > 0)
        _exit(0); /* detached connection threads still hold the daemon */
    return 0;
}

} // namespace
} // namespace warden

int main(int argc, char **argv) {
    static const struct option options[] = {
        {"config", required_argument, nullptr, 'c'},
        {"check-config", no_argument, nullptr, 'C'},
        {"generate-key", required_argument, nullptr, 'G'},
        {"version", no_argument, nullptr, 'V'},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    std::string config_path = warden::kDefaultConfig;
    bool check_only = false;
    const char *key_path = nullptr;
    int c;
    while ((c = getopt_long(argc, argv, "c:h", options, nullptr)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'C': check_only = true; break;
        case 'G': key_path = optarg; break;
        case 'V': std::printf("wardend %s\n", WARDEN_VERSION); return 0;
        case 'h': warden::print_usage(stdout); return 0;
        default: warden::print_usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        warden::print_usage(stderr);
        return 2;
    }
    if (sodium_init() < 0) {
        std::fprintf(stderr, "wardend: failed to initialise libsodium\n");
        return 1;
    }
    if (key_path)
        return warden::generate_key(key_path);
    if (check_only) {
        warden::Config config;
        std::vector<std::string> problems;
        bool ok = warden::load_config(config_path, config, problems);
        for (const std::string &problem : problems)
            std::printf("%s\n", problem.c_str());
        return ok ? 0 : 1;
    }
    try {
        return warden::run(config_path);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "wardend: fatal: %s\n", e.what());
        return 1;
    }
}
