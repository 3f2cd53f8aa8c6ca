# shellcheck shell=bash
# scripts/setup/check.sh - check the wiring end to end with a test account that
# is removed again: Postfix's map finds it, Dovecot logs it in.
# Sourced by mailroster-setup, whose variables it uses.

# check_result: needs mailrosterd, Dovecot and Postfix running
check_result() {
    check_dom=setup-check.invalid
    check_user=probe-$$@$check_dom
    check_pw=$(new_pw)
    mr() { "$MRCLI" -s "$RUN_DIR/admin" "$@"; }
    for _ in $(seq 1 100); do [ -S "$RUN_DIR/admin" ] && break; sleep 0.1; done
    cleanup_check() { mr user remove "$check_user" >/dev/null 2>&1 || true; mr domain remove "$check_dom" --force >/dev/null 2>&1 || true; }
    mr domain add "$check_dom" >/dev/null 2>"$STAGE/cli.err" || die "check: cannot add a test domain: $(head -n 1 "$STAGE/cli.err")"
    printf '%s\n' "$check_pw" | mr user add "$check_user" --password-stdin >/dev/null 2>"$STAGE/cli.err" \
        || { cleanup_check; die "check: cannot add a test account: $(head -n 1 "$STAGE/cli.err")"; }
    ok=""
    for _ in $(seq 1 100); do   # the daemon sees the new account within a moment
        ok=$(cd "$QDIR" && postmap -q "$check_user" "socketmap:unix:mailroster/socketmap:mailboxes" 2>/dev/null) && break
        sleep 0.1
    done
    [ -n "$ok" ] || { cleanup_check; die "check: postmap -q $check_user socketmap:unix:mailroster/socketmap:mailboxes found nothing"; }
    say "check: postmap -q finds the test account"
    if ! doveadm -c "$DV_MAIN" auth test "$check_user" "$check_pw" >/dev/null 2>&1; then
        cleanup_check
        die "check: doveadm auth test refused the test account (see Dovecot's log)"
    fi
    say "check: doveadm auth test logs the test account in"
    cleanup_check
    say "check: test account removed; done"
}
