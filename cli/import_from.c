/* import_from.c - mailroster import --from FORMAT SOURCE: run the importer
 * that turns an old setup into mailroster's JSON lines (an SQL importer of
 * sql/import through psql, or an import script), show its report, and hand
 * the lines to the ordinary import: a dry run unless --apply. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "import_from.h"
#include "mem.h"

#ifndef SQLDIR
#define SQLDIR "/usr/share/mailroster/sql"
#endif

static char tmp_path[] = "/tmp/mailroster-import.XXXXXX";
static int tmp_made;
static char **made_argv;    /* the arguments handed back: they live until exit */

static void remove_tmp(void)
{
    if (tmp_made)
        unlink(tmp_path);
    free(made_argv);
    made_argv = NULL;
}

static void __attribute__((noreturn)) usage(const char *why)
{
    if (why)
        fprintf(stderr, "mailroster: import --from: %s\n", why);
    fputs("usage: mailroster import --from ispmail|bbs|postfixadmin|vmm|users-json|dovecot-passwd SOURCE\n"
          "                         [--apply] [IMPORTER-ARGUMENT...]\n", stderr);
    exit(EX_USAGE);
}

/* the importer's file: $MAILROSTER_IMPORT_DIR/NAME, else the default */
static char *importer_path(const char *name, const char *deflt_dir)
{
    const char *dir = getenv("MAILROSTER_IMPORT_DIR");
    char *p;
    size_t n;

    if (dir == NULL || *dir == 0) {
        if (deflt_dir == NULL)
            return xstrdup(name);   /* a script: found on PATH */
        dir = deflt_dir;
    }
    n = strlen(dir) + strlen(name) + 2;
    p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

char **import_from(int *argc, char **argv)
{
    const char *fmt = NULL, *source = NULL, *sql = NULL, *script = NULL;
    int apply = 0, n = 0, fd, status;
    char **cmd, **out, *prog;   /* prog: the importer's path, owned here */
    pid_t pid;

    if (*argc < 2 || strcmp(argv[1], "--from"))
        return argv;
    if (*argc < 4)
        usage("a FORMAT and a SOURCE are needed");
    fmt = argv[2];
    source = argv[3];
    if (!strcmp(fmt, "ispmail"))
        sql = "ispmail.sql";
    else if (!strcmp(fmt, "bbs"))
        sql = "bbs-mail-users.sql";
    else if (!strcmp(fmt, "postfixadmin"))
        sql = "postfixadmin.sql";
    else if (!strcmp(fmt, "vmm"))
        sql = "vmm.sql";
    else if (!strcmp(fmt, "users-json"))
        script = "import-users-json";
    else if (!strcmp(fmt, "dovecot-passwd"))
        script = "import-dovecot-passwd";
    else
        usage("unknown FORMAT");

    cmd = xcalloc((size_t)*argc + 12, sizeof(*cmd));
    if (sql) {
        /* psql -X -q -At -v ON_ERROR_STOP=1 [ARG...] -f FILE SOURCE (a database name or conninfo) */
        prog = importer_path(sql, SQLDIR "/import");
        cmd[n++] = "psql";
        cmd[n++] = "-X";
        cmd[n++] = "-q";
        cmd[n++] = "-At";
        cmd[n++] = "-v";
        cmd[n++] = "ON_ERROR_STOP=1";
        for (int i = 4; i < *argc; i++)
            if (strcmp(argv[i], "--apply"))
                cmd[n++] = argv[i];
        cmd[n++] = "-f";
        cmd[n++] = prog;
        cmd[n++] = (char *)source;
    } else {
        prog = importer_path(script, NULL);
        cmd[n++] = prog;
        for (int i = 4; i < *argc; i++)
            if (strcmp(argv[i], "--apply"))
                cmd[n++] = argv[i];
        cmd[n++] = (char *)source;
    }
    for (int i = 4; i < *argc; i++)
        if (!strcmp(argv[i], "--apply"))
            apply = 1;

    fd = mkstemp(tmp_path);
    if (fd < 0) {
        fprintf(stderr, "mailroster: import --from: a temporary file: %s\n", strerror(errno));
        exit(EX_CANTCREAT);
    }
    tmp_made = 1;
    atexit(remove_tmp);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "mailroster: import --from: fork: %s\n", strerror(errno));
        exit(EX_OSERR);
    }
    if (pid == 0) {
        if (dup2(fd, STDOUT_FILENO) < 0)
            _exit(EX_OSERR);
        close(fd);
        execvp(cmd[0], cmd);
        fprintf(stderr, "mailroster: import --from %s: cannot run %s: %s\n", fmt, cmd[0], strerror(errno));
        _exit(EX_UNAVAILABLE);
    }
    close(fd);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "mailroster: import --from: waitpid: %s\n", strerror(errno));
            exit(EX_OSERR);
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "mailroster: import --from %s: the importer failed (%s %d); nothing was imported\n", fmt,
                WIFEXITED(status) ? "exit status" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        exit(EX_DATAERR);
    }
    free(cmd);
    free(prog);

    out = made_argv = xcalloc(4, sizeof(*out));
    n = 0;
    out[n++] = "import";
    if (!apply) {
        out[n++] = "--dry-run";
        fputs("mailroster: a dry run: what the import would change follows; nothing is written (--apply imports)\n",
              stderr);
    }
    out[n++] = tmp_path;
    *argc = n;
    return out;
}
