/* CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor.
 * Check value: crc16("123456789") == 0x29B1. */
#ifndef BL_CRC16_H
#define BL_CRC16_H
#include <stdint.h>
uint16_t crc16(const uint8_t *data, uint16_t len);
#endif
