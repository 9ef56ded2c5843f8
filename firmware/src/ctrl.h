/* The motor controller's logic, independent of the hardware: frames in, responses out, PID
 * wheel-speed control at a fixed rate, command watchdog, latched e-stop, telemetry.
 * hal.h is the only seam to the hardware; this builds and is unit-tested on the host. */
#ifndef BL_CTRL_H
#define BL_CTRL_H
#include <stdint.h>
#include "pid.h"
#include "proto.h"
#include "wdog.h"

#ifndef TICKS_PER_REV
#define TICKS_PER_REV 1440
#endif
#define CTRL_PERIOD_MS 10     /* PID rate 100 Hz */
#define TELEMETRY_PERIOD_MS 10 /* telemetry 100 Hz */
#define SPEED_WINDOW 4         /* speed measured over 4 control periods */
#define UNDERVOLT_MV 6000
#define FW_MAJOR 1
#define FW_MINOR 0
#define FW_PATCH 0

typedef struct {
    params_t params;
    pid_t_ pid[2];
    int16_t setpoint[2]; /* mrad/s */
    int16_t speed[2];    /* mrad/s */
    int16_t pwm[2];
    int32_t enc_hist[SPEED_WINDOW + 1][2];
    uint8_t hist_n;
    wdog_t wdog;
    uint8_t estop;
    uint16_t faults;
    uint16_t last_seq;
    uint16_t rx_errors;
    uint16_t tx_seq;
    uint8_t reset_cause;
    uint32_t build_id;
    uint32_t next_ctrl_ms, next_tlm_ms;
    frame_rx_t rx;
} ctrl_t;

void ctrl_init(ctrl_t *c, uint32_t now_ms, uint8_t reset_cause, uint32_t build_id);
/* Feed one received byte. If a response is due (NACK or INFO), writes a frame to out
 * (PROTO_MAX_FRAME bytes) and returns its length; else 0. */
uint8_t ctrl_rx_byte(ctrl_t *c, uint8_t byte, uint32_t now_ms, uint8_t *out);
/* Check the command watchdog (call as often as possible); returns 1 when motors must be cut now. */
uint8_t ctrl_watchdog(ctrl_t *c, uint32_t now_ms);
/* One PID step with the current encoder counts; writes PWM for both motors. */
void ctrl_step(ctrl_t *c, const int32_t enc[2], int16_t pwm_out[2]);
/* Telemetry frame into out; returns its length. */
uint8_t ctrl_telemetry(ctrl_t *c, uint32_t now_ms, const int32_t enc[2], uint16_t battery_mv,
                       uint8_t *out);
/* Note a receive-buffer overflow seen by the hardware layer. */
void ctrl_note_overflow(ctrl_t *c);
/* Whether the motors may be driven at all. */
uint8_t ctrl_motors_enabled(const ctrl_t *c);
#endif
