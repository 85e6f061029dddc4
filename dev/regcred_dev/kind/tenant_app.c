/* The tenants' private image: proves it was pulled by running, then waits to be stopped. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static void stop(int signal_number) { (void)signal_number; _exit(0); }

int main(void) {
    signal(SIGTERM, stop);
    puts("regcred tenant app: pulled and running");
    fflush(stdout);
    for (;;) pause();
}
