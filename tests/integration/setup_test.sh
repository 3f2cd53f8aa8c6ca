#!/usr/bin/env bash
# setup_test.sh - `mailroster setup` against a private PostgreSQL, Postfix
# and Dovecot (scripts/lib/stack.sh) with config directories in a temp dir:
# a dry run changes nothing and prints diffs; a real run wires everything,
# a mail sent with swaks to a mailbox provisioned with `mailroster` is
# delivered and read back over IMAP; a second run changes nothing; --undo
# puts every file back byte for byte. The host's /etc/postfix and
# /etc/dovecot are compared before and after.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
CLI=$(dirname "$MRD")/mailroster
STACK_DIR=$(mktemp -d /tmp/mr-setup.XXXXXX)
export STACK_DIR
STACK_PIDS=()
. "$TOP/scripts/lib/stack.sh"
. "$TOP/scripts/lib/mrstack.sh"
. "$TOP/tests/integration/lib.sh"
T=$STACK_DIR
# the daemon is started by the reload hook, a child of setup: stop it here
finish() { [ -f "$T/mrd.pid" ] && kill "$(cat "$T/mrd.pid")" 2>/dev/null; stack_cleanup; }
trap finish EXIT
export MAILROSTER_SETUP=$TOP/scripts/mailroster-setup MAILROSTER_SHAREDIR=$TOP

# what must not change: the host's mail configuration (main.cf: see
# pf_host). The host's mailroster dirs (and Dovecot's module dir) may be
# written by other runs (package tests): nothing in them may name this
# run's temp dir.
host_sums() {
    find /etc/postfix /etc/dovecot -type f ! -path /etc/postfix/main.cf \
        -exec sha256sum {} + 2>/dev/null | sort
}
host_mr_refs() { grep -rlsF -- "$T" /etc/mailroster /var/lib/mailroster /run/mailroster /var/vmail /usr/lib/dovecot/modules/auth; }
stack_pg_start || { notok "PostgreSQL starts"; t_summary; exit 1; }
read -r _ _ < <(stack_vmail_user) || { notok "mail user"; t_summary; exit 1; }
HOST_BEFORE=$(host_sums)
# the host's main.cf but alternate_config_directories, which stack.sh (of
# this and of parallel runs) edits meanwhile
pf_host() { postconf -c /etc/postfix -n | grep -v '^alternate_config_directories'; }
PF_HOST_BEFORE=$(pf_host)

# A Dovecot config dir shaped like Debian's: dovecot.conf includes conf.d,
# 10-auth.conf the system passdb/userdb.
DV=$T/dovecot-etc
mkdir -p "$DV/conf.d"
printf '# host dovecot.conf\n!include conf.d/*.conf\n' >"$DV/dovecot.conf"
printf '# host 10-auth.conf\n!include auth-system.conf.ext\n' >"$DV/conf.d/10-auth.conf"
cp /etc/dovecot/conf.d/auth-system.conf.ext "$DV/conf.d/"
chmod -R a+rX "$DV"
STACK_DOVECOT_AUTH_MODULE=$(dirname "$MRD")/.libs/libauthdb_roster.so
stack_dovecot_start "!include $DV/dovecot.conf" || { notok "Dovecot starts"; t_summary; exit 1; }
stack_postfix_start "" || { notok "Postfix starts"; t_summary; exit 1; }
PF=$STACK_POSTFIX_CONF
QDIR=$(postconf -c "$PF" -h queue_directory)

# reload hook: "SERVICE ACTION" for the private instances
cat >"$T/reload.sh" <<EOF
#!/bin/bash
echo "\$1 \$2" >>"$T/reload.calls"
case \$1 in
mailrosterd)
    if [ -f "$T/mrd.pid" ]; then
        pid=\$(cat "$T/mrd.pid"); kill "\$pid" 2>/dev/null
        for i in \$(seq 1 100); do kill -0 "\$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$T/mrd.pid"
    fi
    [ "\$2" = stop ] && exit 0
    n=\$(cat "$T/mrd.log" 2>/dev/null | wc -l)
    "$MRD" -f -c "$T/etc-mr/mailroster.conf" >>"$T/mrd.log" 2>&1 </dev/null &
    echo \$! >"$T/mrd.pid"
    for i in \$(seq 1 200); do
        tail -n +\$((n + 1)) "$T/mrd.log" | grep -q "loaded directory" && exit 0
        sleep 0.05
    done
    echo "mailrosterd did not start" >&2; tail -n 5 "$T/mrd.log" >&2; exit 1 ;;
dovecot)
    doveadm -c "$STACK_DOVECOT_CONF" reload || exit 1
    sleep 1 ;;
postfix)
    postfix -c "$PF" reload >/dev/null 2>&1 ;;
esac
EOF
chmod +x "$T/reload.sh"

SUBPORT=$(stack_free_port)
OPTS=(--postfix-config "$PF" --dovecot-config "$DV" --dovecot-main "$STACK_DOVECOT_CONF"
      --config "$T/etc-mr" --var-dir "$T/var" --run-dir "$T/run"
      --pg-host "$PGHOST" --pg-port "$PGPORT" --sql-dir "$TOP/sql"
      --mail-user mrvmail --mail-base "$T/vmail" --daemon-user root
      --submission-port "$SUBPORT" --reload-command "$T/reload.sh")
setup() { "$CLI" setup "${OPTS[@]}" "$@"; }
# every file setup may write, and copies of them as they were
FILES=("$PF/main.cf" "$PF/master.cf" "$DV/dovecot.conf" "$DV/conf.d/10-auth.conf")
NEW=("$T/etc-mr/mailroster.conf" "$T/etc-mr/pgpass" "$DV/mailroster.conf.ext"
     "$DV/auth-roster.conf.ext" "$DV/quota-roster.conf.ext" "$DV/dict-sql.conf.ext")
mkdir -p "$T/orig"
for f in "${FILES[@]}"; do cp -p "$f" "$T/orig/$(echo "$f" | tr / _)"; done
same_as_orig() {
    local f
    for f in "${FILES[@]}"; do cmp -s "$f" "$T/orig/$(echo "$f" | tr / _)" || { echo "$f differs"; return 1; }; done
    for f in "${NEW[@]}"; do [ ! -e "$f" ] || { echo "$f exists"; return 1; }; done
}
db_exists() { psql -X -At -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = 'mailroster'"; }

# ---- errors are one line
err=$("$CLI" setup --postfix-config /nonexistent 2>&1 >/dev/null); rc=$?
if [ $rc -ne 0 ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ]; then ok "a bad option fails with one line: $err"
else notok "bad --postfix-config: rc=$rc [$err]"; fi

err=$("$CLI" setup --db-name 'Mail Roster' 2>&1 >/dev/null)
check "a bad database name: one line" "mailroster-setup: --db-name: use lower-case letters, digits and _" "$err"
err=$("$CLI" setup --undo --state-dir "$T/nostate" 2>&1 >/dev/null)
check "undo with nothing done: one line" "mailroster-setup: nothing to undo: no record in $T/nostate" "$err"

# ---- dry run (as the superuser given by --db-conninfo; the other runs
# reach PostgreSQL as user postgres, the default)
setup --dry-run --db-conninfo "user=postgres" >"$T/dry.out" 2>&1; rc=$?
check "dry run exits 0" 0 "$rc"
check_cmd "dry run changes no file" same_as_orig
check "dry run creates no database" 0 "$(db_exists)"
for f in "$PF/main.cf" "$PF/master.cf" "$DV/dovecot.conf" "$T/etc-mr/mailroster.conf" "$DV/dict-sql.conf.ext"; do
    if grep -q "^+++ $f (new)" "$T/dry.out"; then ok "dry run shows a diff for $(basename "$f")"
    else notok "dry run: no diff for $f"; fi
done
grep -q '^+virtual_mailbox_maps = socketmap:unix:mailroster/socketmap:mailboxes' "$T/dry.out" \
    && ok "dry run: the mailboxes map below the queue directory" || notok "dry run: no mailboxes map line"
grep -q '^+connect = .*password=\*\*\*\*\*\*\*\*$' "$T/dry.out" \
    && ok "dry run masks the dict password" || notok "dry run: dict password not masked"
[ ! -e "$T/var" ] && ok "dry run writes no state" || notok "dry run wrote $T/var"

# ---- real run
setup >"$T/run1.out" 2>&1; rc=$?
check "setup exits 0" 0 "$rc"
[ $rc -eq 0 ] || sed 's/^/#   /' "$T/run1.out"
grep -q '^check: doveadm auth test logs the test account in' "$T/run1.out" \
    && ok "setup checked the result (postmap -q, doveadm auth test)" || notok "no check in the output"
check "mailrosterd restarted, Dovecot and Postfix reloaded" "mailrosterd restart,dovecot reload,postfix reload" \
    "$(paste -sd, "$T/reload.calls" 2>/dev/null)"
check "pgpass mode 600" 600 "$(stat -c %a "$T/etc-mr/pgpass")"
check "dict-sql.conf.ext root:dovecot 640" "root:dovecot 640" "$(stat -c '%U:%G %a' "$DV/dict-sql.conf.ext")"
pws=$( { cut -d: -f5 "$T/etc-mr/pgpass"; sed -n 's/.*password=\([0-9a-f]*\).*/\1/p' "$DV/dict-sql.conf.ext"; } | sort -u)
check "three passwords generated" 3 "$(printf '%s\n' "$pws" | grep -c .)"
leak=0
for p in $pws; do grep -rqF -- "$p" "$T/run1.out" "$T/dry.out" "$T/var/setup" "$T/etc-mr/mailroster.conf" "$T/pg.log" && leak=1; done
check "no password in the output, setup's log, mailroster.conf or PostgreSQL's log" 0 "$leak"
# the stored passwords are the roles' own: TCP logins checked with SCRAM
sed -i "1i host all all 127.0.0.1/32 scram-sha-256" "$T/pg/pg_hba.conf"
psql -X -q -d postgres -c "SELECT pg_reload_conf()" >/dev/null; sleep 0.3
tcp_login() { psql -X -At -w -d "host=127.0.0.1 port=$PGPORT dbname=mailroster user=$1" -c "SELECT current_user" 2>/dev/null; }
check "mailrosterd logs in with the password in pgpass" mailrosterd "$(PGPASSFILE=$T/etc-mr/pgpass tcp_login mailrosterd)"
check "mailrosterd_admin logs in with the password in pgpass" mailrosterd_admin "$(PGPASSFILE=$T/etc-mr/pgpass tcp_login mailrosterd_admin)"
check "mailroster_dovecot logs in with the password in dict-sql.conf.ext" mailroster_dovecot \
    "$(PGPASSWORD=$(sed -n 's/.*password=\([0-9a-f]*\).*/\1/p' "$DV/dict-sql.conf.ext") tcp_login mailroster_dovecot)"
check "a wrong password is refused (SCRAM is in force)" "" "$(PGPASSWORD=wrong tcp_login mailrosterd)"
check "the log says what was done" 1 "$(grep -c 'changed .*main.cf' "$T/var/setup/setup.log")"
check "login roles in their groups" "mailroster_dovecot:mailroster_dovecot_dict mailrosterd:mailroster_reader mailrosterd_admin:mailroster_admin" \
    "$(psql -X -At -d mailroster -c "SELECT string_agg(m.rolname || ':' || g.rolname, ' ' ORDER BY m.rolname)
        FROM pg_auth_members a JOIN pg_roles m ON m.oid = a.member JOIN pg_roles g ON g.oid = a.roleid
        WHERE m.rolname IN ('mailrosterd', 'mailrosterd_admin', 'mailroster_dovecot')")"
check "the system passdb is off" "#!include auth-system.conf.ext  # off: mailroster setup" \
    "$(grep auth-system "$DV/conf.d/10-auth.conf")"
check "the test account is gone" "" "$(psql -X -At -d mailroster -c "SELECT name FROM mailroster.domains")"

# ---- provision with mailroster, send with swaks, read back over IMAP
mr() { "$CLI" -s "$T/run/admin" "$@"; }
mr domain add example.test >/dev/null && echo 'demo-password' | mr user add demo@example.test --password-stdin >/dev/null \
    && ok "mailroster provisions demo@example.test" || notok "mailroster domain/user add"
for i in $(seq 1 50); do
    [ -n "$(cd "$QDIR" && postmap -q demo@example.test socketmap:unix:mailroster/socketmap:mailboxes 2>/dev/null)" ] && break
    sleep 0.1
done
home=$(timeout 20 doveadm -c "$STACK_DOVECOT_CONF" user -f home demo@example.test 2>/dev/null)
case $home in "$T/vmail/"*) ok "Dovecot's home from the roster userdb: $home" ;; *) notok "home: [$home]" ;; esac
swaks --server "127.0.0.1:$STACK_SMTP_PORT" --from friend@example.org --to demo@example.test \
    --h-Subject "setup test mail" --body "through mailroster setup" --timeout 20 >"$T/swaks.out" 2>&1 \
    && ok "swaks: the private Postfix accepts the mail" || { notok "swaks"; tail -n 5 "$T/swaks.out" | sed 's/^/#   /'; }
if stack_wait_maildir_file "$home/Maildir" 40 >/dev/null; then ok "delivered into the Maildir"; else notok "not delivered"; fi
if mrs_imap_fetch demo@example.test demo-password "setup test mail" 2>&1 | grep -q 'through mailroster setup'; then
    ok "read back over IMAP"
else notok "IMAP read back"; fi
for i in $(seq 1 50); do
    [ -n "$(psql -X -At -d mailroster -c "SELECT 1 FROM mailroster.quota_usage WHERE username = 'demo@example.test'")" ] && break
    sleep 0.1
done
check "Dovecot's quota dict wrote the usage (its generated password works)" 1 \
    "$(psql -X -At -d mailroster -c "SELECT count(*) FROM mailroster.quota_usage WHERE username = 'demo@example.test' AND messages > 0")"

# ---- second run: nothing to change
mkdir -p "$T/after1"
for f in "${FILES[@]}" "${NEW[@]}"; do cp -p "$f" "$T/after1/$(echo "$f" | tr / _)"; done
: >"$T/reload.calls"
setup >"$T/run2.out" 2>&1; rc=$?
check "second run exits 0" 0 "$rc"
grep -q '^nothing to change' "$T/run2.out" && ok "second run says nothing to change" || { notok "second run changed something"; sed 's/^/#   /' "$T/run2.out"; }
same=1
for f in "${FILES[@]}" "${NEW[@]}"; do cmp -s "$f" "$T/after1/$(echo "$f" | tr / _)" || same=0; done
check "second run leaves every file as it was" 1 "$same"
check "second run reloads nothing" "" "$(cat "$T/reload.calls")"
setup --dry-run >"$T/dry2.out" 2>&1
check "dry run after setup: nothing to change" "nothing to change" "$(cat "$T/dry2.out")"

# ---- one run at a time
flock "$T/var/setup" -c 'sleep 3' & lockpid=$!
sleep 0.5
err=$(setup 2>&1 >/dev/null)
check "a second setup while one runs is refused" "mailroster-setup: another mailroster setup is running (lock on $T/var/setup)" "$err"
wait "$lockpid"

# ---- undo (after an edit by hand, which it reports and keeps aside)
echo "debug = yes" >>"$T/etc-mr/mailroster.conf"
setup --undo >"$T/undo.out" 2>&1; rc=$?
check "undo exits 0" 0 "$rc"
grep -q "^note: $T/etc-mr/mailroster.conf was edited after setup" "$T/undo.out" \
    && ok "undo reports a file edited since setup" || notok "undo: no note about the edited mailroster.conf"
check "... and keeps that version aside" "debug = yes" "$(tail -n 1 "$T/var/setup/edited$T/etc-mr/mailroster.conf" 2>/dev/null)"
check_cmd "undo puts every file back byte for byte (cmp) and removes the new ones" same_as_orig
for f in "${FILES[@]}"; do
    check "undo keeps the mode and owner of $(basename "$f")" "$(stat -c '%a %U %G' "$T/orig/$(echo "$f" | tr / _)")" "$(stat -c '%a %U %G' "$f")"
done

# ---- Debian's own configuration: copies of the host's /etc/postfix and
# /etc/dovecot (their queue directory moved here), wired without reloads
H=$T/hostcopy
mkdir -p "$H/spool"
cp -a /etc/postfix "$H/pf" && cp -a /etc/dovecot "$H/dv"
postconf -c "$H/pf" -e "queue_directory = $H/spool"
"$CLI" setup --postfix-config "$H/pf" --dovecot-config "$H/dv" --config "$H/mr" --var-dir "$H/var" \
    --run-dir "$H/run" --pg-host "$PGHOST" --pg-port "$PGPORT" --sql-dir "$TOP/sql" --mail-user mrvmail \
    --mail-base "$H/vmail" --daemon-user root --reload-command true --no-check >"$H/out" 2>&1
check "setup on copies of Debian's configuration exits 0" 0 "$?"
doveconf -c "$H/dv/dovecot.conf" -n >"$H/doveconf" 2>&1
check "Dovecot reads the result" 0 "$?"
check "... its passdbs and userdb are roster only (PAM and passwd off)" "roster roster roster" \
    "$(awk '/^(passdb|userdb) \{/ { b = 1 } b && $1 == "driver" { printf "%s%s", sep, $3; sep = " "; b = 0 }' "$H/doveconf")"
grep -q "unix_listener $H/spool/private/auth" "$H/doveconf" && ok "... with Postfix's SASL socket below the queue directory" \
    || notok "no SASL listener below the queue directory"
check "Postfix reads the submission service" "submission inet" "$(postconf -c "$H/pf" -M submission/inet 2>&1 | awk '{ print $1, $2 }')"

# ---- nothing outside the temp dir changed
[ -f "$T/mrd.pid" ] && kill "$(cat "$T/mrd.pid")" 2>/dev/null; rm -f "$T/mrd.pid"
check "no system user created (--mail-user, --daemon-user exist)" 0 "$(cat "$T"/run1.out "$T"/run2.out | grep -c 'created system user')"
trap - EXIT
stack_cleanup
if [ "$HOST_BEFORE" = "$(host_sums)" ]; then ok "host's /etc/postfix and /etc/dovecot: unchanged"
else notok "host files changed:"; diff <(echo "$HOST_BEFORE") <(host_sums) | sed 's/^/#   /'; fi
check "nothing in the host's mailroster dirs refers to this run" "" "$(host_mr_refs)"

check "host's /etc/postfix/main.cf unchanged (but alternate_config_directories)" "$PF_HOST_BEFORE" "$(pf_host)"
t_summary
