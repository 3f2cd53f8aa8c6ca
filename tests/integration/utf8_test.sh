#!/usr/bin/env bash
# utf8_test.sh - UTF-8 local parts folded as Postfix folds keys with
# smtputf8_enable = yes (full Unicode case folding: JÖRG -> jörg, straße ->
# strasse): addresses created with the mailroster command are stored
# folded, a row written by plain SQL in another case is found all the
# same, and Postfix's own postmap finds every case of them over tcp_table
# and socketmap. postmap sends the key as typed (it folds only for
# fixed-case maps such as hash:), in either smtputf8 mode, so the folding
# is mailrosterd's: both modes are asked.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
MRD=${MRD:-$TOP/mailrosterd}
CLI=${CLI:-$(dirname "$MRD")/mailroster}
. "$TOP/tests/integration/begin.sh" mr-utf8
LOG=$STACK_DIR/mailrosterd.log

[ -x "$CLI" ] || { notok "the mailroster command was not built ($CLI)"; t_summary; exit 1; }
stack_pg_start || exit 1
mr_setup_db || exit 1
ADM=$STACK_DIR/mr/admin
CONF=$STACK_DIR/mailroster.conf
mr_write_conf "$CONF" "admin_socket = $ADM" "admin_socket_mode = 0600" \
    "admin_database = host=$PGHOST port=$PGPORT dbname=$MR_DB user=mradm" "admin_allow_admin = root"
mr_start "$CONF" "$LOG" || { notok "mailrosterd starts"; t_summary; exit 1; }
export MAILROSTER_SOCKET=$ADM
adm() { printf '%s\n' "$@" | socat -t 20 - "UNIX-CONNECT:$ADM" | tail -n 1; }

# Postfix client configurations: smtputf8 on and off
for mode in yes no; do
    mkdir -p "$STACK_DIR/pf-$mode"
    printf 'compatibility_level = 3.6\nsmtputf8_enable = %s\n' "$mode" >"$STACK_DIR/pf-$mode/main.cf"
done
# q MODE MAP KEY TRANSPORT: one postmap -q
q() {
    local port
    case $2 in
        mailboxes) port=$MR_TCP_MAILBOXES ;; aliases) port=$MR_TCP_ALIASES ;; senders) port=$MR_TCP_SENDERS ;;
    esac
    case $4 in
        tcp) postmap -c "$STACK_DIR/pf-$1" -q "$3" "tcp:127.0.0.1:$port" 2>/dev/null || echo "(not found)" ;;
        smap) postmap -c "$STACK_DIR/pf-$1" -q "$3" "socketmap:unix:$MR_SMAP_UNIX:$2" 2>/dev/null || echo "(not found)" ;;
    esac
}

# --- provisioning: stored folded ----------------------------------------------
check "domain add" "created example.org" "$("$CLI" domain add example.org)"
check "user add JÖRG@ stores jörg@" "created jörg@example.org" "$("$CLI" user add 'JÖRG@example.org' </dev/null)"
check "user add straße@ stores strasse@" "created strasse@example.org" "$("$CLI" user add 'straße@example.org' </dev/null)"
check "alias add ÄRGER@ stores ärger@" "created ärger@example.org" \
    "$("$CLI" alias add 'ÄRGER@example.org' 'Jörg@example.org')"
check "local parts as stored" "jörg strasse" \
    "$(sql -c "SELECT string_agg(local_part, ' ' ORDER BY id) FROM mailroster.mailboxes")"
check "alias destination stored folded" "ärger {jörg@example.org}" \
    "$(sql -c "SELECT local_part || ' ' || destinations::text FROM mailroster.aliases")"

# --- rows written by plain SQL, not folded (the schema refuses only ASCII
# upper case): "Ølaf" keeps its capital, "weiß" its ß (folded: "weiss") ----------
admin_sql -c "INSERT INTO mailroster.mailboxes (domain_id, local_part)
              SELECT id, 'weiß' FROM mailroster.domains WHERE name = 'example.org'" \
          -c "INSERT INTO mailroster.mailboxes (domain_id, local_part)
              SELECT id, 'Ølaf' FROM mailroster.domains WHERE name = 'example.org'" || notok "SQL insert"
check "the SQL rows are stored as written" "3 weiß,4 Ølaf" \
    "$(sql -c "SELECT string_agg(id || ' ' || local_part, ',' ORDER BY id) FROM mailroster.mailboxes WHERE id > 2")"
if wait_for "q yes mailboxes ØLAF@example.org smap" "example.org/Ølaf.4/" 10; then
    ok "the SQL rows reach mailrosterd"
else
    notok "the SQL rows reach mailrosterd"
fi
# (after the rows above: a refused insert may use up a sequence number)
check "user add Jörg@: the same mailbox" "ERR exists" "$(adm 'user add Jörg@example.org' | cut -d' ' -f1-2)"
check "user add STRASSE@: the same mailbox" "ERR exists" "$(adm 'user add STRASSE@example.org' | cut -d' ' -f1-2)"
check "user add: invalid UTF-8 refused" \
    "ERR bad-input $(printf 'j\xffrg@example.org'): local part is not valid UTF-8" \
    "$(adm "user add $(printf 'j\xffrg@example.org')")"

# --- postmap, both transports, both smtputf8 modes --------------------------------
# KEY|EXPECTED, per map; expectations written out by hand
MAILBOXES=(
    "jörg@example.org|example.org/jörg.1/"
    "JÖRG@example.org|example.org/jörg.1/"
    "Jörg@example.org|example.org/jörg.1/"
    "JÖRG+tag@Example.ORG|example.org/jörg.1/"
    "STRASSE@example.org|example.org/strasse.2/"
    "strasse@example.org|example.org/strasse.2/"
    "Straße@example.org|example.org/strasse.2/"
    "STRAẞE@example.org|example.org/strasse.2/"
    "WEISS@example.org|example.org/weiß.3/"
    "weiss@example.org|example.org/weiß.3/"
    "Weiß@example.org|example.org/weiß.3/"
    "WEIẞ@example.org|example.org/weiß.3/"
    "ØLAF@example.org|example.org/Ølaf.4/"
    "ølaf@example.org|example.org/Ølaf.4/"
    "Ølaf@example.org|example.org/Ølaf.4/"
    "ÄRGER@example.org|(not found)"
    "jorg@example.org|(not found)"
)
ALIASES=(
    "ÄRGER@example.org|jörg@example.org"
    "ärger@example.org|jörg@example.org"
    "Ärger+x@example.org|jörg+x@example.org"
    "JÖRG@example.org|(not found)"
)
SENDERS=(
    "JÖRG@example.org|jörg@example.org"
    "ÄRGER@example.org|jörg@example.org"
    "WEISS@example.org|weiß@example.org"
    "ølaf@example.org|Ølaf@example.org"
)
for mode in yes no; do
    for tr in tcp smap; do
        for map in mailboxes aliases senders; do
            case $map in
                mailboxes) set -- "${MAILBOXES[@]}" ;; aliases) set -- "${ALIASES[@]}" ;; senders) set -- "${SENDERS[@]}" ;;
            esac
            for kv in "$@"; do
                key=${kv%%|*}
                check "smtputf8=$mode $tr $map '$key'" "${kv#*|}" "$(q "$mode" "$map" "$key" "$tr")"
            done
        done
    done
done

# --- keys that are not UTF-8 (postmap with smtputf8 on never sends them) ----------
check "socketmap: a key that is not UTF-8 is not found" "9:NOTFOUND ," \
    "$(printf '26:mailboxes j\xffrg@example.org,' | socat -t 5 - "UNIX-CONNECT:$MR_SMAP_UNIX")"
check "tcp_table: a key that is not UTF-8 is not found" "500 not found" \
    "$(printf 'get j%%FFrg@example.org\n' | socat -t 5 - "TCP:127.0.0.1:$MR_TCP_MAILBOXES")"
check "mailrosterd still answers" "example.org/jörg.1/" "$(q yes mailboxes JÖRG@example.org smap)"

mr_stop
if grep -qE 'AddressSanitizer|runtime error|LeakSanitizer' "$LOG"; then notok "sanitizer report in the log"; else ok "no sanitizer report"; fi
t_summary
