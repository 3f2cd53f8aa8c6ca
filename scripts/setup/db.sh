# shellcheck shell=bash
# scripts/setup/db.sh - the database, its schema, the login roles and their
# passwords (generated here, shown to nobody).
# Sourced by mailroster-setup, whose variables it uses.

# db_setup: create or bring up to date; sets ROLE_* and PW_* for wire.sh.
db_setup() {
    # The superuser connection: --db-conninfo, or user postgres by peer auth.
    [ -n "$PG_HOST" ] && export PGHOST=$PG_HOST
    [ -n "$PG_PORT" ] && export PGPORT=$PG_PORT
    super_psql() { # DBNAME PSQL-ARGS...
        local db=$1; shift
        if [ -n "$DB_SUPER" ]; then
            psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB_SUPER dbname=$db" "$@"
        else
            (cd / && runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -d "dbname=$db" "$@")
        fi
    }
    super_psql postgres -c 'SELECT 1' >/dev/null 2>"$STAGE/pg.err" \
        || die "cannot reach PostgreSQL as a superuser: $(head -n 1 "$STAGE/pg.err")"

    # login roles (cluster-wide names), one per service that logs in
    ROLE_DAEMON=mailrosterd
    ROLE_ADMIN=mailrosterd_admin
    ROLE_DICT=mailroster_dovecot
    PGPASS=$MR_DIR/pgpass
    DICT_CONF=$DV_DIR/dict-sql.conf.ext

    # A stored password, or a new one (hex: safe in every file format here).
    stored_pw_pgpass() { [ -f "$PGPASS" ] && awk -F: -v u="$1" -v d="$DB_NAME" '$3 == d && $4 == u { print $5; exit }' "$PGPASS"; }
    stored_pw_dict() { [ -f "$DICT_CONF" ] && sed -n "s/^connect = .* user=$ROLE_DICT password=\([0-9a-f]*\).*/\1/p" "$DICT_CONF" | head -n 1; }
    new_pw() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }
    PW_DAEMON=$(stored_pw_pgpass "$ROLE_DAEMON" || true)
    PW_ADMIN=$(stored_pw_pgpass "$ROLE_ADMIN" || true)
    PW_DICT=$(stored_pw_dict || true)
    SET_PW=""
    [ -n "$PW_DAEMON" ] || { PW_DAEMON=$(new_pw); SET_PW="$SET_PW $ROLE_DAEMON"; }
    [ -n "$PW_ADMIN" ] || { PW_ADMIN=$(new_pw); SET_PW="$SET_PW $ROLE_ADMIN"; }
    [ -n "$PW_DICT" ] || { PW_DICT=$(new_pw); SET_PW="$SET_PW $ROLE_DICT"; }
    # what output and diffs show in place of a password
    mask() { sed -e "s/$PW_DAEMON/********/g" -e "s/$PW_ADMIN/********/g" -e "s/$PW_DICT/********/g"; }

    db_exists=$(super_psql postgres -v db="$DB_NAME" <<<"SELECT 1 FROM pg_database WHERE datname = :'db'")
    if [ -z "$db_exists" ]; then
        note_change
        if [ "$DRY" = 1 ]; then
            say "would create database $DB_NAME, its schema and roles"
        else
            super_psql postgres -v db="$DB_NAME" <<<'CREATE DATABASE :"db"' || die "CREATE DATABASE $DB_NAME failed"
            say "created database $DB_NAME"
        fi
    fi
    if [ -n "$db_exists" ] || [ "$DRY" = 0 ]; then
        # the schema owner runs the migrations (and roles.sql after them)
        mig=(--database "${DB_SUPER:+$DB_SUPER }dbname=$DB_NAME" --sql-dir "$SQL_DIR")
        [ "$DRY" = 1 ] && mig=(--dry-run "${mig[@]}")
        if [ -n "$DB_SUPER" ]; then
            out=$("$MRCLI" db migrate "${mig[@]}" 2>&1) || die "schema migration failed: $(tail -n 1 <<<"$out")"
        else
            out=$(cd / && runuser -u postgres -- "$MRCLI" db migrate "${mig[@]}" 2>&1) \
                || die "schema migration failed: $(tail -n 1 <<<"$out")"
        fi
        if grep -q 'up to date' <<<"$out"; then :; else note_change; say "schema: $(tail -n 1 <<<"$out")"; fi
    fi
    # Login roles, each in one group of sql/roles.sql; a password is set only
    # when none is stored (it comes from the environment: never on a command line).
    for pair in "$ROLE_DAEMON:mailroster_reader:PW_DAEMON" "$ROLE_ADMIN:mailroster_admin:PW_ADMIN" \
                "$ROLE_DICT:mailroster_dovecot_dict:PW_DICT"; do
        IFS=: read -r role group var <<<"$pair"
        exists=$(super_psql postgres -v r="$role" <<<"SELECT 1 FROM pg_roles WHERE rolname = :'r'")
        case " $SET_PW " in *" $role "*) setpw=1 ;; *) setpw=0 ;; esac
        [ -z "$exists" ] || [ "$setpw" = 1 ] || continue
        note_change
        what=$([ -n "$exists" ] && echo "new password for" || echo "create")
        if [ "$DRY" = 1 ]; then say "would $what login role $role (in $group)"; continue; fi
        MRSETUP_PW=${!var} super_psql postgres -v r="$role" -v g="$group" -v db="$DB_NAME" <<'SQL' \
            || die "cannot create login role $role"
SET client_min_messages = warning;
-- the statement carries the password: keep it out of the server's log
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SET log_min_duration_statement = -1;
\getenv pw MRSETUP_PW
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'r') AS create_it \gset
\if :create_it
CREATE ROLE :"r" LOGIN IN ROLE :"g";
\endif
ALTER ROLE :"r" LOGIN PASSWORD :'pw';
GRANT :"g" TO :"r";
GRANT CONNECT ON DATABASE :"db" TO :"r";
SQL
        say "login role $role (in $group): $([ -n "$exists" ] && echo "new password" || echo created)"
    done
    # mailbox homes must lie under mail_base (the schema checks it)
    if [ -n "$db_exists" ] || [ "$DRY" = 0 ]; then
        cur_base=$(super_psql "$DB_NAME" <<<'SELECT mail_base FROM mailroster.settings' 2>/dev/null || true)
        if [ "$cur_base" != "$MAIL_BASE" ]; then
            note_change
            if [ "$DRY" = 1 ]; then say "would set mailroster.settings.mail_base to $MAIL_BASE"
            else
                super_psql "$DB_NAME" -v base="$MAIL_BASE" <<<"UPDATE mailroster.settings SET mail_base = :'base'" \
                    || die "cannot set mail_base in the database"
                say "database: mail_base = $MAIL_BASE"
            fi
        fi
    fi
}
