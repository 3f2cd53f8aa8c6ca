# shellcheck shell=bash
# scripts/lib/mrstack.sh - the whole mailroster stack on loopback, for the
# demo and the end-to-end test: PostgreSQL with the schema and roles,
# mailrosterd answering Postfix's maps over a socketmap unix socket, Dovecot
# (LMTP + IMAP), and Postfix routing with mailrosterd's maps.
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

# mrs_daemon: mailrosterd with a socketmap unix socket; sets MRS_SMAP.
# MRS_CONF_EXTRA: more lines for its configuration.  A mail_base there is
# also written to mailroster.settings.mail_base (migration 0004), which must
# equal mailrosterd's: the schema refuses mailbox homes outside it.
mrs_daemon() {
    local base
    base=$(printf '%s\n' "${MRS_CONF_EXTRA:-}" | sed -n 's/^ *mail_base *= *//p' | tail -n 1)
    if [ -n "$base" ]; then
        printf '%s\n' "UPDATE mailroster.settings SET mail_base = :'base';" |
            psql -X -q -v ON_ERROR_STOP=1 -d "$MR_DB" -v base="$base" -f - >/dev/null || return 1
    fi
    mkdir -p "$STACK_DIR/mr" && chmod 755 "$STACK_DIR/mr"
    MRS_SMAP=$STACK_DIR/mr/socketmap
    MRS_ADMIN=$STACK_DIR/mr/admin
    MRS_CONF=$STACK_DIR/mr/mailroster.conf
    MRS_LOG=$STACK_DIR/mr/mailrosterd.log
    cat >"$MRS_CONF" <<CONF
database = host=$PGHOST port=$PGPORT dbname=$MR_DB user=mrd
snapshot_file = $STACK_DIR/mr/directory.snapshot
socketmap_listen = unix:$MRS_SMAP
socketmap_mode = 0666
admin_socket = $MRS_ADMIN
admin_database = host=$PGHOST port=$PGPORT dbname=$MR_DB user=mradm
${MRS_CONF_EXTRA:-}
CONF
    "$MRD" -f -c "$MRS_CONF" >>"$MRS_LOG" 2>&1 &
    STACK_PIDS+=("$!")
    local i
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

# mrs_mail MAIN_CF_EXTRA: Dovecot and Postfix; Postfix asks mailrosterd
# which domains, mailboxes, aliases and sender logins exist.
# MRS_DOVECOT_EXTRA: more lines for Dovecot's configuration.
mrs_mail() {
    read -r MRS_UID MRS_GID < <(stack_vmail_user) || return 1
    MRS_PASSWD=$STACK_DIR/dovecot-users
    : >"$MRS_PASSWD"
    chmod 644 "$MRS_PASSWD"
    stack_dovecot_start "$(stack_dovecot_passwd_file_snippet "$MRS_PASSWD")
${MRS_DOVECOT_EXTRA:-}" || return 1
    local s="socketmap:unix:$MRS_SMAP"
    stack_postfix_start "virtual_mailbox_domains = $s:domains
virtual_mailbox_maps = $s:mailboxes
virtual_alias_maps = $s:aliases
smtpd_sender_login_maps = $s:senders
virtual_uid_maps = static:$MRS_UID
virtual_gid_maps = static:$MRS_GID
${1:-}" || return 1
}

# mailroster CLI against this stack's admin socket
mrs_cli() { MAILROSTER_SOCKET=$MRS_ADMIN "$MRS_CLI" "$@"; }
MRS_CLI=${MRS_CLI:-$(dirname "$MRD")/mailroster}

# mrs_dovecot_user ADDRESS: until the roster auth driver exists, Dovecot
# learns the account from a passwd-file holding the hash mailroster stored
# (the CLI hashed it with libxcrypt; Dovecot's CRYPT scheme verifies it);
# its home is the mailbox's maildir as mailrosterd answers it, so Postfix
# and Dovecot agree.
mrs_dovecot_user() {
    local addr=$1 maildir hash
    maildir=$(postmap -q "$addr" "socketmap:unix:$MRS_SMAP:mailboxes") || return 1
    hash=$(psql -X -At -d "$MR_DB" -c "SELECT password FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id WHERE m.local_part || '@' || d.name = '$addr'") || return 1
    [ -n "$hash" ] || { echo "no password stored for $addr" >&2; return 1; }
    # passwd-file with scheme=CRYPT: the {CRYPT} prefix goes
    echo "$addr:${hash#\{CRYPT\}}:$MRS_UID:$MRS_GID::$STACK_DIR/vmail/${maildir%/}::" >>"$MRS_PASSWD"
    MRS_HOME=$STACK_DIR/vmail/${maildir%/}
}

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
