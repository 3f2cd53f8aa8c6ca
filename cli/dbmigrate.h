/* dbmigrate.h - "mailroster db ...": schema upgrades, run against the
 * database directly (not through the admin socket). */
#ifndef MR_DBMIGRATE_H
#define MR_DBMIGRATE_H

/* argv[0] is "db"; returns a sysexits code. */
int db_command(int argc, char **argv);

#endif
