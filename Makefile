# mtls-edge build. Quiet unless V=1.
.DELETE_ON_ERROR:
.SUFFIXES:

BUILD   ?= build
SAN     ?=
PKGS    := openssl liburing sqlite3 inih jansson libbpf
CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wno-unused-parameter -Wno-format-truncation \
           -D_GNU_SOURCE -Iuserspace -I$(BUILD) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
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

LIB_SRCS  := $(filter-out userspace/main.c,$(wildcard userspace/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CTL_SRCS  := $(wildcard tools/mtls-edgectl/*.c)
CTL_OBJS  := $(CTL_SRCS:%.c=$(BUILD)/obj/%.o)
UP_SRCS   := $(wildcard tools/upstream/*.c)
UP_OBJS   := $(UP_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
BPFT_SRCS := $(wildcard tests/bpf/test_*.c)
BPFT_BINS := $(BPFT_SRCS:tests/bpf/%.c=$(BUILD)/tests/%)
HDRS      := $(wildcard userspace/*.h tools/mtls-edgectl/*.h tests/unit/*.h bpf/*.h tests/bpf/*.h)

# eBPF: the tc program is built from UAPI headers only (no vmlinux.h), with the
# multiarch include dir for <asm/types.h>; bpftool turns the object into a skeleton.
CLANG      ?= clang
BPFTOOL    ?= bpftool
BPF_CFLAGS := -target bpf -O2 -g -Wall -Wextra -Werror -Ibpf \
              -I/usr/include/$(shell $(CLANG) -print-multiarch 2>/dev/null)
FUZZ_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

BINS := $(BUILD)/mtls-edged $(BUILD)/mtls-edgectl $(BUILD)/edge-upstream $(BUILD)/edge-client

.PHONY: all deps deps-test deps-bench unit asan test check run stop clean fmt lint fuzz bench bench-smoke

all: $(BINS) $(UNIT_BINS) $(BPFT_BINS)

deps:
	$(Q)tools/deps.sh build

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

$(BUILD)/mtls-edged: $(BUILD)/obj/userspace/main.o $(BUILD)/libedge.a
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

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libedge.a
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
$(BUILD)/obj/userspace/flowtag.o $(BUILD)/obj/tests/bpf/test_edge_bpf.o: $(BUILD)/edge.skel.h

$(BPFT_BINS): $(BUILD)/tests/%: $(BUILD)/obj/tests/bpf/%.o $(BUILD)/libedge.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# libFuzzer over the SNI parser, plain C (clang and libclang-rt-14-dev).
$(BUILD)/fuzz/fuzz_sni: tests/fuzz/fuzz_sni.c $(wildcard bpf/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -o $@ $<

# libFuzzer over the headers-mode request rewriter (userspace/forward.c, no OpenSSL).
$(BUILD)/fuzz/fuzz_http: tests/fuzz/fuzz_http.c userspace/forward.c userspace/forward.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -Iuserspace -o $@ tests/fuzz/fuzz_http.c userspace/forward.c

fuzz: $(BUILD)/fuzz/fuzz_sni
	$(Q)tests/fuzz/run.sh $(BUILD)/fuzz/fuzz_sni

unit: $(UNIT_BINS) $(BPFT_BINS)

# The same unit tests under AddressSanitizer and UndefinedBehaviorSanitizer.
asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan SAN=1 all

check: all
	$(Q)tests/run.sh unit

# Installs what is missing, builds normal and sanitizer trees, runs every test.
test: deps-test
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory asan
	$(Q)$(MAKE) --no-print-directory $(BUILD)/fuzz/fuzz_sni
	$(Q)tests/run.sh all

# mtls-edge against nginx and HAProxy, same machine, same run (about 20 minutes); the report
# goes to bench/results/. bench-smoke: one short run of every cell, checks the report's form.
bench: deps-bench
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bench/run.sh --wait-quiet 60

bench-smoke: deps-bench
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bench/run.sh --smoke

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)config/demo.sh start

stop:
	$(Q)config/demo.sh stop

fmt:
	$(Q)clang-format -i userspace/*.[ch] tools/*/*.[ch] tests/unit/*.[ch] bpf/*.[ch] tests/bpf/*.[ch] tests/fuzz/*.c

lint:
	$(Q)cppcheck --quiet --enable=warning,portability --error-exitcode=1 -Iuserspace -I$(BUILD) userspace tools

clean:
	$(Q)rm -rf build
