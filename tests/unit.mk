# CMocka unit tests of the parts that need no daemon, socket or PAM stack.
# Included by the top-level build. `make check-unit` builds and runs them,
# and `make SAN=1 check-unit` does the same on the ASan + UBSan build.

CMOCKA_CFLAGS = $(shell pkg-config --cflags cmocka)
CMOCKA_LIBS = $(shell pkg-config --libs cmocka)

UNIT_NAMES := test_wire test_config test_password_hash test_args test_audit_escape test_hash_pool test_secure_pool
UNIT_TESTS := $(patsubst %,$(BUILD)/tests/%,$(UNIT_NAMES))
UNIT_OBJS := $(call obj,$(patsubst %,tests/unit/%.cpp,$(UNIT_NAMES)))

$(UNIT_OBJS): DAEMON_CFLAGS += $(CMOCKA_CFLAGS)

# Each test links the daemon library; the linker takes only the objects it
# needs. test_args also needs the module's argument parser.
$(UNIT_TESTS): $(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libwardend.a
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) $(filter %.o %.a,$^) -o $@ $(LDHARDEN) $(CMOCKA_LIBS) $(DAEMON_LIBS)

$(BUILD)/tests/test_args: $(BUILD)/obj/pam_module/args.o

.PHONY: check-unit
check-unit: $(UNIT_TESTS)
	@failed=0; \
	for test in $(UNIT_TESTS); do \
		echo "== $$test"; \
		$$test || { echo "FAILED: $$test"; failed=1; }; \
	done; \
	exit $$failed
