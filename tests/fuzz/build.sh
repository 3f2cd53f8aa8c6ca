#!/bin/sh
# build.sh [BUILD_DIR] - build the libFuzzer targets, independently of the
# autotools build. BUILD_DIR defaults to tests/fuzz/out (git-ignored).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:-$here/out}
mkdir -p "$out"
out=$(cd "$out" && pwd)

CC=${CC:-clang}
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
# objects of the code under test: same sanitizers, coverage without the fuzzer main
OBJFLAGS="-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
WARN="-Wall -Wextra -Wno-unused-parameter"

# config.h normally comes from configure; the sources only need the
# feature macros (strndup, ssize_t, ...).
mkdir -p "$out/include"
cat > "$out/include/config.h.tmp" <<'H'
/* config.h for the fuzz build (written by tests/fuzz/build.sh) */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE 1
#endif
#define PACKAGE "mailroster"
#define PACKAGE_NAME "mailroster"
#define PACKAGE_VERSION "fuzz"
#define VERSION "fuzz"
H
if ! cmp -s "$out/include/config.h.tmp" "$out/include/config.h" 2>/dev/null; then
    mv "$out/include/config.h.tmp" "$out/include/config.h"
else
    rm -f "$out/include/config.h.tmp"
fi

INC="-I$out/include -I$top/lib -I$top/postfix-policyd -I$top/cli -I$here"
SRCS="$top/lib/addr.c $top/lib/buf.c $top/lib/cfg.c $top/lib/codec.c $top/lib/log.c $top/lib/mem.c
      $top/lib/admproto.c $top/lib/pwhash.c
      $top/postfix-policyd/htab.c $top/postfix-policyd/dir.c $top/postfix-policyd/lookup.c
      $top/postfix-policyd/snap.c $top/postfix-policyd/tcpt.c $top/postfix-policyd/smap.c
      $top/postfix-policyd/conf.c $top/postfix-policyd/auth.c
      $top/postfix-policyd/polproto.c $top/postfix-policyd/policy.c $top/postfix-policyd/srv.c
      $top/postfix-policyd/quota.c
      $top/dovecot-plugin/roster-proto.c
      $top/cli/verify_parse.c"
LIBS="-lidn2 -lunistring -lcrypt -lcrypto -levent -pthread"

targets="tcpt smap snap cfg addr codec admproto auth polproto policy roster_proto srv verify"

# fuzz_admin also has the admin socket's commands (admin.c) and, for the
# job type it prepares, the admin database thread's file (adm_db.c, with
# libpq: nothing connects). The thread and the connection are the
# harness's: --wrap sends admin.c's calls of them to __wrap_* there.
ADMIN_SRCS="$top/postfix-policyd/admin.c $top/postfix-policyd/adm_db.c $top/postfix-policyd/thr.c $top/postfix-policyd/pqlog.c
            $top/lib/peer.c"
ADMIN_WRAP="-Wl,--wrap=adm_db_submit,--wrap=adm_db_stop,--wrap=srv_conn_suspend,--wrap=srv_conn_reply,--wrap=srv_conn_reply_part"
ADMIN_WRAP="$ADMIN_WRAP,--wrap=srv_conn_data,--wrap=srv_conn_set_data,--wrap=srv_conn_peer"
PQ_INC=$(pkg-config --cflags libpq)
PQ_LIBS=$(pkg-config --libs libpq)

# the code under test, compiled once with the same instrumentation
mkdir -p "$out/obj"
objs=""
for src in $SRCS "$here/fixture.c" "$here/stream.c"; do
    o="$out/obj/$(basename "$(dirname "$src")")_$(basename "$src" .c).o"
    # shellcheck disable=SC2086
    $CC -std=gnu11 $OBJFLAGS $WARN $INC -c -o "$o" "$src"
    objs="$objs $o"
done
admin_objs=""
for src in $ADMIN_SRCS; do
    o="$out/obj/$(basename "$(dirname "$src")")_$(basename "$src" .c).o"
    # shellcheck disable=SC2086
    $CC -std=gnu11 $OBJFLAGS $WARN $INC $PQ_INC -c -o "$o" "$src"
    admin_objs="$admin_objs $o"
done

for t in $targets; do
    echo "build fuzz_$t"
    # shellcheck disable=SC2086
    $CC -std=gnu11 $FLAGS $WARN $INC -o "$out/fuzz_$t" "$here/fuzz_$t.c" $objs $LIBS
done
echo "build fuzz_admin"
# shellcheck disable=SC2086
$CC -std=gnu11 $FLAGS $WARN $INC $PQ_INC $ADMIN_WRAP -o "$out/fuzz_admin" "$here/fuzz_admin.c" $admin_objs $objs \
    $LIBS $PQ_LIBS

# the generator of the snapshot seed (coverage hooks come from the sanitizer runtime)
# shellcheck disable=SC2086
$CC -std=gnu11 -g -O1 -fsanitize=address,undefined $WARN $INC -o "$out/mkseed_snap" \
    "$here/mkseed_snap.c" $objs $LIBS
