/* Command watchdog timing, wrap-safe on a 32-bit millisecond clock. Plain C. */
#ifndef BL_WDOG_H
#define BL_WDOG_H
#include <stdint.h>

typedef struct {
    uint32_t last_ms;
    uint16_t period_ms;
    uint8_t expired;
} wdog_t;

static inline void wdog_init(wdog_t *w, uint32_t now, uint16_t period_ms)
{
    w->last_ms = now;
    w->period_ms = period_ms;
    w->expired = 1; /* nothing may move before the first valid frame */
}
static inline void wdog_feed(wdog_t *w, uint32_t now)
{
    w->last_ms = now;
    w->expired = 0;
}
/* Returns 1 exactly once when the watchdog trips, and sets expired. */
static inline uint8_t wdog_poll(wdog_t *w, uint32_t now)
{
    if (!w->expired && (int32_t)(now - w->last_ms) >= (int32_t)w->period_ms) {
        w->expired = 1;
        return 1;
    }
    return 0;
}
#endif
