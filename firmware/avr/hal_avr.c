/* ATmega328P @ 16 MHz implementation of hal.h. Pin map: see firmware/README.md. */
#include "../src/hal.h"
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>
#include <avr/wdt.h>
#include <util/atomic.h>

#define BAUD 115200UL
#define RX_SIZE 64 /* power of two */
#define TX_SIZE 128

static volatile uint8_t rx_buf[RX_SIZE], rx_head, rx_tail, rx_over;
static volatile uint8_t tx_buf[TX_SIZE], tx_head, tx_tail;
static volatile uint32_t millis_count;
static volatile int32_t enc_count[2];
static volatile uint8_t enc_prev;
/* .noinit: written in .init3, before the C runtime clears .bss. */
static uint8_t reset_cause __attribute__((section(".noinit")));
static uint16_t battery_mv;
static uint32_t battery_next;

/* Capture and clear the reset cause, and stop a running watchdog, before main. */
void get_mcusr(void) __attribute__((naked, used, section(".init3")));
void get_mcusr(void)
{
    reset_cause = MCUSR;
    MCUSR = 0;
    wdt_disable();
}

ISR(USART_RX_vect)
{
    uint8_t status = UCSR0A;
    uint8_t b = UDR0;
    uint8_t next = (uint8_t)((rx_head + 1) & (RX_SIZE - 1));
    if ((status & _BV(DOR0)) || next == rx_tail) {
        rx_over = 1;
        if (next == rx_tail)
            return;
    }
    rx_buf[rx_head] = b;
    rx_head = next;
}

ISR(USART_UDRE_vect)
{
    if (tx_head == tx_tail) {
        UCSR0B &= (uint8_t)~_BV(UDRIE0);
        return;
    }
    UDR0 = tx_buf[tx_tail];
    tx_tail = (uint8_t)((tx_tail + 1) % TX_SIZE);
}

ISR(TIMER2_COMPA_vect) { millis_count++; }

/* Quadrature x4 on PD2/PD4 (left A/B) and PD3/PD5 (right A/B), one pin-change interrupt. */
static const int8_t quad_table[16] = {0, 1, -1, 0, -1, 0, 0, 1, 1, 0, 0, -1, 0, -1, 1, 0};
ISR(PCINT2_vect)
{
    uint8_t pins = PIND;
    uint8_t left = (uint8_t)(((pins >> 2) & 1) | (((pins >> 4) & 1) << 1));
    uint8_t right = (uint8_t)(((pins >> 3) & 1) | (((pins >> 5) & 1) << 1));
    uint8_t prev = enc_prev;
    enc_count[0] += quad_table[((prev & 3) << 2) | left];
    enc_count[1] += quad_table[(((prev >> 2) & 3) << 2) | right];
    enc_prev = (uint8_t)(left | (right << 2));
}

uint8_t hal_reset_cause(void) { return reset_cause; }

void hal_init(void)
{
    cli();
    /* UART0: 115200 8N1, double speed (UBRR 16 -> 117647 baud, 2.1 %). */
    UCSR0A = _BV(U2X0);
    UBRR0 = (uint16_t)((F_CPU / (8UL * BAUD)) - 1);
    UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);
    UCSR0C = _BV(UCSZ01) | _BV(UCSZ00);
    /* Timer2: CTC 1 kHz tick (16 MHz / 64 / 250). */
    TCCR2A = _BV(WGM21);
    TCCR2B = _BV(CS22);
    OCR2A = 249;
    TIMSK2 = _BV(OCIE2A);
    /* Timer1: 8-bit fast PWM on OC1A (PB1, left EN) and OC1B (PB2, right EN), 7.8 kHz. */
    DDRB |= _BV(PB0) | _BV(PB1) | _BV(PB2) | _BV(PB3) | _BV(PB4);
    DDRD |= _BV(PD7);
    TCCR1A = _BV(COM1A1) | _BV(COM1B1) | _BV(WGM10);
    TCCR1B = _BV(WGM12) | _BV(CS11);
    OCR1A = 0;
    OCR1B = 0;
    /* Encoders: inputs with pull-ups, pin-change interrupts PCINT18..21. */
    DDRD &= (uint8_t)~(_BV(PD2) | _BV(PD3) | _BV(PD4) | _BV(PD5));
    /* External pull-ups on the encoder lines (open-collector sensors). */
    PCMSK2 = _BV(PCINT18) | _BV(PCINT19) | _BV(PCINT20) | _BV(PCINT21);
    PCICR = _BV(PCIE2);
    uint8_t pins = PIND;
    enc_prev = (uint8_t)(((pins >> 2) & 1) | (((pins >> 4) & 1) << 1) | (((pins >> 3) & 1) << 2) |
                         (((pins >> 5) & 1) << 3));
    /* ADC: AVcc reference, ADC0 (battery through a 1:3 divider), prescaler 128. */
    ADMUX = _BV(REFS0);
    ADCSRA = _BV(ADEN) | _BV(ADPS2) | _BV(ADPS1) | _BV(ADPS0);
    /* Hardware watchdog against a hung main loop. */
    wdt_enable(WDTO_120MS);
    sei();
}

uint32_t hal_millis(void)
{
    uint32_t v;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { v = millis_count; }
    return v;
}

int16_t hal_uart_getc(void)
{
    uint8_t b;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        if (rx_head == rx_tail)
            return -1;
        b = rx_buf[rx_tail];
        rx_tail = (uint8_t)((rx_tail + 1) & (RX_SIZE - 1));
    }
    return b;
}

uint8_t hal_uart_rx_overflowed(void)
{
    uint8_t o;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        o = rx_over;
        rx_over = 0;
    }
    return o;
}

uint8_t hal_uart_write(const uint8_t *data, uint8_t len)
{
    uint8_t ok = 0;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        uint8_t used = (uint8_t)((tx_head + TX_SIZE - tx_tail) % TX_SIZE);
        if ((uint16_t)used + len < TX_SIZE) {
            for (uint8_t i = 0; i < len; i++) {
                tx_buf[tx_head] = data[i];
                tx_head = (uint8_t)((tx_head + 1) % TX_SIZE);
            }
            UCSR0B |= _BV(UDRIE0);
            ok = 1;
        }
    }
    return ok;
}

void hal_encoders(int32_t out[2])
{
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        out[0] = enc_count[0];
        out[1] = enc_count[1];
    }
}

void hal_set_pwm(int16_t left, int16_t right)
{
    /* Left: IN1 PD7, IN2 PB0, EN OC1A. Right: IN3 PB3, IN4 PB4, EN OC1B. */
    if (left > 0) { PORTD |= _BV(PD7); PORTB &= (uint8_t)~_BV(PB0); }
    else if (left < 0) { PORTD &= (uint8_t)~_BV(PD7); PORTB |= _BV(PB0); }
    else { PORTD &= (uint8_t)~_BV(PD7); PORTB &= (uint8_t)~_BV(PB0); }
    if (right > 0) { PORTB |= _BV(PB3); PORTB &= (uint8_t)~_BV(PB4); }
    else if (right < 0) { PORTB &= (uint8_t)~_BV(PB3); PORTB |= _BV(PB4); }
    else { PORTB &= (uint8_t)~(_BV(PB3) | _BV(PB4)); }
    OCR1A = (uint8_t)(left < 0 ? -left : left);
    OCR1B = (uint8_t)(right < 0 ? -right : right);
}

uint16_t hal_battery_mv(void)
{
    uint32_t now = hal_millis();
    if ((int32_t)(now - battery_next) >= 0) {
        battery_next = now + 100;
        ADCSRA |= _BV(ADSC);
        while (ADCSRA & _BV(ADSC))
            ;
        /* 5000 mV full scale, 1:3 divider. */
        battery_mv = (uint16_t)(((uint32_t)ADC * 15000UL) >> 10);
    }
    return battery_mv;
}

void hal_wdt_kick(void) { wdt_reset(); }

void hal_idle(void)
{
    set_sleep_mode(SLEEP_MODE_IDLE);
    cli();
    if (rx_head == rx_tail) {
        sleep_enable();
        sei();
        __asm__ __volatile__("nop"); /* simavr: let a pending interrupt run before sleeping */
        sleep_cpu();
        sleep_disable();
    }
    sei();
}
