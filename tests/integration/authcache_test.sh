#!/usr/bin/env bash
# authcache_test.sh - mailrosterd makes Dovecot's auth cache forget an
# account as soon as it changes (dovecot_auth_master_socket): a password
# change and a new account are honoured within a second although the cache
# (positive and negative, one hour each) still holds the old answer.
#
# Dovecot's passdb here is Dovecot's own sql driver on a table that the
# test edits behind Dovecot's back, so that only a flush can make Dovecot
# see the edit; the flush is triggered by a change to the same account in
# mailroster. (The roster driver's own test is dovecot_auth_test.sh.)
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
. "$TOP/tests/integration/begin.sh" mr-authcache
CLI=$(dirname "$MRD")/mailroster

stack_pg_start || { notok "PostgreSQL starts"; t_summary; exit 1; }
mr_setup_db
sql -c "CREATE TABLE testpw (username text PRIMARY KEY, password text)"
cat >"$STACK_DIR/dovecot-sql.conf.ext" <<EOF
driver = pgsql
connect = host=$PGHOST port=$PGPORT dbname=$MR_DB user=postgres
password_query = SELECT username AS user, password FROM testpw WHERE username = '%u'
EOF
stack_dovecot_start "passdb {
  driver = sql
  args = $STACK_DIR/dovecot-sql.conf.ext
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}
auth_cache_size = 1M
auth_cache_ttl = 1 hour
auth_cache_negative_ttl = 1 hour
service auth {
  unix_listener auth-master {
    mode = 0600
  }
}" || { notok "Dovecot starts"; t_summary; exit 1; }
AUTH_MASTER=$STACK_DIR/dovecot/run/auth-master
AUTH_CLIENT=$STACK_DIR/dovecot/run/auth-client

ADMIN=$STACK_DIR/mr/admin
CONF=$STACK_DIR/mr/mailroster.conf
LOG=$STACK_DIR/mr/mailrosterd.log
mr_write_conf "$CONF" \
    "admin_socket = $ADMIN" \
    "admin_database = host=$PGHOST port=$PGPORT dbname=$MR_DB user=mradm" \
    "dovecot_auth_master_socket = $AUTH_MASTER"
mr_start "$CONF" "$LOG" || { notok "mailrosterd starts"; t_summary; exit 1; }
adm() { MAILROSTER_SOCKET=$ADMIN "$CLI" "$@"; }
status() { adm status 2>/dev/null | awk -v k="$1" '$1 == k { print $2 }'; }
# change CMD...: a mailroster change, then wait until the flush it causes
# has been answered by Dovecot (so that the next step starts from a
# known cache)
change() {
    local n
    n=$(status dovecot_cache_flushes)
    adm "$@" >/dev/null || notok "mailroster $*"
    wait_for "status dovecot_cache_flushes" $((n + 1)) 5 || notok "a flush after: mailroster $*"
}
# pw USER PASSWORD: set the password Dovecot's sql passdb would find now
pw() { sql -c "INSERT INTO testpw VALUES ('$1', '{PLAIN}$2') ON CONFLICT (username) DO UPDATE SET password = EXCLUDED.password"; }

# auth USER PASSWORD: "ok" or "fail", as Dovecot's auth process answers now
auth() {
    if doveadm -c "$STACK_DOVECOT_CONF" auth test -a "$AUTH_CLIENT" "$1" "$2" >/dev/null 2>&1; then
        echo ok
    else
        echo fail
    fi
}
# within_1s USER PASSWORD EXPECTED: Dovecot answers EXPECTED within 1 s
within_1s() { wait_for "auth $1 $2" "$3" 1; }

change domain add example.test
change user add bob@example.test
pw bob@example.test old-secret

# --- a password change --------------------------------------------------------------
check "bob logs in with his password (and Dovecot caches it)" ok "$(auth bob@example.test old-secret)"
pw bob@example.test new-secret-2
# (a cached password that does not match makes Dovecot look again, so the
# sign of the cache is the old password still letting bob in)
check "the cache still lets the old password in (nothing flushed it)" ok "$(auth bob@example.test old-secret)"
adm user set bob@example.test quota=100M >/dev/null
if within_1s bob@example.test old-secret fail; then
    ok "after a change to bob in mailroster, the old password stops working within 1 s"
else
    notok "after a change to bob in mailroster, the old password stops working within 1 s"
fi
check "and the new one works" ok "$(auth bob@example.test new-secret-2)"

# --- a new account that the negative cache calls unknown ------------------------------
check "carol is unknown (and Dovecot caches that)" fail "$(auth carol@example.test carol-secret)"
pw carol@example.test carol-secret
check "the negative cache still calls her unknown" fail "$(auth carol@example.test carol-secret)"
adm user add carol@example.test >/dev/null
if within_1s carol@example.test carol-secret ok; then
    ok "once mailroster creates carol, she logs in within 1 s"
else
    notok "once mailroster creates carol, she logs in within 1 s"
fi

# --- a domain change flushes everyone ---------------------------------------------------
check "carol's login is cached again" ok "$(auth carol@example.test carol-secret)"
pw carol@example.test carol-second-2
check "carol's old password is still let in from the cache" ok "$(auth carol@example.test carol-secret)"
adm domain set example.test quota=1G >/dev/null
if within_1s carol@example.test carol-secret fail; then
    ok "a change to the domain flushes its accounts too"
else
    notok "a change to the domain flushes its accounts too"
fi

# --- Dovecot gone: a warning, lookups go on ------------------------------------------------
stack_dovecot_stop
adm user set bob@example.test quota=200M >/dev/null
wait_for "grep -c 'Dovecot auth cache flush through $AUTH_MASTER: cannot connect' '$LOG'" 1 5
check "Dovecot stopped: the failed flush is logged once and counted" "1 1" \
    "$(grep -c "Dovecot auth cache flush through $AUTH_MASTER: cannot connect" "$LOG") $(status dovecot_cache_flush_failures)"
check "... and lookups are still answered" "example.test/bob.$(sql -c "SELECT id FROM mailroster.mailboxes WHERE local_part = 'bob'")/" \
    "$(q_smap mailboxes bob@example.test)"
grep -qE 'ERROR: AddressSanitizer|runtime error:' "$LOG" && notok "no sanitizer report in the daemon's log" || ok "no sanitizer report in the daemon's log"
mr_stop
t_summary
