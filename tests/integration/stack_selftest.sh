#!/usr/bin/env bash
# tests/integration/stack_selftest.sh - self-test of scripts/lib/stack.sh.
#
# Starts PostgreSQL, Dovecot (one user, demo@example.test, from Dovecot's own
# static passdb and userdb: stack.sh is tested without mailroster) and Postfix
# privately under a fresh STACK_DIR, sends a message with swaks, waits for it
# in the Maildir, reads it back over IMAP, then (after the stack's EXIT trap
# has run) checks that /etc/postfix/main.cf is back and that no daemon of the
# run is left. Prints "ok - ..." / "not ok - ..." lines and finally
# "N passed, M failed"; exits non-zero if anything failed. Needs root.
# Set STACK_KEEP=1 to keep the stack directory for inspection.
# shellcheck source-path=SCRIPTDIR disable=SC2016  # bash -c '...' expands later
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lib="$here/../../scripts/lib/stack.sh"

results=$(mktemp)            # one "ok"/"not ok" per line, shared with the subshell
pidlist=$(mktemp)            # daemon PIDs seen while the stack was up
portlist=$(mktemp)           # ports the stack reserved
maincf_before=$(mktemp)
# another stack, alive while ours is cleaned up: its reservations stay
OTHER_DIR=$(mktemp -d /tmp/mrstack-other.XXXXXX)
trap 'rm -f "$results" "$pidlist" "$portlist" "$maincf_before"; rm -rf "$OTHER_DIR"' EXIT
cp -p /etc/postfix/main.cf "$maincf_before"

ok()     { echo "ok - $*"; echo ok >> "$results"; }
not_ok() { echo "not ok - $*"; echo "not ok" >> "$results"; }
# check DESC CMD...: run CMD, report, return its status.
check() {
    local desc=$1; shift
    if "$@"; then ok "$desc"; return 0; fi
    not_ok "$desc"; return 1
}

STACK_DIR=$(mktemp -d /tmp/mrstack.XXXXXX)
export STACK_DIR

# ------------------------------------------------ the stack, in a subshell
(
    set -u
    # shellcheck source=../../scripts/lib/stack.sh
    . "$lib"
    trap stack_cleanup EXIT
    trap 'exit 130' INT TERM
    bail() { not_ok "$*"; exit 1; }

    # Remember every daemon process of this run (masters and children).
    record_pids() {
        local m
        for m in "$@"; do
            [[ -n "$m" ]] || continue
            echo "$m" >> "$pidlist"
            ps -o pid= --ppid "$m" >> "$pidlist" 2>/dev/null
        done
    }

    check "stack_pg_start" stack_pg_start || bail "PostgreSQL did not start"
    check "psql select 1 (port $PGPORT)" \
        bash -c '[[ "$(psql -XAtq -c "select 1")" == 1 ]]'
    check "psql over TCP 127.0.0.1:$STACK_PG_PORT" \
        bash -c '[[ "$(psql -XAtq -h 127.0.0.1 -c "select 1")" == 1 ]]'
    check "stack_pg_createdb selftest" stack_pg_createdb selftest
    check "stack_pg_stop" stack_pg_stop
    check "psql fails while PostgreSQL is down" \
        bash -c '! psql -XAtq -c "select 1" >/dev/null 2>&1'
    check "stack_pg_start_again (same port $STACK_PG_PORT)" stack_pg_start_again
    check "database survives restart" \
        bash -c '[[ "$(psql -XAtq -d selftest -c "select current_database()")" == selftest ]]'

    ids=$(stack_vmail_user) || bail "stack_vmail_user"
    read -r vuid vgid <<< "$ids"
    check "stack_vmail_user -> uid $vuid gid $vgid, $STACK_DIR/vmail owned by it" \
        test "$(stat -c %u:%g "$STACK_DIR/vmail")" = "$vuid:$vgid"

    hash=$(doveadm pw -s SHA512-CRYPT -p secret) || bail "doveadm pw"
    home="$STACK_DIR/vmail/example.test/demo"
    check "stack_dovecot_start" \
        stack_dovecot_start "passdb {
  driver = static
  args = password=$hash
  username_filter = demo@example.test
}
userdb {
  driver = static
  args = uid=$vuid gid=$vgid home=$STACK_DIR/vmail/%d/%n
}" \
        || bail "Dovecot did not start"
    check "doveadm user demo@example.test: home $home" \
        test "$(doveadm -c "$STACK_DOVECOT_CONF" user -f home demo@example.test 2>&1)" = "$home"
    check "doveadm auth test demo@example.test" \
        bash -c 'doveadm -c "$STACK_DOVECOT_CONF" auth test demo@example.test secret >/dev/null'
    check "doveadm auth test rejects a wrong password" \
        bash -c '! doveadm -c "$STACK_DOVECOT_CONF" auth test demo@example.test wrong >/dev/null 2>&1'
    check "doveadm auth test rejects another user" \
        bash -c '! doveadm -c "$STACK_DOVECOT_CONF" auth test other@example.test secret >/dev/null 2>&1'

    echo "demo@example.test OK" > "$STACK_DIR/vmbox"
    chmod 0644 "$STACK_DIR/vmbox"
    check "stack_postfix_start" stack_postfix_start "virtual_mailbox_domains = example.test
virtual_mailbox_maps = texthash:$STACK_DIR/vmbox" || bail "Postfix did not start"

    record_pids "$(head -n 1 "$STACK_DIR/pg/postmaster.pid")" \
        "$(cat "$STACK_DIR/dovecot/run/master.pid")" \
        "$(tr -d ' ' < "$STACK_DIR/postfix/spool/pid/master.pid")"

    check "swaks to demo@example.test via 127.0.0.1:$STACK_SMTP_PORT" \
        bash -c 'swaks --server "127.0.0.1:$STACK_SMTP_PORT" --to demo@example.test \
            --from x@example.org --h-Subject "stack selftest" --body hello \
            > "$STACK_DIR/swaks.out" 2>&1' \
        || sed 's/^/# /' "$STACK_DIR/swaks.out"
    # swaks(1): exit 24 is "no RCPTs accepted" (a refused connection is 2);
    # the reply itself must be Postfix's 550 for that recipient
    check "unknown recipient rejected at RCPT (swaks exit 24, 550 reply)" \
        bash -c 'swaks --server "127.0.0.1:$STACK_SMTP_PORT" --to nobody@example.test \
            --from x@example.org --quit-after RCPT > "$STACK_DIR/swaks-rcpt.out" 2>&1
            rc=$?; echo "(swaks exit $rc)" >> "$STACK_DIR/swaks-rcpt.out"
            [ "$rc" = 24 ] && grep -Eq "^<\*\* +550 .*nobody@example\.test" "$STACK_DIR/swaks-rcpt.out"' \
        || sed 's/^/# /' "$STACK_DIR/swaks-rcpt.out"

    if file=$(stack_wait_maildir_file "$home/Maildir" 20); then
        ok "delivered to Maildir: ${file#"$STACK_DIR"/}"
        check "delivered file has the subject" grep -q '^Subject: stack selftest' "$file"
        check "delivered file owned by mrvmail" test "$(stat -c %u "$file")" = "$vuid"
    else
        not_ok "delivered to Maildir within 20s"
    fi

    check "IMAP login + fetch on 127.0.0.1:$STACK_IMAP_PORT finds the subject" \
        python3 - <<'EOF'
import imaplib, os, sys
m = imaplib.IMAP4("127.0.0.1", int(os.environ["STACK_IMAP_PORT"]))
m.login("demo@example.test", "secret")
typ, data = m.select("INBOX")
typ, data = m.search(None, "ALL")
found = False
for num in data[0].split():
    typ, msg = m.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    if b"stack selftest" in msg[0][1]:
        found = True
m.logout()
sys.exit(0 if found else 1)
EOF
    check "IMAP rejects a wrong password" python3 - <<'EOF'
import imaplib, os, sys
m = imaplib.IMAP4("127.0.0.1", int(os.environ["STACK_IMAP_PORT"]))
try:
    m.login("demo@example.test", "wrong")
except imaplib.IMAP4.error:
    sys.exit(0)
sys.exit(1)
EOF

    # A caller daemon registered in STACK_PIDS must be stopped by cleanup.
    sleep 300 &
    STACK_PIDS+=("$!")
    echo "$!" >> "$pidlist"

    record_pids "$(head -n 1 "$STACK_DIR/pg/postmaster.pid")" \
        "$(cat "$STACK_DIR/dovecot/run/master.pid")" \
        "$(tr -d ' ' < "$STACK_DIR/postfix/spool/pid/master.pid")"
    # the ports this stack reserved, and two of another stack's
    cp "$STACK_DIR/ports" "$portlist" 2>/dev/null
    check "the stack's reservations are listed ($(grep -c . "$portlist") ports, PostgreSQL's among them)" \
        grep -qx "$STACK_PG_PORT" "$portlist"
    (STACK_DIR=$OTHER_DIR; stack_free_port >/dev/null; stack_free_port >/dev/null)

    # stack_cleanup runs here (EXIT trap); its status becomes ours.
    trap - EXIT
    if stack_cleanup; then ok "stack_cleanup"; else not_ok "stack_cleanup"; fi
)

# ------------------------------------------------ after the stack is gone
if [[ "${STACK_KEEP:-0}" == 1 ]]; then
    echo "# STACK_KEEP=1: $STACK_DIR kept"
else
    check "STACK_DIR removed" test ! -e "$STACK_DIR"
fi

acd=$(postconf -c /etc/postfix -h alternate_config_directories)
check "alternate_config_directories no longer lists $STACK_DIR" \
    bash -c '[[ " ${1//,/ } " != *" $2/postfix/etc "* ]]' _ "$acd" "$STACK_DIR"
if cmp -s /etc/postfix/main.cf "$maincf_before"; then
    ok "/etc/postfix/main.cf byte-identical to before the run"
elif diff <(grep -v '^alternate_config_directories' /etc/postfix/main.cf) \
          <(grep -v '^alternate_config_directories' "$maincf_before") >/dev/null; then
    # Other stacks running concurrently may have added or removed their own
    # entries meanwhile; ours is checked above. Anything else must be equal.
    before=$(sed -n 's/^alternate_config_directories *= *//p' "$maincf_before")
    ok "/etc/postfix/main.cf: only concurrent runs' entries differ (before: [${before}] now: [${acd}])"
else
    not_ok "/etc/postfix/main.cf byte-identical to before the run"
    diff -u "$maincf_before" /etc/postfix/main.cf | sed 's/^/# /'
fi

# The reservations: ours released (a port another test reserved since
# then names that test), the other stack's kept until its own cleanup.
portdir=${STACK_PORT_DIR:-/tmp/mailroster-ports}
owned_by() { [[ "$(cat "$portdir/$1/stack" 2>/dev/null)" == "$2" ]]; }
kept=()
while read -r p; do owned_by "$p" "$STACK_DIR" && kept+=("$p"); done < "$portlist"
if (( ${#kept[@]} == 0 )) && [[ -s "$portlist" ]]; then
    ok "stack_cleanup released the stack's $(grep -c . "$portlist") port reservations"
else
    not_ok "stack_cleanup released the stack's port reservations (still held: ${kept[*]:-none listed})"
fi
mapfile -t other < "$OTHER_DIR/ports"
held=0
for p in "${other[@]}"; do owned_by "$p" "$OTHER_DIR" && held=$((held + 1)); done
check "another live stack's 2 reservations are untouched" test "${#other[@]}:$held" = 2:2
# shellcheck source=../../scripts/lib/stack.sh
(STACK_DIR=$OTHER_DIR; . "$lib"; stack_cleanup)
held=0
for p in "${other[@]}"; do owned_by "$p" "$OTHER_DIR" && held=$((held + 1)); done
check "... and gone after its own cleanup" test "$held:$([[ -e $OTHER_DIR ]] && echo dir)" = 0:

# A killed run's reservations go after an hour, its owner file with them;
# a young one stays (a private reservation directory: nobody else's).
(
    STACK_PORT_DIR=$(mktemp -d /tmp/mrstack-ports.XXXXXX)
    unset STACK_DIR
    # shellcheck source=../../scripts/lib/stack.sh
    . "$lib"
    mkdir "$STACK_PORT_DIR/20001" "$STACK_PORT_DIR/20002"
    echo /tmp/mrstack.killed > "$STACK_PORT_DIR/20001/stack"
    touch -d '-2 hours' "$STACK_PORT_DIR/20001"
    stack_free_port >/dev/null
    check "stack_free_port drops a reservation older than an hour, keeps a young one" \
        test "$([[ -e $STACK_PORT_DIR/20001 ]] && echo old)$([[ -e $STACK_PORT_DIR/20002 ]] && echo young)" = young
    rm -rf "$STACK_PORT_DIR"
)

left=()
while read -r pid; do
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    st=$(ps -o stat=,args= -p "$pid" 2>/dev/null) || continue
    [[ -n "$st" && "$st" != Z* ]] && left+=("$pid: $st")
done < <(sort -un "$pidlist")
n=$(sort -un "$pidlist" | grep -c .)
if (( ${#left[@]} == 0 && n > 0 )); then
    ok "none of the $n recorded daemon processes remains"
else
    not_ok "no daemon process remains ($n recorded)"
    printf '# left: %s\n' "${left[@]}"
fi

passed=$(grep -cx ok "$results")
failed=$(grep -cx 'not ok' "$results")
echo "$passed passed, $failed failed"
[[ "$failed" == 0 && "$passed" -gt 0 ]]
