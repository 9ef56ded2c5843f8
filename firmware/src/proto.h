/* The wire protocol (see PROTOCOL.md): frame = COBS(payload || crc16_le(payload)) 0x00,
 * payload = version u8 | type u8 | seq u16 | body, little endian. Plain C, builds for the host. */
#ifndef BL_PROTO_H
#define BL_PROTO_H
#include <stdint.h>

#define PROTO_VERSION 1
#define PROTO_MAX_PAYLOAD 48
#define PROTO_HEADER_LEN 4
#define PROTO_MAX_FRAME (PROTO_MAX_PAYLOAD + 2 + 1 + 1)
#define PROTO_MAX_WHEEL_MRAD_S 30000

enum msg_type {
    MSG_SET_WHEELS = 0x01,
    MSG_HEARTBEAT = 0x02,
    MSG_ESTOP = 0x03,
    MSG_CLEAR_ESTOP = 0x04,
    MSG_SET_PARAMS = 0x05,
    MSG_INFO_REQUEST = 0x06,
    MSG_TELEMETRY = 0x81,
    MSG_INFO = 0x82,
    MSG_NACK = 0x83,
};

/* NACK reasons; the frame decoders return them negated. */
enum nack_reason {
    NACK_BAD_CRC = 1,
    NACK_BAD_VERSION = 2,
    NACK_UNKNOWN_TYPE = 3,
    NACK_BAD_LENGTH = 4,
    NACK_OUT_OF_RANGE = 5,
    NACK_ESTOP_LATCHED = 6,
    NACK_MALFORMED = 7,
};

enum fault_bits {
    FAULT_CMD_TIMEOUT = 1u << 0,
    FAULT_ESTOP = 1u << 1,
    FAULT_HW_WATCHDOG_RESET = 1u << 2,
    FAULT_UNDERVOLTAGE = 1u << 3,
    FAULT_RX_OVERFLOW = 1u << 4,
    FAULT_PWM_SATURATED = 1u << 5,
};

typedef struct {
    uint16_t kp, ki, kd, kf; /* x100 */
    uint8_t pwm_limit;
    uint16_t watchdog_ms;
} params_t;

typedef struct {
    uint32_t time_ms;
    int32_t enc[2];
    int16_t speed[2];
    int16_t pwm[2];
    uint16_t battery_mv, faults, last_seq, rx_errors;
} telemetry_t;

typedef struct {
    uint8_t proto, fw[3];
    uint32_t build_id;
    uint8_t reset_cause;
} info_t;

typedef struct {
    uint8_t type;
    uint16_t seq;
    union {
        struct { int16_t left, right; } wheels;
        params_t params;
        telemetry_t telemetry;
        info_t info;
        struct { uint16_t seq; uint8_t reason; } nack;
    } u;
} msg_t;

/* Body length for a type, or -1 if unknown. */
int8_t msg_body_len(uint8_t type);
/* Parse a payload (CRC already checked). 0 on success, else -nack_reason. */
int8_t msg_decode(const uint8_t *payload, uint8_t len, msg_t *m);
/* Write a payload for m (PROTO_MAX_PAYLOAD bytes of room); returns its length. */
uint8_t msg_encode(const msg_t *m, uint8_t *payload);
/* Encode a full wire frame (PROTO_MAX_FRAME bytes of room) ending with 0x00; returns length. */
uint8_t frame_encode(const msg_t *m, uint8_t *out);
/* Decode one frame's bytes (without the delimiter): 0 and *m on success, else -nack_reason. */
int8_t frame_decode(const uint8_t *enc, uint8_t len, msg_t *m);

/* Incremental receiver: bounded buffer, resynchronises at every 0x00. */
typedef struct {
    uint8_t buf[PROTO_MAX_FRAME];
    uint8_t len;
    uint8_t overflow;
} frame_rx_t;

void frame_rx_init(frame_rx_t *rx);
/* Feed one byte: returns 0 while no frame is complete (or on an empty frame), 1 with *m filled
 * when a valid frame ended, or -nack_reason when a bad frame ended. */
int8_t frame_rx_push(frame_rx_t *rx, uint8_t byte, msg_t *m);

#endif
