# Integration test tools and the check targets.

PAM_DRIVER := $(BUILD)/tests/pam_driver
FAKE_DAEMON := $(BUILD)/tests/fake_daemon

$(PAM_DRIVER): $(call obj,tests/integration/pam_driver.cpp)
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) $^ -o $@ $(LDHARDEN) -lpam

$(FAKE_DAEMON): $(call obj,tests/integration/fake_daemon.cpp $(PROTOCOL_SRC))
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) $^ -o $@ $(LDHARDEN)

TEST_TOOLS := $(PAM_DRIVER) $(FAKE_DAEMON)

HASH_TOOL := $(BUILD)/tests/hash_tool

$(HASH_TOOL): $(call obj,tests/integration/hash_tool.cpp)
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) $^ -o $@ $(LDHARDEN) $(shell pkg-config --libs libsodium)

TEST_TOOLS += $(HASH_TOOL)

PAM_PROBE := $(BUILD)/tests/pam_probe.so

$(PAM_PROBE): $(call obj,tests/integration/pam_probe.cpp)
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) -shared $^ -o $@ $(LDHARDEN) -lpam $(shell pkg-config --libs libsodium)

TEST_TOOLS += $(PAM_PROBE)

-include tests/unit.mk

# Integration tests: real libpam, wardend, dbus-daemon and SQLite. Some
# cases need root (setpriv to another uid) and are skipped without it.
check-integration: all $(TEST_TOOLS)
	WARDEN_BUILD=$(abspath $(BUILD)) WARDEN_SANITIZED=$(SAN) tests/integration/with_journal.sh \
		python3 tests/integration/run.py

check: check-unit check-integration

check-san:
	$(MAKE) SAN=1 check

demo: all
	BUILD=$(BUILD) tests/integration/with_journal.sh bash tests/demo.sh
-include tests/fuzz/fuzz.mk
