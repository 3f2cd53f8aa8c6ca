/* verify.h - "mailroster verify": ask the old Postfix maps (through
 * postmap) and mailrosterd's socketmap the same keys, print every
 * difference with the reason mailroster's directory gives. */
#ifndef MR_VERIFY_H
#define MR_VERIFY_H

/* argv[0] is "verify"; admin_socket is the -s socket (read for the keys
 * and the reasons). Returns 0 when the maps agree, 1 when they differ,
 * else a sysexits code. */
int verify_command(int argc, char **argv, const char *admin_socket);

#endif
