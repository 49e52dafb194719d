# mtls-edge build. Quiet unless V=1.
.DELETE_ON_ERROR:
.SUFFIXES:

BUILD   ?= build
SAN     ?=
PKGS    := openssl liburing sqlite3 inih jansson libbpf libcurl libnghttp2
CC      ?= cc
CFLAGS  ?= -O2 -g
# A warning flag only when $(CC) knows it (gcc has -Wformat-truncation, clang does not).
cc-option = $(shell $(CC) -Werror $(1) -xc -c -o /dev/null /dev/null 2>/dev/null && echo $(1))
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wno-unused-parameter \
           $(call cc-option,-Wno-format-truncation) \
           -D_GNU_SOURCE -Iuserspace/lib -I$(BUILD) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
ifneq ($(SAN),)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

# userspace/lib: libedge.a, what mtls-edged, mtls-edgectl, the unit tests and the fuzzers link.
# userspace/edged: the daemon only; libedged.a (all but main.c), so that unit tests can link the
# connection state machine. lib never includes edged's headers (they are not on its path) and
# never calls into it (tools/layering.sh checks the objects with nm).
LIB_SRCS    := $(wildcard userspace/lib/*.c)
LIB_OBJS    := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
EDGED_SRCS  := $(filter-out userspace/edged/main.c,$(wildcard userspace/edged/*.c))
EDGED_OBJS  := $(EDGED_SRCS:%.c=$(BUILD)/obj/%.o)
CTL_SRCS    := $(wildcard tools/mtls-edgectl/*.c)
CTL_OBJS    := $(CTL_SRCS:%.c=$(BUILD)/obj/%.o)
UP_SRCS     := $(wildcard tests/tools/upstream/*.c)
UP_OBJS     := $(UP_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
UNIT_BINS   := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
BPFT_SRCS   := $(wildcard tests/bpf/test_*.c)
BPFT_BINS   := $(BPFT_SRCS:tests/bpf/%.c=$(BUILD)/tests/%)
HDRS        := $(wildcard userspace/lib/*.h userspace/edged/*.h tools/mtls-edgectl/*.h \
                 tests/tools/upstream/*.h tests/unit/*.h bpf/*.h tests/bpf/*.h)

# The daemon's objects, and the unit tests of its modules, see edged's headers too.
$(BUILD)/obj/userspace/edged/%.o $(BUILD)/obj/tests/unit/%.o: CFLAGS += -Iuserspace/edged

# eBPF: the tc program is built from UAPI headers only (no vmlinux.h), with the
# multiarch include dir for <asm/types.h>; bpftool turns the object into a skeleton.
CLANG      ?= clang
BPFTOOL    ?= bpftool
BPF_CFLAGS := -target bpf -O2 -g -Wall -Wextra -Werror -Ibpf \
              -I/usr/include/$(shell $(CLANG) -print-multiarch 2>/dev/null)
FUZZ_SAN    := address,undefined -fno-sanitize-recover=undefined
FUZZ_BASE   := -std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE
FUZZ_CFLAGS := $(FUZZ_BASE) -fsanitize=fuzzer,$(FUZZ_SAN)

BINS := $(BUILD)/mtls-edged $(BUILD)/mtls-edgectl $(BUILD)/edge-upstream $(BUILD)/edge-client \
        $(BUILD)/edge-flood $(BUILD)/etcd-probe

.PHONY: all deps deps-test deps-bench unit asan clang test check run stop run-fleet stop-fleet deps-fleet clean fmt lint fuzz fuzz-build bench bench-smoke

all: $(BINS) $(UNIT_BINS) $(BPFT_BINS)

deps:
	$(Q)tools/deps.sh build

deps-fleet:
	$(Q)tools/deps.sh fleet

deps-test:
	$(Q)tools/deps.sh test

deps-bench:
	$(Q)tools/deps.sh bench

$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libedge.a: $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/libedged.a: $(EDGED_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/mtls-edged: $(BUILD)/obj/userspace/edged/main.o $(BUILD)/libedged.a $(BUILD)/libedge.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/mtls-edgectl: $(CTL_OBJS) $(BUILD)/libedge.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/edge-upstream: $(UP_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lpthread

$(BUILD)/edge-client: $(BUILD)/obj/tests/tools/edge_client.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/edge-flood: $(BUILD)/obj/tests/tools/edge_flood.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/etcd-probe: $(BUILD)/obj/tests/tools/etcd_probe.o $(BUILD)/libedge.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libedged.a $(BUILD)/libedge.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/edge.bpf.o: bpf/edge.bpf.c $(wildcard bpf/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  BPF     $@")
	$(Q)$(CLANG) $(BPF_CFLAGS) -c -o $@ $<

$(BUILD)/edge.skel.h: $(BUILD)/edge.bpf.o
	@$(if $(Q),echo "  GEN     $@")
	$(Q)$(BPFTOOL) gen skeleton $< name edge_bpf > $@

# The objects that include the generated skeleton.
$(BUILD)/obj/userspace/lib/flowtag.o $(BUILD)/obj/tests/bpf/test_edge_bpf.o: $(BUILD)/edge.skel.h

$(BPFT_BINS): $(BUILD)/tests/%: $(BUILD)/obj/tests/bpf/%.o $(BUILD)/libedge.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# libFuzzer targets: every tests/fuzz/fuzz_NAME.c becomes $(BUILD)/fuzz/fuzz_NAME, linked with
# the library compiled again by clang with the fuzz flags (objects in $(BUILD)/fuzz/obj; only
# the members a target uses are pulled in). Each runs from its seeds in tests/fuzz/corpus/NAME/.
# Needs clang and libclang-rt-14-dev.
FUZZ_SRCS     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS     := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_INC      := -Iuserspace/lib -I$(BUILD) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)

$(BUILD)/fuzz/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC-FUZZ $<")
	$(Q)$(CLANG) $(FUZZ_BASE) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) \
		-Wno-unused-parameter $(FUZZ_INC) -c -o $@ $<

$(BUILD)/fuzz/obj/userspace/lib/flowtag.o: $(BUILD)/edge.skel.h

$(BUILD)/fuzz/libedge.a: $(FUZZ_LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_BINS): $(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/fuzz/libedge.a $(HDRS) $(wildcard bpf/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_INC) -o $@ $< $(BUILD)/fuzz/libedge.a $(LDLIBS) -ldl

fuzz-build: $(FUZZ_BINS)

# Every target for FUZZ_TIME seconds (default 20) each.
fuzz: $(FUZZ_BINS)
	$(Q)for f in $(FUZZ_BINS); do tests/fuzz/run.sh $$f || exit 1; done

unit: $(UNIT_BINS) $(BPFT_BINS)

# The tree built by clang, beside gcc's (warning-free, as gcc's is).
clang:
	$(Q)$(MAKE) --no-print-directory BUILD=build/clang CC=clang all

# The same unit tests under AddressSanitizer and UndefinedBehaviorSanitizer.
asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan SAN=1 all

check: all
	$(Q)tests/run.sh unit

# Installs what is missing, builds normal and sanitizer trees, runs every test.
test: deps-test
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory asan
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)tests/run.sh all

# mtls-edge against nginx and HAProxy, same machine, same run (about 35 minutes with the kTLS guest); the report
# goes to bench/results/. bench-smoke: one short run of every cell (about 70 s), report under
# build/bench-smoke/, checks the report's form (make test runs it too, as bench/smoke-test.sh).
bench: deps-bench
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bench/run.sh --wait-quiet 60 --ktls-guest

bench-smoke: deps-bench
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bench/run.sh --smoke

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)config/demo.sh start

stop:
	$(Q)config/demo.sh stop

# A small fleet on loopback (docs/fleet.md): one etcd member, a control store, two edges.
run-fleet: deps-fleet
	$(Q)$(MAKE) --no-print-directory all
	$(Q)config/fleet-demo.sh start

stop-fleet:
	$(Q)config/fleet-demo.sh stop

# Every tracked C file in the style of .clang-format (the kernel's, as this tree writes it).
fmt:
	$(Q)git ls-files -z '*.c' '*.h' | xargs -0 clang-format -i

# clang-format --dry-run, cppcheck and shellcheck over the tree (tools/lint.sh), then the
# layering of the built objects (tools/layering.sh); fails on any finding.
lint: all
	$(Q)tools/lint.sh
	$(Q)tools/layering.sh $(BUILD)

clean:
	$(Q)rm -rf build

# ---- install / uninstall ------------------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=] [SBINDIR= BINDIR= MANDIR= SYSCONFDIR= UNITDIR=
# MODLOADDIR=]. The configuration goes to SYSCONFDIR/mtls-edge/ (default /etc, whatever the
# prefix) and is never overwritten; uninstall removes it only while it is the shipped default.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
MODLOADDIR ?= $(PREFIX)/lib/modules-load.d
CONFDIR    := $(SYSCONFDIR)/mtls-edge
INSTALL    ?= install

.PHONY: install uninstall

install: $(BUILD)/mtls-edged $(BUILD)/mtls-edgectl
	$(Q)$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(MODLOADDIR)
	$(Q)$(INSTALL) -d -m 0755 $(DESTDIR)$(CONFDIR)
	$(Q)$(INSTALL) -m 0755 $(BUILD)/mtls-edged $(DESTDIR)$(SBINDIR)/mtls-edged
	$(Q)$(INSTALL) -m 0755 $(BUILD)/mtls-edgectl $(DESTDIR)$(BINDIR)/mtls-edgectl
	$(Q)$(INSTALL) -m 0644 man/mtls-edged.8 man/mtls-edgectl.8 $(DESTDIR)$(MANDIR)/man8/
	$(Q)sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@CONFDIR@|$(CONFDIR)|g' \
		config/mtls-edged.service.in >$(DESTDIR)$(UNITDIR)/mtls-edged.service
	$(Q)chmod 0644 $(DESTDIR)$(UNITDIR)/mtls-edged.service
	$(Q)$(INSTALL) -m 0644 config/mtls-edge.modules-load.conf $(DESTDIR)$(MODLOADDIR)/mtls-edge.conf
	$(Q)if [ -e $(DESTDIR)$(CONFDIR)/mtls-edged.conf ]; then \
		echo "install: kept the existing $(DESTDIR)$(CONFDIR)/mtls-edged.conf"; \
	else \
		$(INSTALL) -m 0644 config/mtls-edged.conf $(DESTDIR)$(CONFDIR)/mtls-edged.conf; \
	fi

uninstall:
	$(Q)rm -f $(DESTDIR)$(SBINDIR)/mtls-edged $(DESTDIR)$(BINDIR)/mtls-edgectl \
		$(DESTDIR)$(MANDIR)/man8/mtls-edged.8 $(DESTDIR)$(MANDIR)/man8/mtls-edgectl.8 \
		$(DESTDIR)$(UNITDIR)/mtls-edged.service $(DESTDIR)$(MODLOADDIR)/mtls-edge.conf
	$(Q)if cmp -s config/mtls-edged.conf $(DESTDIR)$(CONFDIR)/mtls-edged.conf; then \
		rm -f $(DESTDIR)$(CONFDIR)/mtls-edged.conf; \
		rmdir $(DESTDIR)$(CONFDIR) 2>/dev/null || true; \
	elif [ -e $(DESTDIR)$(CONFDIR)/mtls-edged.conf ]; then \
		echo "uninstall: kept $(DESTDIR)$(CONFDIR)/mtls-edged.conf (edited)"; \
	fi
