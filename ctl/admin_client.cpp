#include "ctl/admin_client.h"

#include "protocol/version.h"

#include <cstdlib>
#include <cstring>

namespace warden::ctl {
namespace {

constexpr const char *kDefaultSystemBus = "unix:path=/run/dbus/system_bus_socket";

/* Timeout of a call: 0 makes sd-bus use its default of 25 seconds. */
constexpr std::uint64_t kDefaultCallTimeout = 0;

Value read_basic_value(sd_bus_message *reply, char type, const char *method) {
    union {
        const char *string;
        int boolean;
        std::uint8_t u8;
        std::int16_t i16;
        std::uint16_t u16;
        std::int32_t i32;
        std::uint32_t u32;
        std::int64_t i64;
        std::uint64_t u64;
    } raw{};
    check_read(sd_bus_message_read_basic(reply, type, &raw), method);
    switch (type) {
    case 's':
    case 'o':
    case 'g': return std::string(raw.string);
    case 'b': return raw.boolean != 0;
    case 'y': return std::uint64_t{raw.u8};
    case 'n': return std::int64_t{raw.i16};
    case 'q': return std::uint64_t{raw.u16};
    case 'i': return std::int64_t{raw.i32};
    case 'u': return std::uint64_t{raw.u32};
    case 'x': return raw.i64;
    default: return raw.u64;
    }
}

} // namespace

std::string describe_call_error(const BusError &bus_error, int r) {
    const char *bus_message = bus_error.error.message;
    std::string detail = bus_message && *bus_message ? bus_message : std::strerror(-r);
    if (bus_error.has_name(SD_BUS_ERROR_SERVICE_UNKNOWN) || bus_error.has_name(SD_BUS_ERROR_NAME_HAS_NO_OWNER))
        return std::string("wardend is not running (no process owns ") + bus::kName +
               " on the system bus). Start it with 'systemctl start wardend'";
    /* Bus activation without systemd runs the launch helper, which
     * reports only its exit code when wardend fails to start. */
    const char *name = bus_error.error.name;
    if (name && std::strncmp(name, "org.freedesktop.DBus.Error.Spawn.", 33) == 0)
        return "wardend is not running, and the bus failed to start it (" + detail +
               "). Start wardend (systemctl start wardend, or /usr/sbin/wardend where systemd does not run); "
               "if it exits at once, 'wardend --check-config' lists the problems";
    if (bus_error.has_name(SD_BUS_ERROR_NO_REPLY) || bus_error.has_name(SD_BUS_ERROR_TIMEOUT))
        return "timed out waiting for a reply from wardend (" + detail +
               "). Check 'systemctl status wardend' and 'journalctl -u wardend'";
    if (bus_error.has_name(SD_BUS_ERROR_ACCESS_DENIED))
        return join_sentences(detail, "Run wardenctl as root");
    if (bus_error.has_name(SD_BUS_ERROR_UNKNOWN_METHOD) || bus_error.has_name(SD_BUS_ERROR_UNKNOWN_OBJECT) ||
        bus_error.has_name(SD_BUS_ERROR_UNKNOWN_INTERFACE))
        return join_sentences(detail, "The running wardend may be older than wardenctl " WARDEN_VERSION);
    return detail;
}

AdminClient::AdminClient() {
    sd_bus *bus = nullptr;
    int r = sd_bus_open_system(&bus);
    bus_.reset(bus);
    if (r < 0) {
        const char *address = secure_getenv("DBUS_SYSTEM_BUS_ADDRESS");
        fail("Failed to connect to the system bus at " + quoted(address ? address : kDefaultSystemBus) + ": " +
             std::strerror(-r) + ". Check that dbus is running, or set DBUS_SYSTEM_BUS_ADDRESS");
    }
}

MessagePtr AdminClient::new_secret_call(const char *method) {
    sd_bus_message *raw = nullptr;
    int r = sd_bus_message_new_method_call(bus_.get(), &raw, bus::kName, bus::kPath, bus::kInterface, method);
    MessagePtr call(r < 0 ? nullptr : raw);
    check_append(r, method);
    check_append(sd_bus_message_sensitive(call.get()), method);
    return call;
}

MessagePtr AdminClient::try_send(sd_bus_message *call, BusError &ret_error, int &ret_r) {
    sd_bus_message *reply = nullptr;
    ret_r = sd_bus_call(bus_.get(), call, kDefaultCallTimeout, &ret_error.error, &reply);
    return MessagePtr(ret_r < 0 ? nullptr : reply);
}

MessagePtr AdminClient::send(const std::string &action, sd_bus_message *call) {
    BusError error;
    int r = 0;
    MessagePtr reply = try_send(call, error, r);
    if (!reply)
        fail("Failed to " + action + ": " + describe_call_error(error, r), error.name());
    return reply;
}

void check_read(int r, const char *method) {
    if (r < 0)
        fail(std::string("Failed to read the reply of wardend to ") + method + ": " + std::strerror(-r) +
             ". wardend and wardenctl " WARDEN_VERSION " may be of different versions");
}

void check_append(int r, const char *method) {
    if (r < 0)
        fail(std::string("Failed to build the D-Bus call ") + method + ": " + std::strerror(-r));
}

std::vector<Property> read_properties(sd_bus_message *reply, const char *method) {
    std::vector<Property> properties;
    check_read(sd_bus_message_enter_container(reply, 'a', "{sv}"), method);
    for (;;) {
        int r = sd_bus_message_enter_container(reply, 'e', "sv");
        check_read(r, method);
        if (r == 0)
            break;
        const char *key = nullptr;
        check_read(sd_bus_message_read_basic(reply, 's', &key), method);
        const char *contents = nullptr;
        check_read(sd_bus_message_peek_type(reply, nullptr, &contents), method);
        check_read(sd_bus_message_enter_container(reply, 'v', contents), method);
        if (std::strlen(contents) == 1 && std::strchr("sogbynqiuxt", contents[0]))
            properties.push_back({key, read_basic_value(reply, contents[0], method)});
        else
            check_read(sd_bus_message_skip(reply, contents), method);
        check_read(sd_bus_message_exit_container(reply), method);
        check_read(sd_bus_message_exit_container(reply), method);
    }
    check_read(sd_bus_message_exit_container(reply), method);
    return properties;
}

} // namespace warden::ctl
