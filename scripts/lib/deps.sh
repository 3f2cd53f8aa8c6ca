# shellcheck shell=bash
# scripts/lib/deps.sh - the Debian 12 packages mailroster builds, tests and
# demonstrates with. deps_install installs what is missing (as root).

DEPS_PACKAGES="build-essential autoconf automake libtool pkg-config
 libpq-dev libevent-dev libidn2-dev libunistring-dev libcrypt-dev libssl-dev check
 postgresql postfix postfix-pgsql dovecot-core dovecot-imapd dovecot-lmtpd dovecot-pgsql dovecot-sieve dovecot-dev
 libsystemd-dev systemd
 debhelper lintian
 swaks socat python3 clang libclang-rt-14-dev procps iproute2 valgrind"

deps_install() {
    local missing="" p
    for p in $DEPS_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages:$missing (run as root to install them)" >&2
        return 1
    fi
    echo "installing:$missing"
    # the private stack must not start the host's own services
    export DEBIAN_FRONTEND=noninteractive
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        DEPS_POLICY_RC=1
    fi
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null
    local rc=$?
    [ "${DEPS_POLICY_RC:-0}" = 1 ] && rm -f /usr/sbin/policy-rc.d
    return $rc
}
