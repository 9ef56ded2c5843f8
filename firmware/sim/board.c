#include "board.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avr_adc.h>
#include <avr_ioport.h>
#include <avr_uart.h>
#include <sim_avr.h>
#include <sim_cycle_timers.h>
#include <sim_elf.h>
#include <sim_irq.h>

/* ATmega328P data-space addresses. */
#define R_PORTB 0x25
#define R_PORTD 0x2B
#define R_TCCR1A 0x80
#define R_OCR1AL 0x88
#define R_OCR1BL 0x8A

/* Motor model (matches urdf/robot.toml: 20 rad/s at full PWM, 1440 counts per revolution). */
#define W_MAX 20.0      /* rad/s at |PWM| = 255 */
#define TAU 0.08        /* s, mechanical time constant with the wheel and robot inertia */
#define FRICTION 6.0    /* rad/s^2, Coulomb friction deceleration */
#define TICKS_PER_REV 1440
#define STEP_NS 20000ULL /* motor/encoder step; at most one edge per step (enough up to 200 rad/s) */

#define QSIZE 65536

struct board {
    avr_t *avr;
    avr_irq_t *uart_in;
    avr_irq_t *enc_pin[2][2]; /* [wheel][A,B] */
    avr_irq_t *adc0;
    uint8_t xon;
    uint8_t in_q[QSIZE];
    size_t in_head, in_len;
    uint8_t out_q[QSIZE];
    size_t out_head, out_len;
    double w[2], angle[2];
    int64_t enc_emitted[2];
    uint64_t t_ns;
};

static void no_sleep(avr_t *avr, avr_cycle_count_t how_long)
{
    (void)avr;
    (void)how_long;
}

static void on_uart_out(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    board_t *b = param;
    if (b->out_len < QSIZE) {
        b->out_q[(b->out_head + b->out_len) % QSIZE] = (uint8_t)value;
        b->out_len++;
    }
}

static void pump_uart(board_t *b)
{
    while (b->xon && b->in_len) {
        uint8_t byte = b->in_q[b->in_head];
        b->in_head = (b->in_head + 1) % QSIZE;
        b->in_len--;
        avr_raise_irq(b->uart_in, byte);
    }
}

static void on_xon(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    board_t *b = param;
    b->xon = 1;
    pump_uart(b);
}

static void on_xoff(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    ((board_t *)param)->xon = 0;
}

static avr_cycle_count_t motor_timer(struct avr_t *avr, avr_cycle_count_t when, void *param);

/* simavr's own messages: warnings and errors go to stderr, the chatter ("Loaded 7512 .text")
 * is dropped so it does not mix into the host program's stdout. */
static void board_logger(struct avr_t *avr, const int level, const char *format, va_list ap)
{
    (void)avr;
    if (level <= LOG_WARNING) {
        vfprintf(stderr, format, ap);
    }
}

board_t *board_new(const char *elf_path)
{
    avr_global_logger_set(board_logger);
    elf_firmware_t fw;
    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(elf_path, &fw) != 0) {
        fprintf(stderr, "board: cannot read firmware %s\n", elf_path);
        return NULL;
    }
    avr_t *avr = avr_make_mcu_by_name("atmega328p");
    if (!avr) {
        fprintf(stderr, "board: simavr has no atmega328p\n");
        return NULL;
    }
    board_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->avr = avr;
    avr_init(avr);
    avr->frequency = 16000000;
    avr_load_firmware(avr, &fw);
    avr->frequency = 16000000;
    avr->sleep = no_sleep; /* time only advances in board_run_ns */
    avr->log = 0;
    avr->vcc = avr->avcc = avr->aref = 5000;
    avr_cycle_timer_register(avr, STEP_NS * 16 / 1000, motor_timer, b);
    b->uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), on_uart_out, b);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), on_xon, b);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), on_xoff, b);
    /* Do not echo the UART on the console. */
    uint32_t f = 0;
    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &f);
    f &= ~(uint32_t)AVR_UART_FLAG_STDIO;
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &f);
    b->enc_pin[0][0] = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), IOPORT_IRQ_PIN2);
    b->enc_pin[0][1] = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), IOPORT_IRQ_PIN4);
    b->enc_pin[1][0] = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), IOPORT_IRQ_PIN3);
    b->enc_pin[1][1] = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), IOPORT_IRQ_PIN5);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            avr_raise_irq(b->enc_pin[i][j], 0);
    b->adc0 = avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0);
    board_set_battery_mv(b, 7400);
    return b;
}

void board_free(board_t *b)
{
    if (!b)
        return;
    avr_terminate(b->avr);
    free(b->avr);
    free(b);
}

void board_set_battery_mv(board_t *b, uint32_t mv) { avr_raise_irq(b->adc0, mv / 3); }

int board_pwm(const board_t *b, int wheel)
{
    const uint8_t *d = b->avr->data;
    uint8_t tccr1a = d[R_TCCR1A];
    if (wheel == 0) {
        int duty = (tccr1a & 0x80) ? d[R_OCR1AL] : 0;
        int in1 = (d[R_PORTD] >> 7) & 1, in2 = d[R_PORTB] & 1;
        return in1 && !in2 ? duty : (!in1 && in2 ? -duty : 0);
    }
    int duty = (tccr1a & 0x20) ? d[R_OCR1BL] : 0;
    int in3 = (d[R_PORTB] >> 3) & 1, in4 = (d[R_PORTB] >> 4) & 1;
    return in3 && !in4 ? duty : (!in3 && in4 ? -duty : 0);
}

static const uint8_t gray[4] = {0, 1, 3, 2}; /* A = bit 0, B = bit 1; forward order */

static void step_motors(board_t *b, double dt)
{
    for (int i = 0; i < 2; i++) {
        double u = board_pwm(b, i) / 255.0;
        double w = b->w[i];
        double a = (W_MAX * u - w) / TAU;
        if (w == 0.0) {
            if (fabs(a) <= FRICTION)
                a = 0.0;
            else
                a -= copysign(FRICTION, a);
        } else {
            a -= copysign(FRICTION, w);
        }
        double nw = w + a * dt;
        if (w != 0.0 && u == 0.0 && (nw > 0) != (w > 0))
            nw = 0.0; /* friction stops, never reverses */
        b->w[i] = nw;
        b->angle[i] += nw * dt;
        /* Emit at most one quadrature edge per step so the firmware's ISR sees every state. */
        int64_t target = (int64_t)floor(b->angle[i] / (2.0 * M_PI) * TICKS_PER_REV);
        if (target != b->enc_emitted[i]) {
            int64_t next = b->enc_emitted[i] + (target > b->enc_emitted[i] ? 1 : -1);
            uint8_t prev = gray[b->enc_emitted[i] & 3], cur = gray[next & 3];
            if ((prev ^ cur) & 1)
                avr_raise_irq(b->enc_pin[i][0], cur & 1);
            if ((prev ^ cur) & 2)
                avr_raise_irq(b->enc_pin[i][1], (cur >> 1) & 1);
            b->enc_emitted[i] = next;
        }
    }
}

/* The motors step inside simavr's own timeline, every STEP_NS of emulated time, so they stay
 * in step with the firmware even while it sleeps. */
static avr_cycle_count_t motor_timer(struct avr_t *avr, avr_cycle_count_t when, void *param)
{
    (void)avr;
    board_t *b = param;
    step_motors(b, STEP_NS * 1e-9);
    pump_uart(b);
    return when + STEP_NS * 16 / 1000;
}

void board_run_ns(board_t *b, uint64_t ns)
{
    b->t_ns += ns;
    avr_cycle_count_t target = (avr_cycle_count_t)(b->t_ns * 16 / 1000);
    pump_uart(b);
    while (b->avr->cycle < target) {
        int st = avr_run(b->avr);
        if (st == cpu_Done || st == cpu_Crashed)
            break;
    }
}

uint64_t board_time_ns(const board_t *b) { return b->t_ns; }

void board_uart_send(board_t *b, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len && b->in_len < QSIZE; i++) {
        b->in_q[(b->in_head + b->in_len) % QSIZE] = data[i];
        b->in_len++;
    }
    pump_uart(b);
}

size_t board_uart_recv(board_t *b, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (n < cap && b->out_len) {
        out[n++] = b->out_q[b->out_head];
        b->out_head = (b->out_head + 1) % QSIZE;
        b->out_len--;
    }
    return n;
}

size_t board_uart_pending(const board_t *b) { return b->in_len; }
double board_wheel_speed(const board_t *b, int wheel) { return b->w[wheel & 1]; }
double board_wheel_angle(const board_t *b, int wheel) { return b->angle[wheel & 1]; }
int board_crashed(const board_t *b) { return b->avr->state == cpu_Done || b->avr->state == cpu_Crashed; }
