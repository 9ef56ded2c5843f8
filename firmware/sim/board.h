/* The emulated motor-controller board: the real firmware .elf on simavr (ATmega328P @ 16 MHz),
 * two DC motors with inertia and friction driven by its PWM/direction pins, quadrature encoder
 * edges fed back to its pins, a battery on ADC0, and its UART as byte queues.
 * Time advances only in board_run_ns(): unpaced and deterministic. board_main.c paces it to
 * wall-clock time and bridges the UART to a pty. */
#ifndef BL_BOARD_H
#define BL_BOARD_H
#include <stddef.h>
#include <stdint.h>

typedef struct board board_t;

/* Load the firmware and reset. NULL on error (message on stderr). */
board_t *board_new(const char *elf_path);
void board_free(board_t *b);
/* Advance simulated time by ns (the motors and encoders are stepped every 20 us). */
void board_run_ns(board_t *b, uint64_t ns);
/* Simulated time since reset, ns. */
uint64_t board_time_ns(const board_t *b);
/* Queue bytes for the board's UART receiver (delivered at the emulated baud rate). */
void board_uart_send(board_t *b, const uint8_t *data, size_t len);
/* Take up to cap bytes the board has transmitted; returns how many. */
size_t board_uart_recv(board_t *b, uint8_t *out, size_t cap);
/* Host-side bytes still waiting to enter the board's UART. */
size_t board_uart_pending(const board_t *b);
/* True wheel angular speed, rad/s (the motor model's state, not the firmware's estimate). */
double board_wheel_speed(const board_t *b, int wheel);
/* True wheel angle, rad. */
double board_wheel_angle(const board_t *b, int wheel);
/* PWM the firmware currently applies, from its pins: -255..255. */
int board_pwm(const board_t *b, int wheel);
/* Set the battery voltage seen on ADC0 (through the board's 1:3 divider), mV. */
void board_set_battery_mv(board_t *b, uint32_t mv);
/* 0 while the CPU runs; nonzero once it crashed or stopped. */
int board_crashed(const board_t *b);
#endif
