/* The benchmark's floor: starts each command with posix_spawn of
   `/bin/sh -c`, at most JOBS at once, and does nothing else.

   It takes the commands in the list's (topological) order: the next one
   starts as soon as fewer than JOBS run and its own dependencies have ended,
   otherwise it waits for any child. So it honours every edge, but never
   starts a later ready task ahead of a blocked earlier one; with dependencies
   only on earlier layers that head-of-line wait is rare and short, and it
   makes the floor slightly slower, never faster.

   Compiled by the benchmark at run time (`cc -O2`): see runners.rs. */

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

/* Line format: "<ndeps> <dep>... <command>", deps being earlier line numbers.
   Returns whether every dependency is done; sets *command. */
static int ready(char *line, const char *done, char **command) {
    char *p = line;
    long ndeps = strtol(p, &p, 10);
    int ok = 1;
    for (long d = 0; d < ndeps; d++) {
        if (!done[strtol(p, &p, 10)]) ok = 0;
    }
    *command = p + 1;
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: floor JOBS LIST\n");
        return 2;
    }
    int jobs = atoi(argv[1]);
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror(argv[2]);
        return 2;
    }
    size_t cap = 1 << 20, len = 0, got;
    char *text = malloc(cap);
    while ((got = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap) text = realloc(text, cap *= 2);
    }
    text[len] = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += text[i] == '\n';
    char **lines = malloc(n * sizeof *lines);
    char *line = text;
    for (size_t i = 0; i < n; i++) {
        char *end = strchr(line, '\n');
        *end = 0;
        lines[i] = line;
        line = end + 1;
    }
    char *done = calloc(n, 1);
    pid_t *pids = calloc(jobs, sizeof *pids);
    size_t *slot_task = calloc(jobs, sizeof *slot_task);
    size_t next = 0;
    int running = 0, failed = 0;
    while (next < n || running > 0) {
        char *command;
        if (next < n && running < jobs && ready(lines[next], done, &command)) {
            char *args[] = {"sh", "-c", command, NULL};
            int slot = 0;
            while (pids[slot]) slot++;
            int e = posix_spawn(&pids[slot], "/bin/sh", NULL, NULL, args, environ);
            if (e) {
                fprintf(stderr, "posix_spawn: %s\n", strerror(e));
                return 1;
            }
            slot_task[slot] = next++;
            running++;
            continue;
        }
        int status;
        pid_t pid = wait(&status);
        if (pid < 0) {
            if (errno == EINTR) continue;
            perror("wait");
            return 1;
        }
        for (int slot = 0; slot < jobs; slot++) {
            if (pids[slot] == pid) {
                done[slot_task[slot]] = 1;
                pids[slot] = 0;
                running--;
            }
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
    }
    return failed;
}
