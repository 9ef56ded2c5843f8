/* Wheel-speed PID with feed-forward and anti-windup; output in PWM counts. Plain C. */
#ifndef BL_PID_H
#define BL_PID_H
#include <stdint.h>

typedef struct {
    float kp, ki, kd, kf; /* PWM per rad/s, per rad, per rad/s^2, per rad/s */
    float limit;          /* |output| <= limit */
    float integral;       /* PWM counts contributed by the integral term */
    float prev_err;
} pid_t_;

void pid_init(pid_t_ *p, float kp, float ki, float kd, float kf, float limit);
void pid_reset(pid_t_ *p);
/* One step: setpoint and measurement in rad/s, dt in s. Returns PWM in [-limit, limit]. */
float pid_step(pid_t_ *p, float setpoint, float measured, float dt);
#endif
