/* Admin API of wardend on D-Bus (sd-bus), used by wardenctl.
 *
 * Bus name, object and interface: net.warden.Admin1, /net/warden/Admin1.
 * Every method checks the sender's credentials first (root only) and
 * answers failures with named errors under net.warden.Admin1.Error. No
 * method takes or returns a password in clear or any other secret. */
#pragma once

#include "daemon/daemon.h"
#include "protocol/admin_bus.h"

#include <atomic>
#include <string>
#include <thread>

namespace warden {


class AdminBus {
public:
    explicit AdminBus(Daemon &daemon);
    ~AdminBus();

    /* Connects to the system bus (or DBUS_SYSTEM_BUS_ADDRESS), exports the
     * object, takes the name, and serves it on a thread of its own. */
    bool start(std::string &ret_error);
    void stop();

private:
    struct State;
    Daemon &daemon_;
    State *state_ = nullptr;
    std::thread thread_;
};

} // namespace warden
