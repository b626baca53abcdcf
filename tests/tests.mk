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
