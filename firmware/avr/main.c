/* Motor-controller main loop: drains the UART into the protocol core, runs the PID at 100 Hz,
 * sends telemetry at 100 Hz, enforces the command watchdog, kicks the hardware watchdog. */
#include "../src/ctrl.h"
#include "../src/hal.h"

#ifndef BUILD_ID
#define BUILD_ID 0
#endif

static ctrl_t ctrl;
static uint8_t txbuf[PROTO_MAX_FRAME];

int main(void)
{
    hal_init();
    int32_t enc[2] = {0, 0};
    ctrl_init(&ctrl, hal_millis(), hal_reset_cause(), (uint32_t)BUILD_ID);
    hal_set_pwm(0, 0);
    for (;;) {
        hal_wdt_kick();
        uint32_t now = hal_millis();
        int16_t ch;
        uint8_t budget = 64;
        while (budget-- && (ch = hal_uart_getc()) >= 0) {
            uint8_t n = ctrl_rx_byte(&ctrl, (uint8_t)ch, now, txbuf);
            if (n)
                hal_uart_write(txbuf, n); /* a NACK is dropped if the TX ring is full */
        }
        if (hal_uart_rx_overflowed())
            ctrl_note_overflow(&ctrl);
        if (ctrl_watchdog(&ctrl, now) || !ctrl_motors_enabled(&ctrl))
            hal_set_pwm(0, 0);
        if ((int32_t)(now - ctrl.next_ctrl_ms) >= 0) {
            ctrl.next_ctrl_ms += CTRL_PERIOD_MS;
            if ((int32_t)(now - ctrl.next_ctrl_ms) >= 0) /* fell behind: skip, don't burst */
                ctrl.next_ctrl_ms = now + CTRL_PERIOD_MS;
            int16_t pwm[2];
            hal_encoders(enc);
            ctrl_step(&ctrl, enc, pwm);
            hal_set_pwm(pwm[0], pwm[1]);
        }
        if ((int32_t)(now - ctrl.next_tlm_ms) >= 0) {
            ctrl.next_tlm_ms += TELEMETRY_PERIOD_MS;
            if ((int32_t)(now - ctrl.next_tlm_ms) >= 0)
                ctrl.next_tlm_ms = now + TELEMETRY_PERIOD_MS;
            hal_encoders(enc);
            uint8_t n = ctrl_telemetry(&ctrl, now, enc, hal_battery_mv(), txbuf);
            hal_uart_write(txbuf, n);
        }
        hal_idle();
    }
}
