#include "pid.h"

void pid_init(pid_t_ *p, float kp, float ki, float kd, float kf, float limit)
{
    p->kp = kp;
    p->ki = ki;
    p->kd = kd;
    p->kf = kf;
    p->limit = limit;
    pid_reset(p);
}

void pid_reset(pid_t_ *p)
{
    p->integral = 0.0f;
    p->prev_err = 0.0f;
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

float pid_step(pid_t_ *p, float sp, float meas, float dt)
{
    float err = sp - meas;
    float ff = p->kf * sp;
    float d = dt > 0.0f ? p->kd * (err - p->prev_err) / dt : 0.0f;
    p->prev_err = err;
    float unsat = ff + p->kp * err + p->integral + d;
    /* Conditional integration: only integrate when it does not push further into saturation. */
    float next_i = p->integral + p->ki * err * dt;
    if (!((unsat >= p->limit && err > 0.0f) || (unsat <= -p->limit && err < 0.0f)))
        p->integral = clampf(next_i, -p->limit, p->limit);
    return clampf(ff + p->kp * err + p->integral + d, -p->limit, p->limit);
}
