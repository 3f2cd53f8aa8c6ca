#!/usr/bin/env bash
# tests/bench/e2e_submit.sh - authenticated submission through a real
# private Postfix, end to end: smtp_submit.py (SESSIONS concurrent sessions,
# each connect, EHLO, AUTH PLAIN, PER_SESSION messages of RCPTS recipients
# to local mailboxes, QUIT) -> a submission smtpd on a private loopback
# port (conf.d/postfix/master.cf.submission, TLS off for loopback), SASL
# through Dovecot's auth socket -> cleanup, qmgr -> lmtp -> an smtp-sink in
# LMTP mode. The same Postfix and Dovecot, in turn, as
#   tutorial   the ISP-mail tutorial (/work/shared/seeds/002: its schema in
#              a database of its own, its queries verbatim): Dovecot's sql
#              passdb with its password_query, its pgsql: map files for
#              domains, mailboxes and aliases, the mailbox and alias maps
#              as smtpd_sender_login_maps with reject_sender_login_mismatch;
#              no policy service. Its users_fqda view is read with a
#              sequential scan (fqda is a concatenation), so its cost grows
#              with N_MAILBOXES: hence also
#   pgsql      the same, with every query on the tables' primary keys
#              (local part and domain apart: %u/%d, %n/%d)
#   mailroster Dovecot's roster driver (conf.d/dovecot/auth-roster.conf.ext),
#              conf.d/postfix/main.cf.snippet (socketmap maps, sender
#              logins, transports) and the submission service's lists:
#              check_policy_service at RCPT and at END-OF-MESSAGE, where
#              mailrosterd admits every message in PostgreSQL
#              (send_admit_many; the domain's limit is far above what a run
#              sends, so nothing is refused, but every message is counted)
# Same accounts (N_SENDERS logins with their own SHA512-CRYPT hash from
# doveadm pw, N_MAILBOXES mailboxes, N_ALIASES aliases), same client, same
# messages. Each configuration runs PER_SESSION_LIST (default "5 1") messages
# per session, REPEAT rounds, interleaved; the best round is shown.
# messages/s from the client's first connection until the sink has every
# message; server CPU per message from /proc before and after: Postfix's
# smtpd processes, Postfix's other processes (cleanup, qmgr,
# trivial-rewrite, lmtp: what they used and what the master reaped), Dovecot
# (auth process and workers), every PostgreSQL process, mailrosterd; the
# client's own CPU; the median wait for the replies to AUTH, RCPT and the
# end of data (every wait's p50/p99 on stderr). Checked and printed: the
# client's 250s, "status=sent" in Postfix's log, the sink's own message
# count, and for mailroster the new send_counters rows (one per admitted
# message). Nothing about timing is
# asserted; the script fails (exit 1, after the table) when a configuration
# delivered fewer messages than the client tried to send. Also on stderr:
# CPU by process, the most PostgreSQL and smtpd processes, and the commits
# in mailroster's database (admissions per commit).
# PostgreSQL runs durable (fsync and synchronous_commit on; DURABLE=0 keeps
# the test cluster's fsync=off); nothing is pinned but the client
# (CLIENT_CPU): Postfix, Dovecot, PostgreSQL and mailrosterd use both cores.
#
#   tests/bench/e2e_submit.sh       (as root)
#   MESSAGES=1000 PER_SESSION_LIST=5 REPEAT=1 tests/bench/e2e_submit.sh
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TOP/tests/bench/benchlib.sh"
bench_init e2e_submit
. "$TOP/scripts/lib/mrstack.sh"
export STACK_PG_SHARED_BUFFERS=${STACK_PG_SHARED_BUFFERS:-128MB}
MESSAGES=${MESSAGES:-3000}
SESSIONS=${SESSIONS:-10}
PER_SESSION_LIST=${PER_SESSION_LIST:-5 1}
RCPTS=${RCPTS:-1}
REPEAT=${REPEAT:-2}
N_SENDERS=${N_SENDERS:-100}
N_MAILBOXES=${N_MAILBOXES:-1000}
N_ALIASES=${N_ALIASES:-200}
DURABLE=${DURABLE:-1}
CONFIGS=${CONFIGS:-tutorial pgsql mailroster}
DOM=example.com

MRS_CLI=$(dirname "$BENCH_MRD_ORIG")/mailroster
MOD=${MOD_SRC:-$(dirname "$BENCH_MRD_ORIG")/.libs/libauthdb_roster.so}
[ -x "$MRS_CLI" ] || { echo "e2e_submit: no mailroster command at $MRS_CLI" >&2; exit 1; }
[ -f "$MOD" ] || { echo "e2e_submit: no roster module at $MOD (build with dovecot-dev, or set MOD_SRC=)" >&2; exit 1; }
cp "$MOD" "$STACK_DIR/libauthdb_roster.so" || exit 1
MRS_AUTH_MODULE=$STACK_DIR/libauthdb_roster.so

# --- accounts: the same in both databases -------------------------------------------
bench_db
t0=$(now_us)
ACCOUNTS=$STACK_DIR/accounts     # login<TAB>password, for the client
HASHES=$STACK_DIR/hashes         # local part<TAB>hash, for both databases
: >"$ACCOUNTS"; : >"$HASHES"
for i in $(seq 1 "$N_SENDERS"); do
    h=$(doveadm pw -s SHA512-CRYPT -p "pw-$i") || exit 1
    printf 'user%s@%s\tpw-%s\n' "$i" "$DOM" "$i" >>"$ACCOUNTS"
    printf 'user%s\t%s\n' "$i" "$h" >>"$HASHES"
done
# the other mailboxes never log in: a hash of the same form each
awk -v a=$((N_SENDERS + 1)) -v b="$N_MAILBOXES" 'BEGIN {
    x = sprintf("%86s", ""); gsub(/ /, "x", x)
    for (i = a; i <= b; i++) printf "user%d\t{SHA512-CRYPT}$6$%016d$%s\n", i, i, x }' >>"$HASHES"
# recipients: every mailbox in a fixed shuffled order
seq 1 "$N_MAILBOXES" | shuf --random-source=<(yes 4242) | sed "s/.*/user&@$DOM/" >"$STACK_DIR/rcpts"

sql <<SQL >/dev/null || exit 1
CREATE TEMP TABLE h (lp text, pw text);
\copy h FROM '$HASHES'
INSERT INTO mailroster.domains (name) VALUES ('$DOM');
INSERT INTO mailroster.mailboxes (domain_id, local_part, password)
  SELECT d.id, h.lp, h.pw FROM mailroster.domains d, h;
INSERT INTO mailroster.aliases (domain_id, local_part, destinations)
  SELECT d.id, 'alias' || g, ARRAY['user' || (g % $N_MAILBOXES + 1) || '@$DOM']
    FROM mailroster.domains d, generate_series(1, $N_ALIASES) g;
SQL
# the tutorial's schema exactly as seed 002 writes it (the import tests'
# copy; its grants name mail_user, made here), the same rows
stack_pg_createdb mail_server || exit 1
psql -X -q -v ON_ERROR_STOP=1 -d mail_server <<SQL >/dev/null || exit 1
CREATE ROLE mail_user WITH LOGIN PASSWORD 'mail-user-pw';
\i $TOP/tests/integration/import/ispmail/schema.sql
CREATE TEMP TABLE h (lp text, pw text);
\copy h FROM '$HASHES'
INSERT INTO domains VALUES ('$DOM');
INSERT INTO users (domain, local, password_hash) SELECT '$DOM', lp, pw FROM h;
INSERT INTO aliases SELECT 'alias' || g, '$DOM', 'user' || (g % $N_MAILBOXES + 1), '$DOM'
  FROM generate_series(1, $N_ALIASES) g;
SQL
sql -c "VACUUM ANALYZE" >/dev/null
psql -X -q -d mail_server -c "VACUUM ANALYZE" >/dev/null
bench_note "fixture in $(secs_between "$t0" "$(now_us)") s: $N_MAILBOXES mailboxes ($N_SENDERS logins with a" \
    "SHA512-CRYPT hash of their own), $N_ALIASES aliases, in mailroster's schema and the tutorial's"

# The test cluster's 50 connections are too few for the pgsql: maps: every
# Postfix process holds a connection per map file it has used, and at one
# message per session Postfix runs more smtpd processes than sessions. 200;
# each run logs the most PostgreSQL processes seen.
sql -c "ALTER SYSTEM SET max_connections = 200" >/dev/null && stack_pg_stop && stack_pg_start_again || exit 1

# --- mailrosterd: maps, auth socket, policy service; every core ----------------------
MRS_CONF_EXTRA="policy_listen = unix:$STACK_DIR/mr/policy"
mrs_daemon || exit 1
MR_PID=${STACK_PIDS[-1]}
mrs_cli limit set domain "$DOM" window=1h messages=100000000 >/dev/null ||
    { echo "e2e_submit: limit set failed" >&2; exit 1; }
[ "$DURABLE" = 1 ] && sql -c "ALTER SYSTEM SET fsync = on" -c "ALTER SYSTEM SET synchronous_commit = on" \
    -c "SELECT pg_reload_conf()" >/dev/null

# --- the configurations -------------------------------------------------------------
DVC=$STACK_DIR/dvconf
PGM=$STACK_DIR/pgmaps
install -d -m 0755 "$DVC" "$PGM"
# the tutorial's files, its values where the stack has its own
dvsql() { # FILE QUERY
    printf '%s\n' "driver = pgsql" \
        "connect = host=127.0.0.1 dbname=mail_server port=$STACK_PG_PORT user=mail_user password=mail-user-pw" \
        "default_pass_scheme = ARGON2ID" "password_query = $2" >"$DVC/$1"
}
dvsql dovecot-sql.conf.ext "SELECT fqda AS user, password_hash AS password FROM users_fqda WHERE fqda='%u';"
dvsql dovecot-sql-pk.conf.ext "SELECT local || '@' || domain AS user, password_hash AS password FROM users WHERE local='%n' AND domain='%d';"
tcf() { printf 'user = mail_user\npassword = mail-user-pw\nhosts = 127.0.0.1:%s\ndbname = mail_server\nquery = %s\n' \
    "$STACK_PG_PORT" "$2" >"$PGM/$1"; }
tcf pgsql-virtual-mailbox-domains.cf "SELECT * FROM domains WHERE domain='%s'"
tcf pgsql-virtual-mailbox-maps.cf "SELECT fqda FROM users_fqda WHERE fqda='%s';"
tcf pgsql-virtual-alias-maps.cf "SELECT destination_local || '@' || destination_domain FROM aliases WHERE source_local='%u' AND source_domain='%d';"
tcf pk-virtual-mailbox-maps.cf "SELECT local || '@' || domain FROM users WHERE local='%u' AND domain='%d';"
chmod 644 "$DVC"/* "$PGM"/*
plan() { psql -X -At -d mail_server -c "EXPLAIN $1" | head -n 1 | sed 's/  (cost.*//'; }
bench_note "plans: tutorial's mailbox query: $(plan "SELECT fqda FROM users_fqda WHERE fqda = 'user7@$DOM'");" \
    "pgsql's: $(plan "SELECT local || '@' || domain FROM users WHERE local = 'user7' AND domain = '$DOM'")"
# Postfix's Dovecot SASL socket, in both
DV_SASL="service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}"

dovecot_of() { # CONFIG: start Dovecot as CONFIG has it
    case $1 in
    tutorial|pgsql) unset STACK_DOVECOT_AUTH_MODULE
        stack_dovecot_start "passdb {
  driver = sql
  args = $DVC/dovecot-sql$([ "$1" = pgsql ] && echo -pk).conf.ext
}
userdb {
  driver = static
  args = uid=mrvmail gid=mrvmail home=$STACK_DIR/vmail/%d/%n
}
$DV_SASL" ;;
    mailroster) MRS_DOVECOT_EXTRA=$DV_SASL mrs_dovecot ;;
    esac
}

SINK_PORT=$(stack_free_port)
SUB_PORT=$(stack_free_port)
common="virtual_transport = lmtp:inet:127.0.0.1:$SINK_PORT
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
lmtp_destination_concurrency_limit = 20
default_process_limit = 100
# smtpd processes live through a run, so /proc has all their CPU
max_use = 100000
max_idle = 3600
smtpd_sasl_type = dovecot
smtpd_sasl_path = $STACK_DIR/dovecot/run/auth-postfix"
postfix_of() { # CONFIG: the main.cf lines of CONFIG
    case $1 in
    tutorial|pgsql) local m="pgsql:$PGM/pgsql-virtual" mb="pgsql:$PGM/pgsql-virtual-mailbox-maps.cf"
        [ "$1" = pgsql ] && mb="pgsql:$PGM/pk-virtual-mailbox-maps.cf"
        printf '%s\n' "virtual_mailbox_domains = $m-mailbox-domains.cf" \
            "virtual_mailbox_maps = $mb" "virtual_alias_maps = $m-alias-maps.cf" \
            "smtpd_sender_login_maps = $mb, $m-alias-maps.cf" \
            "smtpd_sender_restrictions = reject_sender_login_mismatch, permit_sasl_authenticated" \
            "mailroster_submission_recipient_restrictions = permit_sasl_authenticated, reject" \
            "mailroster_submission_end_of_data_restrictions =" ;;
    mailroster) # the shipped snippet with this stack's sockets
        sed -e "s|/run/mailroster/|$STACK_DIR/mr/|g" -e '/^#/d' "$TOP/conf.d/postfix/main.cf.snippet" ;;
    esac
}
# the shipped submission service on SUB_PORT: unchrooted, TLS off (loopback)
submission_service() {
    sed -e '/^#/d' -e "s|^submission inet n       -       y|127.0.0.1:$SUB_PORT inet n       -       n|" \
        -e 's|smtpd_tls_security_level=encrypt|smtpd_tls_security_level=none|' \
        -e 's|smtpd_tls_auth_only=yes|smtpd_tls_auth_only=no|' "$TOP/conf.d/postfix/master.cf.submission"
}
submission_service | grep -q "^127.0.0.1:$SUB_PORT inet" ||
    { echo "e2e_submit: conf.d/postfix/master.cf.submission has no submission line to adapt" >&2; exit 1; }

smtp-sink -u nobody -L -c "127.0.0.1:$SINK_PORT" 256 >"$STACK_DIR/sink.out" 2>&1 &
STACK_PIDS+=("$!")
stack__wait_port "$SINK_PORT" 10 || { echo "smtp-sink did not start" >&2; exit 1; }

# --- one run ------------------------------------------------------------------------
count_sent() { local n; n=$(grep -c 'status=sent' "$STACK_POSTFIX_LOG" 2>/dev/null); echo "${n:-0}"; }
sink_count() { local n; n=$(tr '\r' '\n' <"$STACK_DIR/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -n 1); echo "${n:-0}"; }
counters() { sql -c "SELECT count(*) FROM mailroster.send_counters"; }
# transactions committed in mailroster's database (PostgreSQL's statistics:
# up to about a second behind)
commits() { sql -c "SELECT xact_commit FROM pg_stat_database WHERE datname = '$MR_DB'"; }
pf_master() { cat "$STACK_DIR/postfix/spool/pid/master.pid" 2>/dev/null | tr -d ' '; }
dv_master() { cat "$STACK_DIR/dovecot/run/master.pid" 2>/dev/null; }
pg_master() { head -n 1 "$STACK_DIR/pg/postmaster.pid"; }
us_per() { awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.0f", t * 1e6 / hz / n; else print "-" }'; }

# client MESSAGES PER_SESSION TAG: prints its key=value line
client() {
    taskset -c "$CLIENT_CPU" python3 "$TOP/tests/bench/smtp_submit.py" --server "127.0.0.1:$SUB_PORT" \
        --accounts "$ACCOUNTS" --rcpts "$STACK_DIR/rcpts" --messages "$1" --sessions "$SESSIONS" \
        --per-session "$2" --rcpts-per-msg "$RCPTS" --tag "$3" 2>>"$STACK_DIR/client.err"
}
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p; s/^$1=\([^ ]*\).*/\1/p" <<<" $2" | head -n 1; }

# peak_start / peak_stop: the most PostgreSQL processes (its connections
# and its own, e.g. the checkpointer) and smtpd processes seen (every 0.5 s) meanwhile: PEAK="PG SMTPD"
peak_start() {
    local pg=$1 pf=$2
    while :; do
        echo "$(pgrep -c -P "$pg") $(pgrep -c -x -P "$pf" smtpd)"
        sleep 0.5
    done >"$STACK_DIR/peak" &
    PEAK_PID=$!
    STACK_PIDS+=("$PEAK_PID")
}
peak_stop() {
    kill "$PEAK_PID"; wait "$PEAK_PID" 2>/dev/null
    PEAK=$(awk '$1 > a { a = $1 } $2 > b { b = $2 } END { print a + 0, b + 0 }' "$STACK_DIR/peak")
}

# wait_delivered FROM_SENT FROM_SINK N: until Postfix logged N more
# deliveries and the sink counted N more (5 minutes at most)
wait_delivered() {
    local deadline=$(( $(now_us) + 300000000 ))
    while [ $(( $(count_sent) - $1 )) -lt "$3" ] || [ $(( $(sink_count) - $2 )) -lt "$3" ]; do
        [ "$(now_us)" -gt "$deadline" ] && return 1
        sleep 0.05
    done
}

declare -A BEST
FAILED=0
run() { # CONFIG PER_SESSION ROUND
    local cfg=$1 k=$2 key="$1.$2" out s0 k0 c0 x0 t0 t1 sent sunk admitted xacts load pf dv pg
    dovecot_of "$cfg" || { echo "e2e_submit: Dovecot ($cfg) did not start" >&2; exit 1; }
    stack_postfix_start "$common
$(postfix_of "$cfg")" || { echo "e2e_submit: Postfix ($cfg) did not start" >&2; exit 1; }
    submission_service >>"$STACK_POSTFIX_CONF/master.cf"
    stack__postfix_cmd reload && stack__wait_port "$SUB_PORT" 10 ||
        { echo "e2e_submit: no submission service on $SUB_PORT" >&2; exit 1; }
    # warm-up: every session's smtpd, Dovecot's auth workers, the maps' connections
    s0=$(count_sent); k0=$(sink_count)
    out=$(client "$((SESSIONS * 2))" 2 "warm-$key-$3")
    if [ "$(kv accepted "$out")" != $((SESSIONS * 2)) ] || ! wait_delivered "$s0" "$k0" $((SESSIONS * 2)); then
        echo "e2e_submit: $cfg: the warm-up was not delivered: $out" >&2
        tail -n 5 "$STACK_DIR/client.err" >&2
        exit 1
    fi
    s0=$(count_sent); k0=$(sink_count); c0=$(counters); x0=$(commits)
    load=$(cut -d' ' -f1 /proc/loadavg)
    pf=$(pf_master); dv=$(dv_master); pg=$(pg_master)
    proc_table "$STACK_DIR/pt0"
    peak_start "$pg" "$pf"
    t0=$(now_us)
    out=$(client "$MESSAGES" "$k" "$key-$3")
    # what was accepted (a refusal is reported below)
    wait_delivered "$s0" "$k0" "$(kv accepted "$out")" || true
    t1=$(now_us)
    proc_table "$STACK_DIR/pt1"
    peak_stop
    sent=$(( $(count_sent) - s0 )); sunk=$(( $(sink_count) - k0 )); admitted=$(( $(counters) - c0 ))
    # commits less this script's own two queries in between
    xacts=$(( $(commits) - x0 - 2 ))
    local rate cpu_smtpd cpu_pf cpu_dv cpu_pg cpu_mr
    rate=$(awk -v n="$sunk" -v us=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (us / 1e6) }')
    cpu_smtpd=$(tree_delta "$STACK_DIR/pt0" "$STACK_DIR/pt1" "$pf" smtpd)
    cpu_pf=$(( $(tree_delta "$STACK_DIR/pt0" "$STACK_DIR/pt1" "$pf") - cpu_smtpd ))
    cpu_dv=$(tree_delta "$STACK_DIR/pt0" "$STACK_DIR/pt1" "$dv")
    cpu_pg=$(tree_delta "$STACK_DIR/pt0" "$STACK_DIR/pt1" "$pg")
    cpu_mr=$(awk -v p="$MR_PID" 'FNR == 1 { f++ } $1 == p { t[f] = $4 } END { print t[2] - t[1] }' \
        "$STACK_DIR/pt0" "$STACK_DIR/pt1")
    local n=$sunk
    local c_smtpd c_pf c_dv c_pg c_mr c_all
    c_smtpd=$(us_per "$cpu_smtpd" "$n"); c_pf=$(us_per "$cpu_pf" "$n"); c_dv=$(us_per "$cpu_dv" "$n")
    c_pg=$(us_per "$cpu_pg" "$n"); c_mr=$(us_per "$cpu_mr" "$n")
    c_all=$(us_per $((cpu_smtpd + cpu_pf + cpu_dv + cpu_pg + cpu_mr)) "$n")
    [ "$cfg" = mailroster ] || c_mr=-
    # where Postfix's and Dovecot's time went, process by process (name: µs/msg)
    local by
    by=$(awk -v pf="$pf" -v dv="$dv" -v n="$n" -v hz="$CLK_TCK" 'FNR == 1 { f++ }
        f == 1 { b[$1] = $4; cb[$1] = $5; next }
        ($2 == pf || $2 == dv) && $4 > b[$1] { t[($2 == pf ? "postfix/" : "dovecot/") $3] += $4 - b[$1] }
        $1 == pf { t["postfix/master+reaped"] += $4 - b[$1] + $5 - cb[$1] }
        $1 == dv { t["dovecot/master+reaped"] += $4 - b[$1] + $5 - cb[$1] }
        END { for (k in t) if (t[k] > 0) printf "%s %.0f, ", k, t[k] * 1e6 / hz / n }' \
        "$STACK_DIR/pt0" "$STACK_DIR/pt1")
    bench_note "$cfg, $k per session, round $3: $sunk of $MESSAGES delivered in $(( (t1 - t0) / 1000 )) ms = $rate msg/s" \
        "(load $load); client: $out; status=sent $sent, sink $sunk, send_counters +$admitted;" \
        "CPU µs/msg: smtpd $c_smtpd, other Postfix $c_pf, Dovecot $c_dv, PostgreSQL $c_pg, mailrosterd $c_mr, all $c_all;" \
        "by process: ${by%, }; at most ${PEAK% *} PostgreSQL processes (connections and the server's own), ${PEAK#* } smtpd processes;" \
        "$xacts commits in $MR_DB$([ "$cfg" = mailroster ] && [ "$xacts" -gt 0 ] &&
            awk -v a="$admitted" -v x="$xacts" 'BEGIN { printf " (%.2f admissions per commit)", a / x }')"
    local bad=""
    if [ "$sunk" -lt "$MESSAGES" ] || [ "$sent" -lt "$MESSAGES" ]; then
        bad="DELIVERED $sunk/$sent OF $MESSAGES"
        echo "e2e_submit: FAILED: $cfg ($k per session, round $3): the client tried $MESSAGES messages," \
            "the client got $(kv accepted "$out") accepted, Postfix logged $sent delivered, the sink counted $sunk" >&2
        tail -n 5 "$STACK_DIR/client.err" | sed 's/^/# /' >&2
        grep -E 'reject|warning|fatal' "$STACK_POSTFIX_LOG" | tail -n 5 | sed 's/^/# /' >&2
        FAILED=1
    fi
    if [ "$cfg" = mailroster ] && [ "$admitted" != "$(kv accepted "$out")" ]; then
        bad="${bad:+$bad, }COUNTED $admitted FOR $(kv accepted "$out")"
        echo "e2e_submit: MISMATCH: send_counters +$admitted for $(kv accepted "$out") accepted messages" >&2
    fi
    [ "$cfg" = mailroster ] || admitted=-
    local kept=0
    if [ -z "${BEST[$key.rate]:-}" ] || [ "$rate" -gt "${BEST[$key.rate]}" ]; then
        kept=1
        BEST[$key.rate]=$rate; BEST[$key.load]=$load; BEST[$key.crate]=$(kv rate "$out")
        BEST[$key.lat]="$(kv auth_ms "$out" | cut -d/ -f1) / $(kv rcpt_ms "$out" | cut -d/ -f1) / $(kv eod_ms "$out" | cut -d/ -f1)"
        BEST[$key.cpu]="$c_smtpd	$c_pf	$c_dv	$c_pg	$c_mr	$c_all	$(kv client_cpu_us "$out")"
        BEST[$key.check]="$(kv accepted "$out")/$sent/$sunk/$admitted${bad:+ $bad}"
    fi
    # a failed round is named even when another round is shown
    [ -n "$bad" ] && [ "$kept" = 0 ] && BEST[$key.check]="${BEST[$key.check]} (round $3: $bad)"
    stack_postfix_stop
    mv "$STACK_POSTFIX_LOG" "$STACK_POSTFIX_LOG.$cfg.$k.$3"
    stack_dovecot_stop
}

for round in $(seq 1 "$REPEAT"); do
    for k in $PER_SESSION_LIST; do
        for cfg in $CONFIGS; do run "$cfg" "$k" "$round"; done
    done
done

echo
echo "end to end submission: $SESSIONS concurrent sessions (connect, EHLO, AUTH PLAIN, K messages of $RCPTS" \
    "recipient(s), QUIT), $MESSAGES messages per run, best of $REPEAT; $N_SENDERS logins (SHA512-CRYPT)," \
    "$N_MAILBOXES mailboxes, $N_ALIASES aliases; PostgreSQL durable=$DURABLE"
for k in $PER_SESSION_LIST; do
    for cfg in $CONFIGS; do
        bench_row "$cfg" "$k" "${BEST[$cfg.$k.rate]:--}" "${BEST[$cfg.$k.crate]:--}" "$(ratio "${BEST[$cfg.$k.rate]:-}" "${BEST[tutorial.$k.rate]:-}")" \
            "$(ratio "${BEST[$cfg.$k.rate]:-}" "${BEST[pgsql.$k.rate]:-}")" \
            "${BEST[$cfg.$k.cpu]:--}" "${BEST[$cfg.$k.lat]:--}" "${BEST[$cfg.$k.load]:--}" "${BEST[$cfg.$k.check]:--}"
    done
done
bench_table "configuration" "K" "msg/s" "accepted/s" "vs tutorial" "vs pgsql" "smtpd" "other Postfix" "Dovecot" "PostgreSQL" \
    "mailrosterd" "all servers" "client" "p50 ms AUTH / RCPT / end of data" "load" "250/sent/sink/counted"
echo "(msg/s: from the first connection until the sink had every message; accepted/s: the client's 250s" \
    "over its own run; ratios of msg/s; CPU in µs per message, \"all servers\" the sum of the five before it)"
echo
bench_footer
exit "$FAILED"
