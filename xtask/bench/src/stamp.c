/* The latency chain's task: writes the time (nanoseconds since the epoch)
   to <prefix>start as its first act, and to <prefix>end as its last.
   Compiled by the benchmark at run time (`cc -O2 -static` where the C
   library allows, so that it starts with no dynamic loader): see runners.rs. */

#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static void put(const char *prefix, const char *name) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char path[4096], text[32];
    snprintf(path, sizeof path, "%s%s", prefix, name);
    int n = snprintf(text, sizeof text, "%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, text, n) != n) _exit(1);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    put(argv[1], "start");
    put(argv[1], "end");
    return 0;
}
