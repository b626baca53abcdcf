/* The D-Bus client of wardenctl: calls to wardend's admin API
 * net.warden.Admin1 and the readers for its replies. */
#pragma once

#include "ctl/command.h"
#include "protocol/admin_bus.h"

#include <systemd/sd-bus.h>

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace warden::ctl {

struct BusDeleter {
    void operator()(sd_bus *bus) const noexcept { sd_bus_flush_close_unref(bus); }
};
struct MessageDeleter {
    void operator()(sd_bus_message *message) const noexcept { sd_bus_message_unref(message); }
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageDeleter>;

/* An sd_bus_error that frees itself. */
struct BusError {
    sd_bus_error error = SD_BUS_ERROR_NULL;

    BusError() = default;
    BusError(const BusError &) = delete;
    BusError &operator=(const BusError &) = delete;
    ~BusError() { sd_bus_error_free(&error); }

    bool has_name(const char *name) const { return sd_bus_error_has_name(&error, name) > 0; }
    std::string name() const { return error.name ? error.name : ""; }
};

/* Turns a failed call into the text after "Failed to ...: ", with a next
 * step for the failures an admin can fix on this host. */
std::string describe_call_error(const BusError &bus_error, int r);

class AdminClient {
public:
    /* Connects to the system bus, or to DBUS_SYSTEM_BUS_ADDRESS when set. */
    AdminClient();

    /* Calls method on wardend. Returns the reply, or null with ret_error
     * and ret_r filled when the call failed. */
    template <typename... Args>
    MessagePtr try_call(BusError &ret_error, int &ret_r, const char *method, const char *types, Args... args) {
        sd_bus_message *reply = nullptr;
        ret_r = sd_bus_call_method(bus_.get(), bus::kName, bus::kPath, bus::kInterface, method, &ret_error.error,
                                   &reply, types, args...);
        return MessagePtr(ret_r < 0 ? nullptr : reply);
    }

    /* Calls method on wardend, or fails with "Failed to ACTION: reason". */
    template <typename... Args>
    MessagePtr call(const std::string &action, const char *method, const char *types, Args... args) {
        BusError error;
        int r = 0;
        MessagePtr reply = try_call(error, r, method, types, args...);
        if (!reply)
            fail("Failed to " + action + ": " + describe_call_error(error, r), error.name());
        return reply;
    }

    /* Creates a call of method for arguments that the varargs form cannot
     * append, such as byte arrays. The message is marked sensitive, so
     * sd-bus zeroes its buffers, and the secrets in them, when it is freed. */
    MessagePtr new_secret_call(const char *method);

    /* Sends a call made by new_secret_call. Returns the reply, or null with
     * ret_error and ret_r filled when the call failed. */
    MessagePtr try_send(sd_bus_message *call, BusError &ret_error, int &ret_r);

    /* Sends a call made by new_secret_call, or fails with "Failed to ACTION: reason". */
    MessagePtr send(const std::string &action, sd_bus_message *call);

private:
    std::unique_ptr<sd_bus, BusDeleter> bus_;
};

/* Fails with a message naming method when reading its reply failed (r < 0). */
void check_read(int r, const char *method);

/* Fails with a message naming method when appending to its call failed (r < 0). */
void check_append(int r, const char *method);

/* One value of an a{sv} reply, kept with its D-Bus type class. */
using Value = std::variant<std::string, std::int64_t, std::uint64_t, bool>;

struct Property {
    std::string key;
    Value value;
};

/* Reads an a{sv} reply in the order the daemon sent it. Entries whose
 * value is not a string, integer or boolean are skipped. */
std::vector<Property> read_properties(sd_bus_message *reply, const char *method);

} // namespace warden::ctl
