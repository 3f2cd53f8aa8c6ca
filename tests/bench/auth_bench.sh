#!/usr/bin/env bash
# tests/bench/auth_bench.sh - Dovecot's auth process with the `roster`
# passdb/userdb (dovecot-plugin/, asking mailrosterd) against Dovecot's own
# `sql` driver (dovecot-pgsql on the same PostgreSQL tables) and
# `passwd-file` (the auth process's own ceiling: an in-memory table), on
# the same accounts, in the same run, the configurations interleaved round
# by round. The load client (auth_load.c) speaks Dovecot's own protocols
# on the auth process's sockets: auth-client `AUTH PLAIN` (what imap-login,
# Postfix's smtpd and doveadm auth test send) on auth-client, and
# auth-master `USER` (what the post-login and LMTP processes ask) on
# auth-master. Auth cache off (Dovecot's default).
#
# Two parts:
#  1. Lookups. The accounts' passwords are {PLAIN}, so the figures are the
#     drivers' and not the hash's. mailroster's schema refuses plaintext
#     schemes (password_hash_problem, migration 0004), and the cheapest
#     scheme it accepts, SHA256-CRYPT with rounds=1000, still costs
#     ~0.3 ms: more than a whole lookup. So this private database drops
#     the check (its CHECK constraint and trigger) before the fixture is
#     loaded; nothing else is changed. Every server-side process (Dovecot,
#     mailrosterd, PostgreSQL) runs on SERVER_CPU, the client busy-polls
#     on CLIENT_CPU: one server core, as the other benchmarks. Per
#     configuration: AUTH and USER closed loop (CONNS x INFLIGHT), then
#     paced at AUTH_RATE / USER_RATE (a load every driver sustains: p99
#     "under load"). CPU per request from /proc (schedstat: nanoseconds)
#     of the auth process, of its auth workers, and of the backend
#     (mailrosterd, or every PostgreSQL process).
#  2. Hashing. HASH_ACCOUNTS accounts with one SHA512-CRYPT hash (default
#     rounds, 5000), nothing pinned (both cores), closed loop: logins/s
#     for roster as shipped (conf.d/dovecot/auth-roster.conf.ext: lookups
#     on the auth process's ioloop, hashes checked by auth workers), roster
#     with verify=inline (every hash in the auth process, as any async
#     passdb), roster with blocking=yes in its passdb args (lookups and
#     hashes in auth workers), sql, sql with the auth cache on and
#     auth_cache_verify_password_with_worker (a warm cache: every login a
#     hit), and passwd-file.
#
#   tests/bench/auth_bench.sh                (as root; ~7 min)
#   REPEAT=1 DURATION=2 tests/bench/auth_bench.sh
# Knobs (defaults): N_MAILBOXES=100000 HASH_ACCOUNTS=1000 DURATION=4
# WARMUP=1 REPEAT=2 CONNS=8 INFLIGHT=8 AUTH_RATE=2000 USER_RATE=3000
# HASH_DURATION=5 PARTS="lookup hash" HASH_CFGS="roster ... passwd-file"
# MOD_SRC=<build>/.libs/libauthdb_roster.so
# Timing is measured and printed, never asserted.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TOP/tests/bench/benchlib.sh"
bench_init auth_bench
N_MAILBOXES=${N_MAILBOXES:-100000}
HASH_ACCOUNTS=${HASH_ACCOUNTS:-1000}
DURATION=${DURATION:-4}
WARMUP=${WARMUP:-1}
REPEAT=${REPEAT:-2}
CONNS=${CONNS:-8}
INFLIGHT=${INFLIGHT:-8}
AUTH_RATE=${AUTH_RATE:-2000}
USER_RATE=${USER_RATE:-3000}
HASH_DURATION=${HASH_DURATION:-5}
PARTS=${PARTS:-lookup hash}
# every core, whatever this shell's own affinity is now
ALL_CPUS=0-$(( $(getconf _NPROCESSORS_ONLN) - 1 ))
MOD=${MOD_SRC:-$(dirname "$BENCH_MRD_ORIG")/.libs/libauthdb_roster.so}
[ -f "$MOD" ] || { echo "auth_bench: no roster module at $MOD (build with dovecot-dev, or set MOD_SRC=)" >&2; exit 1; }
cp "$MOD" "$STACK_DIR/libauthdb_roster.so" || exit 1
export STACK_DOVECOT_AUTH_MODULE=$STACK_DIR/libauthdb_roster.so
gcc -O2 -Wall -o "$STACK_DIR/auth_load" "$TOP/tests/bench/auth_load.c" || exit 1

# --- CPU from /proc ---------------------------------------------------------------
# ns_of PID...: CPU nanoseconds (every thread) of the live PIDs
ns_of() {
    local p total=0 t
    for p in "$@"; do
        for t in /proc/"$p"/task/*/schedstat; do
            { read -r t _ <"$t"; } 2>/dev/null && total=$((total + t))
        done
    done
    echo "$total"
}
dv_master() { cat "$STACK_DIR/dovecot/run/master.pid" 2>/dev/null; }
# the auth process and its workers (both run Dovecot's auth binary; a
# worker's title or arguments say -w or worker)
dv_auth() { dv_children | awk '$2 ~ /auth/ && $0 !~ /-w|worker/ { print $1 }'; }
dv_workers() { dv_children | awk '$2 ~ /auth/ && $0 ~ /-w|worker/ { print $1 }'; }
dv_children() {
    local m
    m=$(dv_master) || return
    ps -o pid=,args= --ppid "$m"
}
# pg_ns: every process of the private PostgreSQL (backends come and go:
# their CPU is read while they live; Dovecot's pgsql connections stay)
pg_ns() {
    local pm
    pm=$(head -n 1 "$STACK_DIR/pg/postmaster.pid" 2>/dev/null) || { echo 0; return; }
    # shellcheck disable=SC2046
    ns_of "$pm" $(ps -o pid= --ppid "$pm")
}
us_per() { awk -v n="$1" -v c="$2" 'BEGIN { if (c > 0) printf "%.1f", n / 1000 / c; else print "-" }'; }
pin_tree() { # CPUS PID: PID and its children (new children inherit)
    local p
    taskset -a -pc "$1" "$2" >/dev/null 2>&1
    for p in $(ps -o pid= --ppid "$2"); do taskset -a -pc "$1" "$p" >/dev/null 2>&1; done
}

# --- database and fixture -----------------------------------------------------------
bench_db
read -r VUID VGID < <(stack_vmail_user) || exit 1
MAILBASE=$STACK_DIR/vmail
t0=$(now_us)
HASH6=$(doveadm pw -s SHA512-CRYPT -p 'hash pw') || exit 1
sql <<EOF || exit 1
-- this database only: plaintext passwords for the lookup part (see the top)
ALTER TABLE mailroster.mailboxes DROP CONSTRAINT mailboxes_password_check;
ALTER TABLE mailroster.mailboxes DISABLE TRIGGER mailboxes_15_password;
INSERT INTO mailroster.domains (name) VALUES ('example.com'), ('hash.example');
INSERT INTO mailroster.mailboxes (domain_id, local_part, password)
  SELECT d.id, 'user' || g, '{PLAIN}pw' || g
    FROM mailroster.domains d, generate_series(1, $N_MAILBOXES) g WHERE d.name = 'example.com';
INSERT INTO mailroster.mailboxes (domain_id, local_part, password)
  SELECT d.id, 'h' || g, '$HASH6'
    FROM mailroster.domains d, generate_series(1, $HASH_ACCOUNTS) g WHERE d.name = 'hash.example';
EOF
sql -c "VACUUM ANALYZE" -c "CHECKPOINT"
# logins in a fixed random order (every one exists, right password)
KEYS=$STACK_DIR/keys.plain HKEYS=$STACK_DIR/keys.hash
sql >"$KEYS" <<EOF
SELECT setseed(0.4242);
SELECT 'user' || g || '@example.com' || E'\t' || 'pw' || g
  FROM generate_series(1, $N_MAILBOXES) g ORDER BY random();
EOF
sed -i '/^$/d' "$KEYS"
seq 1 "$HASH_ACCOUNTS" | awk '{ printf "h%d@hash.example\thash pw\n", $1 }' >"$HKEYS"
# the passwd-file: what the userdb answers, as roster and sql do
PWFILE=$STACK_DIR/passwd
sql -F: -c "SELECT m.local_part || '@' || d.name, m.password, $VUID, $VGID, '',
                   '$MAILBASE/' || rtrim(m.maildir, '/'), '', ''
              FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id" >"$PWFILE"
chmod 644 "$PWFILE"
bench_note "fixture in $(secs_between "$t0" "$(now_us)") s: $N_MAILBOXES accounts ({PLAIN}) +" \
    "$HASH_ACCOUNTS with one SHA512-CRYPT hash; passwd-file $(wc -l <"$PWFILE") lines"

# --- mailrosterd -------------------------------------------------------------------
AUTH=$STACK_DIR/mr/auth
CONF=$STACK_DIR/mailroster.conf
mr_write_conf "$CONF" "auth_socket = unix:$AUTH" "auth_socket_mode = 0666" \
    "auth_allow = root, dovecot" "mail_base = $MAILBASE" "mail_uid = $VUID" "mail_gid = $VGID"
bench_mr_start "$CONF"
pin_pg "$SERVER_CPU"

# --- the Dovecot configurations -------------------------------------------------------
install -d -m 0755 "$STACK_DIR/dvconf"
# roster: the shipped file, with this stack's socket
sed -e "s|/run/mailroster/auth|$AUTH|g" "$TOP/conf.d/dovecot/auth-roster.conf.ext" \
    >"$STACK_DIR/dvconf/auth-roster.conf.ext"
awk '/^passdb {/ { p = 1 } /^}/ { p = 0 } p && /^  args = / { $0 = $0 " verify=inline" } { print }' \
    "$STACK_DIR/dvconf/auth-roster.conf.ext" >"$STACK_DIR/dvconf/auth-roster-inline.conf.ext"
awk '/^passdb {/ { p = 1 } /^}/ { p = 0 } p && /^  args = / { $0 = $0 " blocking=yes" } { print }' \
    "$STACK_DIR/dvconf/auth-roster.conf.ext" >"$STACK_DIR/dvconf/auth-roster-blocking.conf.ext"
# sql: the tutorials' dovecot-sql.conf.ext, on the primary key's index
# (domain name, local part), over PostgreSQL's unix socket; Dovecot's
# default of 5 connections
cat >"$STACK_DIR/dvconf/dovecot-sql.conf.ext" <<EOF
driver = pgsql
connect = host=$STACK_DIR/pgsock port=$PGPORT dbname=$MR_DB user=mrd
default_pass_scheme = CRYPT
password_query = SELECT m.local_part || '@' || d.name AS user, m.password \\
  FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id \\
  WHERE m.local_part = '%Ln' AND d.name = '%Ld' AND m.enabled AND d.enabled
user_query = SELECT '$MAILBASE/' || rtrim(m.maildir, '/') AS home, $VUID AS uid, $VGID AS gid \\
  FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id \\
  WHERE m.local_part = '%Ln' AND d.name = '%Ld' AND m.enabled AND d.enabled
EOF
chmod 644 "$STACK_DIR"/dvconf/*
snippet() { # CONFIG: the passdb/userdb part of dovecot.conf
    case $1 in
        roster) echo "!include $STACK_DIR/dvconf/auth-roster.conf.ext" ;;
        roster-inline) echo "!include $STACK_DIR/dvconf/auth-roster-inline.conf.ext" ;;
        roster-blocking) echo "!include $STACK_DIR/dvconf/auth-roster-blocking.conf.ext" ;;
        roster-w[0-9]*) # as shipped, with auth_worker_max_count = N
            printf '!include %s\nauth_worker_max_count = %s\n' \
                "$STACK_DIR/dvconf/auth-roster.conf.ext" "${1#roster-w}" ;;
        sql|sql-cache-worker)
            printf 'passdb {\n  driver = sql\n  args = %s\n}\nuserdb {\n  driver = sql\n  args = %s\n}\n' \
                "$STACK_DIR/dvconf/dovecot-sql.conf.ext" "$STACK_DIR/dvconf/dovecot-sql.conf.ext"
            [ "$1" = sql-cache-worker ] && printf 'auth_cache_size = 10M\nauth_cache_verify_password_with_worker = yes\n' ;;
        passwd-file)   # the auth process's own ceiling: lines "user:{SCHEME}hash:uid:gid::home::"
            printf 'passdb {\n  driver = passwd-file\n  args = scheme=CRYPT username_format=%%u %s\n}\nuserdb {\n  driver = passwd-file\n  args = username_format=%%u %s\n}\n' \
                "$PWFILE" "$PWFILE" ;;
    esac
}
dv_start() { # CONFIG CPUS
    stack_dovecot_start "$(snippet "$1")" || exit 1
    AUTH_PID=$(dv_auth | head -n 1)
    [ -n "$AUTH_PID" ] || { echo "auth_bench: no auth process for $1" >&2; exit 1; }
    pin_tree "$2" "$(dv_master)"
    DV_RUN=$STACK_DIR/dovecot/run
}
dv_stop() { stack_dovecot_stop || exit 1; }
workers_ns() {
    # shellcheck disable=SC2046
    ns_of $(dv_workers)
}
backend_ns() { # CONFIG
    case $1 in
        roster*) ns_of "$MR_PID" ;;
        sql*) pg_ns ;;
        *) echo 0 ;;
    esac
}

# run_load CONFIG WHAT ARGS...: one auth_load run; sets R_LINE and the CPU
# per answer of the auth process (R_AUTH), its workers (R_WORK) and the
# backend (R_BACK), in microseconds
run_load() {
    local cfg=$1 what=$2; shift 2
    local a0 w0 b0 a1 w1 b1 n
    a0=$(ns_of "$AUTH_PID"); w0=$(workers_ns); b0=$(backend_ns "$cfg")
    R_LINE=$("$@") || { echo "auth_bench: auth_load failed ($cfg $what)" >&2; exit 1; }
    a1=$(ns_of "$AUTH_PID"); w1=$(workers_ns); b1=$(backend_ns "$cfg")
    n=$(kv answers_total)
    R_AUTH=$(us_per $((a1 - a0)) "$n")
    # workers started and stopped meanwhile are missed: their CPU is a floor
    R_WORK=$(us_per $((w1 > w0 ? w1 - w0 : 0)) "$n")
    R_BACK=$(us_per $((b1 - b0)) "$n")
    bench_note "$cfg $what: $R_LINE auth_us=$R_AUTH workers_us=$R_WORK backend_us=$R_BACK"
    if [ "$(kv fail)" != 0 ] || [ "$(kv err)" != 0 ]; then
        bench_note "WARNING: $cfg $what: answers other than OK (fail=$(kv fail) err=$(kv err))"
    fi
}
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p; s/^$1=\([^ ]*\).*/\1/p" <<<" $R_LINE" | head -n 1; }

# best[CONFIG.METRIC]: the least disturbed round (highest rate, lowest p99,
# lowest CPU); every round is on stderr
declare -A BEST
keep_max() { local k=$1 v=$2; [ -z "${BEST[$k]:-}" ] || awk -v a="$v" -v b="${BEST[$k]}" 'BEGIN { exit !(a > b) }' && BEST[$k]=$v; }
keep_min() { local k=$1 v=$2; [ "$v" = - ] && return; [ -z "${BEST[$k]:-}" ] || awk -v a="$v" -v b="${BEST[$k]}" 'BEGIN { exit !(a < b) }' && BEST[$k]=$v; }
LOAD=("$STACK_DIR/auth_load" -c "$CONNS" -p "$INFLIGHT")

# sanity: one login and one userdb lookup through each driver, the same answer
for cfg in roster sql passwd-file; do
    dv_start "$cfg" "$ALL_CPUS"
    a=$(timeout 20 doveadm -c "$STACK_DOVECOT_CONF" auth test user7@example.com pw7 2>&1 | grep -c 'auth succeeded')
    u=$(timeout 20 doveadm -c "$STACK_DOVECOT_CONF" user -f home user7@example.com 2>&1)
    h=$(timeout 20 doveadm -c "$STACK_DOVECOT_CONF" auth test h1@hash.example 'hash pw' 2>&1 | grep -c 'auth succeeded')
    bench_note "sanity $cfg: login ok=$a, SHA512-CRYPT login ok=$h, home=$u"
    home="$MAILBASE/$(sql -c "SELECT rtrim(maildir, '/') FROM mailroster.mailboxes WHERE local_part = 'user7'")"
    if [ "$a" != 1 ] || [ "$h" != 1 ] || [ "$u" != "$home" ]; then
        echo "auth_bench: $cfg does not answer as expected" >&2
        exit 1
    fi
    dv_stop
done

# --- part 1: lookups, one server core --------------------------------------------------
if [[ " $PARTS " == *" lookup "* ]]; then
    taskset -pc "$CLIENT_CPU" $$ >/dev/null
    for round in $(seq 1 "$REPEAT"); do
        for cfg in roster sql passwd-file; do
            dv_start "$cfg" "$SERVER_CPU"
            run_load "$cfg" "AUTH closed (round $round)" "${LOAD[@]}" -s -t auth -a "$DV_RUN/auth-client" \
                -k "$KEYS" -d "$DURATION" -w "$WARMUP"
            keep_max "$cfg.auth_rate" "$(kv rate)"; keep_min "$cfg.auth_p99c" "$(kv p99)"
            keep_min "$cfg.auth_cpu" "$R_AUTH"; keep_min "$cfg.auth_back" "$R_BACK"
            run_load "$cfg" "USER closed (round $round)" "${LOAD[@]}" -s -t user -a "$DV_RUN/auth-master" \
                -k "$KEYS" -d "$DURATION" -w "$WARMUP"
            keep_max "$cfg.user_rate" "$(kv rate)"; keep_min "$cfg.user_p99c" "$(kv p99)"
            keep_min "$cfg.user_cpu" "$R_AUTH"; keep_min "$cfg.user_back" "$R_BACK"
            run_load "$cfg" "AUTH paced $AUTH_RATE/s (round $round)" "${LOAD[@]}" -s -t auth \
                -a "$DV_RUN/auth-client" -k "$KEYS" -d "$DURATION" -w "$WARMUP" -r "$AUTH_RATE"
            keep_min "$cfg.auth_p99" "$(kv p99)"; keep_min "$cfg.auth_p50" "$(kv p50)"
            run_load "$cfg" "USER paced $USER_RATE/s (round $round)" "${LOAD[@]}" -s -t user \
                -a "$DV_RUN/auth-master" -k "$KEYS" -d "$DURATION" -w "$WARMUP" -r "$USER_RATE"
            keep_min "$cfg.user_p99" "$(kv p99)"; keep_min "$cfg.user_p50" "$(kv p50)"
            dv_stop
        done
    done
    taskset -pc "$ALL_CPUS" $$ >/dev/null
fi

# --- part 2: SHA512-CRYPT, both cores ---------------------------------------------------
HASH_CFGS=${HASH_CFGS:-roster roster-inline roster-blocking sql sql-cache-worker passwd-file}
if [[ " $PARTS " == *" hash "* ]]; then
    taskset -a -pc "$ALL_CPUS" "$MR_PID" >/dev/null
    pin_pg "$ALL_CPUS"
    for round in $(seq 1 "$REPEAT"); do
        for cfg in $HASH_CFGS; do
            dv_start "$cfg" "$ALL_CPUS"
            # every account once: Dovecot starts its auth workers on demand
            # (seconds, on a busy machine), and sql-cache-worker's cache
            # holds every account afterwards
            "${LOAD[@]}" -t auth -a "$DV_RUN/auth-client" -k "$HKEYS" -n "$HASH_ACCOUNTS" >/dev/null || exit 1
            run_load "$cfg" "SHA512-CRYPT AUTH (round $round)" "${LOAD[@]}" -t auth -a "$DV_RUN/auth-client" \
                -k "$HKEYS" -d "$HASH_DURATION" -w "$WARMUP"
            keep_max "$cfg.hash_rate" "$(kv rate)"; keep_min "$cfg.hash_p99" "$(kv p99)"
            keep_min "$cfg.hash_cpu" "$R_AUTH"; keep_min "$cfg.hash_work" "$R_WORK"
            dv_stop
        done
    done
fi

# --- results -------------------------------------------------------------------------
b() { echo "${BEST[$1]:--}"; }
if [[ " $PARTS " == *" lookup "* ]]; then
    echo "Lookups ({PLAIN} passwords), one server core; best of $REPEAT rounds; $CONNS x $INFLIGHT in flight;" \
        "p99 paced at $AUTH_RATE AUTH/s and $USER_RATE USER/s; latency in us; CPU in us per request"
    BENCH_ROWS=()
    for cfg in roster sql passwd-file; do
        bench_row "$cfg" "$(b "$cfg.auth_rate")" "$(ratio "$(b "$cfg.auth_rate")" "$(b sql.auth_rate)")" \
            "$(b "$cfg.user_rate")" "$(ratio "$(b "$cfg.user_rate")" "$(b sql.user_rate)")" \
            "$(b "$cfg.auth_cpu") / $(b "$cfg.user_cpu")" "$(b "$cfg.auth_back") / $(b "$cfg.user_back")" \
            "$(b "$cfg.auth_p99") ($(ratio "$(b "$cfg.auth_p99")" "$(b sql.auth_p99)"))" \
            "$(b "$cfg.user_p99") ($(ratio "$(b "$cfg.user_p99")" "$(b sql.user_p99)"))" \
            "$(b "$cfg.auth_p99c") / $(b "$cfg.user_p99c")"
    done
    bench_table driver "AUTH/s" "x sql" "USER/s" "x sql" "auth process CPU AUTH / USER" \
        "backend CPU AUTH / USER" "AUTH p99 paced (x sql)" "USER p99 paced (x sql)" "p99 closed AUTH / USER"
    echo
fi
if [[ " $PARTS " == *" hash "* ]]; then
    echo "SHA512-CRYPT (rounds=5000) logins, both cores, nothing pinned; best of $REPEAT rounds; $CONNS x $INFLIGHT in flight"
    BENCH_ROWS=()
    for cfg in $HASH_CFGS; do
        bench_row "$cfg" "$(b "$cfg.hash_rate")" "$(ratio "$(b "$cfg.hash_rate")" "$(b sql.hash_rate)")" \
            "$(b "$cfg.hash_cpu")" "$(b "$cfg.hash_work")" "$(b "$cfg.hash_p99")"
    done
    bench_table configuration "logins/s" "x sql" "auth process CPU us/login" "auth workers CPU us/login" "p99 us"
    echo
fi
bench_footer
