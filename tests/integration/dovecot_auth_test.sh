#!/usr/bin/env bash
# dovecot_auth_test.sh - the `roster` Dovecot auth driver (dovecot-plugin/)
# loaded by a real private Dovecot 2.3, asking a real mailrosterd whose
# accounts the mailroster command provisioned: doveadm auth test / user,
# case folding, disabled mailbox and domain, services, master users,
# iteration, mailrosterd down and back without restarting Dovecot, and an
# IMAP login reading a message delivered over LMTP.
#
# Dovecot 2.3 loads auth drivers only from its compiled-in module dir
# (/usr/lib/dovecot/modules/auth): scripts/lib/stack.sh runs Dovecot in a
# private mount namespace that sees the built module there
# (STACK_DOVECOT_AUTH_MODULE); the host's dir is left as it was.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
CLI=${CLI:-$(dirname "$MRD")/mailroster}
STACK_DOVECOT_AUTH_MODULE=${MOD_SRC:-$(dirname "$MRD")/.libs/libauthdb_roster.so}
. "$TOP/tests/integration/begin.sh" mr-dvauth

[ -f "$STACK_DOVECOT_AUTH_MODULE" ] || { echo "Bail out! no module at $STACK_DOVECOT_AUTH_MODULE (build with dovecot-dev)"; exit 1; }
HOST_MODS_BEFORE=$(ls -l --time-style=+%s /usr/lib/dovecot/modules/auth | md5sum)

# --- mailrosterd with its auth socket ------------------------------------------------
stack_pg_start || exit 1
mr_setup_db || exit 1
read -r VUID VGID < <(stack_vmail_user) || exit 1
ADM=$STACK_DIR/mr/admin
AUTH=$STACK_DIR/mr/auth
CONF=$STACK_DIR/mailroster.conf
LOG=$STACK_DIR/mailrosterd.log
# Dovecot's auth process runs as user dovecot
mr_write_conf "$CONF" "admin_socket = $ADM" \
    "admin_database = host=$PGHOST port=$PGPORT dbname=$MR_DB user=mradm" \
    "auth_socket = unix:$AUTH" "auth_socket_mode = 0666" "auth_allow = root, dovecot" \
    "mail_base = $STACK_DIR/vmail" "mail_uid = $VUID" "mail_gid = $VGID"
mr_start "$CONF" "$LOG" || { notok "mailrosterd starts"; t_summary; exit 1; }
cli() { MAILROSTER_SOCKET=$ADM "$CLI" "$@"; }

# --- accounts ------------------------------------------------------------------------
cli domain add example.com quota=1G >/dev/null
printf 'pw one\n' | cli user add alice@example.com --password-stdin >/dev/null
printf 'pw two\n' | cli user add bob@example.com --password-stdin --scheme bcrypt --bcrypt-cost 5 >/dev/null
printf 'pw three\n' | cli user add carol@example.com --password-stdin >/dev/null
cli user disable carol@example.com reason=abuse >/dev/null
H6=$(doveadm pw -s SHA512-CRYPT -p 'eve pw')
cli user add eve@example.com services=imap quota=50M quota_messages=100 uid=7001 gid=7002 \
    home=/home/eve 'mail=maildir:~/Mail' path_override=yes --password-hash "$H6" >/dev/null
cli domain add other.example >/dev/null
cli user add zed@other.example --password-hash "$H6" >/dev/null
cli domain disable other.example >/dev/null
cli domain add foreign.example >/dev/null
cli user add kim@foreign.example --password-hash "$H6" >/dev/null
cli user add "o'hara@example.com" --password-hash "$H6" >/dev/null
cli domain add 'bücher.example' >/dev/null
cli user add 'leser@bücher.example' --password-hash "$H6" >/dev/null
UTF8_OK=no
cli user add 'jürgen@example.com' --password-hash "$H6" >/dev/null 2>&1 && UTF8_OK=yes
HM=$(doveadm pw -s BLF-CRYPT -r 5 -p 'master pw')
cli master add webmail "password=$HM" domains=example.com >/dev/null
cli user add quinn@example.com quota_messages=1 --password-hash "$H6" >/dev/null
# the other schemes mailroster stores, hashed by Dovecot itself; and an
# account without a password (receives mail, cannot log in)
H5=$(doveadm pw -s SHA256-CRYPT -p 'sha256 pw')
HA=$(doveadm pw -s ARGON2ID -p 'argon pw' 2>/dev/null)
cli user add sam@example.com --password-hash "$H5" >/dev/null
[ -n "$HA" ] && cli user add ada@example.com --password-hash "$HA" >/dev/null
cli user add nopw@example.com >/dev/null
check "accounts provisioned" "alice@example.com" "$(sql -c "SELECT local_part || '@example.com' FROM mailroster.mailboxes WHERE local_part = 'alice'")"

# --- Dovecot with the shipped auth-roster.conf.ext ------------------------------------------
mkdir -p "$STACK_DIR/dovecot-conf" && chmod 755 "$STACK_DIR/dovecot-conf"
sed -e "s|/run/mailroster/auth|$AUTH|g" -e "s|timeout=2s|timeout=1s|g" \
    "$TOP/conf.d/dovecot/auth-roster.conf.ext" >"$STACK_DIR/dovecot-conf/auth-roster.conf.ext"
chmod 644 "$STACK_DIR/dovecot-conf/auth-roster.conf.ext"
# VALGRIND=1: Dovecot's auth process (and so the module) runs under valgrind
AUTH_SERVICE=
if [ "${VALGRIND:-0}" = 1 ]; then
    install -d -o dovecot -m 0755 "$STACK_DIR/vg"
    AUTH_SERVICE="service auth {
  executable = /usr/bin/valgrind -q --vgdb=no --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=30 --log-file=$STACK_DIR/vg/auth.%p.log /usr/lib/dovecot/auth
}
import_environment = \$import_environment"
fi
stack_dovecot_start "!include $STACK_DIR/dovecot-conf/auth-roster.conf.ext
$AUTH_SERVICE
mail_plugins = \$mail_plugins quota
plugin {
  quota = maildir:User quota
}" || { notok "Dovecot starts with the roster driver"; t_summary; exit 1; }
DC=$STACK_DOVECOT_CONF
DLOG=$STACK_DOVECOT_LOG
ok "Dovecot starts with the roster driver"
check "the module is loaded from Dovecot's auth module dir" "1" \
    "$(grep -c "libauthdb_roster.so" "/proc/$(pgrep -P "$(cat "$STACK_DIR/dovecot/run/master.pid")" -f "dovecot/auth\$" || echo 0)/maps" 2>/dev/null | awk '{print ($1>0)}')"

# auth_test USER PASS [doveadm args]: doveadm auth test's output, one line.
# Each from its own loopback address: Dovecot's auth penalty (per remote IP,
# up to 15 s after repeated failures) would otherwise slow every refusal.
auth_test() {
    local u=$1 p=$2; shift 2
    timeout 30 doveadm -c "$DC" auth test -x "rip=127.$((RANDOM % 250)).$((RANDOM % 250)).$((RANDOM % 250 + 1))" \
        "$@" "$u" "$p" 2>&1 | tr '\n\t' '  ' | sed 's/ *$//'
}
# log_since MARK: Dovecot's log lines after line MARK
mark() { wc -l <"$DLOG"; }
log_since() { tail -n +"$(( $1 + 1 ))" "$DLOG"; }

# --- passdb ----------------------------------------------------------------------------
m=$(mark)
out=$(auth_test alice@example.com 'pw one')
case $out in *"passdb: alice@example.com auth succeeded"*) ok "right password (yescrypt)" ;; *) notok "right password: $out" ;; esac
case $out in *"user=alice@example.com"*) ok "canonical user returned" ;; *) notok "canonical user: $out" ;; esac
out=$(auth_test bob@example.com 'pw two')
case $out in *"auth succeeded"*) ok "right password (bcrypt)" ;; *) notok "bcrypt: $out" ;; esac
out=$(auth_test eve@example.com 'eve pw')
case $out in *"auth succeeded"*) ok "right password (SHA512-CRYPT)" ;; *) notok "sha512: $out" ;; esac
out=$(auth_test sam@example.com 'sha256 pw')
case $out in *"auth succeeded"*) ok "right password (SHA256-CRYPT)" ;; *) notok "sha256: $out" ;; esac
if [ -n "$HA" ]; then
    out=$(auth_test ada@example.com 'argon pw')
    case $out in *"auth succeeded"*) ok "right password (ARGON2ID)" ;; *) notok "argon2id: $out" ;; esac
else
    notok "right password (ARGON2ID): this Dovecot cannot make an ARGON2ID hash"
fi
m=$(mark)
out=$(auth_test nopw@example.com 'anything')
case $out in *"auth failed"*) ok "an account without a password cannot log in" ;; *) notok "no password: $out" ;; esac
case $out in *temp*) notok "no password is not a temporary failure: $out" ;; *) ok "no password is not a temporary failure" ;; esac
check "no password: the reason in Dovecot's log" "1" "$(log_since "$m" | grep -c 'nopw@example.com.*no password')"
out=$(auth_test alice@example.com 'wrong')
case $out in *"auth failed"*) ok "wrong password fails" ;; *) notok "wrong password: $out" ;; esac
case $out in *temp*) notok "wrong password is not temporary: $out" ;; *) ok "wrong password is not a temporary failure" ;; esac
check "wrong password logged as a mismatch" "1" "$(log_since "$m" | grep -c 'alice@example.com.*Password mismatch')"

m=$(mark)
out=$(auth_test nobody@example.com 'x')
case $out in *"auth failed"*) ok "unknown user fails" ;; *) notok "unknown user: $out" ;; esac
check "unknown user logged" "1" "$(log_since "$m" | grep -c 'nobody@example.com.*unknown user')"

m=$(mark)
out=$(auth_test carol@example.com 'pw three')
case $out in *"auth failed"*) ok "disabled mailbox fails with the right password" ;; *) notok "disabled mailbox: $out" ;; esac
check "disabled mailbox: reason in Dovecot's log" "1" \
    "$(log_since "$m" | grep -c 'carol@example.com.*disabled: mailbox disabled: abuse')"
m=$(mark)
out=$(auth_test zed@other.example 'eve pw')
case $out in *"auth failed"*) ok "disabled domain fails" ;; *) notok "disabled domain: $out" ;; esac
check "disabled domain: reason in Dovecot's log" "1" \
    "$(log_since "$m" | grep -c 'zed@other.example.*disabled: domain disabled')"

m=$(mark)
out=$(auth_test eve@example.com 'eve pw' -x service=pop3)
case $out in *"auth failed"*) ok "service not allowed (pop3) fails" ;; *) notok "pop3 for eve: $out" ;; esac
check "service refusal: reason in Dovecot's log" "1" \
    "$(log_since "$m" | grep -c 'eve@example.com.*denied: service pop3 not allowed')"
out=$(auth_test eve@example.com 'eve pw' -x service=imap)
case $out in *"auth succeeded"*) ok "allowed service (imap) works" ;; *) notok "imap for eve: $out" ;; esac

out=$(auth_test 'Alice@Example.COM' 'pw one')
case $out in *"auth succeeded"*"user=alice@example.com"*) ok "case folded: Alice@Example.COM logs in as alice@example.com" ;;
    *) notok "case folding: $out" ;; esac

out=$(auth_test "o'hara@example.com" 'eve pw')
case $out in *"auth succeeded"*) ok "an apostrophe in the local part logs in" ;; *) notok "apostrophe: $out" ;; esac
out=$(auth_test 'leser@bücher.example' 'eve pw')
case $out in *"auth succeeded"*"user=leser@xn--bcher-kva.example"*) ok "a U-label domain logs in as its A-label" ;; *) notok "U-label: $out" ;; esac
if [ "$UTF8_OK" = yes ]; then
    out=$(auth_test 'jürgen@example.com' 'eve pw')
    case $out in *"auth succeeded"*) ok "a UTF-8 local part logs in" ;; *) notok "UTF-8 local part: $out" ;; esac
else
    ok "# SKIP UTF-8 local parts: mailroster refuses them here"
fi

out=$(timeout 30 doveadm -c "$DC" auth login -x "rip=127.9.9.9" alice@example.com 'pw one' 2>&1 | tr '\n\t' '  ')
case $out in *"passdb: alice@example.com auth succeeded"*"userdb extra fields"*"home=$STACK_DIR/vmail/"*) ok "doveadm auth login: passdb then userdb" ;;
    *) notok "auth login: $out" ;; esac

# many logins at once share the one connection (pipelined by request id)
pids=()
for i in $(seq 1 24); do
    if [ $((i % 2)) = 0 ]; then u=alice@example.com p='pw one'; else u=bob@example.com p='pw two'; fi
    ( auth_test "$u" "$p" >"$STACK_DIR/par.$i" ) &
    pids+=("$!")
done
wait "${pids[@]}"
check "24 concurrent logins all succeed" "24" "$(grep -l 'auth succeeded' "$STACK_DIR"/par.* | wc -l)"

# --- master users ------------------------------------------------------------------------
m=$(mark)
out=$(auth_test 'alice@example.com*webmail' 'master pw')
case $out in *"auth succeeded"*"user=alice@example.com"*) ok "master login alice*webmail" ;; *) notok "master login: $out" ;; esac
case $out in *"master_user=webmail"*|*"auth_user=webmail"*) ok "master user recorded" ;; *) notok "master user field: $out" ;; esac
out=$(auth_test 'alice@example.com*webmail' 'wrong')
case $out in *"auth failed"*) ok "master with wrong password fails" ;; *) notok "master wrong pw: $out" ;; esac
out=$(auth_test 'carol@example.com*webmail' 'master pw')
case $out in *"auth failed"*) ok "master on a disabled target fails" ;; *) notok "master disabled target: $out" ;; esac
out=$(auth_test 'zed@other.example*webmail' 'master pw')
case $out in *"auth failed"*) ok "master on a target in a disabled domain fails" ;; *) notok "master disabled domain: $out" ;; esac
out=$(auth_test 'kim@foreign.example*webmail' 'master pw')
case $out in *"auth failed"*) ok "master outside its domains fails" ;; *) notok "master foreign: $out" ;; esac
check "master refusal: reason in Dovecot's log" "1" \
    "$(log_since "$m" | grep -c 'roster(webmail,.*master): denied: target outside the master user.s domains')"
check "master uses are logged by mailrosterd" "1" \
    "$(grep -c 'auth: master user webmail for alice@example.com (imap): allowed\|auth: master user webmail for alice@example.com ([a-z-]*): allowed' "$LOG" | awk '{print ($1>0)}')"

# --- userdb ---------------------------------------------------------------------------
ALICE_DIR=$(sql -c "SELECT maildir FROM mailroster.mailboxes WHERE local_part = 'alice'")
uf() { timeout 20 doveadm -c "$DC" user -f "$2" "$1" 2>&1; }
check "userdb: home" "$STACK_DIR/vmail/${ALICE_DIR%/}" "$(uf alice@example.com home)"
check "userdb: uid (mail_uid)" "$VUID" "$(uf alice@example.com uid)"
check "userdb: gid (mail_gid)" "$VGID" "$(uf alice@example.com gid)"
check "userdb: quota_rule (domain quota)" "*:storage=1073741824B" "$(uf alice@example.com quota_rule)"
check "userdb: eve's own home" "/home/eve" "$(uf eve@example.com home)"
check "userdb: eve's mail" "maildir:~/Mail" "$(uf eve@example.com mail)"
check "userdb: eve's uid/gid" "7001 7002" "$(uf eve@example.com uid) $(uf eve@example.com gid)"
check "userdb: eve's quota_rule, quota_rule2" "*:storage=52428800B *:messages=100" \
    "$(uf eve@example.com quota_rule) $(uf eve@example.com quota_rule2)"
check "userdb: canonical user" "alice@example.com" "$(uf Alice@Example.COM user)"
timeout 20 doveadm -c "$DC" user nobody@example.com >/dev/null 2>&1
check "userdb: unknown user exits EX_NOUSER" "67" "$?"
timeout 20 doveadm -c "$DC" user carol@example.com >/dev/null 2>&1
check "userdb: disabled mailbox is unknown" "67" "$?"
check "iterate: doveadm user '*' (enabled mailboxes of enabled domains)" \
    "$( [ -n "$HA" ] && printf 'ada@example.com ')alice@example.com bob@example.com eve@example.com $( [ "$UTF8_OK" = yes ] && printf 'jürgen@example.com ')kim@foreign.example leser@xn--bcher-kva.example nopw@example.com o'hara@example.com quinn@example.com sam@example.com" \
    "$(timeout 20 doveadm -c "$DC" user '*' 2>&1 | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"

# --- IMAP login reading a message delivered over LMTP ---------------------------------------
lmtp_send() { # RCPT SUBJECT: prints the LMTP reply to the message
    python3 - "$STACK_LMTP_SOCKET" "$1" "$2" <<'PY'
import smtplib, sys
sock, rcpt, subject = sys.argv[1:4]
c = smtplib.LMTP(sock)
msg = "From: t@example.net\r\nTo: %s\r\nSubject: %s\r\n\r\nhello from the roster test\r\n" % (rcpt, subject)
try:
    c.sendmail("t@example.net", [rcpt], msg)
    print("delivered")
except smtplib.SMTPRecipientsRefused as e:
    print("refused", list(e.recipients.values())[0][0], list(e.recipients.values())[0][1].decode())
except smtplib.SMTPException as e:
    print("error", e)
c.quit()
PY
}
imap_read() { # USER PASS SUBJECT: the subject line of that message, or the error
    python3 - "$STACK_IMAP_PORT" "$1" "$2" "$3" <<'PY'
import imaplib, sys
port, user, pw, subject = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
m = imaplib.IMAP4("127.0.0.1", port)
try:
    m.login(user, pw)
except imaplib.IMAP4.error as e:
    print("login failed:", e)
    sys.exit(0)
m.select("INBOX")
typ, data = m.search(None, "SUBJECT", '"%s"' % subject)
ids = data[0].split()
if not ids:
    print("no message")
else:
    typ, msg = m.fetch(ids[-1], "(BODY[HEADER.FIELDS (SUBJECT)])")
    print(msg[0][1].decode().strip())
m.logout()
PY
}
check "LMTP delivery to alice (roster userdb)" "delivered" "$(lmtp_send Alice@Example.COM 'roster one')"
check "IMAP login as Alice@Example.COM reads it" "Subject: roster one" "$(imap_read Alice@Example.COM 'pw one' 'roster one')"
check "the message lies in alice's home from the userdb, owned by mail_uid" "1 $VUID" \
    "$(find "$STACK_DIR/vmail/${ALICE_DIR%/}/Maildir" -type f -path '*/cur/*' -uid "$VUID" | wc -l) $VUID"
case $(imap_read carol@example.com 'pw three' x) in "login failed"*) ok "a disabled user cannot log in over IMAP" ;; *) notok "carol IMAP" ;; esac
case $(lmtp_send carol@example.com 'to carol') in "refused 550"*) ok "LMTP to a disabled mailbox: user unknown" ;; *) notok "LMTP carol: $(lmtp_send carol@example.com 'to carol')" ;; esac

check "LMTP: quinn's first message (quota_rule2=*:messages=1 from the userdb)" "delivered" "$(lmtp_send quinn@example.com 'q1')"
case $(lmtp_send quinn@example.com 'q2') in "refused 552"*|"error (552"*|*"Quota exceeded"*) ok "LMTP past the userdb's quota is refused by the quota plugin" ;;
    *) notok "quota: $(lmtp_send quinn@example.com 'q3')" ;; esac

# --- mailrosterd down, then back, Dovecot untouched -----------------------------------------
mr_stop
m=$(mark)
out=$(auth_test alice@example.com 'pw one')
case $out in *"auth failed"*) ok "mailrosterd down: login fails" ;; *) notok "down: $out" ;; esac
case $out in *temp*) ok "mailrosterd down: a temporary failure, not a wrong password" ;; *) notok "down, not temp: $out" ;; esac
check "mailrosterd down: internal error in Dovecot's log" "1" \
    "$(log_since "$m" | grep -c 'Error: roster(alice@example.com.*connect(.*) failed' | awk '{print ($1>0)}')"
check "mailrosterd down: no password mismatch logged" "0" "$(log_since "$m" | grep -c 'Password mismatch')"
timeout 20 doveadm -c "$DC" user alice@example.com >/dev/null 2>&1
check "mailrosterd down: userdb tempfails (EX_TEMPFAIL)" "75" "$?"
case $(imap_read alice@example.com 'pw one' x) in *UNAVAILABLE*|*"Temporary"*|*"temporary"*) ok "mailrosterd down: IMAP says temporary" ;;
    *) notok "IMAP while down: $(imap_read alice@example.com 'pw one' x)" ;; esac
mr_start "$CONF" "$LOG" || notok "mailrosterd restarts"
got=""
for i in $(seq 1 50); do
    out=$(auth_test alice@example.com 'pw one')
    case $out in *"auth succeeded"*) got=yes; break ;; esac
    sleep 0.1
done
check "mailrosterd back: logins work again without restarting Dovecot" "yes" "$got"
check "mailrosterd back: userdb too" "$VUID" "$(uf alice@example.com uid)"

# --- timeout: a mailrosterd that does not answer ---------------------------------------------
kill -STOP "$MR_PID"
m=$(mark)
t0=$(date +%s%N)
out=$(auth_test bob@example.com 'pw two')
t1=$(date +%s%N)
kill -CONT "$MR_PID"
case $out in *"auth failed"*temp*|*temp*"auth failed"*) ok "mailrosterd stuck: temporary failure" ;; *) notok "stuck: $out" ;; esac
check "mailrosterd stuck: timeout logged" "1" "$(log_since "$m" | grep -c 'Error: roster(bob@example.com.*no answer from mailrosterd.* in 1000 ms' | awk '{print ($1>0)}')"
check "mailrosterd stuck: answered within the timeout (< 5 s)" "1" "$(( (t1 - t0) < 5000000000 ))"
out=$(auth_test bob@example.com 'pw two')
case $out in *"auth succeeded"*) ok "after the stall: the same connection answers again" ;; *) notok "after stall: $out" ;; esac

# --- Dovecot's auth cache on: a flush of the changed user makes the change seen -----
# (mailrosterd sends the flush itself when told Dovecot's auth-master socket;
# here it is doveadm's, the same CACHE-FLUSH command). auth_username_format
# = %Lu keys the cache by the lowercased login, so a flush of the canonical
# address also drops what "Alice@Example.COM" cached.
grep -c 'Fatal:\|Panic:' "$DLOG" >"$STACK_DIR/fatal.count"
cp "$DLOG" "$STACK_DIR/dovecot-phase1.log"
stack_dovecot_stop
stack_dovecot_start "!include $STACK_DIR/dovecot-conf/auth-roster.conf.ext
auth_username_format = %Lu
auth_cache_size = 1M
auth_cache_ttl = 1 hour
auth_cache_negative_ttl = 1 hour" || notok "Dovecot restarts with the auth cache on"
DC=$STACK_DOVECOT_CONF
flush() { timeout 20 doveadm -c "$DC" auth cache flush "$@" >/dev/null 2>&1; }
out=$(auth_test Alice@Example.COM 'pw one')
case $out in *"auth succeeded"*) ok "cache: first login (cached now)" ;; *) notok "cache first login: $out" ;; esac
printf 'pw new\n' | cli user passwd alice@example.com --password-stdin >/dev/null
out=$(auth_test Alice@Example.COM 'pw one')
case $out in *"auth succeeded"*) ok "cache: before a flush the cached password still works (the cache is on)" ;; *) notok "cache not used: $out" ;; esac
flush alice@example.com
out=$(auth_test Alice@Example.COM 'pw new')
case $out in *"auth succeeded"*) ok "cache: after flushing alice@example.com the new password works for Alice@Example.COM" ;; *) notok "after flush, new pw: $out" ;; esac
out=$(auth_test alice@example.com 'pw one')
case $out in *"auth failed"*) ok "cache: ... and the old one no longer does" ;; *) notok "after flush, old pw: $out" ;; esac
out=$(auth_test newbie@example.com 'pw four')
case $out in *"auth failed"*) ok "cache: unknown user (negatively cached)" ;; *) notok "newbie before: $out" ;; esac
printf 'pw four\n' | cli user add newbie@example.com --password-stdin >/dev/null
out=$(auth_test newbie@example.com 'pw four')
case $out in *"auth failed"*) ok "cache: a new account is still refused from the negative cache" ;; *) notok "negative cache not used: $out" ;; esac
flush newbie@example.com
out=$(auth_test newbie@example.com 'pw four')
case $out in *"auth succeeded"*) ok "cache: after its flush the new account logs in" ;; *) notok "newbie after flush: $out" ;; esac

# --- ... and mailrosterd flushing it itself (dovecot_auth_master_socket) -------------
# No doveadm flush from here on: every change must be seen within 1 s.
echo "dovecot_auth_master_socket = $STACK_DIR/dovecot/run/auth-master" >>"$CONF"
kill -HUP "$MR_PID"
wait_for "grep -c 'reloaded $CONF' '$LOG'" 1 5 || notok "mailrosterd reloads its configuration"
# seen_within_1s USER PASSWORD succeeded|failed
seen_within_1s() { wait_for "auth_test '$1' '$2' | grep -o 'auth $3'" "auth $3" 1; }
out=$(auth_test Alice@Example.COM 'pw new')
case $out in *"auth succeeded"*) ok "auto flush: alice logs in (cached now)" ;; *) notok "auto flush, first: $out" ;; esac
printf 'pw three\n' | cli user passwd alice@example.com --password-stdin >/dev/null
if seen_within_1s Alice@Example.COM 'pw three' succeeded; then
    ok "auto flush: a password change is honoured within 1 s, cache on"
else
    notok "auto flush: a password change is honoured within 1 s, cache on"
fi
check "auto flush: ... and the old password is refused" "auth failed" \
    "$(auth_test Alice@Example.COM 'pw new' | grep -o 'auth failed')"
out=$(auth_test newbie@example.com 'pw four')
case $out in *"auth succeeded"*) ok "auto flush: newbie logs in (cached now)" ;; *) notok "auto flush, newbie: $out" ;; esac
cli user disable newbie@example.com >/dev/null
if seen_within_1s newbie@example.com 'pw four' failed; then
    ok "auto flush: a disabled account is refused within 1 s, cache on"
else
    notok "auto flush: a disabled account is refused within 1 s, cache on"
fi
out=$(auth_test 'leser@bücher.example' 'eve pw')
case $out in *"auth succeeded"*) ok "auto flush: leser logs in with the U-label domain (cached under it)" ;; *) notok "auto flush, leser: $out" ;; esac
printf 'leser new\n' | cli user passwd 'leser@bücher.example' --password-stdin >/dev/null
# (a cached password that does not match makes Dovecot ask again, so the
# sign of a flush is the old password stopping to work)
if seen_within_1s 'leser@bücher.example' 'eve pw' failed; then
    ok "auto flush: a password change is seen within 1 s by a login typed with the U-label"
else
    notok "auto flush: a password change is seen within 1 s by a login typed with the U-label"
fi
out=$(auth_test fresh@example.com 'pw five')
case $out in *"auth failed"*) ok "auto flush: fresh is unknown (negatively cached)" ;; *) notok "auto flush, fresh before: $out" ;; esac
printf 'pw five\n' | cli user add fresh@example.com --password-stdin >/dev/null
if seen_within_1s fresh@example.com 'pw five' succeeded; then
    ok "auto flush: a new account logs in within 1 s, negative cache on"
else
    notok "auto flush: a new account logs in within 1 s, negative cache on"
fi

mr_stop
out=$(auth_test alice@example.com 'pw three')
case $out in *"auth succeeded"*) ok "cache: mailrosterd down, a cached login still works" ;; *) notok "cached while down: $out" ;; esac
mr_start "$CONF" "$LOG" || notok "mailrosterd restarts"

# stopped here so the checks below see what Dovecot leaves behind
stack_dovecot_stop
if [ "${VALGRIND:-0}" = 1 ]; then
    check "valgrind ran Dovecot's auth process" "yes" \
        "$(ls "$STACK_DIR"/vg/auth.*.log >/dev/null 2>&1 && echo yes || echo no)"
    vg=$(cat "$STACK_DIR"/vg/auth.*.log 2>/dev/null | grep -c '==[0-9]*== [A-Z]')
    check "valgrind: the auth process ran clean (see $STACK_DIR/vg)" "0" "$vg"
fi
cat "$STACK_DIR/dovecot-phase1.log" "$DLOG" >"$STACK_DIR/dovecot-all.log"
DLOG=$STACK_DIR/dovecot-all.log
check "the host's auth module dir was not touched" "$HOST_MODS_BEFORE" \
    "$(ls -l --time-style=+%s /usr/lib/dovecot/modules/auth | md5sum)"
if grep -q 'Fatal:\|Panic:' "$DLOG"; then notok "no Fatal/Panic in Dovecot's log: $(grep 'Fatal:\|Panic:' "$DLOG" | head -3)"; else ok "no Fatal/Panic in Dovecot's log"; fi
t_summary
