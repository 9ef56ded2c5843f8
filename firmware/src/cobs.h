/* Consistent Overhead Byte Stuffing: removes every 0x00 so 0x00 can delimit frames. */
#ifndef BL_COBS_H
#define BL_COBS_H
#include <stdint.h>
/* Encode len bytes of src into dst (room for len + len/254 + 1); returns the encoded length
 * (no delimiter). */
uint16_t cobs_encode(const uint8_t *src, uint16_t len, uint8_t *dst);
/* Decode len bytes (no delimiter) into dst of capacity cap. Returns the decoded length, or -1 on
 * malformed input, -2 when the output would not fit. Never writes past dst[cap-1]. */
int16_t cobs_decode(const uint8_t *src, uint16_t len, uint8_t *dst, uint16_t cap);
#endif
