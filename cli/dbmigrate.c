/* dbmigrate.c - "mailroster db migrate|status": bring a database's schema up
 * to the version this mailroster knows, one migration file at a time.
 *
 * Each sql/migrations/NNNN_*.sql is one transaction that ends by recording
 * its version in mailroster.schema_version (sql/README.md), so a migration
 * is applied whole or not at all, and a run that stops half-way is resumed
 * by running again. A database newer than the files is never touched: this
 * program does not know how to go back. Runs under a session advisory lock,
 * so that two mail hosts upgrading at once apply each migration once. The
 * grants (roles.sql, idempotent) are applied after the last migration. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include <libpq-fe.h>

#include "buf.h"
#include "dbmigrate.h"
#include "mem.h"

#define MIGRATE_LOCK_KEY 0x6d726d67   /* "mrmg" */
#define MAX_FILE_SIZE (8 << 20)
#define MAX_MIGRATIONS 1000

struct migration {
    int version;
    char *name;                 /* file name */
};

static int cmp_migration(const void *a, const void *b)
{
    return ((const struct migration *)a)->version - ((const struct migration *)b)->version;
}

/* The migration files NNNN_*.sql in dir, by version; -1 when unreadable. */
static int list_migrations(const char *dir, struct migration **out, int *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    *out = NULL;
    *n = 0;
    if (d == NULL) {
        fprintf(stderr, "mailroster: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    *out = xcalloc(MAX_MIGRATIONS, sizeof(**out));
    while ((e = readdir(d)) != NULL && *n < MAX_MIGRATIONS) {
        size_t len = strlen(e->d_name);
        char *end;
        long v = strtol(e->d_name, &end, 10);
        if (end != e->d_name + 4 || *end != '_' || len < 9 || strcmp(e->d_name + len - 4, ".sql") != 0 ||
            v <= 0)
            continue;
        (*out)[*n].version = (int)v;
        (*out)[(*n)++].name = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(*out, (size_t)*n, sizeof(**out), cmp_migration);
    for (int i = 1; i < *n; i++)
        if ((*out)[i].version == (*out)[i - 1].version) {
            fprintf(stderr, "mailroster: %s: two migrations numbered %04d\n", dir, (*out)[i].version);
            return -1;
        }
    return 0;
}

/* A file's SQL for PQexec: psql's "\set ON_ERROR_STOP" lines dropped (a
 * failed statement stops the transaction here anyway); any other psql
 * meta-command is refused, since only psql would understand it. */
static int read_sql(const char *path, struct buf *out)
{
    FILE *fp = fopen(path, "re");
    char line[8192];
    struct stat st;
    int lineno = 0;

    if (fp == NULL || fstat(fileno(fp), &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE_SIZE) {
        fprintf(stderr, "mailroster: %s: %s\n", path, fp ? "not a regular file of at most 8 MiB" : strerror(errno));
        if (fp)
            fclose(fp);
        return -1;
    }
    while (fgets(line, sizeof(line), fp)) {
        lineno++;
        const char *s = line + strspn(line, " \t");
        if (*s == '\\') {
            if (strncmp(s, "\\set ON_ERROR_STOP", 18) == 0)
                continue;
            fprintf(stderr, "mailroster: %s:%d: a psql meta-command this command cannot run: %s", path,
                    lineno, s);
            fclose(fp);
            return -1;
        }
        buf_adds(out, line);
    }
    fclose(fp);
    return 0;
}

/* The newest version recorded, 0 for a database without the schema, -1 on
 * error. */
static int current_version(PGconn *pg)
{
    PGresult *r = PQexec(pg, "SELECT to_regclass('mailroster.schema_version') IS NOT NULL");
    int v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 'f') {
        v = 0;
    } else if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        PQclear(r);
        r = PQexec(pg, "SELECT coalesce(max(version), 0) FROM mailroster.schema_version");
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            v = atoi(PQgetvalue(r, 0, 0));
    }
    if (v < 0)
        fprintf(stderr, "mailroster: reading the schema version: %s", PQerrorMessage(pg));
    PQclear(r);
    return v;
}

static int exec_file(PGconn *pg, const char *dir, const char *name)
{
    struct buf path, sql;
    int rc = 0;
    buf_init(&path);
    buf_init(&sql);
    buf_printf(&path, "%s/%s", dir, name);
    if (read_sql(path.data, &sql) < 0) {
        rc = -1;
    } else {
        PGresult *r = PQexec(pg, sql.data ? sql.data : "");
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "mailroster: %s failed, nothing of it was applied: %s", name,
                    PQresultErrorMessage(r));
            PQclear(PQexec(pg, "ROLLBACK"));
            rc = -1;
        }
        PQclear(r);
    }
    buf_free(&path);
    buf_free(&sql);
    return rc;
}

static void usage(FILE *f)
{
    fputs("usage: mailroster db migrate [--dry-run] [--database CONNINFO] [--sql-dir DIR]\n"
          "       mailroster db status [--database CONNINFO] [--sql-dir DIR]\n"
          "\n"
          "Applies the migrations in DIR/migrations newer than the database's schema\n"
          "version, one transaction each, then the grants (DIR/roles.sql). Connects as\n"
          "the schema owner: CONNINFO (default: $MAILROSTER_DATABASE, else\n"
          "dbname=mailroster; libpq's PG* variables apply). DIR defaults to\n"
          SQLDIR ".\n",
          f);
}

int db_command(int argc, char **argv)
{
    const char *conninfo = getenv("MAILROSTER_DATABASE"), *dir = SQLDIR;
    int dry = 0, status_only, ex = 0, n, cur, known, applied = 0;
    struct migration *m = NULL;
    struct buf migdir;
    PGconn *pg;

    if (argc < 2 || (strcmp(argv[1], "migrate") != 0 && strcmp(argv[1], "status") != 0)) {
        usage(argc >= 2 && !strcmp(argv[1], "help") ? stdout : stderr);
        return argc >= 2 && !strcmp(argv[1], "help") ? 0 : EX_USAGE;
    }
    status_only = !strcmp(argv[1], "status");
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--dry-run") && !status_only)
            dry = 1;
        else if (!strcmp(argv[i], "--database") && i + 1 < argc)
            conninfo = argv[++i];
        else if (!strcmp(argv[i], "--sql-dir") && i + 1 < argc)
            dir = argv[++i];
        else {
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (conninfo == NULL || *conninfo == 0)
        conninfo = "dbname=mailroster";
    buf_init(&migdir);
    buf_printf(&migdir, "%s/migrations", dir);
    if (list_migrations(migdir.data, &m, &n) < 0 || n == 0) {
        if (n == 0 && m)
            fprintf(stderr, "mailroster: no migrations in %s\n", migdir.data);
        ex = EX_OSFILE;
        goto out;
    }
    known = m[n - 1].version;
    pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "mailroster: cannot connect to the database: %s", PQerrorMessage(pg));
        PQfinish(pg);
        ex = EX_UNAVAILABLE;
        goto out;
    }
    PQclear(PQexec(pg, "SET client_min_messages = warning"));
    if (!status_only && !dry) {
        char q[64];
        snprintf(q, sizeof(q), "SELECT pg_advisory_lock(%d)", MIGRATE_LOCK_KEY);
        PQclear(PQexec(pg, q));
    }
    if ((cur = current_version(pg)) < 0) {
        ex = EX_UNAVAILABLE;
    } else if (cur > known) {
        fprintf(stderr, "mailroster: the database's schema is at version %d, newer than this mailroster "
                        "knows (%d): refusing to touch it; upgrade mailroster instead\n", cur, known);
        ex = EX_CONFIG;
    } else if (status_only || cur == known) {
        printf("schema version %d; this mailroster knows up to %d%s\n", cur, known,
               cur == known ? ": up to date" : "");
        for (int i = 0; i < n; i++)
            if (m[i].version > cur)
                printf("pending: %s\n", m[i].name);
    } else {
        for (int i = 0; i < n && ex == 0; i++) {
            if (m[i].version <= cur)
                continue;
            if (dry) {
                printf("would apply: %s\n", m[i].name);
                continue;
            }
            if (exec_file(pg, migdir.data, m[i].name) < 0 || current_version(pg) != m[i].version) {
                if (ex == 0 && current_version(pg) != m[i].version)
                    fprintf(stderr, "mailroster: %s did not record version %d in mailroster.schema_version\n",
                            m[i].name, m[i].version);
                ex = EX_DATAERR;
                break;
            }
            printf("applied: %s\n", m[i].name);
            applied++;
        }
        if (ex == 0 && !dry) {
            if (exec_file(pg, dir, "roles.sql") < 0)
                ex = EX_DATAERR;
            else
                printf("applied: roles.sql (grants)\n");
        }
        if (ex == 0)
            printf("schema version %d -> %d%s\n", cur, dry ? known : current_version(pg),
                   dry ? " (dry run: nothing changed)" : "");
        else if (applied)
            printf("schema version %d -> %d; stopped at the first failure (run again once it is fixed)\n",
                   cur, current_version(pg));
    }
    PQfinish(pg);
out:
    for (int i = 0; i < n; i++)
        free(m[i].name);
    free(m);
    buf_free(&migdir);
    return ex;
}
