/*
 * noring: run a command under a seccomp filter that makes io_uring_setup
 * fail with the given errno, the way a container runtime's default profile
 * (ENOSYS... or EPERM) or kernel.io_uring_disabled (EPERM) does.
 *
 *   noring ENOSYS|EPERM command [args...]
 *
 * Test helper only: lets the integration suite prove ringlet's start-up
 * message without a special kernel or container runtime.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: noring ENOSYS|EPERM command [args...]\n");
        return 2;
    }
    unsigned err = strcmp(argv[1], "EPERM") == 0 ? EPERM : ENOSYS;
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
        perror("noring: seccomp");
        return 2;
    }
    execvp(argv[2], argv + 2);
    perror("noring: exec");
    return 2;
}
