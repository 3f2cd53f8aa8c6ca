#!/usr/bin/env bash
# features_test.sh - migration 0010's directory features through real
# clients: forwarding from a mailbox (with and without a copy kept),
# sender rights per alias, and the transports map (as transport_maps and as
# relay_domains), on a private PostgreSQL + mailrosterd + Postfix + Dovecot
# (LMTP) stack on loopback.
#
# Domains and mailboxes come from the mailroster CLI, the new columns from
# SQL as the admin role. Lookups are checked with postmap over socketmap
# and tcp_table, mail with swaks through Postfix: what arrives in which
# Maildir, and what an smtp-sink behind a transport receives. A forward
# changed in SQL must take effect through the change log, without a
# restart. With MRD pointing at an ASan build, the daemon's log must hold
# no sanitizer report after it stopped.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
. "$TOP/tests/integration/begin.sh" mr-features mrstack

# --- the stack ----------------------------------------------------------------

declare -A TCP
for m in domains mailboxes aliases senders transports; do TCP[$m]=$(stack_free_port); done
SINK_PORT=$(stack_free_port)
MRS_CONF_EXTRA="recipient_delimiter = +
tcp_table_domains = 127.0.0.1:${TCP[domains]}
tcp_table_mailboxes = 127.0.0.1:${TCP[mailboxes]}
tcp_table_aliases = 127.0.0.1:${TCP[aliases]}
tcp_table_senders = 127.0.0.1:${TCP[senders]}
tcp_table_transports = 127.0.0.1:${TCP[transports]}"
mrs_db && mrs_daemon || { notok "database and mailrosterd start"; t_summary; exit 1; }
MRD_PID=${STACK_PIDS[-1]}

# an SMTP server behind the transports: smtp-sink dumps every transaction
# (envelope as X-Mail-Args/X-Rcpt-Args, then the message) into one file
SINK_DIR=$STACK_DIR/sink
install -d -o postfix -g postfix -m 0755 "$SINK_DIR"
smtp-sink -u postfix -D "$SINK_DIR/dump" "127.0.0.1:$SINK_PORT" 16 >"$STACK_DIR/sink.log" 2>&1 &
STACK_PIDS+=("$!")
SINK="smtp:[127.0.0.1]:$SINK_PORT"

# --- provisioning ------------------------------------------------------------------

mrs_cli domain add example.test >/dev/null || notok "domain add example.test"
mrs_cli domain add catch.test >/dev/null || notok "domain add catch.test"
for u in carl dora erin frank gina app; do
    echo "pw-$u" | mrs_cli user add "$u@example.test" --password-stdin --scheme sha512 >/dev/null \
        || notok "user add $u"
done
for u in fwd plain off; do mrs_cli user add "$u@catch.test" >/dev/null || notok "user add $u@catch.test"; done
mrs_cli alias add noreply@example.test dora@example.test >/dev/null || notok "alias add noreply"
mrs_cli alias add sales@example.test dora@example.test >/dev/null || notok "alias add sales"

# the new columns and the transports, as the admin role (migration 0010)
mrs_admin_sql -v sink="$SINK" <<'SQL' || notok "provisioning in SQL"
UPDATE mailroster.mailboxes m SET forward_to = v.fwd, keep_copy = v.keep, enabled = v.enabled
  FROM (VALUES ('carl', 'example.test', '{dora@example.test}'::text[], false, true),
               ('erin', 'example.test', '{dora@example.test}', true, true),
               ('gina', 'example.test', '{outside@relay.test}', false, true),
               ('fwd', 'catch.test', '{erin@example.test}', false, true),
               ('off', 'catch.test', '{dora@example.test}', false, false)) AS v(lp, dom, fwd, keep, enabled)
  JOIN mailroster.domains d ON d.name = v.dom
 WHERE m.domain_id = d.id AND m.local_part = v.lp;
INSERT INTO mailroster.aliases (domain_id, local_part, destinations, may_send)
SELECT id, '', ARRAY['dora@example.test'], false FROM mailroster.domains WHERE name = 'catch.test';
UPDATE mailroster.aliases SET may_send = false WHERE local_part = 'noreply';
INSERT INTO mailroster.transports (pattern, transport, enabled) VALUES
    ('app@example.test', :'sink', true),
    ('relay.test', :'sink', true),
    ('.relay.test', 'error:5.7.1 no subdomains of relay.test here', true),
    ('dead.test', :'sink', false);
SQL

MR_SMAP_UNIX=$MRS_SMAP
q_tcp5() { postmap -q "$2" "tcp:127.0.0.1:${TCP[$1]}" 2>/dev/null || echo "(not found)"; }
# both DESCRIPTION MAP KEY EXPECTED: the same answer over socketmap and tcp_table
both() {
    check "$1 (socketmap)" "$4" "$(q_smap "$2" "$3")"
    check "$1 (tcp_table)" "$4" "$(q_tcp5 "$2" "$3")"
}
# the change log brings the SQL above: wait for its last row
check_cmd "the daemon follows the change log (transports row arrived)" \
    wait_for "q_smap transports dead.test; q_smap transports relay.test" "(not found)
$SINK" 20

# --- lookups -----------------------------------------------------------------------

both "aliases: a forward without a copy" aliases carl@example.test "dora@example.test"
both "aliases: a forward, the key's extension given back" aliases Carl+News@Example.TEST "dora+news@example.test"
both "aliases: a forward with a copy answers the address itself too" aliases erin@example.test \
    "dora@example.test,erin@example.test"
both "aliases: ... with the extension on both" aliases erin+x@example.test "dora+x@example.test,erin+x@example.test"
both "aliases: a forward outside" aliases gina@example.test "outside@relay.test"
both "aliases: the catch-all" aliases nobody@catch.test "dora@example.test"
both "aliases: a forwarding mailbox in a catch-all domain answers its forward" aliases fwd@catch.test \
    "erin@example.test"
both "aliases: a mailbox without forward is not the catch-all's" aliases plain@catch.test "(not found)"
both "aliases: a disabled forwarding mailbox forwards nothing (nor the catch-all)" aliases off@catch.test "(not found)"
maildir=$(mrs_admin_sql -c "SELECT m.maildir FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id WHERE d.name = 'example.test' AND m.local_part = 'carl'")
both "mailboxes: a forwarding mailbox is still a mailbox" mailboxes carl@example.test "$maildir"
both "mailboxes: a disabled one is not" mailboxes off@catch.test "(not found)"
both "senders: an alias with may_send = false gives no right" senders noreply@example.test "(not found)"
both "senders: an alias with may_send = true does" senders sales@example.test "dora@example.test"
both "senders: a catch-all with may_send = false gives none" senders anyone@catch.test "(not found)"
both "senders: a forward is no sending right" senders carl@example.test "carl@example.test"
both "transports: an address" transports app@example.test "$SINK"
both "transports: an address with an extension" transports App+x@Example.TEST "$SINK"
both "transports: a domain" transports relay.test "$SINK"
both "transports: an address in that domain" transports x@relay.test "$SINK"
both "transports: a subdomain through .domain (spaces in the answer)" transports sub.relay.test \
    "error:5.7.1 no subdomains of relay.test here"
both "transports: an address two levels down" transports y@deep.sub.relay.test \
    "error:5.7.1 no subdomains of relay.test here"
both "transports: the .domain key itself" transports .relay.test "error:5.7.1 no subdomains of relay.test here"
both "transports: a disabled entry" transports dead.test "(not found)"
both "transports: ... for an address too" transports x@dead.test "(not found)"
both "transports: an address entry is no domain entry" transports example.test "(not found)"
both "transports: the wildcard key of transport_maps" transports '*' "(not found)"

# --- mail through Postfix -------------------------------------------------------------

mrs_mail "recipient_delimiter = +
transport_maps = socketmap:unix:$MRS_SMAP:transports
relay_domains = socketmap:unix:$MRS_SMAP:transports" || { notok "Dovecot and Postfix start"; t_summary; exit 1; }

send() { # TO SUBJECT: 250 when queued, else the first 4xx/5xx reply code
    local out
    out=$(swaks --server "127.0.0.1:$STACK_SMTP_PORT" --from sender@example.org --to "$1" \
        --h-Subject "$2" --body "test body" --timeout 20 2>&1)
    if echo "$out" | grep -q "queued as"; then echo 250; return; fi
    echo "$out" | grep -E '^<\** +[45][0-9]{2} ' | head -1 | sed -E 's/^<\** +([0-9]{3}).*/\1/'
}
# has ADDRESS SUBJECT: how many messages with that subject are in the Maildir
has() {
    local home
    home=$(mrs_home "$1") || { echo "?"; return; }
    grep -lsx "Subject: $2" "$home"/Maildir/new/* "$home"/Maildir/cur/* 2>/dev/null | wc -l
}
# sunk RCPT SUBJECT: transactions in the sink's dump for that recipient and subject
sunk() {
    python3 - "$SINK_DIR/dump" "$1" "$2" <<'PY'
import sys
try:
    text = open(sys.argv[1], errors="replace").read()
except FileNotFoundError:
    text = ""
n = 0
for part in text.split("X-Client-Addr: ")[1:]:
    if ("X-Rcpt-Args: <%s>" % sys.argv[2]) in part and ("\nSubject: %s\n" % sys.argv[3]) in part:
        n += 1
print(n)
PY
}
# settled: Postfix's queue is empty (every delivery done), within 60 s
settled() {
    local i
    for i in $(seq 1 300); do
        [ -z "$(postqueue -c "$STACK_POSTFIX_CONF" -j 2>/dev/null)" ] && return 0
        sleep 0.2
    done
    return 1
}

check "mail to carl (forward, no copy) accepted" 250 "$(send carl@example.test 'fwd nocopy')"
check "mail to erin (forward with a copy) accepted" 250 "$(send erin@example.test 'fwd copy')"
check "mail to erin+tag accepted" 250 "$(send erin+tag@example.test 'fwd copy ext')"
check "mail to gina (forward outside) accepted" 250 "$(send gina@example.test 'fwd outside')"
check "mail to app (an address transport) accepted" 250 "$(send app@example.test 'transport address')"
check "mail to x@relay.test (relay_domains = the transports map) accepted" 250 \
    "$(send x@relay.test 'transport domain')"
code=$(send x@dead.test 'dead')
case $code in 5*) ok "a disabled transport domain is no relay domain ($code)" ;; *) notok "x@dead.test: $code" ;; esac
code=$(send plain2@catch.test 'catchall')
check "the catch-all still takes unknown addresses" 250 "$code"
check_cmd "every message delivered (queue empty)" settled

check "no copy kept: the forward target has the message" 1 "$(has dora@example.test 'fwd nocopy')"
check "no copy kept: carl's own Maildir does not" 0 "$(has carl@example.test 'fwd nocopy')"
check "a copy kept: the forward target has the message" 1 "$(has dora@example.test 'fwd copy')"
check "a copy kept: erin has it too" 1 "$(has erin@example.test 'fwd copy')"
check "a copy kept, +tag: both have it" "1 1" "$(has dora@example.test 'fwd copy ext') $(has erin@example.test 'fwd copy ext')"
# both went in one LMTP transaction, for which Dovecot writes no
# Delivered-To: Postfix's log names the recipients
check "the kept copy went to erin+tag (Postfix's log)" 1 \
    "$(grep -c ' to=<erin+tag@example.test>, relay=.* status=sent ' "$STACK_POSTFIX_LOG")"
check "the forward kept the extension (dora+tag, from erin+tag)" 1 \
    "$(grep -c ' to=<dora+tag@example.test>, orig_to=<erin+tag@example.test>, relay=.* status=sent ' "$STACK_POSTFIX_LOG")"
check "the forward outside went out by the relay.test transport" 1 "$(sunk outside@relay.test 'fwd outside')"
check "gina kept no copy" 0 "$(has gina@example.test 'fwd outside')"
check "the address transport sent app's mail to the sink" 1 "$(sunk app@example.test 'transport address')"
check "... and not to app's Maildir" 0 "$(has app@example.test 'transport address')"
check "the domain transport sent relay.test's mail to the sink" 1 "$(sunk x@relay.test 'transport domain')"
check "the catch-all delivered to dora" 1 "$(has dora@example.test 'catchall')"

# a change of forward_to in SQL takes effect through the change log
mrs_admin_sql -c "UPDATE mailroster.mailboxes SET forward_to = '{frank@example.test}' WHERE local_part = 'carl' AND domain_id = (SELECT id FROM mailroster.domains WHERE name = 'example.test')" \
    || notok "forward_to changed in SQL"
check_cmd "the new forward is answered" wait_for "q_smap aliases carl@example.test" "frank@example.test" 20
check "mail to carl after the change accepted" 250 "$(send carl@example.test 'fwd changed')"
check_cmd "delivered (queue empty)" settled
check "the new forward target has it" 1 "$(has frank@example.test 'fwd changed')"
check "the old one does not" 0 "$(has dora@example.test 'fwd changed')"
check "... nor carl" 0 "$(has carl@example.test 'fwd changed')"
# and taking it away delivers to the mailbox again
mrs_admin_sql -c "UPDATE mailroster.mailboxes SET forward_to = '{}' WHERE local_part = 'carl' AND domain_id = (SELECT id FROM mailroster.domains WHERE name = 'example.test')" \
    || notok "forward_to emptied in SQL"
check_cmd "no forward answered any more" wait_for "q_tcp5 aliases carl@example.test" "(not found)" 20
check "mail to carl, forward removed, accepted" 250 "$(send carl@example.test 'fwd removed')"
check_cmd "delivered (queue empty)" settled
check "carl has it himself" 1 "$(has carl@example.test 'fwd removed')"
check "the daemon was not restarted" "1 1" \
    "$(kill -0 "$MRD_PID" 2>/dev/null && echo 1) $(grep -c 'loaded directory' "$MRS_LOG")"

# --- a database before migration 0010 -------------------------------------------------
# mailrosterd still works with schema 1 to 9: no forwards, may_send true,
# no transports table (nothing asked of it, at the load or in the change log)
stack_pg_createdb old || notok "database old"
for f in "$TOP"/sql/migrations/000[1-8]_*.sql; do
    psql -X -q -v ON_ERROR_STOP=1 -d old -f "$f" >/dev/null || notok "old schema: $(basename "$f")"
done
old_sql() { psql -X -q -v ON_ERROR_STOP=1 -At -d old "$@"; }
old_sql <<'SQL' || notok "old schema: provisioning"
INSERT INTO mailroster.domains (name) VALUES ('old.test');
INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'keep' FROM mailroster.domains;
INSERT INTO mailroster.aliases (domain_id, local_part, destinations) SELECT id, 'info', ARRAY['keep@old.test'] FROM mailroster.domains;
SQL
OLD_SMAP=$STACK_DIR/old.socketmap
OLD_LOG=$STACK_DIR/old.log
cat >"$STACK_DIR/old.conf" <<CONF
database = host=$PGHOST port=$PGPORT dbname=old user=$PGUSER
socketmap_listen = unix:$OLD_SMAP
CONF
"$MRD" -f -c "$STACK_DIR/old.conf" >"$OLD_LOG" 2>&1 &
OLD_PID=$!
STACK_PIDS+=("$OLD_PID")
qo() { postmap -q "$2" "socketmap:unix:$OLD_SMAP:$1" 2>/dev/null || echo "(not found)"; }
check_cmd "schema 8: the directory loads" wait_for "grep -c 'loaded directory' '$OLD_LOG'" 1 20
grep -q "1 mailboxes, 1 aliases, 0 sender addresses, 0 master users, 0 transports" "$OLD_LOG" \
    && ok "schema 8: the load counts no transports" || notok "schema 8: load line: $(grep 'loaded directory' "$OLD_LOG")"
check "schema 8: an alias gives sending rights (may_send as before)" "keep@old.test" "$(qo senders info@old.test)"
check "schema 8: a mailbox does not forward" "(not found)" "$(qo aliases keep@old.test)"
check "schema 8: no transports" "(not found)" "$(qo transports old.test)"
old_sql -c "INSERT INTO mailroster.aliases (domain_id, local_part, destinations) SELECT id, 'late', ARRAY['keep@old.test'] FROM mailroster.domains" \
    || notok "old schema: a change"
check_cmd "schema 8: a change arrives through the change log" wait_for "qo aliases late@old.test" "keep@old.test" 20
kill -TERM "$OLD_PID" 2>/dev/null
for _ in $(seq 1 100); do kill -0 "$OLD_PID" 2>/dev/null || break; sleep 0.1; done
check "schema 8: no error logged, no sanitizer report" "" \
    "$(grep -iE 'error|fatal|runtime error|AddressSanitizer|LeakSanitizer' "$OLD_LOG" | head -3)"

# --- the end -------------------------------------------------------------------------

stack_postfix_stop
kill -TERM "$MRD_PID" 2>/dev/null
for _ in $(seq 1 100); do kill -0 "$MRD_PID" 2>/dev/null || break; sleep 0.1; done
check "no sanitizer report (after the stop: leaks too)" "" \
    "$(grep -E 'runtime error|AddressSanitizer|LeakSanitizer' "$MRS_LOG" | head -3)"
t_summary
