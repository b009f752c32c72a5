# Tocsin — GNU make.
#
#   make          build bin/tocsin-agent (and its bin/tocsin-agent-deliver),
#                 bin/tocsin-server, bin/tocsin
#   make test     unit tests (cmocka) and integration tests (pytest), all
#                 under AddressSanitizer and UndefinedBehaviorSanitizer
#   make demo     build, start a server and an agent, show a real ticket
#   make deps     install the Debian build and test packages
#   make bench    run the benchmarks under bench/
#   make deb      build the Debian packages into build/deb/

VERSION := 0.1.0

CC ?= cc
PKG_CONFIG ?= pkg-config
PYTHON ?= /usr/bin/python3

WARNINGS := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
	-Wpointer-arith -Wcast-qual -Wformat=2
WERROR ?= -Werror
CSTD := -std=c17 -D_GNU_SOURCE
OPT ?= -O2 -g
SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# The agent never links libcurl: its deliverer does the network.
AGENT_PKGS  := yaml-0.1 jansson libsystemd sqlite3
DELIVER_PKGS := jansson libcurl
SERVER_PKGS := yaml-0.1 jansson libmicrohttpd sqlite3 libsodium libsystemd libcurl gnutls netsnmp
CLI_PKGS    := yaml-0.1 jansson libcurl
TEST_PKGS   := cmocka
# The checks' libraries: sd-bus and sd-journal (libsystemd), rotated
# package logs (zlib, already loaded by libcurl).  Both daemons link
# every check, since the server shares checks/checks.c.
CHECK_PKGS  := libsystemd zlib
AGENT_PKGS  += $(CHECK_PKGS)
SERVER_PKGS += $(CHECK_PKGS)

ALL_PKGS := $(sort $(AGENT_PKGS) $(DELIVER_PKGS) $(SERVER_PKGS) $(CLI_PKGS) $(TEST_PKGS))

pkg_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pkg_libs = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)

BASE_CFLAGS := $(CSTD) $(WARNINGS) $(WERROR) -DTOCSIN_VERSION='"$(VERSION)"' \
	-MMD -MP $(call pkg_cflags,$(ALL_PKGS))

COMMON_SRCS := \
	common/children.c \
	common/config.c \
	common/log.c \
	common/util.c \
	common/utf8.c

# Shared by the daemons only (the CLI has no database).
COMMON_DB_SRCS := \
	common/db.c

CHECK_SRCS := \
	checks/backup.c \
	checks/checks.c \
	checks/disk.c \
	checks/fillrate.c \
	checks/heartbeat.c \
	checks/journal.c \
	checks/nagios.c \
	checks/pkglog.c \
	checks/plugin.c \
	checks/predict.c \
	checks/run.c \
	checks/services.c \
	checks/unitrun.c \
	checks/updates.c \
	checks/updates_state.c \
	checks/updates_inputs.c \
	checks/systemd.c \
	checks/claims.c \
	checks/pathscan.c

AGENT_SRCS := \
	agent/config.c \
	agent/event.c \
	agent/oneshot.c \
	agent/report.c \
	agent/statedb.c \
	agent/outbox.c \
	agent/held.c \
	agent/delivery.c \
	agent/credential.c \
	agent/service.c \
	agent/deliverer.c \
	agent/wire.c \
	agent/enroll.c

# tocsin-agent-deliver: the agent's network side (agent/deliverer.h).  It
# shares the credential file and the framing with the agent.
DELIVER_ONLY_SRCS := \
	agent/transport.c \
	agent/grant.c

DELIVER_SRCS := \
	common/log.c \
	common/util.c \
	common/utf8.c \
	agent/credential.c \
	agent/wire.c \
	$(DELIVER_ONLY_SRCS)

SERVER_SRCS := \
	server/api.c \
	server/audit.c \
	server/budget.c \
	server/config.c \
	server/credapi.c \
	server/credentials.c \
	server/credindex.c \
	server/credlist.c \
	server/hostclaim.c \
	server/daemon.c \
	server/dedup.c \
	server/enrollment.c \
	server/http.c \
	server/ingest.c \
	server/inventory.c \
	server/liveness.c \
	server/metrics.c \
	server/privdrop.c \
	server/reload.c \
	server/store.c \
	server/trap.c \
	server/trapconf.c \
	server/netindex.c \
	server/trapdev.c \
	server/traplisten.c \
	server/trapmap.c \
	server/trapmsg.c \
	server/trapnames.c \
	server/trapreview.c \
	server/trapcap.c \
	server/trapclock.c \
	server/trapevent.c \
	server/traprate.c \
	server/trapuserset.c \
	server/tls.c \
	server/writer.c \
	server/watchdog.c \
	server/dedup_metrics.c \
	server/flap.c \
	server/lifecycle.c \
	server/problem.c \
	server/silence.c \
	server/silence_api.c \
	server/topology.c \
	server/tz.c \
	server/rrule.c \
	server/calendar.c \
	server/contract.c \
	server/nameindex.c \
	server/helpdesk.c \
	server/sla.c \
	server/desk.c \
	server/routing.c \
	server/action.c \
	server/escalate.c \
	server/notify.c \
	server/dispatch.c \
	server/smtp.c \
	server/webhook.c \
	server/keymap.c \
	server/ticket_cache.c \
	server/checkpoint.c \
	server/retention.c \
	server/account.c \
	server/session.c \
	server/console_api.c \
	server/ticket_query.c \
	build/gen/console_assets.c

CLI_SRCS := \
	server/cli/main.c \
	server/cli/token.c \
	server/cli/tickets.c \
	server/cli/traps.c \
	server/cli/silences.c \
	server/cli/lifecycle.c \
	server/cli/workflow.c \
	server/cli/audit.c \
	server/cli/credentials.c \
	server/cli/enrollment.c \
	server/cli/accounts.c

UNIT_TESTS := \
	test_config \
	test_credentials \
	test_disk \
	test_fillrate \
	test_dedup \
	test_key_cap \
	test_ingest \
	test_checkpoint \
	test_predict \
	test_inventory \
	test_trap \
	test_trapdev \
	test_trapmap \
	test_traprate \
	test_trapuserset \
	test_netindex \
	test_credindex \
	test_nameindex \
	test_tokens \
	test_trapclock \
	test_trapevent \
	test_liveness \
	test_nagios \
	test_pkglog \
	test_run \
	test_updates \
	test_util \
	test_writer \
	test_watchdog \
	test_lifecycle \
	test_silence \
	test_topology \
	test_calendar \
	test_calendar_year \
	test_sla \
	test_notify \
	test_desk \
	test_outbox \
	test_held \
	test_agent_delivery \
	test_utf8 \
	test_pathscan \
	test_wire \
	test_ticket_cache \
	test_retention \
	test_session \
	test_session_store \
	test_account \
	test_dedup_timer

# V=1 shows the full commands.
ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @echo "  $(1) $(2)"
endif

# Objects of a source list for a build variant directory.
objs = $(patsubst %.c,$(1)/%.o,$(2))

# --- release build: bin/ -----------------------------------------------
REL := build/rel
REL_CFLAGS := $(BASE_CFLAGS) $(OPT)

.PHONY: all
all: bin/tocsin-agent bin/tocsin-agent-deliver bin/tocsin-server bin/tocsin

bin/tocsin-agent: $(call objs,$(REL),$(COMMON_SRCS) $(COMMON_DB_SRCS) $(CHECK_SRCS) $(AGENT_SRCS) agent/main.c)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(call pkg_libs,$(AGENT_PKGS)) -lm

bin/tocsin-agent-deliver: $(call objs,$(REL),$(DELIVER_SRCS) agent/deliver_main.c)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(call pkg_libs,$(DELIVER_PKGS))

bin/tocsin-server: $(call objs,$(REL),$(COMMON_SRCS) $(COMMON_DB_SRCS) $(CHECK_SRCS) $(SERVER_SRCS) server/main.c)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(REL_CFLAGS) -pthread -o $@ $^ $(call pkg_libs,$(SERVER_PKGS)) -lm

bin/tocsin: $(call objs,$(REL),$(COMMON_SRCS) $(CLI_SRCS))
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(call pkg_libs,$(CLI_PKGS)) -lm

$(REL)/%.o: %.c
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(REL_CFLAGS) -c -o $@ $<

# --- sanitizer build for the tests: build/asan/ -------------------------
ASAN := build/asan
# TOCSIN_TEST_HOOKS: points where a test can hold a daemon (never in bin/).
ASAN_CFLAGS := $(BASE_CFLAGS) -O1 -g $(SANITIZE) -DTOCSIN_TEST_HOOKS

$(ASAN)/bin/tocsin-agent: $(call objs,$(ASAN),$(COMMON_SRCS) $(COMMON_DB_SRCS) $(CHECK_SRCS) $(AGENT_SRCS) agent/main.c)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(ASAN_CFLAGS) -o $@ $^ $(call pkg_libs,$(AGENT_PKGS)) -lm

$(ASAN)/bin/tocsin-agent-deliver: $(call objs,$(ASAN),$(DELIVER_SRCS) agent/deliver_main.c)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(ASAN_CFLAGS) -o $@ $^ $(call pkg_libs,$(DELIVER_PKGS))

$(ASAN)/bin/tocsin-server: $(call objs,$(ASAN),$(COMMON_SRCS) $(COMMON_DB_SRCS) $(CHECK_SRCS) $(SERVER_SRCS) server/main.c)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(ASAN_CFLAGS) -pthread -o $@ $^ $(call pkg_libs,$(SERVER_PKGS)) -lm

$(ASAN)/bin/tocsin: $(call objs,$(ASAN),$(COMMON_SRCS) $(CLI_SRCS))
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(ASAN_CFLAGS) -o $@ $^ $(call pkg_libs,$(CLI_PKGS)) -lm

# Unit tests link everything but the mains; the linker keeps what they use.
TEST_LIB_SRCS := $(COMMON_SRCS) $(COMMON_DB_SRCS) $(CHECK_SRCS) $(AGENT_SRCS) $(DELIVER_ONLY_SRCS) $(SERVER_SRCS)
TEST_LIBS := $(call pkg_libs,$(ALL_PKGS)) -lm -pthread

$(ASAN)/tests/%: $(ASAN)/tests/unit/%.o $(call objs,$(ASAN),$(TEST_LIB_SRCS))
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(ASAN_CFLAGS) -o $@ $^ $(TEST_LIBS)

$(ASAN)/%.o: %.c
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(ASAN_CFLAGS) -c -o $@ $<

# test_pkglog makes gzdopen() fail, which only memory exhaustion can.
$(ASAN)/tests/test_pkglog: TEST_LIBS += -Wl,--wrap=gzdopen

ASAN_BINS := $(ASAN)/bin/tocsin-agent $(ASAN)/bin/tocsin-agent-deliver $(ASAN)/bin/tocsin-server $(ASAN)/bin/tocsin
UNIT_BINS := $(addprefix $(ASAN)/tests/,$(UNIT_TESTS))

# --- fuzzing: tests/fuzz/ ----------------------------------------------------
# `make fuzz` builds the libFuzzer targets with clang into build/fuzz/; `make
# test` replays their seed corpora (tests/fuzz/corpus/<target>/) under ASan
# as test_fuzz_<target>, which is what CI runs: a regression test, not a fuzz.
FUZZ_TARGETS := fuzz_trapmap fuzz_trap_packet
FUZZ := build/fuzz
FUZZ_CC ?= clang
FUZZ_SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer
# clang warns of more than gcc (vsnprintf() with a va_list, string
# concatenation in arrays): the gcc builds keep -Werror, fuzzing is not
# stopped by a warning of clang's.
FUZZ_CFLAGS := $(filter-out -Werror,$(BASE_CFLAGS)) -Wno-format-nonliteral -O1 -g $(FUZZ_SANITIZE) -fsanitize=fuzzer-no-link
FUZZ_REPLAYS := $(addprefix $(ASAN)/tests/test_,$(FUZZ_TARGETS))
UNIT_BINS += $(FUZZ_REPLAYS)

.PHONY: fuzz
fuzz: $(addprefix $(FUZZ)/,$(FUZZ_TARGETS))

$(addprefix $(FUZZ)/,$(FUZZ_TARGETS)): $(FUZZ)/%: $(FUZZ)/tests/fuzz/%.o $(call objs,$(FUZZ),$(TEST_LIB_SRCS))
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_SANITIZE) -fsanitize=fuzzer -o $@ $^ $(TEST_LIBS)

$(FUZZ)/%.o: %.c
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_REPLAYS): $(ASAN)/tests/test_%: $(ASAN)/tests/fuzz/%.o $(ASAN)/tests/fuzz/replay.o $(call objs,$(ASAN),$(TEST_LIB_SRCS))
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(ASAN_CFLAGS) -o $@ $^ $(TEST_LIBS)

.PRECIOUS: $(ASAN)/tests/unit/%.o

# --- the web console: console/ compiled into the collector ---------------
CONSOLE_FILES := $(sort $(wildcard console/*.html console/*.css console/*.js))

build/gen/console_assets.c: console/embed.sh $(CONSOLE_FILES)
	@mkdir -p $(@D)
	$(call say,GEN,$@)
	$(Q)console/embed.sh $@ $(CONSOLE_FILES)

# The browser test's driver, playwright-core, pinned in tests/console/ and
# installed into build/ (never the source tree); it drives /usr/bin/chromium.
PLAYWRIGHT := build/console-tests/node_modules/playwright-core/package.json

$(PLAYWRIGHT): tests/console/package.json tests/console/package-lock.json
	@mkdir -p build/console-tests
	$(call say,NPM,playwright-core)
	$(Q)cp tests/console/package.json tests/console/package-lock.json build/console-tests/
	$(Q)cd build/console-tests && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	$(Q)touch $@

# --- tests -----------------------------------------------------------------
.PHONY: test unit integration deps-check
test: deps-check
	@$(MAKE) --no-print-directory all $(ASAN_BINS) $(UNIT_BINS) $(TEST_SHIMS)
	@tests/run-tests.sh $(ASAN) $(PYTHON)

unit: deps-check
	@$(MAKE) --no-print-directory $(UNIT_BINS)
	@tests/run-tests.sh --unit-only $(ASAN) $(PYTHON)

integration: deps-check
	@$(MAKE) --no-print-directory all $(ASAN_BINS) $(TEST_SHIMS)
	@tests/run-tests.sh --integration-only $(ASAN) $(PYTHON)

# LD_PRELOAD shims for the integration tests (plain, no sanitizer).
# powercut.so: a power cut that keeps only what was synced (test_durability).
TEST_SHIMS := build/powercut.so
# Not a shim, but built for the integration tests the same way.
TEST_SHIMS += $(PLAYWRIGHT)

build/powercut.so: tests/powercut/powercut.c
	@mkdir -p $(@D)
	$(call say,CC,$@)
	$(Q)$(CC) $(CSTD) $(WARNINGS) $(WERROR) -O2 -fPIC -shared -o $@ $< -ldl -pthread

# --- dependencies ----------------------------------------------------------
.PHONY: deps
deps:
	@packaging/install-deps.sh

# Installs what is missing, once, before any target that compiles.
deps-check:
	@packaging/install-deps.sh --if-missing

# --- demo ------------------------------------------------------------------
.PHONY: demo
demo: deps-check
	@$(MAKE) --no-print-directory all
	@tests/demo.sh

# --- benchmarks ------------------------------------------------------------
BENCHES := \
	bench_sla \
	calendar_span \
	bench_outbox \
	dedup_bench \
	ingest_load \
	store_apply \
	auth_lookup \
	login_limit \
	pkglog_read \
	event_ids \
	ticket_retention

BENCH_BINS := $(addprefix $(REL)/bench/,$(BENCHES))

$(REL)/bench/%: $(REL)/bench/%.o $(call objs,$(REL),$(COMMON_SRCS) $(COMMON_DB_SRCS) $(CHECK_SRCS) $(SERVER_SRCS))
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(call pkg_libs,$(SERVER_PKGS)) -lm -pthread

.PRECIOUS: $(REL)/bench/%.o

# The agent's outbox: it links the agent's sources, not the server's.
BENCH_BINS += $(REL)/bench/outbox_bench

$(REL)/bench/outbox_bench: $(call objs,$(REL),bench/outbox_bench.c $(COMMON_SRCS) $(COMMON_DB_SRCS) $(CHECK_SRCS) $(AGENT_SRCS))
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(call pkg_libs,$(AGENT_PKGS)) -lm

.PHONY: bench
# checks_round links the agent's sources instead (its own rule below).
BENCH_BINS += $(REL)/bench/checks_round

# The trap benchmark's sender links net-snmp only, none of our sources.
BENCH_BINS += $(REL)/bench/trap_sender

$(REL)/bench/trap_sender: $(REL)/bench/trap_sender.o
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(call pkg_libs,netsnmp)

bench: all $(BENCH_BINS)
	@bench/run.sh

# One round of every check, linked like the agent (without its main).
$(REL)/bench/checks_round: $(call objs,$(REL),$(COMMON_SRCS) $(COMMON_DB_SRCS) $(CHECK_SRCS) $(AGENT_SRCS) bench/checks_round.c)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(call pkg_libs,$(AGENT_PKGS)) -lm

# --- packages ----------------------------------------------------------------
.PHONY: deb
deb: all
	@packaging/build-debs.sh

# --- housekeeping ----------------------------------------------------------
.PHONY: clean format
clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)

# --- benchmark programs (release build) -------------------------------------
BENCH_PROGS := build/rel/bench/check_cost

build/rel/bench/check_cost: $(REL)/bench/check_cost.o $(call objs,$(REL),$(COMMON_SRCS) $(COMMON_DB_SRCS) $(CHECK_SRCS) $(AGENT_SRCS))
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(call pkg_libs,$(AGENT_PKGS)) -lm

bench: $(BENCH_PROGS)
