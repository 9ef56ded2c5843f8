/* board-sim: the emulated board as a process, paced to wall-clock time, UART bridged to a pty
 * so `brainloop` connects to it exactly as to a real board.
 *
 *   board-sim FIRMWARE.elf [--link PATH] [--speed X] [--realtime PRIO]
 *
 * --realtime PRIO runs the pacing loop under SCHED_FIFO (when permitted) so a busy machine does
 * not make the emulated board fall behind wall-clock time.
 * Prints `pty <slave path>` when the pty is ready (and makes PATH a symlink to it), then reads
 * commands on stdin, one per line:
 *   status  -> `status t=<s> w0=<rad/s> w1=<rad/s> pwm0=<n> pwm1=<n> rx=<bytes> tx=<bytes>`
 *   close   -> closes the pty (the host sees the port vanish)  -> `closed`
 *   open    -> opens a new pty and re-points PATH at it        -> `pty <slave path>`
 *   quit    -> exits (also on end of stdin)
 */
#define _GNU_SOURCE
#include "board.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int master = -1, slave = -1;
static char slave_name[256];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int open_pty(const char *link)
{
    master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (master < 0 || grantpt(master) || unlockpt(master))
        return -1;
    const char *name = ptsname(master);
    if (!name)
        return -1;
    snprintf(slave_name, sizeof slave_name, "%s", name);
    /* Hold the slave open ourselves, raw, so nothing is echoed or line-buffered and the master
     * never sees a hang-up while the host is away. */
    slave = open(slave_name, O_RDWR | O_NOCTTY);
    if (slave < 0)
        return -1;
    struct termios t;
    tcgetattr(slave, &t);
    cfmakeraw(&t);
    cfsetspeed(&t, B115200);
    tcsetattr(slave, TCSANOW, &t);
    if (link) {
        unlink(link);
        if (symlink(slave_name, link) != 0) {
            perror("board-sim: symlink");
            return -1;
        }
    }
    printf("pty %s\n", slave_name);
    fflush(stdout);
    return 0;
}

static void close_pty(const char *link)
{
    if (master >= 0)
        close(master);
    if (slave >= 0)
        close(slave);
    master = slave = -1;
    if (link)
        unlink(link);
}

int main(int argc, char **argv)
{
    const char *elf = NULL, *link = NULL;
    double speed = 1.0;
    int rt_prio = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--link") && i + 1 < argc)
            link = argv[++i];
        else if (!strcmp(argv[i], "--speed") && i + 1 < argc)
            speed = atof(argv[++i]);
        else if (!strcmp(argv[i], "--realtime") && i + 1 < argc)
            rt_prio = atoi(argv[++i]);
        else if (argv[i][0] != '-')
            elf = argv[i];
        else {
            fprintf(stderr, "usage: board-sim FIRMWARE.elf [--link PATH] [--speed X] [--realtime PRIO]\n");
            return 2;
        }
    }
    if (!elf || !(speed > 0)) {
        fprintf(stderr, "usage: board-sim FIRMWARE.elf [--link PATH] [--speed X] [--realtime PRIO]\n");
        return 2;
    }
    /* simavr prints loader messages on stdout: keep stdout for our protocol. */
    int saved = dup(1);
    dup2(2, 1);
    board_t *b = board_new(elf);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    if (!b)
        return 1;
    if (open_pty(link) != 0) {
        perror("board-sim: pty");
        _exit(1);
    }
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* 1 ns timer slack: pacing wakes on time */
    if (rt_prio > 0) {
        struct sched_param sp = {.sched_priority = rt_prio};
        if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
            fprintf(stderr, "board-sim: SCHED_FIFO not permitted, running unprioritised\n");
    }
    uint64_t t0 = now_ns();
    uint64_t rx_total = 0, tx_total = 0;
    char cmd[256];
    size_t cmd_len = 0;
    uint8_t buf[4096];
    for (;;) {
        /* Pace: emulated time follows wall time (times speed). */
        uint64_t want = (uint64_t)((double)(now_ns() - t0) * speed);
        if (want > board_time_ns(b))
            board_run_ns(b, want - board_time_ns(b));
        if (master >= 0) {
            ssize_t n = read(master, buf, sizeof buf);
            if (n > 0) {
                board_uart_send(b, buf, (size_t)n);
                rx_total += (uint64_t)n;
            }
            size_t m = board_uart_recv(b, buf, sizeof buf);
            size_t off = 0;
            while (off < m) {
                ssize_t w = write(master, buf + off, m - off);
                if (w <= 0)
                    break; /* nobody reading and the pty buffer is full: bytes are lost, as on a wire */
                off += (size_t)w;
            }
            tx_total += off;
        } else {
            board_uart_recv(b, buf, sizeof buf); /* the wire is cut: output goes nowhere */
        }
        ssize_t k = read(0, cmd + cmd_len, sizeof cmd - 1 - cmd_len);
        if (k == 0)
            _exit(0);
        if (k > 0) {
            cmd_len += (size_t)k;
            char *nl;
            while ((nl = memchr(cmd, '\n', cmd_len))) {
                *nl = 0;
                if (!strcmp(cmd, "status")) {
                    printf("status t=%.4f w0=%.4f w1=%.4f pwm0=%d pwm1=%d rx=%llu tx=%llu\n",
                           board_time_ns(b) / 1e9, board_wheel_speed(b, 0), board_wheel_speed(b, 1),
                           board_pwm(b, 0), board_pwm(b, 1), (unsigned long long)rx_total,
                           (unsigned long long)tx_total);
                } else if (!strcmp(cmd, "close")) {
                    close_pty(link);
                    printf("closed\n");
                } else if (!strcmp(cmd, "open")) {
                    if (master < 0 && open_pty(link) != 0) {
                        perror("board-sim: pty");
                        _exit(1);
                    }
                } else if (!strcmp(cmd, "quit")) {
                    if (link)
                        unlink(link);
                    _exit(0);
                }
                fflush(stdout);
                size_t used = (size_t)(nl - cmd) + 1;
                memmove(cmd, nl + 1, cmd_len - used);
                cmd_len -= used;
            }
            if (cmd_len == sizeof cmd - 1)
                cmd_len = 0;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            _exit(0);
        }
        if (board_crashed(b)) {
            fprintf(stderr, "board-sim: the emulated CPU stopped\n");
            _exit(1);
        }
        /* Wake at once on host bytes, else after 100 us to move emulated time on. */
        struct pollfd p[2] = {{.fd = master, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
        struct timespec tick = {0, 100000};
        ppoll(p, 2, &tick, NULL); /* a closed pty has fd -1, which poll ignores */
    }
}
