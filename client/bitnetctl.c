/* client/bitnetctl.c — the bitnetctl program: control bitnetd from the command line.
 * Everything but main() lives in the ctl_*.c files (see ctl.h) so the tests can run
 * each command in-process. */
#include "config.h"

#include <signal.h>
#include <stdio.h>

#include "ctl.h"

int main(int argc, char **argv)
{
    /* A closed stdout (`bitnetctl run ... | head -c 10`) is a write error that
     * cancels the generation cleanly, not a silent death by SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    return ctl_main(argc, argv, stdin, stdout, stderr);
}
