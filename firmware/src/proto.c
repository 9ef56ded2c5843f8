#include "proto.h"
#include "cobs.h"
#include "crc16.h"
#include <string.h>

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | ((uint16_t)p[1] << 8)); }
static uint32_t get32(const uint8_t *p) { return get16(p) | ((uint32_t)get16(p + 2) << 16); }

int8_t msg_body_len(uint8_t type)
{
    switch (type) {
    case MSG_SET_WHEELS: return 4;
    case MSG_HEARTBEAT:
    case MSG_ESTOP:
    case MSG_CLEAR_ESTOP:
    case MSG_INFO_REQUEST: return 0;
    case MSG_SET_PARAMS: return 11;
    case MSG_TELEMETRY: return 28;
    case MSG_INFO: return 9;
    case MSG_NACK: return 3;
    default: return -1;
    }
}

int8_t msg_decode(const uint8_t *p, uint8_t len, msg_t *m)
{
    if (len < PROTO_HEADER_LEN)
        return -NACK_BAD_LENGTH;
    if (p[0] != PROTO_VERSION)
        return -NACK_BAD_VERSION;
    int8_t want = msg_body_len(p[1]);
    if (want < 0)
        return -NACK_UNKNOWN_TYPE;
    if (len - PROTO_HEADER_LEN != want)
        return -NACK_BAD_LENGTH;
    memset(m, 0, sizeof *m);
    m->type = p[1];
    m->seq = get16(p + 2);
    const uint8_t *b = p + PROTO_HEADER_LEN;
    switch (m->type) {
    case MSG_SET_WHEELS:
        m->u.wheels.left = (int16_t)get16(b);
        m->u.wheels.right = (int16_t)get16(b + 2);
        break;
    case MSG_SET_PARAMS:
        m->u.params.kp = get16(b);
        m->u.params.ki = get16(b + 2);
        m->u.params.kd = get16(b + 4);
        m->u.params.kf = get16(b + 6);
        m->u.params.pwm_limit = b[8];
        m->u.params.watchdog_ms = get16(b + 9);
        break;
    case MSG_TELEMETRY: {
        telemetry_t *t = &m->u.telemetry;
        t->time_ms = get32(b);
        t->enc[0] = (int32_t)get32(b + 4);
        t->enc[1] = (int32_t)get32(b + 8);
        t->speed[0] = (int16_t)get16(b + 12);
        t->speed[1] = (int16_t)get16(b + 14);
        t->pwm[0] = (int16_t)get16(b + 16);
        t->pwm[1] = (int16_t)get16(b + 18);
        t->battery_mv = get16(b + 20);
        t->faults = get16(b + 22);
        t->last_seq = get16(b + 24);
        t->rx_errors = get16(b + 26);
        break;
    }
    case MSG_INFO:
        m->u.info.proto = b[0];
        m->u.info.fw[0] = b[1];
        m->u.info.fw[1] = b[2];
        m->u.info.fw[2] = b[3];
        m->u.info.build_id = get32(b + 4);
        m->u.info.reset_cause = b[8];
        break;
    case MSG_NACK:
        m->u.nack.seq = get16(b);
        m->u.nack.reason = b[2];
        break;
    default:
        break;
    }
    return 0;
}

uint8_t msg_encode(const msg_t *m, uint8_t *p)
{
    p[0] = PROTO_VERSION;
    p[1] = m->type;
    put16(p + 2, m->seq);
    uint8_t *b = p + PROTO_HEADER_LEN;
    switch (m->type) {
    case MSG_SET_WHEELS:
        put16(b, (uint16_t)m->u.wheels.left);
        put16(b + 2, (uint16_t)m->u.wheels.right);
        break;
    case MSG_SET_PARAMS:
        put16(b, m->u.params.kp);
        put16(b + 2, m->u.params.ki);
        put16(b + 4, m->u.params.kd);
        put16(b + 6, m->u.params.kf);
        b[8] = m->u.params.pwm_limit;
        put16(b + 9, m->u.params.watchdog_ms);
        break;
    case MSG_TELEMETRY: {
        const telemetry_t *t = &m->u.telemetry;
        put32(b, t->time_ms);
        put32(b + 4, (uint32_t)t->enc[0]);
        put32(b + 8, (uint32_t)t->enc[1]);
        put16(b + 12, (uint16_t)t->speed[0]);
        put16(b + 14, (uint16_t)t->speed[1]);
        put16(b + 16, (uint16_t)t->pwm[0]);
        put16(b + 18, (uint16_t)t->pwm[1]);
        put16(b + 20, t->battery_mv);
        put16(b + 22, t->faults);
        put16(b + 24, t->last_seq);
        put16(b + 26, t->rx_errors);
        break;
    }
    case MSG_INFO:
        b[0] = m->u.info.proto;
        b[1] = m->u.info.fw[0];
        b[2] = m->u.info.fw[1];
        b[3] = m->u.info.fw[2];
        put32(b + 4, m->u.info.build_id);
        b[8] = m->u.info.reset_cause;
        break;
    case MSG_NACK:
        put16(b, m->u.nack.seq);
        b[2] = m->u.nack.reason;
        break;
    default:
        break;
    }
    int8_t n = msg_body_len(m->type);
    return (uint8_t)(PROTO_HEADER_LEN + (n > 0 ? n : 0));
}

uint8_t frame_encode(const msg_t *m, uint8_t *out)
{
    uint8_t raw[PROTO_MAX_PAYLOAD + 2];
    uint8_t n = msg_encode(m, raw);
    put16(raw + n, crc16(raw, n));
    uint16_t len = cobs_encode(raw, (uint16_t)(n + 2), out);
    out[len] = 0;
    return (uint8_t)(len + 1);
}

int8_t frame_decode(const uint8_t *enc, uint8_t len, msg_t *m)
{
    uint8_t raw[PROTO_MAX_FRAME];
    if (len > PROTO_MAX_FRAME - 1)
        return -NACK_MALFORMED;
    int16_t n = cobs_decode(enc, len, raw, sizeof raw);
    if (n < 0)
        return -NACK_MALFORMED;
    if (n < PROTO_HEADER_LEN + 2)
        return -NACK_BAD_LENGTH;
    uint16_t got = get16(raw + n - 2);
    if (got != crc16(raw, (uint16_t)(n - 2)))
        return -NACK_BAD_CRC;
    return msg_decode(raw, (uint8_t)(n - 2), m);
}

void frame_rx_init(frame_rx_t *rx)
{
    rx->len = 0;
    rx->overflow = 0;
}

int8_t frame_rx_push(frame_rx_t *rx, uint8_t byte, msg_t *m)
{
    if (byte != 0) {
        if (rx->len < sizeof rx->buf)
            rx->buf[rx->len++] = byte;
        else
            rx->overflow = 1;
        return 0;
    }
    uint8_t len = rx->len, overflow = rx->overflow;
    rx->len = 0;
    rx->overflow = 0;
    if (overflow)
        return -NACK_MALFORMED;
    if (len == 0)
        return 0;
    int8_t r = frame_decode(rx->buf, len, m);
    return r < 0 ? r : 1;
}
