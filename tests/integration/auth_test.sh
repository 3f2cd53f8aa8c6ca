#!/usr/bin/env bash
# auth_test.sh - mailrosterd's auth endpoint (what the Dovecot roster driver
# asks) over its real unix socket, with accounts provisioned by the
# mailroster command: passdb, master passdb, userdb, iteration, access by
# peer credentials, changes seen at once, master uses logged, counters in
# stats, malformed requests.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
CLI=${CLI:-$(dirname "$MRD")/mailroster}
. "$TOP/tests/integration/begin.sh" mr-auth
LOG=$STACK_DIR/mailrosterd.log

id -u mrview >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin mrview
id -u mrauth >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin mrauth
stack_pg_start || exit 1
mr_setup_db || exit 1
ADM=$STACK_DIR/mr/admin
AUTH=$STACK_DIR/mr/auth
CONF=$STACK_DIR/mailroster.conf
mr_write_conf "$CONF" "admin_socket = $ADM" \
    "admin_database = host=$PGHOST port=$PGPORT dbname=$MR_DB user=mradm" \
    "auth_socket = unix:$AUTH" "auth_socket_mode = 0666" "auth_allow = root, mrauth, no-such-user-here" \
    "mail_base = /srv/vmail" "mail_uid = 5000" "mail_gid = 5001"
mr_start "$CONF" "$LOG" || { notok "mailrosterd starts"; t_summary; exit 1; }

cli() { MAILROSTER_SOCKET=$ADM "$CLI" "$@"; }
# ask LINE...: lines with \t escapes, one connection; prints the answers
ask() { printf "$(printf '%s\\n' "$@")" | socat -t 5 - "UNIX-CONNECT:$AUTH"; }
ask_as() { local u=$1; shift; printf "$(printf '%s\\n' "$@")" | su -s /bin/sh "$u" -c "socat -t 5 - UNIX-CONNECT:$AUTH"; }
T=$'\t'

check "socket mode from the configuration" "666" "$(stat -c %a "$AUTH")"
check "unknown names in auth_allow are reported" "1" "$(grep -c 'auth_allow: no such user or group: no-such-user-here' "$LOG")"

# --- provisioning ------------------------------------------------------------------
check "domain add" "created example.com" "$(cli domain add example.com quota=1G 2>&1)"
Y=$(printf 'pw one\n' | cli user add alice@example.com --password-stdin 2>&1)
check "user add alice (yescrypt)" "created alice@example.com" "$Y"
printf 'pw two\n' | cli user add bob@example.com --password-stdin --scheme bcrypt --bcrypt-cost 5 >/dev/null
H6=$(doveadm pw -s SHA512-CRYPT -p 'eve pw')
# /home/eve is outside mail_base: a full admin says so with path_override=yes
check "user add eve, home outside mail_base with path_override=yes" "created eve@example.com" \
    "$(cli user add eve@example.com services=imap quota=50M quota_messages=100 uid=7001 gid=7002 home=/home/eve 'mail=maildir:~/Mail' path_override=yes --password-hash "$H6" 2>&1)"
cli domain add other.example >/dev/null
cli user add zed@other.example --password-hash "$H6" >/dev/null
cli master add webmail password='{BLF-CRYPT}$2y$05$abcdefghijklmnopqrstuu5Xh3pTkB3V0m1Wd4dD7Ffz3yHkD5Y2.' domains=example.com >/dev/null
ALICE_HASH=$(sql -c "SELECT password FROM mailroster.mailboxes WHERE local_part = 'alice'")

# --- passdb ------------------------------------------------------------------------
check "VERSION" "VERSION${T}1${T}0" "$(ask "VERSION\t1\t0")"
check "passdb: the stored hash, canonical name" "1${T}OK${T}user=alice@example.com${T}password=$ALICE_HASH" "$(ask "1\tPASS\tAlice@EXAMPLE.com\timap")"
case $ALICE_HASH in '{CRYPT}$y$'*) ok "the hash is yescrypt with Dovecot's CRYPT scheme" ;; *) notok "alice's hash: $ALICE_HASH" ;; esac
case $(ask "2\tPASS\tbob@example.com\tpop3") in "2${T}OK${T}user=bob@example.com${T}password={BLF-CRYPT}\$2"*) ok "passdb: bcrypt hash with BLF-CRYPT" ;; *) notok "passdb bob" ;; esac
check "passdb: unknown user" "3${T}NOTFOUND" "$(ask "3\tPASS\tnobody@example.com\timap")"
check "passdb: unknown domain" "3${T}NOTFOUND" "$(ask "3\tPASS\talice@nowhere.example\timap")"
check "passdb: service not allowed" "4${T}DENIED${T}reason=service pop3 not allowed for this mailbox" "$(ask "4\tPASS\teve@example.com\tpop3")"
check "passdb: allowed service" "4${T}OK" "$(ask "4\tPASS\teve@example.com\timap" | cut -f1-2)"
cli user disable bob@example.com reason=abuse >/dev/null
check "passdb: disabled at once, with its reason" "5${T}DISABLED${T}reason=mailbox disabled: abuse" "$(ask "5\tPASS\tbob@example.com\timap")"
check "the refusal is logged with the client" "1" "$(grep -c 'auth: passdb bob@example.com (imap): mailbox disabled: abuse (client uid 0 pid' "$LOG")"
cli user enable bob@example.com >/dev/null
check "passdb: enabled again at once" "6${T}OK" "$(ask "6\tPASS\tbob@example.com\timap" | cut -f1-2)"
cli domain disable other.example >/dev/null
check "passdb: domain disabled" "7${T}DISABLED${T}reason=domain disabled: disabled by admin" "$(ask "7\tPASS\tzed@other.example\timap")"

# --- master users --------------------------------------------------------------------
check "master: allowed inside its domains" "8${T}OK${T}user=webmail" "$(ask "8\tMASTER\twebmail\tALICE@example.com\timap" | cut -f1-3)"
check "master: every use is logged" "1" "$(grep -c 'auth: master user webmail for alice@example.com (imap): allowed' "$LOG")"
cli domain enable other.example >/dev/null
check "master: outside its domains refused" "9${T}DENIED${T}reason=target outside the master user's domains" "$(ask "9\tMASTER\twebmail\tzed@other.example\timap")"
check "master: refusal logged" "1" "$(grep -c "auth: master user webmail for zed@other.example (imap): refused: target outside" "$LOG")"
check "master: unknown target" "10${T}DENIED${T}reason=target mailbox not found" "$(ask "10\tMASTER\twebmail\tghost@example.com\timap")"
check "master: unknown master" "11${T}NOTFOUND${T}reason=no such master user" "$(ask "11\tMASTER\tnobody\talice@example.com\timap")"
cli master remove webmail >/dev/null
check "master: removed, gone at once" "12${T}NOTFOUND${T}reason=no such master user" "$(ask "12\tMASTER\twebmail\talice@example.com\timap")"

# --- userdb and iteration ---------------------------------------------------------------
ALICE_DIR=$(sql -c "SELECT maildir FROM mailroster.mailboxes WHERE local_part = 'alice'")
check "userdb: home from mail_base + maildir, uid/gid defaults, domain quota" \
    "13${T}OK${T}user=alice@example.com${T}home=/srv/vmail/${ALICE_DIR%/}${T}uid=5000${T}gid=5001${T}quota_rule=*:storage=1073741824B" \
    "$(ask "13\tUSER\talice@example.com\tlmtp")"
check "userdb: the mailbox's own overrides" \
    "14${T}OK${T}user=eve@example.com${T}home=/home/eve${T}mail=maildir:~/Mail${T}uid=7001${T}gid=7002${T}quota_rule=*:storage=52428800B${T}quota_rule2=*:messages=100" \
    "$(ask "14\tUSER\teve@example.com\timap")"
cli user set alice@example.com may_receive=no >/dev/null
check "userdb: may not receive = unknown to LMTP" "15${T}NOTFOUND" "$(ask "15\tUSER\talice@example.com\tlmtp")"
check "userdb: ... but still known to IMAP" "16${T}OK" "$(ask "16\tUSER\talice@example.com\timap" | cut -f1-2)"
cli user set alice@example.com may_receive=yes >/dev/null
cli user disable eve@example.com >/dev/null
list=$(ask "17\tLIST")
check "iterate: enabled mailboxes" "17${T}ROW${T}alice@example.com 17${T}ROW${T}bob@example.com 17${T}ROW${T}zed@other.example" \
    "$(echo "$list" | sed '$d' | sort | tr '\n' ' ' | sed 's/ $//')"
check "iterate: then END" "17${T}END" "$(echo "$list" | tail -n 1)"

# --- pipelining, bad input ---------------------------------------------------------------
out=$(ask "21\tPASS\tbob@example.com\timap" "x\tPASS" "22\tUSER\tbob@example.com\tlmtp" "23\tNOPE" "24\tPASS\ta\001zb@example.com\timap" "25\tPASS\tnobody@example.com\timap")
check "pipelined answers in order, bad lines answered, connection kept" \
    "21 OK|0 ERROR|22 OK|23 ERROR|24 ERROR|25 NOTFOUND" "$(echo "$out" | cut -f1-2 | tr '\t\n' ' |' | sed 's/|$//')"
check "malformed requests are logged" "3" "$(grep -c 'auth: malformed request' "$LOG")"
# peer_close keeps its side open: "closed" means the daemon hung up, within 3 s
check "an endless line: error, connection closed" "closed after 37 bytes: b'0\\tERROR\\treason=request line too long\\n'" \
    "$(head -c 9000 /dev/zero | tr '\0' a | peer_close "$AUTH" 3)"
check "an unknown protocol version: error" "0${T}ERROR${T}reason=unsupported protocol version (this is 1)" "$(ask "VERSION\t2\t0" "1\tLIST")"

# --- access ----------------------------------------------------------------------------
check "a user not in auth_allow is refused" "0${T}ERROR${T}reason=not allowed by auth_allow" "$(ask_as mrview "1\tPASS\talice@example.com\timap")"
check "the refusal is logged" "1" "$(grep -c 'auth: refused a client uid [0-9]* gid [0-9]* pid [0-9]*: not in auth_allow' "$LOG")"
check "a user in auth_allow is answered" "1${T}OK" "$(ask_as mrauth "1\tPASS\talice@example.com\timap" | cut -f1-2)"
# auth_allow changes on SIGHUP
sed -i 's/^auth_allow = .*/auth_allow = root/' "$CONF"
kill -HUP "$MR_PID"
wait_for "grep -c 'reloaded' '$LOG'" 1 5
check "after SIGHUP the new auth_allow applies" "0${T}ERROR" "$(ask_as mrauth "1\tPASS\talice@example.com\timap" | cut -f1-2)"

# --- counters --------------------------------------------------------------------------
st=$(printf 'stats\n' | socat -t 5 - "UNIX-CONNECT:$ADM")
row() { echo "$st" | grep "^\* service=auth $1" | grep -o ' \(requests\|ok\|notfound\|disabled\|denied\|malformed\|refused_clients\)=[0-9]*' | tr -d '\n' | sed 's/^ //'; }
check "stats: passdb counters" "requests=12 ok=6 notfound=3 disabled=2 denied=1" "$(row request=passdb)"
check "stats: master counters" "requests=5 ok=1 notfound=2 disabled=0 denied=2" "$(row request=master)"
check "stats: userdb counters" "requests=5 ok=4 notfound=1 disabled=0 denied=0" "$(row request=userdb)"
check "stats: malformed and refused" "malformed=5 refused_clients=2" "$(row malformed)"
check "mailroster stats shows them" "auth" "$(cli -f json stats | grep -o '"service": *"auth"' | head -1 | grep -o auth)"

# --- before the directory is loaded, and the database down ------------------------------
stack_pg_stop
check "PostgreSQL stopped: answers from memory" "1${T}OK" "$(ask "1\tPASS\talice@example.com\timap" | cut -f1-2)"
stack_pg_start_again || notok "PostgreSQL restarts"

mr_stop
check "the socket is removed at exit" "gone" "$([ -e "$AUTH" ] && echo there || echo gone)"

# --- no directory at all: PostgreSQL down, no snapshot file ----------------------------
stack_pg_stop
rm -f "$MR_SNAPSHOT"
echo "startup_timeout = 1s" >>"$CONF"
mr_start "$CONF" "$LOG" || notok "start without PostgreSQL and snapshot"
check "nothing loaded: a login is a temporary failure, never unknown" "1${T}FAIL${T}reason=directory not loaded yet" "$(ask "1\tPASS\talice@example.com\timap")"
check "nothing loaded: userdb too" "2${T}FAIL" "$(ask "2\tUSER\talice@example.com\tlmtp" | cut -f1-2)"
check "nothing loaded: domain show is unavailable, not unknown" "ERR unavailable directory not loaded yet" "$(printf 'domain show example.com\n' | socat -t 5 - "UNIX-CONNECT:$ADM" | tail -n 1)"
check "nothing loaded: user show likewise" "ERR unavailable directory not loaded yet" "$(printf 'user show alice@example.com\n' | socat -t 5 - "UNIX-CONNECT:$ADM" | tail -n 1)"
check "nothing loaded: user list likewise" "ERR unavailable directory not loaded yet" "$(printf 'user list\n' | socat -t 5 - "UNIX-CONNECT:$ADM" | tail -n 1)"
mr_stop
stack_pg_start_again || notok "PostgreSQL restarts"

if grep -q "runtime error\|ERROR: AddressSanitizer\|LeakSanitizer" "$LOG"; then notok "sanitizer report in the log"; else ok "no sanitizer report"; fi
t_summary
