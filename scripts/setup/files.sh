# shellcheck shell=bash
# scripts/setup/files.sh - setup's file transactions: each file is staged,
# compared, backed up the first time it changes and written atomically;
# undo puts the backups back.
# Sourced by mailroster-setup, whose variables it uses.

# The manifest holds one line per thing setup created or changed:
#   file PATH 1|0   (1: existed, its backup is BACKUP/PATH)
#   dir PATH        (created)
#   user NAME       (created)
recorded() { [ -f "$MANIFEST" ] && grep -qxF -- "$1" "$MANIFEST"; }
recorded_file() { [ -f "$MANIFEST" ] && awk -v p="$1" '$1 == "file" && $2 == p { f = 1 } END { exit !f }' "$MANIFEST"; }
record() { recorded "$1" || printf '%s\n' "$1" >>"$MANIFEST"; }

# one run at a time (a dry run reads only)
LOCKED=0
take_lock() {
    [ "$LOCKED" = 0 ] && [ "$DRY" = 0 ] && [ -d "$STATE_DIR" ] || return 0
    exec 9<"$STATE_DIR"
    flock -n 9 || die "another mailroster setup is running (lock on $STATE_DIR)"
    LOCKED=1
}

# the checksum of what setup last wrote to a file (no copies: some hold secrets)
SUMS=$STATE_DIR/written.sums
written_sum() { [ -f "$SUMS" ] && awk -v p="$1" '$2 == p { s = $1 } END { print s }' "$SUMS"; }

# stage PATH [MODE OWNER:GROUP]: S is the file to write PATH's new text to;
# it starts as a copy of PATH. (Not run in $(...): it records in arrays.)
declare -A STAGED=() MODE=() OWNER=()
stage() {
    S=$STAGE/files$1
    mkdir -p "$(dirname "$S")"
    if [ -z "${STAGED[$1]:-}" ]; then
        if [ -f "$1" ]; then cp -p -- "$1" "$S"; else : >"$S"; fi
        STAGED[$1]=$S
    fi
    if [ -n "${2:-}" ]; then MODE[$1]=$2; OWNER[$1]=$3; fi
}
# conf_set FILE NAME VALUE: "NAME = VALUE" in a main.cf-style file, in place
# of a line that sets NAME, else after its commented default, else at the end.
conf_set() {
    awk -v n="$2" -v v="$3" '
        function put() { print n " = " v; done = 1 }
        FNR == NR { if ($0 ~ "^" n "[ \t]*=") active = 1; next }
        skip && /^[ \t]/ { next }
        { skip = 0 }
        !done && active && $0 ~ "^" n "[ \t]*=" { put(); skip = 1; next }
        !done && !active && $0 ~ "^#" n "[ \t]*=" { print; put(); next }
        { print }
        END { if (!done) put() }' "$1" "$1" >"$1.new" && mv -f -- "$1.new" "$1"
}

# files_compare: CHANGED = the staged files whose text or mode differs from
# the real ones; a dry run prints each as a unified diff.
files_compare() {
    CHANGED=()
    for path in $(printf '%s\n' "${!STAGED[@]}" | sort); do
        s=${STAGED[$path]}
        if [ -f "$path" ] && cmp -s -- "$path" "$s"; then
            if [ -n "${MODE[$path]:-}" ] && [ "$(stat -c %a "$path")" != "${MODE[$path]#0}" ]; then
                CHANGED+=("$path")
            fi
            continue
        fi
        CHANGED+=("$path")
        if [ "$DRY" = 1 ]; then
            if [ -f "$path" ]; then diff -u --label "$path" --label "$path (new)" -- "$path" "$s" | mask || true
            else diff -u --label /dev/null --label "$path (new)" /dev/null "$s" | mask || true; fi
        fi
    done
    CHANGES=$((CHANGES + ${#CHANGED[@]}))
}

# files_apply: back up (the first time) and write each changed file;
# RESTART = the services whose files changed.
files_apply() {
    RESTART=""
    for path in "${CHANGED[@]}"; do
        if [ -f "$path" ] && ! recorded_file "$path"; then
            mkdir -p "$BACKUP$(dirname "$path")"
            cp -p -- "$path" "$BACKUP$path" || die "cannot back up $path"
            record "file $path 1"
        elif ! recorded_file "$path"; then
            record "file $path 0"
        fi
        tmp=$path.mrsetup.tmp
        cp -- "${STAGED[$path]}" "$tmp" || die "cannot write $path"
        if [ -n "${MODE[$path]:-}" ]; then
            chmod "${MODE[$path]}" "$tmp"
            chown "${OWNER[$path]}" "$tmp" 2>/dev/null || chown "root:${OWNER[$path]#*:}" "$tmp" 2>/dev/null || true
        elif [ -f "$path" ]; then
            chmod --reference="$path" "$tmp"; chown --reference="$path" "$tmp"
        fi
        mv -f -- "$tmp" "$path" || die "cannot write $path"
        # what was written, so that --undo can tell an edit made since
        { [ -f "$SUMS" ] && awk -v p="$path" '$2 != p' "$SUMS"; printf '%s %s\n' "$(sha256sum <"$path" | cut -d' ' -f1)" "$path"; } \
            >"$SUMS.new" && mv -f -- "$SUMS.new" "$SUMS"
        say "changed $path"
        case $path in
            "$PF_DIR"/*) RESTART="$RESTART postfix" ;;
            "$DV_DIR"/*) RESTART="$RESTART dovecot" ;;
            "$MR_DIR"/*) RESTART="$RESTART mailrosterd" ;;
        esac
    done
}

# files_undo: put every recorded file back, remove what setup created.
files_undo() {
    [ -f "$MANIFEST" ] || die "nothing to undo: no record in $STATE_DIR"
    LOG=$STATE_DIR/setup.log
    log "undo started"
    svcs=""
    for p in $(awk '$1 == "file" { print $2 }' "$MANIFEST"); do
        case $p in
            "$PF_DIR"/*) svcs="$svcs postfix" ;;
            "$DV_DIR"/*) svcs="$svcs dovecot" ;;
            "$MR_DIR"/*) svcs="$svcs mailrosterd" ;;
        esac
    done
    # mailrosterd goes first: its configuration is about to go
    case $svcs in *mailrosterd*) reload mailrosterd stop ;; esac
    # backwards, so that files come back before the dirs that held them go
    # (system users setup created are kept: files may belong to them)
    tac "$MANIFEST" >"$STATE_DIR/manifest.rev"
    while read -r kind path existed; do
        case $kind in
            file)
                if [ -f "$path" ] && [ "$(sha256sum <"$path" | cut -d' ' -f1)" != "$(written_sum "$path")" ]; then
                    mkdir -p "$STATE_DIR/edited$(dirname "$path")"
                    cp -p -- "$path" "$STATE_DIR/edited$path"
                    say "note: $path was edited after setup; that version is kept in $STATE_DIR/edited$path"
                fi
                if [ "$existed" = 1 ]; then
                    cp -p -- "$BACKUP$path" "$path.mrsetup.tmp" && mv -f -- "$path.mrsetup.tmp" "$path" \
                        || die "cannot put back $path"
                    say "restored $path"
                else
                    rm -f -- "$path"
                    say "removed $path"
                fi ;;
            dir) rmdir -- "$path" 2>/dev/null && say "removed $path" || true ;;
        esac
    done <"$STATE_DIR/manifest.rev"
    rm -rf -- "$BACKUP" "$MANIFEST" "$STATE_DIR/manifest.rev" "$SUMS"
    case $svcs in *dovecot*) reload dovecot reload ;; esac
    case $svcs in *postfix*) reload postfix reload ;; esac
    log "undo done"
    say "undo done (the database and its roles are kept)"
}
