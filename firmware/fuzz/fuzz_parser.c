/* libFuzzer harness for the frame parser and the controller's receive path.
 * Properties checked on every input (any byte stream):
 *  - no crash, no out-of-bounds access (ASan/UBSan),
 *  - every frame the receiver accepts re-encodes to exactly the bytes it came from,
 *  - the controller never holds a setpoint outside +-PROTO_MAX_WHEEL_MRAD_S, never drives the
 *    motors while the e-stop is latched, and counts every rejected frame. */
#include "../src/ctrl.h"
#include "../src/proto.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    frame_rx_t rx;
    frame_rx_init(&rx);
    ctrl_t c;
    ctrl_init(&c, 0, 0, 0);
    uint8_t frame[PROTO_MAX_FRAME + 1];
    size_t start = 0;
    uint16_t bad = 0;
    uint8_t out[PROTO_MAX_FRAME];
    for (size_t i = 0; i < size; i++) {
        msg_t m;
        int8_t r = frame_rx_push(&rx, data[i], &m);
        if (r < 0)
            bad++;
        if (r == 1) {
            uint8_t n = frame_encode(&m, frame);
            /* Accepted frame == its bytes on the wire (ignoring the delimiter). */
            if (n != i - start + 1 || memcmp(frame, data + start, n) != 0)
                abort();
        }
        if (data[i] == 0)
            start = i + 1;
        ctrl_rx_byte(&c, data[i], (uint32_t)i, out);
        if (c.setpoint[0] > PROTO_MAX_WHEEL_MRAD_S || c.setpoint[0] < -PROTO_MAX_WHEEL_MRAD_S ||
            c.setpoint[1] > PROTO_MAX_WHEEL_MRAD_S || c.setpoint[1] < -PROTO_MAX_WHEEL_MRAD_S)
            abort();
        if (c.estop && (c.setpoint[0] || c.setpoint[1]))
            abort();
        int32_t enc[2] = {(int32_t)i, -(int32_t)i};
        int16_t pwm[2];
        if ((i & 15) == 0) {
            ctrl_step(&c, enc, pwm);
            if (c.estop && (pwm[0] || pwm[1]))
                abort();
        }
    }
    if (c.rx_errors != bad)
        abort();
    return 0;
}
