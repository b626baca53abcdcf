# libFuzzer targets, built with clang and ASan + UBSan:
#   make fuzz FUZZ_SECONDS=60     runs each target that long
FUZZ_SECONDS ?= 60
FUZZ_CXX ?= clang++-14
FUZZ_DIR := build-fuzz
FUZZ_FLAGS := -std=c++20 -g -O1 -I. -D_GNU_SOURCE -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

$(FUZZ_DIR)/fuzz_wire: tests/fuzz/fuzz_wire.cpp protocol/wire.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) $^ -o $@

$(FUZZ_DIR)/fuzz_config: tests/fuzz/fuzz_config.cpp daemon/config.cpp daemon/audit.cpp daemon/log.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) $(shell pkg-config --cflags spdlog) $^ -o $@ \
		$(shell pkg-config --libs spdlog inih libsystemd) -pthread

.PHONY: fuzz
fuzz: $(FUZZ_DIR)/fuzz_wire $(FUZZ_DIR)/fuzz_config
	@for target in fuzz_wire fuzz_config; do \
		corpus=$(FUZZ_DIR)/corpus-$$target; mkdir -p $$corpus $(FUZZ_DIR)/artifacts; \
		cp -n tests/fuzz/corpus/$${target#fuzz_}/* $$corpus/ 2>/dev/null || true; \
		echo "== $$target for $(FUZZ_SECONDS) s"; \
		timeout $$(( $(FUZZ_SECONDS) + 60 )) $(FUZZ_DIR)/$$target -max_total_time=$(FUZZ_SECONDS) \
			-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/ $$corpus \
			|| exit 1; \
	done
