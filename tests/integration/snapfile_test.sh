#!/usr/bin/env bash
# snapfile_test.sh - the files mailrosterd trusts, against a real daemon:
# started while PostgreSQL is down, it refuses a snapshot file that is a
# symlink, owned by another uid, group-writable, edited, from an older
# version, /dev/zero or oversized (each within a second, saying why, and
# stays alive answering temporary failures, and stops on SIGTERM within a
# second), and answers from a good one. A SIGHUP with the configuration
# replaced by a symlink to /dev/zero (or an oversized file) keeps the
# running configuration, with bounded memory, and lookups answered.
#
#   TOP=/path/to/tree MRD=/path/to/mailrosterd bash tests/integration/snapfile_test.sh
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
. "$TOP/tests/integration/begin.sh" mr-snapfile
LOG=$STACK_DIR/mailrosterd.log
RSS_RUNAWAY_KB=$((256 * 1024)) # a read without bound: stop it before it eats the machine

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
rss_kb() { awk '/^VmRSS:/ { print $2; f = 1 } END { if (!f) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0; }
log_since() { tail -n +"$(($1 + 1))" "$LOG"; }

# tcp_get PORT KEY: one tcp_table request, the raw reply line (2 s at most)
tcp_get() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "get %s\n" "$2" >&3; IFS= read -r l <&3; printf "%s\n" "${l%$'"'"'\r'"'"'}"' _ "$1" "$2" 2>/dev/null
}
q_mbox() { timeout 3 postmap -q "$1" "tcp:127.0.0.1:$MR_TCP_MAILBOXES" 2>/dev/null || echo "(not found)"; }

# wait_log BEFORE PATTERN PID MS: wait up to MS milliseconds for PATTERN in
# the log lines after BEFORE; gives up early if PID dies, and kills it if
# its memory runs away (an unbounded read grows by gigabytes a second).
wait_log() {
    local before=$1 pat=$2 pid=$3 ms=$4 t0
    t0=$(now_ms)
    while [ $(( $(now_ms) - t0 )) -lt "$ms" ]; do
        log_since "$before" | grep -qE "$pat" && return 0
        stack__alive "$pid" || return 1
        if [ "$(rss_kb "$pid")" -gt "$RSS_RUNAWAY_KB" ]; then
            echo "# runaway: RSS $(rss_kb "$pid") kB after $(( $(now_ms) - t0 )) ms: killed"
            kill -KILL "$pid" 2>/dev/null
            sleep 0.1
            return 1
        fi
        sleep 0.02
    done
    log_since "$before" | grep -qE "$pat"
}

# stop_within NAME PID: SIGTERM; the daemon must be gone within a second.
stop_within() {
    local name=$1 pid=$2 i
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 50); do
        stack__alive "$pid" || break
        sleep 0.02
    done
    if stack__alive "$pid"; then
        notok "$name: SIGTERM stops it within a second"
        kill -KILL "$pid" 2>/dev/null
    else
        ok "$name: SIGTERM stops it within a second"
    fi
    wait "$pid" 2>/dev/null
}

# refused NAME REASON [CONF]: start with PostgreSQL down; the snapshot file
# is refused within a second with REASON in the log line; the daemon stays
# up answering temporary failures, and stops on SIGTERM.
refused() {
    local name=$1 reason=$2 conf=${3:-$CONF} before pid line
    before=$(wc -l <"$LOG")
    ${MRD_WRAP:-} "$MRD" -f -c "$conf" >>"$LOG" 2>&1 &
    pid=$!
    STACK_PIDS+=("$pid")
    if wait_log "$before" 'snapshot file cannot be used' "$pid" 1000; then
        ok "$name: refused within a second"
        line=$(log_since "$before" | grep -m1 'snapshot file cannot be used')
        case $line in *"$reason"*) ok "$name: the log line says why" ;;
            *) notok "$name: the log line says \"$reason\": $line" ;; esac
    else
        notok "$name: refused within a second"
        notok "$name: the log line says why"
        log_since "$before" | tail -n 3 | sed 's/^/#   /'
    fi
    if stack__alive "$pid"; then
        ok "$name: the daemon is still running"
        case $(tcp_get "$MR_TCP_MAILBOXES" alice@example.com) in
            400*) ok "$name: lookups get a temporary failure" ;;
            *) notok "$name: lookups get a temporary failure: [$(tcp_get "$MR_TCP_MAILBOXES" alice@example.com)]" ;;
        esac
    else
        notok "$name: the daemon is still running"
        notok "$name: lookups get a temporary failure"
    fi
    stop_within "$name" "$pid"
}

stack_pg_start || exit 1
mr_setup_db || exit 1
admin_sql -f "$TOP/tests/integration/fixture.sql" || exit 1
CONF=$STACK_DIR/mailroster.conf
mr_write_conf "$CONF" "poll_interval = 60s" "snapshot_interval = 1s"
GOOD=$STACK_DIR/good.snapshot

# --- a snapshot written by the daemon itself ----------------------------------
mr_start "$CONF" "$LOG" || { notok "mailrosterd starts"; t_summary; exit 1; }
ok "mailrosterd starts and loads the directory"
EXPECT=$(q_mbox alice@example.com)
check "alice's maildir from the database" "example.com/alice.1/" "$EXPECT"
for i in $(seq 1 100); do [ -s "$MR_SNAPSHOT" ] && break; sleep 0.05; done
mr_stop
check "snapshot file written, mode 0600" 600 "$(stat -c %a "$MR_SNAPSHOT" 2>/dev/null)"
cp -p "$MR_SNAPSHOT" "$GOOD"
stack_pg_stop

# put_good: the snapshot file is a fresh copy of the good one
put_good() { rm -f "$MR_SNAPSHOT"; cp -p "$GOOD" "$MR_SNAPSHOT"; }

# --- (a)-(f) and an old format: refused ---------------------------------------
cp -p "$GOOD" "$STACK_DIR/target.snapshot"
rm -f "$MR_SNAPSHOT"; ln -s "$STACK_DIR/target.snapshot" "$MR_SNAPSHOT"
refused "a symlink to a good snapshot" "it is a symbolic link"

put_good; chown 65534 "$MR_SNAPSHOT"
refused "a snapshot owned by another uid" "owned by uid 65534"

put_good; chmod 0620 "$MR_SNAPSHOT"
refused "a group-writable snapshot" "lets the group write it"

put_good; chmod 0604 "$MR_SNAPSHOT"
refused "a world-readable snapshot (it holds hashes)" "lets others read it"

rm -f "$MR_SNAPSHOT"
sed 's|=example.com/alice\.1/|=example.com/evil.1/|' "$GOOD" >"$MR_SNAPSHOT"; chmod 600 "$MR_SNAPSHOT"
if cmp -s "$GOOD" "$MR_SNAPSHOT" || [ "$(grep -c . "$GOOD")" != "$(grep -c . "$MR_SNAPSHOT")" ]; then
    notok "the edit changed one maildir (test setup)"
fi
refused "an edited snapshot (one maildir changed)" "checksum mismatch"

rm -f "$MR_SNAPSHOT"
sed '1s/^\(mailroster-snapshot\) [0-9]* /\1 1 /; /^sha256 /d' "$GOOD" >"$MR_SNAPSHOT"; chmod 600 "$MR_SNAPSHOT"
refused "a snapshot of the old format" "from an older version"

sed "s|^snapshot_file = .*|snapshot_file = /dev/zero|" "$CONF" >"$STACK_DIR/zero.conf"
refused "snapshot_file = /dev/zero" "not a regular file" "$STACK_DIR/zero.conf"

rm -f "$MR_SNAPSHOT"; truncate -s 1100M "$MR_SNAPSHOT"; chmod 600 "$MR_SNAPSHOT"
refused "an oversized (sparse) snapshot" "more than the limit"

# --- (g) a good one: answered from it -----------------------------------------
put_good
before=$(wc -l <"$LOG")
${MRD_WRAP:-} "$MRD" -f -c "$CONF" >>"$LOG" 2>&1 &
MR_PID=$!
STACK_PIDS+=("$MR_PID")
if wait_log "$before" "starting from snapshot file $MR_SNAPSHOT" "$MR_PID" 1000; then
    ok "a good snapshot: started from it within a second"
else
    notok "a good snapshot: started from it within a second"
    log_since "$before" | tail -n 3 | sed 's/^/#   /'
fi
check "a good snapshot: alice answered from it" "$EXPECT" "$(q_mbox alice@example.com)"

# --- SIGHUP with the configuration replaced by /dev/zero, then 2 MB ------------
hup_refused() { # NAME REASON
    local before rss0 rss1
    before=$(wc -l <"$LOG")
    rss0=$(rss_kb "$MR_PID")
    kill -HUP "$MR_PID"
    if wait_log "$before" "reload: .*keeping the running configuration" "$MR_PID" 1000; then
        ok "$1: reload refused within a second"
        case $(log_since "$before" | grep -m1 'reload:') in *"$2"*) ok "$1: the log line says why" ;;
            *) notok "$1: the log line says \"$2\": $(log_since "$before" | grep -m1 'reload:')" ;; esac
    else
        notok "$1: reload refused within a second"
        notok "$1: the log line says why"
    fi
    if stack__alive "$MR_PID"; then ok "$1: the daemon is still running"; else notok "$1: the daemon is still running"; fi
    check "$1: lookups still answered" "$EXPECT" "$(q_mbox alice@example.com)"
    rss1=$(rss_kb "$MR_PID")
    if [ $((rss1 - rss0)) -lt 65536 ]; then ok "$1: RSS grew $((rss1 - rss0)) kB (< 64 MB)"
    else notok "$1: RSS grew $((rss1 - rss0)) kB"; fi
    [ "$rss1" -gt "$RSS_RUNAWAY_KB" ] && kill -KILL "$MR_PID" 2>/dev/null
}
if stack__alive "$MR_PID"; then
    mv "$CONF" "$CONF.real"
    ln -s /dev/zero "$CONF"
    hup_refused "SIGHUP, config a symlink to /dev/zero" "not a regular file"
    rm -f "$CONF"
    { cat "$CONF.real"; head -c 2097152 /dev/zero | tr '\0' '#'; echo; } >"$CONF"
    stack__alive "$MR_PID" && hup_refused "SIGHUP, a 2 MB config" "more than the limit"
    rm -f "$CONF"
    mv "$CONF.real" "$CONF"
    before=$(wc -l <"$LOG")
    if stack__alive "$MR_PID"; then
        kill -HUP "$MR_PID"
        wait_log "$before" "reloaded $CONF" "$MR_PID" 2000 && ok "SIGHUP with the config restored: reloaded" \
            || notok "SIGHUP with the config restored: reloaded"
        check "after the reloads: alice answered" "$EXPECT" "$(q_mbox alice@example.com)"
    fi
else
    notok "SIGHUP checks: the daemon is not running"
fi
stop_within "a good snapshot" "$MR_PID"

t_summary
