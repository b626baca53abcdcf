# The benchmark: `make bench` builds the driver and runs bench/run.py, which
# starts its own wardend, D-Bus bus and reference PAM stack under a
# temporary directory, prints the report and stops everything it started.
# Not part of `make check`. BENCH_ARGS passes options to the runner, for
# example BENCH_ARGS="--quick" or BENCH_ARGS="--json build/bench/report.json".

BENCH_DRIVER := $(BUILD)/bench/warden_bench
BENCH_SRC := bench/warden_bench.cpp bench/scenarios.cpp bench/pam_login.cpp bench/credentials.cpp \
	bench/options.cpp bench/stats.cpp
BENCH_ARGS ?=

$(BENCH_DRIVER): $(call obj,$(BENCH_SRC))
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) $^ -o $@ $(LDHARDEN) -lpam $(shell pkg-config --libs libsodium liboath libcrypt) -pthread

.PHONY: bench
bench: all $(BENCH_DRIVER)
	python3 bench/run.py --build $(abspath $(BUILD)) $(BENCH_ARGS)
