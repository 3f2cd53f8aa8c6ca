# shellcheck shell=bash
# scripts/setup/wire.sh - the new text of every configuration file, staged
# (files.sh): mailroster.conf and its pgpass, Postfix, Dovecot.
# Sourced by mailroster-setup, whose variables it uses.

# mailroster.conf (from the shipped file the first time) and the daemon's
# passwords, readable by mailrosterd only
wire_mailroster() {
    MRCONF=$MR_DIR/mailroster.conf
    stage "$MRCONF" 0640 "root:$DAEMON_USER"; s=$S
    [ -s "$s" ] || cp -- "${SHIPPED[mailroster.conf]}" "$s"
    conf_set "$s" database "$DBCONN user=$ROLE_DAEMON passfile=$PGPASS"
    conf_set "$s" admin_database "$DBCONN user=$ROLE_ADMIN passfile=$PGPASS"
    conf_set "$s" snapshot_file "$VAR_DIR/directory.snapshot"
    # below Postfix's queue directory: chrooted smtpd/cleanup/rewrite find them there
    conf_set "$s" socketmap_listen "$SMAP"
    conf_set "$s" policy_listen "$POLICY"
    conf_set "$s" admin_socket "$RUN_DIR/admin"
    conf_set "$s" auth_socket "unix:$RUN_DIR/auth"
    # who may ask is decided by auth_allow (peer credentials), not the mode
    conf_set "$s" auth_socket_mode 0666
    conf_set "$s" auth_allow "root, dovecot"
    conf_set "$s" mail_base "$MAIL_BASE"
    conf_set "$s" mail_uid "$MAIL_UID"
    conf_set "$s" mail_gid "$MAIL_GID"

    # --- the daemon's passwords: readable by mailrosterd only
    stage "$PGPASS" 0600 "$DAEMON_USER:$DAEMON_USER"; s=$S
    printf '*:*:%s:%s:%s\n*:*:%s:%s:%s\n' "$DB_NAME" "$ROLE_DAEMON" "$PW_DAEMON" \
        "$DB_NAME" "$ROLE_ADMIN" "$PW_ADMIN" >"$s"
}

# Postfix: main.cf gets the snippet's parameters with the sockets relative
# to the queue directory (where every Postfix daemon runs, chrooted or not);
# master.cf the submission service
wire_postfix() {
    pf=$STAGE/pf
    mkdir -p "$pf"
    cp -p -- "$PF_DIR/main.cf" "$PF_DIR/master.cf" "$pf/"
    awk '/^#/ || /^[ \t]*$/ { if (p) { print p; p = "" } next }
         /^[ \t]/ { sub(/^[ \t]+/, " "); p = p $0; next }
         { if (p) print p; p = $0 }
         END { if (p) print p }' "${SHIPPED[main.cf.snippet]}" |
        sed -e "s|unix:/run/mailroster/socketmap|unix:mailroster/socketmap|g" \
            -e "s|unix:/run/mailroster/policy|unix:mailroster/policy|g" >"$STAGE/main.params"
    while IFS= read -r line; do
        postconf -c "$pf" -e "$line" || die "postconf -e failed: $line"
    done <"$STAGE/main.params"
    postconf -c "$pf" -e "smtpd_sasl_type = dovecot" "smtpd_sasl_path = private/auth" \
        "virtual_transport = lmtp:unix:private/dovecot-lmtp" || die "postconf -e failed"
    # master.cf: the submission block
    svc=$(awk '!/^#/ && !/^[ \t]/ && NF >= 8 { $1 = port; print; exit }' port="$SUBMISSION" \
        "${SHIPPED[master.cf.submission]}")
    [ -n "$svc" ] || die "no service line in master.cf.submission"
    postconf -c "$pf" -Me "$SUBMISSION/inet = $svc" || die "postconf -M failed"
    sed -n 's/^[ \t]*-o[ \t]*//p' "${SHIPPED[master.cf.submission]}" | while IFS= read -r o; do
        postconf -c "$pf" -P "$SUBMISSION/inet/$o" || die "postconf -P failed: $o"
    done
    for f in main.cf master.cf; do
        stage "$PF_DIR/$f"; s=$S
        cp -- "$pf/$f" "$s"
    done
}

# Dovecot: the shipped snippets with this host's paths and user
wire_dovecot() {
    stage "$DV_DIR/auth-roster.conf.ext" 0644 root:root; s=$S
    sed "s|/run/mailroster/auth|$RUN_DIR/auth|g" "${SHIPPED[auth-roster.conf.ext]}" >"$s"
    stage "$DV_DIR/quota-roster.conf.ext" 0644 root:root; s=$S
    sed -e "s|/etc/dovecot/dict-sql.conf.ext|$DICT_CONF|" \
        -e "s|^\( *\)user = vmail\$|\1user = $MAIL_USER|" -e "s|^\( *\)group = vmail\$|\1group = $MAIL_GROUP|" \
        "${SHIPPED[quota-roster.conf.ext]}" >"$s"
    # the dict's password: only the dict service (user dovecot) reads this
    stage "$DICT_CONF" 0640 root:dovecot; s=$S
    sed "s|^connect = .*|connect = $DBCONN user=$ROLE_DICT password=$PW_DICT|" \
        "${SHIPPED[dict-sql.conf.ext]}" >"$s"
    # shared mailboxes and sieve scripts: included where Pigeonhole's LMTP
    # plugin (dovecot-sieve) is installed, as Dovecot would not start
    # without it
    stage "$DV_DIR/shares-sieve-roster.conf.ext" 0644 root:root; s=$S
    sed "s|/etc/dovecot/dict-sql.conf.ext|$DICT_CONF|" "${SHIPPED[shares-sieve-roster.conf.ext]}" >"$s"
    dv_shares='!include shares-sieve-roster.conf.ext'
    [ -f /usr/lib/dovecot/modules/lib90_sieve_plugin.so ] || dv_shares="#$dv_shares  # needs dovecot-sieve"
    stage "$DV_DIR/mailroster.conf.ext" 0644 root:root; s=$S
    cat >"$s" <<EOF
# mailroster.conf.ext - written by mailroster setup: logins and mailboxes
# from mailrosterd (roster driver), usage and last login into PostgreSQL,
# shared mailboxes and sieve scripts from it, SASL and LMTP for Postfix
# below its queue directory ($QDIR).
!include auth-roster.conf.ext
!include quota-roster.conf.ext
$dv_shares
mail_location = maildir:~/Maildir
# the mail user is a system user
first_valid_uid = $MAIL_UID
first_valid_gid = $MAIL_GID
service auth {
  unix_listener $QDIR/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
service lmtp {
  unix_listener $QDIR/private/dovecot-lmtp {
    mode = 0600
    user = postfix
    group = postfix
  }
}
EOF
    stage "$DV_DIR/dovecot.conf"; s=$S
    grep -qx '!include mailroster.conf.ext' "$s" || printf '\n# mailroster (mailroster setup)\n!include mailroster.conf.ext\n' >>"$s"
    # the system passdb/userdb would answer for addresses mailroster knows
    if [ -f "$DV_DIR/conf.d/10-auth.conf" ]; then
        stage "$DV_DIR/conf.d/10-auth.conf"; s=$S
        sed -i 's/^!include auth-system\.conf\.ext/#!include auth-system.conf.ext  # off: mailroster setup/' "$s"
    fi
}
