# Thin wrapper around Meson. The real build is meson.build; see HACKING.md.
PREFIX ?= /usr/local
BUILD ?= build
ASAN_BUILD ?= build-asan
MESON_FLAGS ?= -Dwerror=true
DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: all deps demo check check-asan install clean bench deb

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@./scripts/install-deps

$(DEPS_STAMP):
	@./scripts/install-deps
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/build.ninja: | $(DEPS_STAMP)
	meson setup $(BUILD) --prefix=$(PREFIX) $(MESON_FLAGS)

$(ASAN_BUILD)/build.ninja: | $(DEPS_STAMP)
	meson setup $(ASAN_BUILD) --prefix=$(PREFIX) $(MESON_FLAGS) \
		-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

demo: all
	./$(BUILD)/bulkhead run config/examples/demo.conf

check: all $(ASAN_BUILD)/build.ninja
	meson test -C $(BUILD) --print-errorlogs
	ninja -C $(ASAN_BUILD)
	meson test -C $(ASAN_BUILD) --print-errorlogs

install: all
	meson configure $(BUILD) --prefix=$(PREFIX)
	ninja -C $(BUILD)
	DESTDIR=$(DESTDIR) meson install -C $(BUILD) --no-rebuild

# bench/run: throughput, crash tax, restart latency, scale, experiment -> bench/results/*.md.
# BENCH_FLAGS=--quick for a smoke run, BENCH_FLAGS='--only restart' for one benchmark.
bench: all
	@./scripts/install-deps --bench
	./bench/run --build $(BUILD) $(BENCH_FLAGS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# The Debian packages (debian/): bulkhead and libbulkhead-job-dev, in the parent directory.
deb:
	@./scripts/install-deps --deb
	dpkg-buildpackage -us -uc -b
