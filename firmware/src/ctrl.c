#include "ctrl.h"
#include <string.h>

static void apply_params(ctrl_t *c)
{
    for (uint8_t i = 0; i < 2; i++)
        pid_init(&c->pid[i], c->params.kp / 100.0f, c->params.ki / 100.0f, c->params.kd / 100.0f,
                 c->params.kf / 100.0f, (float)c->params.pwm_limit);
    c->wdog.period_ms = c->params.watchdog_ms;
}

static void stop_motors(ctrl_t *c)
{
    c->setpoint[0] = c->setpoint[1] = 0;
    c->pwm[0] = c->pwm[1] = 0;
    pid_reset(&c->pid[0]);
    pid_reset(&c->pid[1]);
}

void ctrl_init(ctrl_t *c, uint32_t now_ms, uint8_t reset_cause, uint32_t build_id)
{
    memset(c, 0, sizeof *c);
    c->params.kp = 1200;
    c->params.ki = 6000;
    c->params.kd = 0;
    c->params.kf = 1275;
    c->params.pwm_limit = 255;
    c->params.watchdog_ms = 250;
    wdog_init(&c->wdog, now_ms, c->params.watchdog_ms);
    apply_params(c);
    c->faults = FAULT_CMD_TIMEOUT;
    if (reset_cause & 0x08)
        c->faults |= FAULT_HW_WATCHDOG_RESET;
    c->reset_cause = reset_cause;
    c->build_id = build_id;
    c->next_ctrl_ms = now_ms;
    c->next_tlm_ms = now_ms;
    frame_rx_init(&c->rx);
}

uint8_t ctrl_motors_enabled(const ctrl_t *c) { return !c->estop && !c->wdog.expired; }

static uint8_t nack(ctrl_t *c, uint16_t seq, uint8_t reason, uint8_t *out)
{
    msg_t r;
    memset(&r, 0, sizeof r);
    r.type = MSG_NACK;
    r.seq = c->tx_seq++;
    r.u.nack.seq = seq;
    r.u.nack.reason = reason;
    return frame_encode(&r, out);
}

static uint8_t handle(ctrl_t *c, const msg_t *m, uint32_t now_ms, uint8_t *out)
{
    switch (m->type) {
    case MSG_SET_WHEELS:
        if (m->u.wheels.left > PROTO_MAX_WHEEL_MRAD_S || m->u.wheels.left < -PROTO_MAX_WHEEL_MRAD_S ||
            m->u.wheels.right > PROTO_MAX_WHEEL_MRAD_S || m->u.wheels.right < -PROTO_MAX_WHEEL_MRAD_S)
            return nack(c, m->seq, NACK_OUT_OF_RANGE, out);
        if (c->estop) {
            stop_motors(c);
            return nack(c, m->seq, NACK_ESTOP_LATCHED, out);
        }
        c->setpoint[0] = m->u.wheels.left;
        c->setpoint[1] = m->u.wheels.right;
        return 0;
    case MSG_HEARTBEAT:
        return 0;
    case MSG_ESTOP:
        c->estop = 1;
        c->faults |= FAULT_ESTOP;
        stop_motors(c);
        return 0;
    case MSG_CLEAR_ESTOP:
        c->estop = 0;
        c->faults &= (uint16_t)~FAULT_ESTOP;
        stop_motors(c); /* motion resumes only on a new setpoint */
        return 0;
    case MSG_SET_PARAMS:
        if (m->u.params.watchdog_ms < 50 || m->u.params.watchdog_ms > 2000)
            return nack(c, m->seq, NACK_OUT_OF_RANGE, out);
        c->params = m->u.params;
        apply_params(c);
        return 0;
    case MSG_INFO_REQUEST: {
        msg_t r;
        memset(&r, 0, sizeof r);
        r.type = MSG_INFO;
        r.seq = c->tx_seq++;
        r.u.info.proto = PROTO_VERSION;
        r.u.info.fw[0] = FW_MAJOR;
        r.u.info.fw[1] = FW_MINOR;
        r.u.info.fw[2] = FW_PATCH;
        r.u.info.build_id = c->build_id;
        r.u.info.reset_cause = c->reset_cause;
        return frame_encode(&r, out);
    }
    default:
        /* Board-to-host types are valid frames but not commands for us. */
        return nack(c, m->seq, NACK_UNKNOWN_TYPE, out);
    }
    (void)now_ms;
}

uint8_t ctrl_rx_byte(ctrl_t *c, uint8_t byte, uint32_t now_ms, uint8_t *out)
{
    msg_t m;
    int8_t r = frame_rx_push(&c->rx, byte, &m);
    if (r == 0)
        return 0;
    if (r < 0) {
        c->rx_errors++;
        return nack(c, 0, (uint8_t)(-r), out);
    }
    /* A valid frame (CRC and structure) feeds the watchdog even if its content is refused. */
    c->last_seq = m.seq;
    wdog_feed(&c->wdog, now_ms);
    c->faults &= (uint16_t)~FAULT_CMD_TIMEOUT;
    return handle(c, &m, now_ms, out);
}

uint8_t ctrl_watchdog(ctrl_t *c, uint32_t now_ms)
{
    if (wdog_poll(&c->wdog, now_ms)) {
        c->faults |= FAULT_CMD_TIMEOUT;
        stop_motors(c);
        return 1;
    }
    return c->wdog.expired;
}

void ctrl_step(ctrl_t *c, const int32_t enc[2], int16_t pwm_out[2])
{
    /* Speed over the last SPEED_WINDOW periods from the encoder history. */
    memmove(c->enc_hist[1], c->enc_hist[0], sizeof c->enc_hist - sizeof c->enc_hist[0]);
    c->enc_hist[0][0] = enc[0];
    c->enc_hist[0][1] = enc[1];
    if (c->hist_n < SPEED_WINDOW)
        c->hist_n++;
    const float tick_rad = 6.2831853f / TICKS_PER_REV;
    float dt = CTRL_PERIOD_MS / 1000.0f;
    uint8_t sat = 0;
    for (uint8_t i = 0; i < 2; i++) {
        int32_t d = enc[i] - c->enc_hist[c->hist_n][i];
        float w = c->hist_n ? d * tick_rad / (c->hist_n * dt) : 0.0f;
        float mw = w * 1000.0f;
        c->speed[i] = (int16_t)(mw > 32767.0f ? 32767 : (mw < -32767.0f ? -32767 : mw));
        if (!ctrl_motors_enabled(c)) {
            c->pwm[i] = 0;
            pid_reset(&c->pid[i]);
        } else {
            float sp = c->setpoint[i] / 1000.0f;
            float u = pid_step(&c->pid[i], sp, w, dt);
            /* Never reverse-drive a wheel that is commanded to stop: coast/brake to zero. */
            if (c->setpoint[i] == 0 && ((u > 0 && w <= 0) || (u < 0 && w >= 0)))
                u = 0;
            c->pwm[i] = (int16_t)(u >= 0 ? u + 0.5f : u - 0.5f);
            if (c->pwm[i] >= c->params.pwm_limit || c->pwm[i] <= -(int16_t)c->params.pwm_limit)
                sat = c->params.pwm_limit > 0;
        }
        pwm_out[i] = c->pwm[i];
    }
    if (sat)
        c->faults |= FAULT_PWM_SATURATED;
    else
        c->faults &= (uint16_t)~FAULT_PWM_SATURATED;
}

void ctrl_note_overflow(ctrl_t *c)
{
    c->faults |= FAULT_RX_OVERFLOW;
    c->rx_errors++;
}

uint8_t ctrl_telemetry(ctrl_t *c, uint32_t now_ms, const int32_t enc[2], uint16_t battery_mv,
                       uint8_t *out)
{
    msg_t m;
    memset(&m, 0, sizeof m);
    m.type = MSG_TELEMETRY;
    m.seq = c->tx_seq++;
    if (battery_mv < UNDERVOLT_MV)
        c->faults |= FAULT_UNDERVOLTAGE;
    else
        c->faults &= (uint16_t)~FAULT_UNDERVOLTAGE;
    telemetry_t *t = &m.u.telemetry;
    t->time_ms = now_ms;
    t->enc[0] = enc[0];
    t->enc[1] = enc[1];
    t->speed[0] = c->speed[0];
    t->speed[1] = c->speed[1];
    t->pwm[0] = c->pwm[0];
    t->pwm[1] = c->pwm[1];
    t->battery_mv = battery_mv;
    t->faults = c->faults;
    t->last_seq = c->last_seq;
    t->rx_errors = c->rx_errors;
    return frame_encode(&m, out);
}
