/* The hardware seam: everything the firmware needs from the board. avr/hal_avr.c implements it
 * for the ATmega328P; the core (ctrl, proto, pid, cobs, crc16) never touches a register. */
#ifndef BL_HAL_H
#define BL_HAL_H
#include <stdint.h>

void hal_init(void);                  /* clocks, UART, PWM, encoders, ADC, hardware watchdog */
uint8_t hal_reset_cause(void);        /* MCUSR bits captured at start-up */
uint32_t hal_millis(void);            /* ms since reset, wraps */
int16_t hal_uart_getc(void);          /* next received byte, or -1 */
uint8_t hal_uart_rx_overflowed(void); /* 1 once after the receive ring overflowed */
uint8_t hal_uart_write(const uint8_t *data, uint8_t len); /* all or nothing; 1 if queued */
void hal_encoders(int32_t out[2]);    /* quadrature counts, left and right */
void hal_set_pwm(int16_t left, int16_t right); /* -255..255; 0 = motor off */
uint16_t hal_battery_mv(void);        /* battery voltage */
void hal_wdt_kick(void);              /* feed the hardware watchdog */
void hal_idle(void);                  /* sleep until the next interrupt */
#endif
