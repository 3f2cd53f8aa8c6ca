# shellcheck shell=bash
# tests/bench/benchlib.sh - what the mailroster benchmarks share: a private
# stack (PostgreSQL + schema + mailrosterd, through scripts/lib/stack.sh and
# tests/integration/lib.sh, as the integration tests do), fixtures, CPU and
# memory readings from /proc, and the result table.
#
# Use: TOP=...; . "$TOP/tests/bench/benchlib.sh"; bench_init NAME
# Timing is only measured and printed, never asserted.

# bench_init NAME: STACK_DIR (mktemp), the stack libraries, the cleanup trap,
# a private copy of the mailrosterd binary (so that a rebuild of the tree
# during a run cannot swap it under us), the C compiler settings.
bench_init() {
    local name=$1
    TOP=${TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
    if [ -z "${MRD:-}" ]; then
        if [ -x "$TOP/build/mailrosterd" ]; then MRD=$TOP/build/mailrosterd
        else MRD=$TOP/mailrosterd; fi
    fi
    [ -x "$MRD" ] || { echo "$name: no mailrosterd binary at $MRD (build it, or set MRD=)" >&2; exit 1; }
    STACK_DIR=$(mktemp -d "/tmp/mr-bench-$name.XXXXXX")
    export STACK_DIR
    STACK_PIDS=()
    # shellcheck source=/dev/null
    . "$TOP/scripts/lib/stack.sh"
    # shellcheck source=/dev/null
    . "$TOP/tests/integration/lib.sh"
    # shellcheck source=/dev/null
    . "$TOP/tests/integration/pgsql-maps.sh"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    cp "$MRD" "$STACK_DIR/mailrosterd" || exit 1
    BENCH_MRD_ORIG=$MRD
    MRD=$STACK_DIR/mailrosterd
    LOG=$STACK_DIR/mailrosterd.log
    CLK_TCK=$(getconf CLK_TCK)
    SERVER_CPU=${SERVER_CPU:-1}
    CLIENT_CPU=${CLIENT_CPU:-0}
    BENCH_LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
    bench_note "$name: stack in $STACK_DIR; mailrosterd $BENCH_MRD_ORIG" \
        "($(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo '?')," \
        "binary $(stat -c %y "$BENCH_MRD_ORIG" | cut -d. -f1))"
    bench_note "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)," \
        "load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
}

bench_cleanup() {
    stack_cleanup
}

# progress notes go to stderr, so stdout carries only the results
bench_note() { echo "# $*" >&2; }

# microseconds since the epoch
now_us() { echo "${EPOCHREALTIME/./}"; }

# --- CPU time from /proc ----------------------------------------------------

# proc_ticks PID: utime + stime (all threads) in clock ticks
proc_ticks() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    s=${s##*) }
    # fields after "(comm) ": state=1 ... utime=12 stime=13
    awk '{print $12 + $13}' <<<"$s"
}

# sched_ns PID: "CPU_NS WAIT_NS" summed over the threads, from schedstat:
# nanoseconds on a CPU, and runnable but waiting for one (a server that
# shares its core with other work waits here; the ticks above do not show it)
sched_ns() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ c += $1; w += $2 } END { printf "%.0f %.0f\n", c, w }'
}

# pg_ticks: CPU of the whole private PostgreSQL: every live process of the
# cluster (utime + stime) plus the postmaster's cutime + cstime (the CPU of
# backends that have already exited, e.g. postmap's, is added there when
# the postmaster reaps them).
pg_ticks() {
    local pm
    pm=$(head -n 1 "$STACK_DIR/pg/postmaster.pid" 2>/dev/null) || { echo 0; return; }
    local total=0 f s ppid pid
    for f in /proc/[0-9]*/stat; do
        { s=$(<"$f"); } 2>/dev/null || continue
        pid=${f#/proc/}; pid=${pid%/stat}
        s=${s##*) }
        read -r _ ppid _ _ _ _ _ _ _ _ _ ut st cut cst _ <<<"$s"
        if [ "$pid" = "$pm" ]; then
            total=$((total + ut + st + cut + cst))
        elif [ "$ppid" = "$pm" ]; then
            total=$((total + ut + st))
        fi
    done
    echo "$total"
}

# ticks_to_us_per TICKS COUNT: microseconds of CPU per unit
ticks_to_us_per() {
    awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "-" }'
}

# pin_pg CPU: the postmaster and its processes to CPU (new backends inherit)
pin_pg() {
    local pm pid
    pm=$(head -n 1 "$STACK_DIR/pg/postmaster.pid") || return 1
    taskset -a -pc "$1" "$pm" >/dev/null
    for pid in $(ps -o pid= --ppid "$pm"); do
        taskset -a -pc "$1" "$pid" >/dev/null 2>&1 || true
    done
}

# rss_kb PID FIELD: VmRSS or VmHWM in kB
rss_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null; }
kb_to_mb() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

# --- the stack --------------------------------------------------------------

# bench_db: PostgreSQL + schema + roles (mrd, mradm), as the integration tests
bench_db() {
    stack_pg_start || exit 1
    mr_setup_db || exit 1
}

# bench_mr_start CONF: mailrosterd pinned to SERVER_CPU (taskset keeps the
# PID: it execs the daemon); waits for it as the integration tests do.
bench_mr_start() {
    MRD_WRAP="taskset -c $SERVER_CPU" mr_start "$1" "$LOG" || exit 1
}

# bench_mini_start NAME ARGS...: STACK_DIR/mini_server ARGS on the servers'
# CPU, its output in STACK_DIR/NAME.out, stopped with the stack; returns
# once it says it listens (5 s at most). Its pid in MINI_STARTED.
bench_mini_start() {
    local name=$1
    shift
    taskset -c "$SERVER_CPU" "$STACK_DIR/mini_server" "$@" >"$STACK_DIR/$name.out" 2>&1 &
    MINI_STARTED=$!
    STACK_PIDS+=("$MINI_STARTED")
    for _ in $(seq 100); do grep -q ready "$STACK_DIR/$name.out" && break; sleep 0.05; done
}

# wait_log_from LINE REGEX TIMEOUT_S: poll (10 ms) until a log line after
# line number LINE matches REGEX; false on timeout or when MR_PID died.
wait_log_from() {
    local from=$1 re=$2 deadline=$(( $(now_us) + $3 * 1000000 ))
    while [ "$(now_us)" -lt "$deadline" ]; do
        tail -n +"$((from + 1))" "$LOG" | grep -qE "$re" && return 0
        kill -0 "$MR_PID" 2>/dev/null || return 1
        sleep 0.01
    done
    return 1
}

# --- fixtures ---------------------------------------------------------------

# SQL for a realistic SHA512-CRYPT hash, different for every row g:
# "{SHA512-CRYPT}$6$" + 16 salt + "$" + 86 hash = 120 characters
BENCH_SHA512="'{SHA512-CRYPT}\$6\$' || substr(md5('salt' || g), 1, 16) || '\$'
    || substr(translate(encode(sha512(('pw' || g)::bytea), 'base64'), E'+=\\n', '.'), 1, 86)"

# fixture_one_domain DOMAIN N_MAILBOXES N_ALIASES: one INSERT ... SELECT
# generate_series each, as the superuser (the triggers run and log changes)
fixture_one_domain() {
    local dom=$1 nm=$2 na=$3
    sql <<EOF
INSERT INTO mailroster.domains (name) VALUES ('$dom');
INSERT INTO mailroster.mailboxes (domain_id, local_part, password)
  SELECT d.id, 'user' || g, $BENCH_SHA512
    FROM mailroster.domains d, generate_series(1, $nm) g WHERE d.name = '$dom';
INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
  SELECT d.id, 'alias' || g, ARRAY['user' || (g % $nm + 1) || '@$dom']
    FROM mailroster.domains d, generate_series(1, $na) g WHERE d.name = '$dom';
EOF
    sql -c "VACUUM ANALYZE" -c "CHECKPOINT"
}

# keys_file OUT N HIT_PERCENT DOMAIN: N keys, HIT_PERCENT % distinct existing
# mailboxes, the rest addresses that do not exist in the same domain,
# shuffled (fixed seed: the same file every run).
keys_file() {
    local out=$1 n=$2 pct=$3 dom=$4
    local nh=$(( n * pct / 100 ))
    local nm=$(( n - nh ))
    sql >"$out" <<EOF
SELECT setseed(0.4242);
WITH hits AS (
    SELECT m.local_part || '@' || d.name AS k
      FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id
     WHERE d.name = '$dom' AND m.enabled AND m.may_receive
     ORDER BY random() LIMIT $nh),
misses AS (SELECT 'nosuchuser' || g || '@$dom' AS k FROM generate_series(1, $nm) g)
SELECT k FROM (SELECT k FROM hits UNION ALL SELECT k FROM misses) x ORDER BY random();
EOF
    sed -i '/^$/d' "$out"  # setseed's own (empty) output line
}

# --- results ----------------------------------------------------------------

# table rows: bench_row COL1 COL2 ...; printed by bench_table with a header
BENCH_ROWS=()
bench_row() {
    local IFS=$'\t'
    BENCH_ROWS+=("$*")
}
bench_table() { # HEADER_COLS...
    local IFS=$'\t'
    {
        echo "$*"
        printf '%s\n' "${BENCH_ROWS[@]}"
    } | column -t -s $'\t'
}

# bench_footer: the machine's state, for reading the figures
bench_footer() {
    echo "$(date '+%Y-%m-%d %H:%M') on $(hostname): $(nproc) cores; load average at start $BENCH_LOAD0," \
        "at end $(cut -d' ' -f1-3 /proc/loadavg) (anything above ~1 is other work competing for the cores)"
}

# ratio A B: A/B with 2 significant decimals, "-" when B is 0 or empty or A is not a number
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a ~ /^[0-9.]+$/) printf "%.2f", a / b; else print "-" }'; }

# median_of N...: the median of the numbers; min_of N...: the least
median_of() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
min_of() { printf '%s\n' "$@" | sort -n | head -1; }
# turned ROUND WORD...: the words, turned by ROUND - 1 places (round 1 as
# given), so that in rounds of runs no run always follows the same one
turned() { local k=$(( ($1 - 1) % ($# - 1) )); shift; local w=("$@"); echo "${w[@]:k}" "${w[@]:0:k}"; }

# --- log lines with the time they appeared ------------------------------------

# log_ts_start: follow $LOG into $LOG.ts, each line prefixed with the
# microsecond it was seen (polled every 2 ms); one process, in STACK_PIDS
log_ts_start() {
    : >>"$LOG"
    python3 -c '
import sys, time
src, dst = sys.argv[1], sys.argv[2]
with open(src, "rb") as f, open(dst, "ab", buffering=0) as out:
    open(dst + ".ready", "w").close()
    buf = b""
    while True:
        chunk = f.readline()
        if not chunk:
            time.sleep(0.002)
            continue
        buf += chunk
        if buf.endswith(b"\n"):
            out.write(b"%d " % int(time.time() * 1e6) + buf)
            buf = b""
' "$LOG" "$LOG.ts" &
    LOG_TS_PID=$!
    STACK_PIDS+=("$LOG_TS_PID")
    for _ in $(seq 1000); do [ -e "$LOG.ts.ready" ] && break; sleep 0.01; done
}

# log_time REGEX [AFTER_US]: the microsecond the first matching line (seen
# after AFTER_US) appeared; empty when none
log_time() {
    awk -v after="${2:-0}" -v re="$1" '$1 > after && $0 ~ re { print $1; exit }' "$LOG.ts"
}

# secs_between US_FROM US_TO: seconds with 2 decimals, "-" when one is empty
secs_between() {
    if [ -z "$1" ] || [ -z "$2" ]; then echo "-"; return; fi
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e6 }'
}

# --- CPU of process trees (daemons that fork workers) --------------------------------

# proc_table OUT: one line per process, "PID PPID COMM TICKS CHILD_TICKS"
# (utime + stime, and cutime + cstime: what it has reaped), read at once
proc_table() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk '{
        o = index($0, "("); c = o
        for (i = o; i <= length($0); i++) if (substr($0, i, 1) == ")") c = i
        comm = substr($0, o + 1, c - o - 1); gsub(/[ \t]/, "_", comm)
        n = split(substr($0, c + 2), f, " ")
        if (n >= 15) print $1, f[2], comm, f[12] + f[13], f[14] + f[15]
    }' >"$1"
}

# tree_delta BEFORE AFTER PARENT [COMM]: ticks used between two proc_table
# snapshots by PARENT's children (only those named COMM, if given; a child
# that did not exist before counts whole); without COMM also by PARENT
# itself and by the children it reaped meanwhile
tree_delta() {
    awk -v p="$3" -v c="${4:-}" '
        FNR == 1 { file++ }
        file == 1 { before[$1] = $4; cbefore[$1] = $5; next }
        $2 == p && (c == "" || $3 == c) { t += $4 - before[$1] }
        $1 == p && c == "" { t += $4 - before[$1] + $5 - cbefore[$1] }
        END { print t + 0 }' "$1" "$2"
}
