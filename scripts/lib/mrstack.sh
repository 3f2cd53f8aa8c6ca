# shellcheck shell=bash
# scripts/lib/mrstack.sh - the whole mailroster stack on loopback, for the
# demo and the tests that need Postfix or Dovecot: PostgreSQL with the schema
# and roles, mailrosterd answering Postfix's maps over a socketmap unix
# socket and Dovecot's logins over its auth socket, Dovecot (LMTP + IMAP)
# with the roster auth driver and the shipped auth-roster.conf.ext, and
# Postfix routing with mailrosterd's maps.
# Source after scripts/lib/stack.sh; needs TOP, MRD, STACK_DIR.

# mrs_db: database "mailroster", schema, roles, login roles mrd (the
# daemon, read-only) and mradm (provisioning)
mrs_db() {
    MR_DB=mailroster
    stack_pg_start || return 1
    stack_pg_createdb "$MR_DB" || return 1
    psql -X -q -v ON_ERROR_STOP=1 -d "$MR_DB" -f "$TOP/sql/schema.sql" >/dev/null || return 1
    psql -X -q -v ON_ERROR_STOP=1 -d "$MR_DB" -f "$TOP/sql/roles.sql" >/dev/null || return 1
    psql -X -q -v ON_ERROR_STOP=1 -d "$MR_DB" \
        -c "CREATE ROLE mrd LOGIN IN ROLE mailroster_reader" \
        -c "CREATE ROLE mradm LOGIN IN ROLE mailroster_admin" || return 1
}

mrs_admin_sql() { psql -X -q -v ON_ERROR_STOP=1 -At -U mradm -d "$MR_DB" "$@"; }

# mrs_daemon: mailrosterd with a socketmap unix socket (MRS_SMAP), its
# admin socket (MRS_ADMIN) and an auth socket for Dovecot's roster driver
# (MRS_AUTH; Dovecot's auth process runs as user dovecot). Its userdb
# answers home = mail_base/maildir with the mail user mrvmail's uid and gid
# (MRS_UID, MRS_GID); mail_base is MRS_MAIL_BASE, $STACK_DIR/vmail.
# The auth socket's mode lets user dovecot connect; who may ask is decided
# by auth_allow (peer credentials).
# MRS_CONF_EXTRA: more lines for its configuration (they come last, so
# they win; keep auth_socket: mrs_dovecot points Dovecot at MRS_AUTH).
# The mail_base in effect is also written to
# mailroster.settings.mail_base (migration 0004), which must equal
# mailrosterd's: the schema refuses mailbox homes outside it.
mrs_daemon() {
    local base i
    read -r MRS_UID MRS_GID < <(stack_vmail_user) || return 1
    MRS_MAIL_BASE=$STACK_DIR/vmail
    base=$(printf '%s\n' "${MRS_CONF_EXTRA:-}" | sed -n 's/^ *mail_base *= *//p' | tail -n 1)
    [ -n "$base" ] && MRS_MAIL_BASE=$base
    printf '%s\n' "UPDATE mailroster.settings SET mail_base = :'base';" |
        psql -X -q -v ON_ERROR_STOP=1 -d "$MR_DB" -v base="$MRS_MAIL_BASE" -f - >/dev/null || return 1
    mkdir -p "$STACK_DIR/mr" && chmod 755 "$STACK_DIR/mr"
    MRS_SMAP=$STACK_DIR/mr/socketmap
    MRS_ADMIN=$STACK_DIR/mr/admin
    MRS_AUTH=$STACK_DIR/mr/auth
    MRS_CONF=$STACK_DIR/mr/mailroster.conf
    MRS_LOG=$STACK_DIR/mr/mailrosterd.log
    cat >"$MRS_CONF" <<CONF
database = host=$PGHOST port=$PGPORT dbname=$MR_DB user=mrd
snapshot_file = $STACK_DIR/mr/directory.snapshot
socketmap_listen = unix:$MRS_SMAP
socketmap_mode = 0666
admin_socket = $MRS_ADMIN
admin_database = host=$PGHOST port=$PGPORT dbname=$MR_DB user=mradm
auth_socket = unix:$MRS_AUTH
auth_socket_mode = 0666
auth_allow = root, dovecot
mail_base = $MRS_MAIL_BASE
mail_uid = $MRS_UID
mail_gid = $MRS_GID
${MRS_CONF_EXTRA:-}
CONF
    "$MRD" -f -c "$MRS_CONF" >>"$MRS_LOG" 2>&1 &
    STACK_PIDS+=("$!")
    for i in $(seq 1 200); do
        grep -q "loaded directory" "$MRS_LOG" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "mailrosterd did not start:" >&2
    cat "$MRS_LOG" >&2
    return 1
}

# mrs_dovecot_dict: the shipped conf.d/dovecot files (quota and last_login
# written into PostgreSQL by Dovecot's dict service) with this stack's
# database (login role mrdict, in mailroster_dovecot_dict only), paths and
# mail user (mrvmail); sets MRS_DICT_CONFD and MRS_DICT_INCLUDE, the line to
# put in MRS_DOVECOT_EXTRA.
mrs_dovecot_dict() {
    local d=$STACK_DIR/dovecot-conf
    psql -X -q -v ON_ERROR_STOP=1 -d "$MR_DB" \
        -c "CREATE ROLE mrdict LOGIN PASSWORD 'dict-secret' IN ROLE mailroster_dovecot_dict" || return 1
    mkdir -p "$d" && chmod 755 "$d" || return 1
    sed -e "s|^connect = .*|connect = host=$PGHOST port=$PGPORT dbname=$MR_DB user=mrdict password=dict-secret|" \
        "$TOP/conf.d/dovecot/dict-sql.conf.ext" >"$d/dict-sql.conf.ext" || return 1
    sed -e "s|/etc/dovecot/dict-sql.conf.ext|$d/dict-sql.conf.ext|" \
        -e "s|^\( *\)user = vmail\$|\1user = mrvmail|" -e "s|^\( *\)group = vmail\$|\1group = mrvmail|" \
        "$TOP/conf.d/dovecot/quota-roster.conf.ext" >"$d/quota-roster.conf.ext" || return 1
    chmod 644 "$d"/*
    MRS_DICT_CONFD=$d
    MRS_DICT_INCLUDE="!include $d/quota-roster.conf.ext"
}

# mrs_dovecot: Dovecot with the roster auth driver: the module built next
# to $MRD (MRS_AUTH_MODULE overrides it), loaded through
# STACK_DOVECOT_AUTH_MODULE, and the shipped conf.d/dovecot/auth-roster.conf.ext
# with mailrosterd's auth socket (mrs_daemon) for /run/mailroster/auth.
# MRS_DOVECOT_EXTRA: more lines for Dovecot's configuration.
mrs_dovecot() {
    local d=$STACK_DIR/dovecot-conf
    STACK_DOVECOT_AUTH_MODULE=${MRS_AUTH_MODULE:-$(dirname "$MRD")/.libs/libauthdb_roster.so}
    if [ ! -f "$STACK_DOVECOT_AUTH_MODULE" ]; then
        echo "no Dovecot auth module at $STACK_DOVECOT_AUTH_MODULE (configure builds it when dovecot-dev is installed)" >&2
        return 1
    fi
    mkdir -p "$d" && chmod 755 "$d" || return 1
    sed -e "s|/run/mailroster/auth|$MRS_AUTH|g" "$TOP/conf.d/dovecot/auth-roster.conf.ext" \
        >"$d/auth-roster.conf.ext" || return 1
    chmod 644 "$d/auth-roster.conf.ext"
    # the substitution must have hit, or Dovecot would ask another socket
    if ! grep -qF "socket=$MRS_AUTH" "$d/auth-roster.conf.ext"; then
        echo "conf.d/dovecot/auth-roster.conf.ext: no socket=/run/mailroster/auth to point at $MRS_AUTH" >&2
        return 1
    fi
    MRS_ROSTER_CONF=$d/auth-roster.conf.ext
    stack_dovecot_start "!include $MRS_ROSTER_CONF
$(mrs__dovecot_asan "$STACK_DOVECOT_AUTH_MODULE")
${MRS_DOVECOT_EXTRA:-}"
}

# mrs__dovecot_asan MODULE: a module from an AddressSanitizer build (e.g.
# build-asan) loads only into a process whose first library is the ASan
# runtime: Dovecot's auth processes get it preloaded, so the driver runs
# under the sanitizers there too (reports go to Dovecot's log; leak checks
# are off: they would report Dovecot's own allocations). Prints nothing for
# a plain build.
mrs__dovecot_asan() {
    local asan env
    asan=$(ldd "$1" 2>/dev/null | awk '$1 ~ /^libasan\.so/ && $3 ~ /^\// { print $3; exit }')
    [ -n "$asan" ] || return 0
    env="/usr/bin/env LD_PRELOAD=$asan ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1"
    cat <<EOF
service auth {
  executable = $env /usr/lib/dovecot/auth
  vsz_limit = 0
}
service auth-worker {
  executable = $env /usr/lib/dovecot/auth -w
  vsz_limit = 0
}
EOF
}

# mrs_mail MAIN_CF_EXTRA: Dovecot (mrs_dovecot) and Postfix; Postfix asks
# mailrosterd which domains, mailboxes, aliases and sender logins exist and
# delivers over LMTP (stack.sh's virtual_transport), so Dovecot alone
# decides where the mail goes: the home, uid and gid its userdb (mailrosterd)
# answers. Postfix's mailboxes map only says that the mailbox exists.
mrs_mail() {
    mrs_dovecot || return 1
    local s="socketmap:unix:$MRS_SMAP"
    stack_postfix_start "virtual_mailbox_domains = $s:domains
virtual_mailbox_maps = $s:mailboxes
virtual_alias_maps = $s:aliases
smtpd_sender_login_maps = $s:senders
${1:-}" || return 1
}

# mailroster CLI against this stack's admin socket
mrs_cli() { MAILROSTER_SOCKET=$MRS_ADMIN "$MRS_CLI" "$@"; }
MRS_CLI=${MRS_CLI:-$(dirname "$MRD")/mailroster}

# mrs_home ADDRESS: the home Dovecot's userdb (the roster driver, so
# mailrosterd) gives the account
mrs_home() { timeout 20 doveadm -c "$STACK_DOVECOT_CONF" user -f home "$1"; }

# mrs_imap_fetch ADDRESS PASSWORD SUBJECT: log in over IMAP and print the
# message with that subject; fails if there is none
mrs_imap_fetch() {
    python3 - "$STACK_IMAP_PORT" "$1" "$2" "$3" <<'PY'
import imaplib, sys
port, user, pw, subject = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
m = imaplib.IMAP4("127.0.0.1", port)
m.login(user, pw)
m.select("INBOX")
typ, data = m.search(None, "SUBJECT", '"%s"' % subject)
ids = data[0].split()
if not ids:
    sys.exit("no message with subject %r in %s's INBOX" % (subject, user))
typ, msg = m.fetch(ids[-1], "(RFC822)")
sys.stdout.write(msg[0][1].decode("utf-8", "replace"))
m.logout()
PY
}
