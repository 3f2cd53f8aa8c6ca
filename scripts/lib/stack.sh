# shellcheck shell=bash
# scripts/lib/stack.sh - private loopback mail stack (PostgreSQL, Dovecot,
# Postfix) for mailroster's integration tests and scripts/demo.
#
# Source this file; sourcing has no side effects. Every public function is
# named stack_*, internal helpers stack__*. The caller provides STACK_DIR
# (an existing directory, e.g. from `mktemp -d`); everything the stack
# creates lives below it. Needs root (Debian 12: postgres, postfix and
# dovecot users/packages installed). See the guide
# /work/shared/guides/loopback-mail-stack.md for the underlying facts.
#
# Typical use:
#   STACK_DIR=$(mktemp -d); export STACK_DIR
#   . scripts/lib/stack.sh
#   trap stack_cleanup EXIT
#   stack_pg_start; stack_pg_createdb roster
#   read -r uid gid < <(stack_vmail_user)
#   STACK_DOVECOT_AUTH_MODULE=$PWD/build/.libs/libauthdb_roster.so
#   stack_dovecot_start "passdb {
#     driver = roster
#     args = socket=$STACK_DIR/mr/auth
#   }
#   userdb {
#     driver = roster
#     args = socket=$STACK_DIR/mr/auth
#   }"
#   stack_postfix_start "virtual_mailbox_domains = example.test"
#
# (scripts/lib/mrstack.sh does this for mailroster's own stack, with the
# shipped conf.d/dovecot/auth-roster.conf.ext.)
#
# Functions print nothing on success (unless stated) and, on failure, print
# "stack: ..." to stderr and return non-zero.
#
# Exports (set by the *_start functions):
#   PGHOST PGPORT PGUSER STACK_PG_PORT STACK_PG_LOG
#   STACK_DOVECOT_CONF STACK_IMAP_PORT STACK_LMTP_SOCKET STACK_DOVECOT_LOG
#   STACK_SMTP_PORT STACK_POSTFIX_CONF STACK_POSTFIX_LOG
# Caller-provided:
#   STACK_DIR   (required)   STACK_PIDS (array; PIDs killed by stack_cleanup)
#   STACK_KEEP=1 keeps STACK_DIR after stack_cleanup (for post-mortems)
#   STACK_PG_BIN overrides the PostgreSQL bin directory
#   STACK_PG_SHARED_BUFFERS  the cluster's shared_buffers (16MB; benchmarks: Debian's 128MB)
#   STACK_DOVECOT_AUTH_MODULE  an auth module (e.g. libauthdb_roster.so)
#               that Dovecot loads from its auth module dir; see
#               stack_dovecot_start (STACK_DOVECOT_NO_NAMESPACE=1: the
#               fallback, installed into the host's dir while Dovecot runs)

# ---------------------------------------------------------------- helpers

stack__err() {
    printf 'stack: %s\n' "$*" >&2
    return 1
}

# stack__need_dir: STACK_DIR must be set, absolute and an existing directory.
stack__need_dir() {
    if [[ -z "${STACK_DIR:-}" ]]; then
        stack__err "STACK_DIR is not set (create it with mktemp -d)"
        return 1
    fi
    if [[ "$STACK_DIR" != /* || "$STACK_DIR" == / || ! -d "$STACK_DIR" ]]; then
        stack__err "STACK_DIR='$STACK_DIR' must be an existing absolute directory"
        return 1
    fi
    if [[ "$(id -u)" != 0 ]]; then
        stack__err "must run as root"
        return 1
    fi
    # postgres, postfix, dovecot and the mail user must traverse it.
    chmod a+rx "$STACK_DIR" || { stack__err "chmod $STACK_DIR failed"; return 1; }
}

# stack__alive PID: true if PID is a live process (zombies count as gone).
stack__alive() {
    local pid=$1 state
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    state=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z* ]]
}

# stack__wait_gone PID SECONDS: wait until PID is gone; false on timeout.
stack__wait_gone() {
    local pid=$1 i n=$(( $2 * 10 ))
    for (( i = 0; i < n; i++ )); do
        stack__alive "$pid" || return 0
        sleep 0.1
    done
    ! stack__alive "$pid"
}

# stack__pidfile_pid FILE: print the first number in FILE (postfix pads it).
stack__pidfile_pid() {
    local pid=""
    [[ -r "$1" ]] || return 1
    read -r pid < "$1" || true
    pid=${pid//[[:space:]]/}
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    printf '%s\n' "$pid"
}

# stack__port_busy PORT: true if something listens on 127.0.0.1:PORT (or any).
stack__port_busy() {
    local p=$1
    if ss -ltnH "( sport = :$p )" 2>/dev/null | grep -q .; then
        return 0
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        return 0
    fi
    return 1
}

# stack__wait_port PORT SECONDS: wait until 127.0.0.1:PORT accepts connections.
stack__wait_port() {
    local p=$1 i n=$(( $2 * 10 ))
    for (( i = 0; i < n; i++ )); do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

stack__tail_log() {
    local f=$1
    [[ -s "$f" ]] || return 0
    printf 'stack: --- last lines of %s ---\n' "$f" >&2
    tail -n 20 "$f" | sed 's/^/stack:   /' >&2
}

stack__pg_bin() {
    if [[ -n "${STACK_PG_BIN:-}" ]]; then
        printf '%s\n' "$STACK_PG_BIN"
        return 0
    fi
    local d
    d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    [[ -n "$d" && -x "$d/pg_ctl" ]] || { stack__err "no PostgreSQL server found under /usr/lib/postgresql"; return 1; }
    printf '%s\n' "$d"
}

# stack__as_postgres CMD...: run CMD as user postgres from /.
stack__as_postgres() {
    (cd / && runuser -u postgres -- "$@")
}

# ---------------------------------------------------------------- ports

# stack_free_port: print an unused loopback TCP port. Ports are drawn at
# random below the kernel's ephemeral range (so outgoing connections cannot
# grab them meanwhile), within 20000-60000. Each port handed out is
# reserved until the stack's cleanup (or for an hour, where a run was
# killed before it: stack__port_reserve, stack__port_prune), so that tests
# running at the same time (scripts/check runs several at once) never get
# the same port, even between choosing it and binding it or across a
# daemon's restart, and one test never gets a port twice. Against other
# programs there is still a window between choosing and binding; the
# *_start functions retry with a new port when binding fails.
stack_free_port() {
    local lo=20000 hi=60000 eph_lo i p
    if read -r eph_lo _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null \
        && (( eph_lo > lo + 1000 && eph_lo - 1 < hi )); then
        hi=$(( eph_lo - 1 ))
    fi
    stack__port_prune
    for (( i = 0; i < 500; i++ )); do
        p=$(( lo + ( (RANDOM << 15) | RANDOM ) % (hi - lo + 1) ))
        stack__port_busy "$p" && continue
        stack__port_reserve "$p" || continue
        printf '%s\n' "$p"
        return 0
    done
    stack__err "no free TCP port found in $lo-$hi"
}

# Reservations are directories STACK_PORT_DIR/PORT (mkdir is atomic: of
# two tests drawing the same port, one gets it). The directory is shared
# by every user who runs tests, hence mode 1777.
stack__port_dir() { printf '%s\n' "${STACK_PORT_DIR:-/tmp/mailroster-ports}"; }

# stack__port_reserve PORT: true if this call reserved PORT (or if there
# is no place for reservations: then only the listening check is left).
# A stack's reservation names its STACK_DIR in PORT/stack and is listed in
# STACK_DIR/ports, so that stack_cleanup releases its own and no other
# (stack_free_port runs in $(...): nothing in a variable would reach it).
stack__port_reserve() {
    local d
    d=$(stack__port_dir)
    [[ -d "$d" ]] || { mkdir -p "$d" && chmod 1777 "$d"; } 2>/dev/null
    [[ -d "$d" && -w "$d" ]] || return 0
    mkdir "$d/$1" 2>/dev/null || return 1
    if [[ -n "${STACK_DIR:-}" && -d "$STACK_DIR" && -w "$STACK_DIR" ]]; then
        printf '%s\n' "$STACK_DIR" > "$d/$1/stack" 2>/dev/null
        printf '%s\n' "$1" >> "$STACK_DIR/ports"
    fi
    return 0
}

# stack__port_release: give back the reservations this stack made (those
# STACK_DIR/ports lists that still name this STACK_DIR: one pruned after an
# hour may be another test's now).
stack__port_release() {
    local d p
    d=$(stack__port_dir)
    [[ -f "$STACK_DIR/ports" ]] || return 0
    while read -r p; do
        [[ "$p" =~ ^[0-9]+$ ]] || continue
        [[ "$(cat "$d/$p/stack" 2>/dev/null)" == "$STACK_DIR" ]] || continue
        rm -f -- "$d/$p/stack" && rmdir -- "$d/$p" 2>/dev/null
    done < "$STACK_DIR/ports"
    rm -f -- "$STACK_DIR/ports"
}

# stack__port_prune: drop reservations older than an hour (no test holds
# a port that long); a run that was killed leaves its reservations behind.
stack__port_prune() {
    local d
    d=$(stack__port_dir)
    [[ -d "$d" ]] || return 0
    find "$d" -mindepth 1 -maxdepth 1 -type d -mmin +60 -exec rm -rf -- {} + 2>/dev/null || true
}

# ---------------------------------------------------------------- PostgreSQL

stack__pg_settings() {
    # Static settings, appended once to postgresql.conf after initdb.
    cat <<EOF

# ---- added by mailroster scripts/lib/stack.sh (test cluster) ----
listen_addresses = '127.0.0.1'
unix_socket_directories = '$STACK_DIR/pgsock'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = ${STACK_PG_SHARED_BUFFERS:-16MB}
max_connections = 50
logging_collector = off
log_destination = 'stderr'
include = 'stack_port.conf'
EOF
}

# stack__pg_ctl_start: start the cluster on the port in stack_port.conf.
stack__pg_ctl_start() {
    local bin=$1
    stack__as_postgres "$bin/pg_ctl" -D "$STACK_DIR/pg" -l "$STACK_DIR/pg.log" \
        -w -t 60 start >"$STACK_DIR/pg_ctl.out" 2>&1
}

stack__pg_export() {
    export PGHOST="$STACK_DIR/pgsock"
    export PGPORT="$1"
    export PGUSER=postgres
    export STACK_PG_PORT="$1"
    export STACK_PG_LOG="$STACK_DIR/pg.log"
}

stack__pg_running() {
    local pid
    pid=$(head -n 1 "$STACK_DIR/pg/postmaster.pid" 2>/dev/null) || return 1
    stack__alive "$pid"
}

# stack_pg_start: initdb a private cluster in $STACK_DIR/pg (trust auth,
# superuser postgres), start it on socket dir $STACK_DIR/pgsock and
# 127.0.0.1:<free port>, wait until it accepts connections.
# Exports PGHOST PGPORT PGUSER STACK_PG_PORT STACK_PG_LOG.
stack_pg_start() {
    stack__need_dir || return 1
    local bin port attempt
    bin=$(stack__pg_bin) || return 1
    if [[ -e "$STACK_DIR/pg" ]]; then
        stack__err "$STACK_DIR/pg already exists (use stack_pg_start_again to restart it)"
        return 1
    fi
    if ! { install -d -o postgres -g postgres -m 0700 "$STACK_DIR/pg" \
            && install -d -o postgres -g postgres -m 0755 "$STACK_DIR/pgsock" \
            && install -o postgres -g postgres -m 0644 /dev/null "$STACK_DIR/pg.log"; }; then
        stack__err "cannot create PostgreSQL directories under $STACK_DIR"
        return 1
    fi
    if ! stack__as_postgres env LC_ALL=C "$bin/initdb" -D "$STACK_DIR/pg" \
            --auth=trust -U postgres --encoding=UTF8 --no-locale --no-sync \
            >"$STACK_DIR/initdb.out" 2>&1; then
        stack__err "initdb failed:"
        sed 's/^/stack:   /' "$STACK_DIR/initdb.out" >&2
        return 1
    fi
    stack__pg_settings >> "$STACK_DIR/pg/postgresql.conf" \
        || { stack__err "cannot write postgresql.conf"; return 1; }
    for (( attempt = 1; attempt <= 5; attempt++ )); do
        port=$(stack_free_port) || return 1
        printf "port = %s\n" "$port" > "$STACK_DIR/pg/stack_port.conf"
        chown postgres:postgres "$STACK_DIR/pg/stack_port.conf"
        if stack__pg_ctl_start "$bin"; then
            stack__pg_export "$port"
            if stack__as_postgres "$bin/pg_isready" -q -h "$STACK_DIR/pgsock" -p "$port" -t 30 \
                && stack__as_postgres "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 30; then
                return 0
            fi
            stack__err "PostgreSQL started but is not ready on port $port"
            stack__tail_log "$STACK_DIR/pg.log"
            return 1
        fi
        # Lost a race for the port? Then try another one.
        if grep -q 'could not bind\|could not create any TCP/IP sockets\|Address already in use' \
                "$STACK_DIR/pg.log" 2>/dev/null && ! stack__pg_running; then
            : > "$STACK_DIR/pg.log"
            continue
        fi
        break
    done
    stack__err "PostgreSQL failed to start (data $STACK_DIR/pg):"
    sed 's/^/stack:   /' "$STACK_DIR/pg_ctl.out" >&2
    stack__tail_log "$STACK_DIR/pg.log"
    return 1
}

# stack_pg_stop: stop the cluster (fast shutdown, waits). No-op if stopped.
stack_pg_stop() {
    stack__need_dir || return 1
    local bin
    [[ -f "$STACK_DIR/pg/PG_VERSION" ]] || { stack__err "no cluster in $STACK_DIR/pg"; return 1; }
    stack__pg_running || return 0
    bin=$(stack__pg_bin) || return 1
    if ! stack__as_postgres "$bin/pg_ctl" -D "$STACK_DIR/pg" -m fast -w -t 60 stop \
            >"$STACK_DIR/pg_ctl.out" 2>&1; then
        stack__err "pg_ctl stop failed:"
        sed 's/^/stack:   /' "$STACK_DIR/pg_ctl.out" >&2
        return 1
    fi
}

# stack_pg_start_again: restart the cluster created by stack_pg_start, on
# the same port and socket (for outage tests). No-op if it is running.
stack_pg_start_again() {
    stack__need_dir || return 1
    local bin port
    [[ -f "$STACK_DIR/pg/PG_VERSION" ]] || { stack__err "no cluster in $STACK_DIR/pg (call stack_pg_start first)"; return 1; }
    port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$STACK_DIR/pg/stack_port.conf" 2>/dev/null)
    [[ -n "$port" ]] || { stack__err "cannot read the cluster's port"; return 1; }
    stack__pg_export "$port"
    stack__pg_running && return 0
    bin=$(stack__pg_bin) || return 1
    if ! stack__pg_ctl_start "$bin"; then
        stack__err "PostgreSQL failed to restart on port $port:"
        sed 's/^/stack:   /' "$STACK_DIR/pg_ctl.out" >&2
        stack__tail_log "$STACK_DIR/pg.log"
        return 1
    fi
    stack__as_postgres "$bin/pg_isready" -q -h "$STACK_DIR/pgsock" -p "$port" -t 30 \
        || { stack__err "PostgreSQL restarted but is not ready"; return 1; }
}

# stack_pg_createdb NAME: create database NAME (owner postgres).
stack_pg_createdb() {
    stack__need_dir || return 1
    local bin
    [[ -n "${1:-}" ]] || { stack__err "usage: stack_pg_createdb NAME"; return 1; }
    [[ -n "${STACK_PG_PORT:-}" ]] || { stack__err "PostgreSQL not started (stack_pg_start)"; return 1; }
    bin=$(stack__pg_bin) || return 1
    "$bin/createdb" -h "$STACK_DIR/pgsock" -p "$STACK_PG_PORT" -U postgres -- "$1" \
        || { stack__err "createdb $1 failed"; return 1; }
}

# ---------------------------------------------------------------- mail user

# stack_vmail_user: ensure system user/group mrvmail exists (no login, no
# home), create $STACK_DIR/vmail owned by it, print "uid gid".
stack_vmail_user() {
    stack__need_dir || return 1
    local uid gid
    if ! id -u mrvmail >/dev/null 2>&1; then
        # A parallel run may create it at the same time: re-check on failure.
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --comment "mailroster test mail owner" mrvmail \
            >/dev/null 2>&1 \
            || id -u mrvmail >/dev/null 2>&1 \
            || { stack__err "useradd mrvmail failed"; return 1; }
    fi
    if ! { uid=$(id -u mrvmail) && gid=$(id -g mrvmail); }; then
        stack__err "cannot resolve user mrvmail"
        return 1
    fi
    install -d -o "$uid" -g "$gid" -m 0750 "$STACK_DIR/vmail" \
        || { stack__err "cannot create $STACK_DIR/vmail"; return 1; }
    printf '%s %s\n' "$uid" "$gid"
}

# ---------------------------------------------------------------- Dovecot

stack__dovecot_write_conf() {
    local port=$1 snippet=$2 d="$STACK_DIR/dovecot"
    cat > "$d/dovecot.conf" <<EOF
# generated by mailroster scripts/lib/stack.sh
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_failure_delay = 0
auth_verbose = yes
mail_location = maildir:~/Maildir
# system users (mrvmail) have small uids
first_valid_uid = 1
first_valid_gid = 1
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
$snippet
EOF
}

# Dovecot 2.3 loads auth drivers only from its compiled-in module dir
# (no setting moves it). With STACK_DOVECOT_AUTH_MODULE set, Dovecot runs in
# a private mount namespace where that dir is a copy with the module added:
# the host's dir is never written and parallel runs with different builds
# never meet. Where namespaces are refused, the module is installed into
# the host's dir and stack_dovecot_stop puts back what was there.
STACK__DV_MODDIR=/usr/lib/dovecot/modules/auth

stack__dovecot_modules() { # DIR: the module dir Dovecot will see
    local dst=$1 mod=$STACK_DOVECOT_AUTH_MODULE
    [[ -f "$mod" ]] || { stack__err "no auth module at $mod"; return 1; }
    rm -rf "$dst" && install -d -m 0755 "$dst" || return 1
    cp -a "$STACK__DV_MODDIR"/. "$dst"/ || return 1
    install -m 0644 "$mod" "$dst/$(basename "$mod")"
}

stack__dovecot_ns_ok() {
    [[ "${STACK_DOVECOT_NO_NAMESPACE:-0}" != 1 ]] || return 1
    unshare -m --propagation private sh -c \
        "mount --bind '$STACK_DIR/dovecot/auth-modules' '$STACK__DV_MODDIR'" 2>/dev/null
}

# the fallback: install into the host's dir, remembering what was there
stack__dovecot_module_install() {
    local mod=$STACK_DOVECOT_AUTH_MODULE d="$STACK_DIR/dovecot"
    local dst="$STACK__DV_MODDIR/$(basename "$mod")"
    if [[ -e "$dst" && ! -e "$d/auth-module.saved" && ! -e "$d/auth-module.none" ]]; then
        cp -p "$dst" "$d/auth-module.saved" || return 1
    elif [[ ! -e "$dst" ]]; then
        : >"$d/auth-module.none"
    fi
    printf '%s\n' "$dst" >"$d/auth-module.installed"
    install -m 0644 "$mod" "$dst.tmp.$$" && mv -f "$dst.tmp.$$" "$dst"
}

stack__dovecot_module_restore() {
    local d="$STACK_DIR/dovecot" dst
    [[ -f "$d/auth-module.installed" ]] || return 0
    dst=$(cat "$d/auth-module.installed")
    if [[ -e "$d/auth-module.saved" ]]; then
        mv -f "$d/auth-module.saved" "$dst" || return 1
    else
        rm -f "$dst" || return 1
    fi
    rm -f "$d/auth-module.installed" "$d/auth-module.none"
}

# stack__dovecot_exec CONF: start Dovecot's master (it daemonizes)
stack__dovecot_exec() {
    local conf=$1 d="$STACK_DIR/dovecot"
    if [[ -z "${STACK_DOVECOT_AUTH_MODULE:-}" ]]; then
        dovecot -c "$conf"
        return
    fi
    stack__dovecot_modules "$d/auth-modules" || return 1
    if stack__dovecot_ns_ok; then
        unshare -m --propagation private sh -c \
            'mount --bind "$1" "$2" && exec dovecot -c "$3"' sh \
            "$d/auth-modules" "$STACK__DV_MODDIR" "$conf"
        return
    fi
    echo "stack: no private mount namespace; installing $(basename "$STACK_DOVECOT_AUTH_MODULE") into $STACK__DV_MODDIR until Dovecot stops" >&2
    stack__dovecot_module_install || return 1
    dovecot -c "$conf"
}

stack__dovecot_pid() {
    local pid
    pid=$(stack__pidfile_pid "$STACK_DIR/dovecot/run/master.pid") || return 1
    stack__alive "$pid" || return 1
    printf '%s\n' "$pid"
}

# stack_dovecot_start PASSDB_USERDB_SNIPPET: start a private Dovecot (IMAP
# on 127.0.0.1:<free port>, LMTP on $STACK_DIR/dovecot/run/lmtp, mode 0666).
# Exports STACK_DOVECOT_CONF STACK_IMAP_PORT STACK_LMTP_SOCKET STACK_DOVECOT_LOG.
stack_dovecot_start() {
    stack__need_dir || return 1
    local snippet=${1:-} d="$STACK_DIR/dovecot" port attempt
    [[ -n "$snippet" ]] || { stack__err "usage: stack_dovecot_start PASSDB_USERDB_SNIPPET"; return 1; }
    if stack__dovecot_pid >/dev/null; then
        stack__err "Dovecot already running for $STACK_DIR"
        return 1
    fi
    install -d -m 0755 "$d" || { stack__err "cannot create $d"; return 1; }
    for (( attempt = 1; attempt <= 5; attempt++ )); do
        port=$(stack_free_port) || return 1
        stack__dovecot_write_conf "$port" "$snippet" || { stack__err "cannot write $d/dovecot.conf"; return 1; }
        : > "$d/dovecot.log"
        # Not $(...): the master keeps the inherited stdout/stderr open.
        if stack__dovecot_exec "$d/dovecot.conf" >"$d/dovecot-start.out" 2>&1 </dev/null; then
            export STACK_DOVECOT_CONF="$d/dovecot.conf"
            export STACK_IMAP_PORT="$port"
            export STACK_LMTP_SOCKET="$d/run/lmtp"
            export STACK_DOVECOT_LOG="$d/dovecot.log"
            if ! { stack__wait_port "$port" 10 && [[ -S "$d/run/lmtp" ]]; }; then
                stack__err "Dovecot started but IMAP port $port / LMTP socket not up"
                stack__tail_log "$d/dovecot.log"
                stack_dovecot_stop
                return 1
            fi
            # The auth process starts lazily: one userdb lookup makes a broken
            # passdb/userdb (unknown driver, module that fails to load) show up
            # now as "Fatal:" in the log rather than later as a login failure.
            timeout 15 doveadm -c "$d/dovecot.conf" user stack-probe@invalid >/dev/null 2>&1
            if grep -q 'Fatal:' "$d/dovecot.log"; then
                stack__err "Dovecot auth failed to start (passdb/userdb snippet?):"
                stack__tail_log "$d/dovecot.log"
                stack_dovecot_stop
                return 1
            fi
            return 0
        fi
        if grep -qs 'Address already in use' "$d/dovecot-start.out" "$d/dovecot.log" \
                && ! stack__dovecot_pid >/dev/null; then
            continue
        fi
        break
    done
    stack__err "Dovecot failed to start (config $d/dovecot.conf):"
    sed 's/^/stack:   /' "$d/dovecot-start.out" >&2
    stack__tail_log "$d/dovecot.log"
    return 1
}

# stack_dovecot_stop: stop Dovecot and wait until its master is gone.
# No-op if it is not running.
stack_dovecot_stop() {
    stack__need_dir || return 1
    local pid conf="$STACK_DIR/dovecot/dovecot.conf"
    pid=$(stack__dovecot_pid) || { stack__dovecot_module_restore; return $?; }
    doveadm -c "$conf" stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null
    if ! stack__wait_gone "$pid" 15; then
        kill -KILL "$pid" 2>/dev/null
        stack__wait_gone "$pid" 5 || { stack__err "Dovecot master $pid does not exit"; stack__dovecot_module_restore; return 1; }
        stack__err "Dovecot master $pid had to be killed"
        stack__dovecot_module_restore
        return 1
    fi
    stack__dovecot_module_restore
}

# ---------------------------------------------------------------- Postfix
#
# A non-default Postfix config directory must be listed in the default
# instance's alternate_config_directories (/etc/postfix/main.cf). We add our
# directory there (under a lock) and remove exactly our entry again in
# stack_cleanup: if main.cf is still exactly what we wrote, the saved
# original is put back byte for byte; otherwise (another run edited it
# meanwhile) only our token is removed from the current value.

# The host's config directory; overridable only so the list editing can be
# exercised against a scratch copy.
stack__hostpf() { printf '%s\n' "${STACK__HOSTPF:-/etc/postfix}"; }

# stack__locked CMD...: run CMD holding an exclusive lock on /etc/postfix.
stack__locked() {
    local fd rc hp
    hp=$(stack__hostpf)
    exec {fd}<"$hp" || { stack__err "cannot open $hp"; return 1; }
    if ! flock -w 60 "$fd"; then
        exec {fd}<&-
        stack__err "timeout waiting for the lock on $hp"
        return 1
    fi
    "$@"
    rc=$?
    exec {fd}<&-
    return "$rc"
}

# stack__acd_tokens VALUE: print the entries of a list value, one a line.
stack__acd_tokens() {
    printf '%s\n' "$1" | tr ', \t' '\n' | sed '/^$/d'
}

stack__acd_add_locked() {
    local dir=$1 save="$STACK_DIR/postfix" cur new hp
    hp=$(stack__hostpf)
    cur=$(postconf -c "$hp" -h alternate_config_directories 2>/dev/null) \
        || { stack__err "postconf cannot read $hp/main.cf"; return 1; }
    if stack__acd_tokens "$cur" | grep -qxF -- "$dir"; then
        return 0
    fi
    cp -p "$hp/main.cf" "$save/main.cf.host-orig" \
        || { stack__err "cannot save a copy of $hp/main.cf"; return 1; }
    new="${cur:+$cur }$dir"
    postconf -c "$hp" -e "alternate_config_directories = $new" \
        || { stack__err "postconf -e alternate_config_directories failed"; return 1; }
    cp -p "$hp/main.cf" "$save/main.cf.host-ours" \
        || { stack__err "cannot save a copy of the edited $hp/main.cf"; return 1; }
}

stack__acd_remove_locked() {
    local dir=$1 save="$STACK_DIR/postfix" cur rest tmp hp
    hp=$(stack__hostpf)
    cur=$(postconf -c "$hp" -h alternate_config_directories 2>/dev/null) \
        || { stack__err "postconf cannot read $hp/main.cf"; return 1; }
    if ! stack__acd_tokens "$cur" | grep -qxF -- "$dir"; then
        rm -f "$save/main.cf.host-orig" "$save/main.cf.host-ours"
        return 0
    fi
    if [[ -f "$save/main.cf.host-ours" && -f "$save/main.cf.host-orig" ]] \
            && cmp -s "$hp/main.cf" "$save/main.cf.host-ours"; then
        # Untouched since we edited it: put the original back byte for byte
        # (atomically: copy next to it, then rename).
        tmp="$hp/.main.cf.stack.$$"
        if cp -p "$save/main.cf.host-orig" "$tmp" && mv -f "$tmp" "$hp/main.cf"; then
            rm -f "$save/main.cf.host-orig" "$save/main.cf.host-ours"
            return 0
        fi
        rm -f "$tmp"
        stack__err "could not copy the original main.cf back; removing our entry instead"
    fi
    rest=$(stack__acd_tokens "$cur" | grep -vxF -- "$dir" | paste -sd ' ')
    if [[ -n "$rest" ]]; then
        postconf -c "$hp" -e "alternate_config_directories = $rest" \
            || { stack__err "postconf -e failed while restoring alternate_config_directories"; return 1; }
    else
        postconf -c "$hp" -X alternate_config_directories \
            || { stack__err "postconf -X failed while restoring alternate_config_directories"; return 1; }
    fi
    rm -f "$save/main.cf.host-orig" "$save/main.cf.host-ours"
}

# stack__postfix_cmd ARGS...: run "postfix -c CONF ARGS" on a pseudo-terminal
# (errors before maillog_file is set up would otherwise go to the absent
# syslog). Output goes to $STACK_DIR/postfix/postfix-cmd.out.
stack__postfix_cmd() {
    local cmd
    printf -v cmd '%q ' postfix -c "$STACK_DIR/postfix/etc" "$@"
    script -qec "$cmd" /dev/null > "$STACK_DIR/postfix/postfix-cmd.out" 2>&1 </dev/null
}

stack__postfix_pid() {
    local pid
    pid=$(stack__pidfile_pid "$STACK_DIR/postfix/spool/pid/master.pid") || return 1
    stack__alive "$pid" || return 1
    printf '%s\n' "$pid"
}

stack__postfix_write_conf() {
    local port=$1 extra=$2 d="$STACK_DIR/postfix" names
    # Parameters set in MAIN_CF_EXTRA replace our defaults (instead of
    # overriding them later in the file, which makes every Postfix program
    # warn "overriding earlier entry").
    names=$(printf '%s\n' "$extra" | sed -n 's/^\([A-Za-z0-9_]*\)[[:space:]]*=.*/\1/p' | paste -sd ' ')
    {
    echo "# generated by mailroster scripts/lib/stack.sh (private test instance)"
    awk -v skip=" $names " '
        /^[A-Za-z0-9_]+[[:space:]]*=/ { n = $0; sub(/[[:space:]]*=.*/, "", n)
                                        if (index(skip, " " n " ")) next }
        { print }' <<EOF
compatibility_level = 3.6
queue_directory = $d/spool
data_directory = $d/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.stack.test
mydomain = stack.test
myorigin = \$myhostname
mydestination =
relay_domains =
relayhost =
mynetworks = 127.0.0.0/8
local_recipient_maps =
alias_maps =
alias_database =
# nothing may leave this box: no local delivery, no relaying, no outbound SMTP
local_transport = error:local delivery is disabled in the test stack
default_transport = error:outbound mail is disabled in the test stack
relay_transport = error:outbound mail is disabled in the test stack
smtpd_relay_restrictions = reject_unauth_destination
virtual_transport = lmtp:unix:$STACK_DIR/dovecot/run/lmtp
smtpd_banner = \$myhostname ESMTP
biff = no
append_dot_mydomain = no
smtpd_error_sleep_time = 0
queue_run_delay = 10s
minimal_backoff_time = 10s
maximal_backoff_time = 60s
maillog_file = $d/postfix.log
maillog_file_prefixes = /var, /dev/stdout, $d
EOF
    echo "# ---- caller's settings (MAIN_CF_EXTRA) ----"
    printf '%s\n' "$extra"
    } > "$d/etc/main.cf" || return 1
    # master.cf: smtpd on our port only, every service unchrooted (so tcp:,
    # socketmap: and unix sockets under STACK_DIR are reachable), no other
    # inet listeners.
    awk -v port="$port" '
        /^[[:space:]]*#/ || /^[[:space:]]/ || NF < 8 { print; next }
        $1 == "smtp" && $2 == "inet" { $1 = port; $5 = "n"; print; next }
        $2 == "inet" { print "#" $0 "   # disabled by stack.sh"; next }
        { $5 = "n"; print }
    ' /etc/postfix/master.cf > "$d/etc/master.cf"
}

# stack_postfix_start MAIN_CF_EXTRA: start a private Postfix instance with
# config dir $STACK_DIR/postfix/etc, smtpd on 127.0.0.1:<free port>,
# virtual_transport = lmtp:unix:$STACK_DIR/dovecot/run/lmtp. MAIN_CF_EXTRA
# (may be empty) is appended to main.cf, so it overrides the defaults above.
# Exports STACK_SMTP_PORT STACK_POSTFIX_CONF STACK_POSTFIX_LOG.
stack_postfix_start() {
    stack__need_dir || return 1
    local extra=${1:-} d="$STACK_DIR/postfix" port attempt logsize
    if stack__postfix_pid >/dev/null; then
        stack__err "Postfix already running for $STACK_DIR"
        return 1
    fi
    if ! { install -d -m 0755 "$d" "$d/etc" "$d/spool" \
            && install -d -o postfix -g postfix -m 0700 "$d/data"; }; then
        stack__err "cannot create Postfix directories under $d"
        return 1
    fi
    stack__locked stack__acd_add_locked "$d/etc" || return 1
    for (( attempt = 1; attempt <= 5; attempt++ )); do
        port=$(stack_free_port) || return 1
        stack__postfix_write_conf "$port" "$extra" \
            || { stack__err "cannot write Postfix configuration in $d/etc"; return 1; }
        logsize=$(stat -c %s "$d/postfix.log" 2>/dev/null || echo 0)
        if stack__postfix_cmd start; then
            export STACK_SMTP_PORT="$port"
            export STACK_POSTFIX_CONF="$d/etc"
            export STACK_POSTFIX_LOG="$d/postfix.log"
            if stack__wait_port "$port" 10; then
                return 0
            fi
            stack__err "Postfix started but nothing listens on 127.0.0.1:$port"
            stack__tail_log "$d/postfix.log"
            return 1
        fi
        if { cat "$d/postfix-cmd.out"; tail -c +"$(( logsize + 1 ))" "$d/postfix.log"; } 2>/dev/null \
                | grep -q 'Address already in use' && ! stack__postfix_pid >/dev/null; then
            continue
        fi
        break
    done
    stack__err "Postfix failed to start (config $d/etc):"
    sed 's/\r$//' "$d/postfix-cmd.out" | awk '!seen[$0]++ { print "stack:   " $0 }' >&2
    stack__tail_log "$d/postfix.log"
    return 1
}

# stack_postfix_stop: stop the private Postfix and wait until its master is
# gone. No-op if it is not running. (alternate_config_directories is only
# restored by stack_cleanup, so stop/start cycles keep working.)
stack_postfix_stop() {
    stack__need_dir || return 1
    local pid
    pid=$(stack__postfix_pid) || return 0
    stack__postfix_cmd stop || kill -TERM "$pid" 2>/dev/null
    if ! stack__wait_gone "$pid" 15; then
        kill -KILL "$pid" 2>/dev/null
        stack__wait_gone "$pid" 5 || { stack__err "Postfix master $pid does not exit"; return 1; }
        stack__err "Postfix master $pid had to be killed"
        return 1
    fi
}

# stack_wait_maildir_file DIR TIMEOUT_SECONDS: wait until DIR/new contains a
# file; print the path of the oldest one. On timeout, print the tails of the
# Postfix and Dovecot logs to stderr and fail.
stack_wait_maildir_file() {
    local dir=${1:-} timeout=${2:-} f deadline now
    [[ -n "$dir" && "$timeout" =~ ^[0-9]+$ ]] \
        || { stack__err "usage: stack_wait_maildir_file DIR TIMEOUT_SECONDS"; return 1; }
    deadline=$(( ${EPOCHREALTIME/./} + timeout * 1000000 ))
    while :; do
        if [[ -d "$dir/new" ]]; then
            # shellcheck disable=SC2012  # maildir names are plain ASCII
            f=$(ls -1tr -- "$dir/new" 2>/dev/null | head -n 1)
            if [[ -n "$f" ]]; then
                printf '%s\n' "$dir/new/$f"
                return 0
            fi
        fi
        now=${EPOCHREALTIME/./}
        (( now < deadline )) || break
        sleep 0.1
    done
    stack__err "no message in $dir/new after ${timeout}s"
    [[ -n "${STACK_DIR:-}" ]] && {
        stack__tail_log "$STACK_DIR/postfix/postfix.log"
        stack__tail_log "$STACK_DIR/dovecot/dovecot.log"
    }
    return 1
}

# ---------------------------------------------------------------- cleanup

# stack__ours PID: is PID a process this stack started? Its environment
# names this STACK_DIR (the tests export it), or it is this shell's child.
stack__ours() {
    local pid=$1 ppid
    [[ -d /proc/$pid ]] || return 1
    # (2>/dev/null first: the process may be gone by the time it is read)
    if tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF -- "STACK_DIR=$STACK_DIR"; then
        return 0
    fi
    ppid=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $2 }')   # after "(comm) state"
    [[ "$ppid" == "$$" || "$ppid" == "$BASHPID" ]]
}

# stack_cleanup: stop everything this stack started (PIDs in STACK_PIDS,
# Postfix, Dovecot, PostgreSQL), release its port reservations, restore
# /etc/postfix/main.cf's alternate_config_directories, remove STACK_DIR
# unless STACK_KEEP=1.
# Safe to call more than once and from `trap stack_cleanup EXIT`; keeps
# going after errors and returns non-zero if anything failed.
stack_cleanup() {
    local - rc=0 pid i
    set +e +u
    [[ -n "${STACK_DIR:-}" && "$STACK_DIR" == /* && "$STACK_DIR" != / && -d "$STACK_DIR" ]] \
        || return 0

    # Callers' own daemons first (they may hold connections to the rest).
    # A PID recorded long ago may be another program's now (PIDs wrap in
    # minutes where pid_max is 32768 and tests run side by side): only a
    # process of this stack is signalled (stack__ours).
    if declare -p STACK_PIDS >/dev/null 2>&1; then
        for pid in "${STACK_PIDS[@]}"; do
            [[ "$pid" =~ ^[0-9]+$ ]] && stack__ours "$pid" && kill -TERM "$pid" 2>/dev/null
        done
        for pid in "${STACK_PIDS[@]}"; do
            [[ "$pid" =~ ^[0-9]+$ ]] || continue
            if ! stack__ours "$pid"; then
                wait "$pid" 2>/dev/null   # reap if it is our child
                continue
            fi
            if ! stack__wait_gone "$pid" 5; then
                kill -KILL "$pid" 2>/dev/null
                stack__wait_gone "$pid" 2
            fi
            wait "$pid" 2>/dev/null   # reap if it is our child
        done
        STACK_PIDS=()
    fi

    stack_postfix_stop || rc=1
    stack_dovecot_stop || rc=1
    if [[ -f "$STACK_DIR/pg/PG_VERSION" ]]; then
        stack_pg_stop || {
            rc=1
            pid=$(head -n 1 "$STACK_DIR/pg/postmaster.pid" 2>/dev/null)
            stack__alive "$pid" && kill -QUIT "$pid" 2>/dev/null
        }
    fi

    # The ports: every daemon that held one is stopped (or was killed).
    stack__port_release

    # Always restore the host's main.cf, even if something above failed.
    if [[ -d "$(stack__hostpf)" ]]; then
        stack__locked stack__acd_remove_locked "$STACK_DIR/postfix/etc" || rc=1
    fi

    if [[ "${STACK_KEEP:-0}" == 1 ]]; then
        printf 'stack: kept %s\n' "$STACK_DIR" >&2
    elif (( rc == 0 )); then
        rm -rf -- "$STACK_DIR" || rc=1
    else
        printf 'stack: cleanup had errors; kept %s for inspection\n' "$STACK_DIR" >&2
    fi
    return "$rc"
}
