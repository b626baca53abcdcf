/* Names of wardend's admin API on D-Bus, shared by wardend and wardenctl. */
#pragma once

namespace warden::bus {

inline constexpr const char *kName = "net.warden.Admin1";
inline constexpr const char *kPath = "/net/warden/Admin1";
inline constexpr const char *kInterface = "net.warden.Admin1";

inline constexpr const char *kErrorAccessDenied = "net.warden.Admin1.Error.AccessDenied";
inline constexpr const char *kErrorNoSuchUser = "net.warden.Admin1.Error.NoSuchUser";
inline constexpr const char *kErrorUserExists = "net.warden.Admin1.Error.UserExists";
inline constexpr const char *kErrorInvalidArgument = "net.warden.Admin1.Error.InvalidArgument";
inline constexpr const char *kErrorStoreFailed = "net.warden.Admin1.Error.StoreFailed";
inline constexpr const char *kErrorNoFactor = "net.warden.Admin1.Error.NoFactor";
inline constexpr const char *kErrorFactorExists = "net.warden.Admin1.Error.FactorExists";
inline constexpr const char *kErrorNoPendingFactor = "net.warden.Admin1.Error.NoPendingFactor";
inline constexpr const char *kErrorInvalidCode = "net.warden.Admin1.Error.InvalidCode";
inline constexpr const char *kErrorReplayedCode = "net.warden.Admin1.Error.ReplayedCode";
inline constexpr const char *kErrorKeyFailed = "net.warden.Admin1.Error.KeyFailed";

} // namespace warden::bus
