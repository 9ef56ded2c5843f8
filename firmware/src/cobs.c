#include "cobs.h"

uint16_t cobs_encode(const uint8_t *src, uint16_t len, uint8_t *dst)
{
    uint16_t code_pos = 0, out = 1;
    uint8_t code = 1;
    for (uint16_t i = 0; i < len; i++) {
        if (src[i] == 0) {
            dst[code_pos] = code;
            code_pos = out++;
            code = 1;
        } else {
            dst[out++] = src[i];
            if (++code == 0xFF) {
                dst[code_pos] = code;
                code_pos = out++;
                code = 1;
            }
        }
    }
    dst[code_pos] = code;
    return out;
}

int16_t cobs_decode(const uint8_t *src, uint16_t len, uint8_t *dst, uint16_t cap)
{
    uint16_t i = 0, out = 0;
    while (i < len) {
        uint8_t code = src[i++];
        if (code == 0)
            return -1;
        uint16_t end = (uint16_t)(i + code - 1);
        if (end > len)
            return -1;
        for (; i < end; i++) {
            if (src[i] == 0)
                return -1;
            if (out >= cap)
                return -2;
            dst[out++] = src[i];
        }
        if (code < 0xFF && i < len) {
            if (out >= cap)
                return -2;
            dst[out++] = 0;
        }
    }
    return (int16_t)out;
}
