/* import_from.h - mailroster import --from: run an importer, then import */
#ifndef MAILROSTER_IMPORT_FROM_H
#define MAILROSTER_IMPORT_FROM_H

/* If argv is "import --from FORMAT SOURCE [--apply] [ARG...]", run the
 * importer of FORMAT on SOURCE (its report goes to stderr), write its JSON
 * lines to a temporary file (removed at exit) and return a new argv for the
 * plain import: "import --dry-run FILE", or "import FILE" with --apply.
 * Any other argv is returned as it is.  Exits on a usage error (EX_USAGE)
 * or when the importer fails (EX_DATAERR, its exit status said). */
char **import_from(int *argc, char **argv);

#endif
