/* setup.c - "mailroster setup ...": exec the setup script with the same
 * arguments. The script finds this program (for "db migrate" and the check
 * with a test account) and the shipped conf.d and sql files through the
 * environment set here. $MAILROSTER_SETUP overrides the script (tests run
 * the one in the source tree). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "setup.h"

#ifndef SETUP_SCRIPT
#define SETUP_SCRIPT "/usr/libexec/mailroster/mailroster-setup"
#endif
#ifndef PKGDATADIR
#define PKGDATADIR "/usr/share/mailroster"
#endif

int setup_command(int argc, char **argv)
{
    const char *script = getenv("MAILROSTER_SETUP");
    char self[PATH_MAX];
    ssize_t n;

    (void)argc;
    if (script == NULL || *script == 0)
        script = SETUP_SCRIPT;
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = 0;
        setenv("MAILROSTER_CLI", self, 0);
    }
    setenv("MAILROSTER_SHAREDIR", PKGDATADIR, 0);
    argv[0] = (char *)script;
    execv(script, argv);
    fprintf(stderr, "mailroster: cannot run %s: %s\n", script, strerror(errno));
    return EX_UNAVAILABLE;
}
