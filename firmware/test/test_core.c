/* Host unit tests of the firmware core: CRC, COBS, frame codec (against the shared vectors in
 * test_vectors.txt), frame receiver resync, command watchdog (incl. clock wrap), e-stop latch,
 * range checks, PID convergence on a DC motor model. Usage: test_core test_vectors.txt */
#include "../src/cobs.h"
#include "../src/crc16.h"
#include "../src/ctrl.h"
#include "../src/pid.h"
#include "../src/proto.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

static int unhex(const char *s, uint8_t *out, int cap)
{
    if (strcmp(s, "-") == 0)
        return 0;
    int n = (int)strlen(s) / 2;
    if (n > cap)
        return -1;
    for (int i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return n;
}

/* Canonical "kind:k=v,..." description, the same text the Rust tests produce. */
static void describe(const msg_t *m, char *out, size_t cap)
{
    switch (m->type) {
    case MSG_SET_WHEELS:
        snprintf(out, cap, "set_wheels:left=%d,right=%d", m->u.wheels.left, m->u.wheels.right);
        break;
    case MSG_HEARTBEAT: snprintf(out, cap, "heartbeat:-"); break;
    case MSG_ESTOP: snprintf(out, cap, "estop:-"); break;
    case MSG_CLEAR_ESTOP: snprintf(out, cap, "clear_estop:-"); break;
    case MSG_INFO_REQUEST: snprintf(out, cap, "info_request:-"); break;
    case MSG_SET_PARAMS:
        snprintf(out, cap, "set_params:kp=%u,ki=%u,kd=%u,kf=%u,pwm_limit=%u,watchdog_ms=%u",
                 m->u.params.kp, m->u.params.ki, m->u.params.kd, m->u.params.kf,
                 m->u.params.pwm_limit, m->u.params.watchdog_ms);
        break;
    case MSG_TELEMETRY: {
        const telemetry_t *t = &m->u.telemetry;
        snprintf(out, cap,
                 "telemetry:time_ms=%lu,enc0=%ld,enc1=%ld,speed0=%d,speed1=%d,pwm0=%d,pwm1=%d,"
                 "battery_mv=%u,faults=%u,last_seq=%u,rx_errors=%u",
                 (unsigned long)t->time_ms, (long)t->enc[0], (long)t->enc[1], t->speed[0],
                 t->speed[1], t->pwm[0], t->pwm[1], t->battery_mv, t->faults, t->last_seq,
                 t->rx_errors);
        break;
    }
    case MSG_INFO:
        snprintf(out, cap, "info:proto=%u,fw0=%u,fw1=%u,fw2=%u,build_id=%lu,reset_cause=%u",
                 m->u.info.proto, m->u.info.fw[0], m->u.info.fw[1], m->u.info.fw[2],
                 (unsigned long)m->u.info.build_id, m->u.info.reset_cause);
        break;
    case MSG_NACK:
        snprintf(out, cap, "nack:seq=%u,reason=%u", m->u.nack.seq, m->u.nack.reason);
        break;
    default: snprintf(out, cap, "unknown"); break;
    }
}

static void test_vectors(const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f)
        return;
    char line[4096];
    int n_crc = 0, n_cobs = 0, n_frame = 0, n_bad = 0;
    static uint8_t a[1024], b[1024], c[1024];
    while (fgets(line, sizeof line, f)) {
        char kind[32], f1[1024], f2[1024], f3[1024], f4[1024], f5[1024];
        if (line[0] == '#' || sscanf(line, "%31s", kind) != 1)
            continue;
        if (strcmp(kind, "crc") == 0 && sscanf(line, "%*s %1023s %1023s", f1, f2) == 2) {
            int n = unhex(f1, a, sizeof a);
            unsigned want;
            sscanf(f2, "%x", &want);
            CHECK(crc16(a, (uint16_t)n) == want, "crc %s", f1);
            n_crc++;
        } else if (strcmp(kind, "cobs") == 0 && sscanf(line, "%*s %1023s %1023s", f1, f2) == 2) {
            int n = unhex(f1, a, sizeof a), m = unhex(f2, b, sizeof b);
            uint16_t e = cobs_encode(a, (uint16_t)n, c);
            CHECK(e == m && memcmp(b, c, (size_t)m) == 0, "cobs encode %s", f1);
            int16_t d = cobs_decode(b, (uint16_t)m, c, sizeof c);
            CHECK(d == n && memcmp(a, c, (size_t)n) == 0, "cobs decode %s", f2);
            n_cobs++;
        } else if (strcmp(kind, "frame") == 0 &&
                   sscanf(line, "%*s %1023s %1023s %1023s %1023s %1023s", f1, f2, f3, f4, f5) == 5) {
            int np = unhex(f4, a, sizeof a), nw = unhex(f5, b, sizeof b);
            frame_rx_t rx;
            frame_rx_init(&rx);
            msg_t m;
            int8_t r = 0;
            for (int i = 0; i < nw; i++)
                r = frame_rx_push(&rx, b[i], &m);
            CHECK(r == 1, "frame %s: decode gave %d", f1, r);
            if (r != 1)
                continue;
            char desc[512];
            describe(&m, desc, sizeof desc);
            CHECK(strcmp(desc, f3) == 0, "frame %s: fields %s != %s", f1, desc, f3);
            CHECK(m.seq == (uint16_t)atoi(f2), "frame %s: seq", f1);
            uint8_t n = msg_encode(&m, c);
            CHECK(n == np && memcmp(a, c, (size_t)np) == 0, "frame %s: payload", f1);
            n = frame_encode(&m, c);
            CHECK(n == nw && memcmp(b, c, (size_t)nw) == 0, "frame %s: wire", f1);
            n_frame++;
        } else if (strcmp(kind, "bad") == 0 && sscanf(line, "%*s %1023s %1023s %1023s", f1, f2, f3) == 3) {
            int nw = unhex(f3, b, sizeof b);
            frame_rx_t rx;
            frame_rx_init(&rx);
            msg_t m;
            int8_t r = 0;
            for (int i = 0; i < nw; i++)
                r = frame_rx_push(&rx, b[i], &m);
            CHECK(r == -atoi(f2), "bad %s: got %d want -%s", f1, r, f2);
            n_bad++;
        }
    }
    fclose(f);
    CHECK(n_crc >= 1 && n_cobs >= 1 && n_frame >= 10 && n_bad >= 5, "too few vectors read");
    printf("vectors: %d crc, %d cobs, %d frames, %d bad frames\n", n_crc, n_cobs, n_frame, n_bad);
}

static uint8_t feed(ctrl_t *c, const msg_t *m, uint32_t now, msg_t *resp)
{
    uint8_t wire[PROTO_MAX_FRAME], out[PROTO_MAX_FRAME];
    uint8_t n = frame_encode(m, wire), got = 0;
    for (uint8_t i = 0; i < n; i++) {
        uint8_t k = ctrl_rx_byte(c, wire[i], now, out);
        if (k && resp) {
            got = frame_decode(out, (uint8_t)(k - 1), resp) == 0;
        }
    }
    return got;
}

static msg_t wheels(uint16_t seq, int16_t l, int16_t r)
{
    msg_t m;
    memset(&m, 0, sizeof m);
    m.type = MSG_SET_WHEELS;
    m.seq = seq;
    m.u.wheels.left = l;
    m.u.wheels.right = r;
    return m;
}

static msg_t simple(uint8_t type, uint16_t seq)
{
    msg_t m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.seq = seq;
    return m;
}

static void test_watchdog(uint32_t t0)
{
    ctrl_t c;
    ctrl_init(&c, t0, 0, 0);
    CHECK(!ctrl_motors_enabled(&c), "motors enabled before any frame");
    msg_t m = wheels(1, 5000, 5000);
    feed(&c, &m, t0 + 5, NULL);
    CHECK(ctrl_motors_enabled(&c) && c.setpoint[0] == 5000, "setpoint applied");
    uint32_t trip = 0;
    for (uint32_t k = 5; k < 1000; k++)
        if (ctrl_watchdog(&c, t0 + k) && !trip)
            trip = k;
    CHECK(trip - 5 == 250, "watchdog tripped after %lu ms (want 250)", (unsigned long)(trip - 5));
    CHECK(c.setpoint[0] == 0 && (c.faults & FAULT_CMD_TIMEOUT), "watchdog zeroes setpoints");
    msg_t hb = simple(MSG_HEARTBEAT, 2);
    feed(&c, &hb, t0 + 2000, NULL);
    CHECK(ctrl_motors_enabled(&c) && c.setpoint[0] == 0 && !(c.faults & FAULT_CMD_TIMEOUT),
          "heartbeat re-arms but does not restart motion");
}

static void test_estop(void)
{
    ctrl_t c;
    ctrl_init(&c, 0, 0, 0);
    msg_t m = wheels(1, 3000, -3000), resp;
    feed(&c, &m, 1, NULL);
    msg_t e = simple(MSG_ESTOP, 2);
    feed(&c, &e, 2, NULL);
    CHECK(c.estop && c.setpoint[0] == 0 && !ctrl_motors_enabled(&c), "estop stops");
    m = wheels(3, 3000, 3000);
    CHECK(feed(&c, &m, 3, &resp) && resp.type == MSG_NACK && resp.u.nack.reason == NACK_ESTOP_LATCHED &&
              resp.u.nack.seq == 3, "setpoint refused while latched");
    CHECK(c.setpoint[0] == 0 && c.estop, "still latched");
    int32_t enc[2] = {0, 0};
    int16_t pwm[2];
    ctrl_step(&c, enc, pwm);
    CHECK(pwm[0] == 0 && pwm[1] == 0, "no PWM while latched");
    msg_t clr = simple(MSG_CLEAR_ESTOP, 4);
    feed(&c, &clr, 4, NULL);
    CHECK(!c.estop && c.setpoint[0] == 0 && !(c.faults & FAULT_ESTOP), "cleared, still stopped");
    m = wheels(5, 1000, 1000);
    feed(&c, &m, 5, NULL);
    CHECK(c.setpoint[0] == 1000, "moves again after clear + new setpoint");
}

static void test_range_and_errors(void)
{
    ctrl_t c;
    ctrl_init(&c, 0, 0, 0);
    msg_t m = wheels(9, 30001, 0), resp;
    CHECK(feed(&c, &m, 1, &resp) && resp.u.nack.reason == NACK_OUT_OF_RANGE, "out of range NACKed");
    CHECK(c.setpoint[0] == 0, "out of range not applied");
    /* Garbage, then a corrupted frame, then a good frame: two errors, good frame applied. */
    uint8_t out[PROTO_MAX_FRAME];
    for (int i = 0; i < 100; i++)
        ctrl_rx_byte(&c, (uint8_t)(i * 37 + 1) | 1, 2, out);
    ctrl_rx_byte(&c, 0, 2, out);
    uint8_t wire[PROTO_MAX_FRAME];
    msg_t good = wheels(10, 2000, 2000);
    uint8_t n = frame_encode(&good, wire);
    wire[3] ^= 0x04;
    for (uint8_t i = 0; i < n; i++)
        ctrl_rx_byte(&c, wire[i], 3, out);
    CHECK(c.rx_errors == 2 && c.setpoint[0] == 0, "bad frames counted (%u), nothing applied", c.rx_errors);
    feed(&c, &good, 4, NULL);
    CHECK(c.setpoint[0] == 2000 && c.last_seq == 10, "good frame after garbage applied");
    msg_t p = simple(MSG_SET_PARAMS, 11);
    p.u.params.watchdog_ms = 10;
    CHECK(feed(&c, &p, 5, &resp) && resp.u.nack.reason == NACK_OUT_OF_RANGE, "bad watchdog period NACKed");
    msg_t info = simple(MSG_INFO_REQUEST, 12);
    CHECK(feed(&c, &info, 6, &resp) && resp.type == MSG_INFO && resp.u.info.proto == PROTO_VERSION, "info");
}

/* PID on a first-order DC motor model like the emulated board's: reaches a step within 10 %. */
static void test_pid(void)
{
    ctrl_t c;
    ctrl_init(&c, 0, 0, 0);
    msg_t m = wheels(1, 10000, -5000);
    feed(&c, &m, 0, NULL);
    double w[2] = {0, 0}, ang[2] = {0, 0};
    int32_t enc[2] = {0, 0};
    int16_t pwm[2] = {0, 0};
    double t_settle[2] = {-1, -1};
    const double target[2] = {10.0, -5.0};
    for (int ms = 0; ms < 1000; ms++) {
        if (ms % 10 == 0) {
            ctrl_step(&c, enc, pwm);
            if (ms % 100 == 0)
                feed(&c, &m, (uint32_t)ms, NULL); /* keep the watchdog fed */
        }
        for (int i = 0; i < 2; i++) {
            double drive = 20.0 * pwm[i] / 255.0;
            double fr = 0.8 * (w[i] > 0 ? 1 : (w[i] < 0 ? -1 : 0));
            w[i] += (drive - w[i]) / 0.1 * 0.001 - fr * 0.001 * 10;
            ang[i] += w[i] * 0.001;
            enc[i] = (int32_t)floor(ang[i] / (2 * M_PI) * TICKS_PER_REV);
            if (t_settle[i] < 0 && fabs(w[i] - target[i]) < 0.1 * fabs(target[i]))
                t_settle[i] = ms / 1000.0;
        }
    }
    for (int i = 0; i < 2; i++) {
        CHECK(t_settle[i] >= 0 && t_settle[i] < 0.5, "wheel %d within 10%% at %.3f s", i, t_settle[i]);
        CHECK(fabs(w[i] - target[i]) < 0.1 * fabs(target[i]), "wheel %d holds %.2f", i, w[i]);
    }
    /* Anti-windup: saturate for a long time, then the output recovers promptly. */
    pid_t_ p;
    pid_init(&p, 10, 50, 0, 0, 255);
    for (int i = 0; i < 1000; i++)
        pid_step(&p, 100, 0, 0.01f);
    CHECK(p.integral <= 255.0f, "integral bounded");
    CHECK(pid_step(&p, 0, 0, 0.01f) <= 255.0f, "output bounded");
}

static void test_rx_overflow(void)
{
    frame_rx_t rx;
    frame_rx_init(&rx);
    msg_t m;
    int8_t r = 0;
    for (int i = 0; i < 1000; i++)
        r = frame_rx_push(&rx, 0x55, &m);
    CHECK(r == 0, "no result before delimiter");
    CHECK(frame_rx_push(&rx, 0, &m) == -NACK_MALFORMED, "overlong frame rejected");
    msg_t hb = simple(MSG_HEARTBEAT, 77);
    uint8_t wire[PROTO_MAX_FRAME];
    uint8_t n = frame_encode(&hb, wire);
    for (uint8_t i = 0; i < n; i++)
        r = frame_rx_push(&rx, wire[i], &m);
    CHECK(r == 1 && m.seq == 77, "resync after overflow");
}

int main(int argc, char **argv)
{
    test_vectors(argc > 1 ? argv[1] : "test_vectors.txt");
    test_watchdog(0);
    test_watchdog(0xFFFFFF00u); /* the millisecond clock wraps during the test */
    test_estop();
    test_range_and_errors();
    test_pid();
    test_rx_overflow();
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
