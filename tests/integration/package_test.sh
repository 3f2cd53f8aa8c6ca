#!/usr/bin/env bash
# package_test.sh - the Debian packages (debian/): dpkg-buildpackage builds
# mailroster and dovecot-mailroster from a clean copy of the tree, lintian
# finds no error or warning; installed, the files, owners and modes are as
# the packaging promises, the unit passes `systemd-analyze verify` and
# `security --offline=yes`, and mailrosterd run with the unit's own
# ExecStart as the mailroster user tells a NOTIFY_SOCKET (this test's: no
# systemd as PID 1 here) READY=1 and STATUS=. An upgrade from a lower
# version keeps the conffile edits and /var/lib/mailroster; purging both
# packages at the end (also on failure) leaves the machine as it was.
# Needs root, git, and the packages of scripts/lib/deps.sh (debhelper and
# lintian among them). Takes two to three minutes, most of it building.
set -u
TOP=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
STACK_DIR=$(mktemp -d /tmp/mr-package.XXXXXX)
export STACK_DIR
STACK_PIDS=()
. "$TOP/scripts/lib/stack.sh"
. "$TOP/tests/integration/lib.sh"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8

W=$STACK_DIR/build
PKGS="mailroster dovecot-mailroster"
UNIT=/lib/systemd/system/mailrosterd.service
CONF=/etc/mailroster/mailroster.conf
STATE=/var/lib/mailroster
MODDIR=/usr/lib/dovecot/modules/auth
MODULE=$MODDIR/libauthdb_roster.so
BUILD_PIDS=()
LINT_PID=
INSTALLED=0

# what the packages may touch, as "path type mode owner group size [sum]"
host_state() {
    local p
    for p in /etc/mailroster /etc/systemd/system "$UNIT" /var/lib/systemd/deb-systemd-helper-enabled \
        /var/lib/systemd/deb-systemd-helper-masked /usr/share/mailroster /usr/share/doc/mailroster \
        /usr/share/doc/dovecot-mailroster "$MODDIR" "$STATE" /run/mailroster /usr/sbin/mailrosterd \
        /usr/bin/mailroster /usr/bin/import-users-json /usr/bin/import-dovecot-passwd \
        /usr/share/man/man8/mailrosterd.8.gz; do
        [ -e "$p" ] || [ -L "$p" ] || continue
        find "$p" -printf '%p %y %m %u %g\n'
        find "$p" -type f -exec sha256sum {} + 2>/dev/null
    done
    for p in /var/lib/dpkg/info/mailroster[.:]* /var/lib/dpkg/info/dovecot-mailroster[.:]*; do
        [ -e "$p" ] && echo "$p"
    done
    grep -h '^mailroster:' /etc/passwd /etc/group /etc/shadow /etc/gshadow || true
    for p in $PKGS; do
        dpkg-query -W -f='${Package} ${Status}\n' "$p" 2>/dev/null | grep -v ' not-installed$' || true
    done
}

# dpkg, waiting (at most a minute) while another dpkg or apt holds the lock
dpkg_w() {
    local out rc
    for _ in $(seq 1 30); do
        out=$(dpkg "$@" </dev/null 2>&1)
        rc=$?
        if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'lock'; then sleep 2; continue; fi
        printf '%s\n' "$out" >>"$STACK_DIR/dpkg.log"
        [ $rc -eq 0 ] || printf '%s\n' "$out" | tail -n 15 >&2
        return $rc
    done
    echo "dpkg: lock held for a minute" >&2
    return 1
}

purge_all() {
    local pid
    for pid in "${BUILD_PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
    [ -n "$LINT_PID" ] && kill -TERM "$LINT_PID" 2>/dev/null
    # the daemons first: the user cannot be removed while it runs processes
    for pid in "${STACK_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${STACK_PIDS[@]}"; do
        stack__wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null
    done
    # shellcheck disable=SC2086
    [ "$INSTALLED" = 1 ] && dpkg_w --purge $PKGS
    INSTALLED=0
}
trap 'purge_all; stack_cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# --- preconditions: nothing of ours on the machine --------------------------------------
BEFORE=$(host_state)
# the files in Dovecot's auth module dir, with their times and contents
mods() { find "$MODDIR" -mindepth 1 -printf '%p %y %m %u %g %s %T@\n' 2>&1; sha256sum "$MODDIR"/* 2>&1; }
MODS_BEFORE=$(mods)
for p in $PKGS; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -qv 'not-installed'; then
        notok "$p is installed already: this test would remove it"; t_summary; exit 1
    fi
done
if getent passwd mailroster >/dev/null || getent group mailroster >/dev/null || [ -e "$MODULE" ]; then
    notok "a mailroster user or group, or $MODULE, exists already: this test would remove it"
    t_summary; exit 1
fi

# --- build, from a clean copy: the current version, then the same tree as a lower one -
# the tracked files as they are in TOP (committed or not)
REV=$(git -C "$TOP" stash create 2>/dev/null)
REV=${REV:-HEAD}
mkdir -p "$W/cur" "$W/old"
git -C "$TOP" archive --prefix=mailroster/ "$REV" | tar -x -C "$W/cur" || { notok "git archive"; exit 1; }
VERSION=$(cd "$W/cur/mailroster" && dpkg-parsechangelog -SVersion)
# build in a session of its own, to stop it with its children
build() { # DIR LOG ARGS...
    local dir=$1 log=$2
    shift 2
    (cd "$dir" && exec setsid dpkg-buildpackage -us -uc "$@" >"$log" 2>&1) &
    BUILD_PIDS=("$!")
    wait "${BUILD_PIDS[0]}"
    local rc=$?
    BUILD_PIDS=()
    [ $rc -eq 0 ] || tail -n 25 "$log" >&2
    return $rc
}
if DEB_BUILD_OPTIONS=parallel=2 build "$W/cur/mailroster" "$W/cur.log"; then
    ok "dpkg-buildpackage -us -uc: $VERSION"
else
    notok "dpkg-buildpackage -us -uc: $VERSION"; t_summary; exit 1
fi
grep -q 'PASS: tests/unit/test_core' "$W/cur.log" && ok "the build ran the unit tests" || notok "unit tests in the build"
# lintian on the source and the binary packages, meanwhile (judged at the end)
CHANGES="$W/cur/mailroster_${VERSION}_$(dpkg --print-architecture).changes"
lintian --display-info "$CHANGES" >"$W/lintian.out" 2>&1 &
LINT_PID=$!
# the same tree, built, as a lower version: only the binary packages again
cp -a "$W/cur/mailroster" "$W/old/"
sed -i '1s/^mailroster (\([^)]*\))/mailroster (\1~old1)/' "$W/old/mailroster/debian/changelog"
OLDVERSION=$(cd "$W/old/mailroster" && dpkg-parsechangelog -SVersion)
dpkg --compare-versions "$OLDVERSION" lt "$VERSION" && ok "fixture $OLDVERSION is lower than $VERSION" ||
    notok "fixture $OLDVERSION < $VERSION"
if DEB_BUILD_OPTIONS=nocheck build "$W/old/mailroster" "$W/old.log" -b -nc; then
    ok "dpkg-buildpackage -b: $OLDVERSION"
else
    notok "dpkg-buildpackage -b: $OLDVERSION"; t_summary; exit 1
fi
deb() { echo "$W/$1/${2}_${3}_$(dpkg --print-architecture).deb"; }
for p in $PKGS; do
    [ -f "$(deb cur "$p" "$VERSION")" ] && [ -f "$(deb old "$p" "$OLDVERSION")" ] &&
        ok "built $p" || notok "built $p: $(ls "$W"/cur "$W"/old)"
done

# the ABI of the Dovecot on this machine
check "dovecot-mailroster depends on Dovecot's ABI" "dovecot-abi-$(cat /usr/share/dovecot/dovecot-abi)" \
    "$(dpkg-deb -f "$(deb cur dovecot-mailroster "$VERSION")" Depends | tr ',' '\n' | sed 's/ //g' | grep '^dovecot')"

# --- the lower version, installed, configured and run -----------------------------------
# what the Depends name and the machine lacks (real or virtual packages)
have=$(dpkg-query -W -f='${db:Status-Abbrev}|${Package}, ${Provides}\n' | awk -F'|' '$1 ~ /^ii/ { print $2 }' |
    tr ',' '\n' | sed 's/(.*)//; s/ //g' | sort -u)
missing=""
for p in $(for d in $PKGS; do dpkg-deb -f "$(deb old "$d" "$OLDVERSION")" Depends; done |
    tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g' | sort -u); do
    printf '%s\n' "$have" | grep -Fxq "$p" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "# installing Depends:$missing (they stay installed)"
    # shellcheck disable=SC2086
    apt-get install -y -qq -o DPkg::Lock::Timeout=60 --no-install-recommends $missing >/dev/null ||
        notok "apt-get install$missing"
fi
INSTALLED=1
check_cmd "dpkg -i $OLDVERSION" dpkg_w -i "$(deb old mailroster "$OLDVERSION")" "$(deb old dovecot-mailroster "$OLDVERSION")"

# the daemon's notify socket, standing in for the manager: one line a message
NSOCK=$STACK_DIR/notify
NLOG=$STACK_DIR/notify.log
mr_notify_listen "$NSOCK" "$NLOG" || exit 1
wait_line() {
    for _ in $(seq 1 200); do grep -Eq -- "$1" "$NLOG" && return 0; sleep 0.05; done
    return 1
}

stack_pg_start || exit 1
chmod 755 "$STACK_DIR"
stack_pg_createdb mailroster || exit 1
# shellcheck disable=SC2034 # sql() in lib.sh
MR_DB=mailroster
# the schema from the package's own sql/ (the mailroster command's default)
out=$(mailroster db migrate --database "host=$PGHOST port=$PGPORT dbname=mailroster user=postgres" 2>&1)
check_cmd "mailroster db migrate with the packaged migrations" grep -q 'schema version 0 -> [1-9]' <<<"$out"
sql -c "CREATE ROLE mrd LOGIN IN ROLE mailroster_reader" \
    -c "INSERT INTO mailroster.domains (name) VALUES ('example.com')" \
    -c "INSERT INTO mailroster.mailboxes (domain_id, local_part) SELECT id, 'a' || g FROM mailroster.domains, generate_series(1, 3) g" >/dev/null

# the conffile, edited: this test's database and listeners
P_MBOX=$(stack_free_port)
P_SMAP=$(stack_free_port)
cat >>"$CONF" <<EOF

# --- package_test.sh ---
database = host=127.0.0.1 port=$PGPORT dbname=mailroster user=mrd
snapshot_file = $STATE/snapshot
startup_timeout = 2s
tcp_table_mailboxes = 127.0.0.1:$P_MBOX
socketmap_listen = inet:127.0.0.1:$P_SMAP
EOF
CONF_SUM=$(sha256sum <"$CONF")

# ExecStartPre and ExecStart of the installed unit, as its User and Group
unit_val() { sed -n "s/^$1=//p" "$UNIT" | head -n 1; }
as_unit_user() { setpriv --reuid="$(unit_val User)" --regid="$(unit_val Group)" --init-groups -- "$@"; }
# shellcheck disable=SC2046
unit_pre() { as_unit_user $(unit_val ExecStartPre) >/dev/null; }
check_cmd "ExecStartPre (the configuration check) as $(unit_val User)" unit_pre
LOG=$STACK_DIR/mailrosterd.log
start_unit() {
    : >"$NLOG"
    # shellcheck disable=SC2046
    (umask "$(unit_val UMask)"; cd /; NOTIFY_SOCKET=$NSOCK exec setpriv --reuid="$(unit_val User)" \
        --regid="$(unit_val Group)" --init-groups -- $(unit_val ExecStart) >>"$LOG" 2>&1) &
    PID=$!
    STACK_PIDS+=("$PID")
}
stop_unit() {
    kill -TERM "$PID"
    wait "$PID" 2>/dev/null
}
start_unit
wait_line '^READY=1' && ok "$OLDVERSION: READY=1" || notok "$OLDVERSION: READY=1 ($(cat "$NLOG"); $(tail -5 "$LOG"))"
for _ in $(seq 1 100); do [ -s "$STATE/snapshot" ] && break; sleep 0.1; done
stop_unit
check "$OLDVERSION: the snapshot file in $STATE, the daemon's" "600 mailroster mailroster" \
    "$(stat -c '%a %U %G' "$STATE/snapshot" 2>&1)"
SNAP_SUM=$(sha256sum <"$STATE/snapshot")
UID_BEFORE=$(id -u mailroster)

# --- the upgrade ------------------------------------------------------------------------
check_cmd "dpkg -i $VERSION over $OLDVERSION" dpkg_w -i "$(deb cur mailroster "$VERSION")" "$(deb cur dovecot-mailroster "$VERSION")"
for p in $PKGS; do
    check "$p $VERSION installed" "$VERSION install ok installed" \
        "$(dpkg-query -W -f='${Version} ${Status}' "$p" 2>&1)"
done
check "upgrade: the conffile's edits are kept" "$CONF_SUM" "$(sha256sum <"$CONF")"
check "upgrade: no .dpkg-* copies beside the conffile" "mailroster.conf" "$(ls /etc/mailroster)"
check "upgrade: the snapshot file is kept" "$SNAP_SUM" "$(sha256sum <"$STATE/snapshot" 2>&1)"
check "upgrade: the user keeps its uid" "$UID_BEFORE" "$(id -u mailroster)"

# --- files, owners, modes ---------------------------------------------------------------
fmode() { stat -c '%a %U %G' "$1" 2>&1; }
check "$CONF is a conffile" "1" "$(dpkg-query -W -f='${Conffiles}\n' mailroster | grep -c "^ $CONF ")"
check "$CONF: 644 root root" "644 root root" "$(fmode "$CONF")"
check "$STATE: 750 mailroster mailroster" "750 mailroster mailroster" "$(fmode "$STATE")"
pw=$(getent passwd mailroster)
IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
check_cmd "user mailroster is a system user (uid $uid)" test "$uid" -lt 1000
check "user mailroster: group mailroster, home $STATE, no login" "mailroster $STATE /usr/sbin/nologin" \
    "$(getent group "$gid" | cut -d: -f1) $home $shell"
check "$MODULE: 644 root root" "644 root root" "$(fmode "$MODULE")"
check "$MODULE: Dovecot's auth driver entry points" "authdb_roster_deinit authdb_roster_init authdb_roster_version" \
    "$(nm -D --defined-only "$MODULE" | awk '$3 ~ /^authdb_roster_/ { print $3 }' | sort | tr '\n' ' ' | sed 's/ $//')"
check "/usr/sbin/mailrosterd: 755 root root" "755 root root" "$(fmode /usr/sbin/mailrosterd)"
check "/usr/bin/mailroster: 755 root root" "755 root root" "$(fmode /usr/bin/mailroster)"
check "the unit's daemon is the packaged one" "/usr/sbin/mailrosterd" "$(unit_val ExecStart | cut -d' ' -f1)"
check "the unit's config is the conffile" "$CONF" "$(unit_val ExecStart | sed 's/.* -c //')"
check "the unit's StateDirectory is $STATE" "$STATE" "/var/lib/$(unit_val StateDirectory)"
check "the unit's User and Group" "mailroster mailroster" "$(unit_val User) $(unit_val Group)"
share=/usr/share/mailroster
miss=""
for f in $(cd "$TOP" && ls sql/schema.sql sql/roles.sql sql/migrations/*.sql sql/import/*.sql conf.d/mailroster.conf conf.d/dovecot/*); do
    [ -f "$share/$f" ] || miss="$miss $f"
done
check "sql/ and conf.d/ in $share" "" "$miss"
miss=""
for m in man1/mailroster.1 man5/mailroster.conf.5 man7/mailroster-admin.7 man7/mailroster-auth.7 man8/mailrosterd.8 \
         man8/mailroster-setup.8; do
    [ -f "/usr/share/man/$m.gz" ] || miss="$miss $m"
done
check "the man pages" "" "$miss"
check "mailroster setup finds its script and steps" "1" \
    "$(mailroster setup --help 2>&1 | grep -c -- '--dry-run')"
check "/usr/libexec/mailroster/mailroster-setup: 755 root root" "755 root root" \
    "$(fmode /usr/libexec/mailroster/mailroster-setup)"
check "mailroster db status: the database is up to date" "1" \
    "$(mailroster db status --database "host=$PGHOST port=$PGPORT dbname=mailroster user=postgres" 2>&1 | grep -c 'up to date')"

# --- the installed unit under systemd-analyze -------------------------------------------
out=$(cd / && systemd-analyze verify --man=no "$UNIT" 2>&1 | grep mailrosterd)
check "systemd-analyze verify: no complaint about the installed unit" "" "$out"
mr_check_exposure "$UNIT" "systemd-analyze security"

# --- the upgraded daemon, from the kept snapshot, then from PostgreSQL --------------------
stack_pg_stop
start_unit
wait_line '^READY=1' && ok "$VERSION, PostgreSQL down: READY=1 from the kept snapshot" ||
    notok "$VERSION from the snapshot: READY=1 ($(cat "$NLOG"); $(tail -5 "$LOG"))"
# (READY=1 may come while the daemon still tries PostgreSQL: the snapshot
# is served at once, "catching up from PostgreSQL"; the status says
# "from memory" once the connection has failed)
wait_line '(^|[|])STATUS=serving 3 mailboxes, 0 aliases from (memory|the snapshot file)' &&
    wait_line '(^|[|])STATUS=serving 3 mailboxes, 0 aliases from memory, at change [0-9]+; PostgreSQL unavailable' &&
    ok "... STATUS: 3 mailboxes from memory, PostgreSQL unavailable" ||
    notok "... STATUS: 3 mailboxes from memory, PostgreSQL unavailable: $(cat "$NLOG")"
stack_pg_start_again || notok "PostgreSQL restarts"
wait_line '^STATUS=serving 3 mailboxes, 0 aliases from PostgreSQL' && ok "STATUS: from PostgreSQL once it is back" ||
    notok "STATUS from PostgreSQL: $(tail -3 "$NLOG")"
check "a lookup on the unit's listener" \
    "$(sql -c "SELECT maildir FROM mailroster.mailboxes WHERE local_part = 'a2'")" \
    "$(postmap -q a2@example.com "socketmap:inet:127.0.0.1:$P_SMAP:mailboxes" 2>&1)"
stop_unit
check "SIGTERM: STOPPING=1" "1" "$(grep -c '^STOPPING=1$' "$NLOG")"

# --- lintian on the source and the binary packages --------------------------------------
wait "$LINT_PID"
check "lintian: no errors or warnings" "" "$(grep -E '^[EW]: ' "$W/lintian.out")"
check_cmd "lintian was given the source package too" grep -q " mailroster_$VERSION.dsc\$" "$CHANGES"
sed 's/^/# /' "$W/lintian.out"

# --- purge: the machine as it was -------------------------------------------------------
purge_all
check "purged: no trace of the packages, the user or the group" "$BEFORE" "$(host_state)"
check "purged: $MODDIR as before" "$MODS_BEFORE" "$(mods)"
t_summary
