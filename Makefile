# qshim - keep unmodified programs under DashScope rate limits (see README.md).
# Local overrides go in config.mak (CC, CFLAGS, PREFIX); do not edit here.
CC ?= cc
CFLAGS ?= -O2 -g
PREFIX ?= /usr/local
-include config.mak

# Required flags live here so that a user's CFLAGS cannot drop them.
QS_CFLAGS = -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC -fvisibility=hidden -Ishim
B = build

SHIM_SRCS = $(wildcard shim/*.c)
SHIM_OBJS = $(SHIM_SRCS:%.c=$(B)/%.o)
# Everything but the interposition layer: what tools and unit tests link.
CORE_OBJS = $(filter-out $(B)/shim/hook.o,$(SHIM_OBJS))
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)
TOOLS = $(B)/qshim $(B)/qshim-mock
HELPERS = $(B)/tests/bench_client

all: $(B)/libqshim.so $(TOOLS)

MOCK_OBJS = $(patsubst %.c,$(B)/%.o,$(wildcard tools/mock_*.c))

$(B)/%.o: %.c $(wildcard shim/*.h) $(wildcard tools/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(QS_CFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/libqs.a: $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

# No -lssl: the real SSL_* functions are found at run time (shim/resolve.c).
$(B)/libqshim.so: $(SHIM_OBJS) shim/libqshim.map
	$(CC) -shared -Wl,-soname,libqshim.so -Wl,--version-script=shim/libqshim.map -Wl,-z,defs \
	      -o $@ $(SHIM_OBJS) $(LDFLAGS) -lconfig -ldl -lpthread

$(B)/qshim: $(B)/tools/qshim.o $(B)/libqs.a
	$(CC) -o $@ $^ $(LDFLAGS) -lconfig -ldl -lpthread

$(B)/qshim-mock: $(B)/tools/qshim-mock.o $(MOCK_OBJS) $(B)/libqs.a
	$(CC) -o $@ $^ $(LDFLAGS) -lssl -lcrypto -lz -lpthread

$(B)/tests/%: $(B)/tests/unit/%.o $(B)/libqs.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) -lcmocka -lconfig -ldl -lpthread

$(B)/tests/bench_client: $(B)/tests/bench/bench_client.o
	$(CC) -o $@ $^ $(LDFLAGS) -lssl -lcrypto -lpthread

unit: $(UNIT_BINS)

test: all $(UNIT_BINS) $(HELPERS)
	@sh tests/run.sh $(B)

demo: all
	@sh tools/demo.sh $(B)

bench: all $(HELPERS)
	@sh tests/bench/run.sh $(B)

install: all
	install -d $(DESTDIR)$(PREFIX)/lib/qshim $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/qshim/limits
	install -m 0644 $(B)/libqshim.so $(DESTDIR)$(PREFIX)/lib/qshim/libqshim.so
	install -m 0755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 config/qshim.conf $(DESTDIR)$(PREFIX)/share/qshim/qshim.conf.example

clean:
	rm -rf $(B)

fmt:
	clang-format -i shim/*.c shim/*.h tools/*.c tools/*.h tests/unit/*.c

.PHONY: all unit test demo bench install clean fmt
.SECONDARY:
