/* setup.h - "mailroster setup": runs the mailroster-setup script, which
 * wires Postfix, Dovecot and PostgreSQL to mailroster (mailroster-setup(8)). */
#ifndef MR_SETUP_H
#define MR_SETUP_H

/* argv[0] is "setup"; returns (a sysexits code) only when the exec fails. */
int setup_command(int argc, char **argv);

#endif
