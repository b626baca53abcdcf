# Warden: pam_warden.so, wardend and wardenctl.
#
#   make              build everything into build/
#   make check        unit and integration tests (integration needs root for some cases)
#   make check-san    the same tests on an ASan + UBSan build in build-san/
#   make fuzz         libFuzzer on the frame decoder and config parser (FUZZ_SECONDS=60)
#   make demo         a throw-away daemon, bus and login through the real libpam
#   make install      DESTDIR= PREFIX=/usr
#   make deps         install missing Debian packages (as root) or print the apt-get line

PREFIX ?= /usr
DESTDIR ?=
SAN ?= 0

ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else
BUILD ?= build
SANFLAGS :=
endif

CXX ?= g++
CXXFLAGS ?= -O2 -g
WARNINGS := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-missing-field-initializers
HARDENING := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIC
ALL_CXXFLAGS := -std=c++20 $(WARNINGS) $(HARDENING) $(SANFLAGS) -I. -D_GNU_SOURCE $(CXXFLAGS)
LDHARDEN := -Wl,-z,relro,-z,now -Wl,--as-needed $(SANFLAGS)

PKGS_DAEMON := libsodium liboath libsystemd spdlog inih sqlite3 pwquality
PKGS_CTL := libsodium liboath libsystemd pwquality
DAEMON_CFLAGS = $(shell pkg-config --cflags $(PKGS_DAEMON))
DAEMON_LIBS = $(shell pkg-config --libs $(PKGS_DAEMON)) -pthread
CTL_CFLAGS = $(shell pkg-config --cflags $(PKGS_CTL))
CTL_LIBS = $(shell pkg-config --libs $(PKGS_CTL))

PROTOCOL_SRC := protocol/wire.cpp protocol/transport.cpp
DAEMON_LIB_SRC := daemon/config.cpp daemon/sqlite_store.cpp daemon/password_hash.cpp daemon/hash_pool.cpp \
	daemon/audit.cpp daemon/log.cpp daemon/daemon.cpp daemon/password_quality.cpp \
	daemon/conversation.cpp daemon/server.cpp daemon/dbus_api.cpp daemon/totp.cpp daemon/host_key.cpp daemon/lockout.cpp daemon/attempt_gate.cpp \
	daemon/secure_pool.cpp
DAEMON_SRC := daemon/main.cpp
MODULE_SRC := pam_module/pam_warden.cpp pam_module/args.cpp pam_module/client.cpp
CTL_SRC := ctl/wardenctl.cpp ctl/command.cpp ctl/admin_client.cpp ctl/password_input.cpp ctl/totp_commands.cpp ctl/recovery_commands.cpp ctl/json.cpp daemon/totp.cpp daemon/password_quality.cpp daemon/password_hash.cpp daemon/secure_pool.cpp

obj = $(patsubst %.cpp,$(BUILD)/obj/%.o,$(1))
mobj = $(patsubst %.cpp,$(BUILD)/mobj/%.o,$(1))

.PHONY: all check check-unit check-integration check-san demo install deps clean fuzz bench

all: $(BUILD)/pam_warden.so $(BUILD)/wardend $(BUILD)/wardenctl

# Daemon, CLI and tests share one object tree.
$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) $(DAEMON_CFLAGS) -MMD -MP -c $< -o $@

# The module gets hidden visibility and no library besides libpam.
$(BUILD)/mobj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) -fvisibility=hidden -fvisibility-inlines-hidden -MMD -MP -c $< -o $@

$(BUILD)/libwardend.a: $(call obj,$(PROTOCOL_SRC) $(DAEMON_LIB_SRC))
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/wardend: $(call obj,$(DAEMON_SRC)) $(BUILD)/libwardend.a
	$(CXX) $(ALL_CXXFLAGS) $^ -o $@ $(LDHARDEN) $(DAEMON_LIBS)

$(BUILD)/pam_warden.so: $(call mobj,$(MODULE_SRC) $(PROTOCOL_SRC)) pam_module/pam_warden.map
	$(CXX) $(ALL_CXXFLAGS) -shared -fvisibility=hidden $(filter %.o,$^) -o $@ $(LDHARDEN) \
		-Wl,--version-script=pam_module/pam_warden.map -Wl,-z,defs -lpam

$(BUILD)/wardenctl: $(call obj,$(CTL_SRC) $(PROTOCOL_SRC))
	$(CXX) $(ALL_CXXFLAGS) $^ -o $@ $(LDHARDEN) $(CTL_LIBS) -lqrencode

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

include tests/tests.mk
-include bench/bench.mk

deps:
	@sh tests/install-deps.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/lib/x86_64-linux-gnu/security
	install -m 0755 $(BUILD)/wardend $(DESTDIR)$(PREFIX)/sbin/wardend
	install -m 0755 $(BUILD)/wardenctl $(DESTDIR)$(PREFIX)/bin/wardenctl
	install -m 0644 $(BUILD)/pam_warden.so $(DESTDIR)/lib/x86_64-linux-gnu/security/pam_warden.so
	install -d $(DESTDIR)/etc/warden $(DESTDIR)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/dbus-1/system.d
	# An existing configuration is the admin's: never overwrite it.
	test -e $(DESTDIR)/etc/warden/wardend.conf || install -m 0600 conf/wardend.conf $(DESTDIR)/etc/warden/wardend.conf
	install -m 0644 systemd/wardend.service systemd/wardend.socket $(DESTDIR)/lib/systemd/system/
	install -m 0644 systemd/net.warden.Admin1.conf $(DESTDIR)$(PREFIX)/share/dbus-1/system.d/
	install -d $(DESTDIR)$(PREFIX)/lib/tmpfiles.d
	install -m 0644 systemd/warden.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/warden.conf
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/catalog
	install -m 0644 systemd/warden.catalog $(DESTDIR)$(PREFIX)/lib/systemd/catalog/warden.catalog
	install -m 0644 systemd/net.warden.Admin1.service -D $(DESTDIR)$(PREFIX)/share/dbus-1/system-services/net.warden.Admin1.service
	install -d $(DESTDIR)/etc/fail2ban/filter.d
	install -m 0644 conf/fail2ban/filter.d/warden.conf $(DESTDIR)/etc/fail2ban/filter.d/warden.conf
	install -d $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 0644 docs/wardend.8 docs/wardenctl.8 docs/pam_warden.8 $(DESTDIR)$(PREFIX)/share/man/man8/

clean:
	rm -rf build build-san build-fuzz
