/* navigate.c: Telic from C. A differential-drive base plans its way to a goal
 * around obstacles (the problem of navigate.toml), first by calling the
 * planner directly every step, then with the real-time controller, whose
 * planner runs on a thread of its own.
 *
 *   cc -std=c11 -Ibindings/c/include examples/c/navigate.c \
 *      -Ltarget/debug -ltelic_c -Wl,-rpath,target/debug -lm -o navigate
 *   ./navigate examples/c/navigate.toml [--trace]
 *
 * --trace prints every observation planned from and the whole plan, with 17
 * significant digits (bindings/c/tests/examples.rs compares them with the
 * Rust planner's, bit for bit). */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "telic.h"

/* The unicycle's parameters (telic.WorldModel.analytic in Python takes the same). */
static const char *MODEL_PARAMS = "dt = 0.1\nmax_speed = 1.0\nmax_turn_rate = 2.0\ntau = 0.2\n";
static const double GOAL[2] = {4.0, 0.0};
enum { PLAN_STEPS = 30, CONTROL_TICKS = 400, OBS = 5, ACT = 2 };

/* Says which call failed and why, and returns 1 (the exit status). */
static int fail(const char *call, TelicStatus status) {
    fprintf(stderr, "%s failed (status %d): %s\n", call, (int)status, telic_last_error());
    return 1;
}

#define CHECK(call)                                                                    \
    do {                                                                               \
        TelicStatus status_ = (call);                                                  \
        if (status_ != TELIC_STATUS_OK) { rc = fail(#call, status_); goto done; }      \
    } while (0)

/* The whole file at `path`, NUL-terminated (the caller frees it), or NULL. */
static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *text = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)n + 1))) {
            size_t got = fread(text, 1, (size_t)n, f);
            text[got] = '\0';
        }
    }
    fclose(f);
    return text;
}

/* The robot: one control period of the same unicycle, velocities lagging
 * their commands (x, y, heading, v, omega). */
static void step_robot(double s[OBS], const double u[ACT]) {
    const double dt = 0.1, alpha = 1.0 - exp(-dt / 0.2);
    s[3] += alpha * (u[0] - s[3]);
    s[4] += alpha * (u[1] - s[4]);
    double mid = s[2] + 0.5 * s[4] * dt;
    s[2] += s[4] * dt;
    s[0] += s[3] * cos(mid) * dt;
    s[1] += s[3] * sin(mid) * dt;
}

static void print_row(const char *tag, const double *v, size_t n) {
    printf("%s", tag);
    for (size_t i = 0; i < n; i++) printf(" %.17g", v[i]);
    printf("\n");
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

int main(int argc, char **argv) {
    int rc = 0, trace = 0;
    const char *settings_path = "examples/c/navigate.toml";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--trace") == 0) trace = 1;
        else settings_path = argv[i];
    }
    TelicModel *model = NULL;
    TelicPlanner *planner = NULL, *realtime = NULL;
    TelicController *controller = NULL;
    double *plan = NULL;
    char *settings = read_file(settings_path);
    if (!settings) {
        fprintf(stderr, "cannot read %s\n", settings_path);
        return 1;
    }

    CHECK(telic_model_analytic("unicycle", MODEL_PARAMS, &model));
    TelicModelDims md;
    CHECK(telic_model_dims(model, &md));
    CHECK(telic_planner_new(model, settings, &planner));
    TelicPlannerDims pd;
    CHECK(telic_planner_dims(planner, &pd));
    if (md.observations != OBS || md.actions != ACT) {
        fprintf(stderr, "unexpected model sizes\n");
        rc = 1;
        goto done;
    }
    CHECK(telic_planner_set_target(planner, "goal", GOAL, 2));
    printf("telic %s: unicycle O=%zu A=%zu, horizon %zu, %zu terms, %zu guardrails\n",
           telic_version(), md.observations, md.actions, pd.horizon, pd.terms, pd.guardrails);

    /* 1. Planning every step: plan, apply the first action, observe again.
     * Buffers are the caller's; after the first call, planning allocates nothing. */
    plan = malloc(pd.horizon * pd.actions * sizeof *plan);
    if (!plan) { rc = 1; goto done; }
    double state[OBS] = {0.0, 0.0, 0.0, 0.0, 0.0}, action[ACT];
    TelicPlanResult result;
    for (int t = 0; t < PLAN_STEPS; t++) {
        CHECK(telic_planner_plan(planner, state, OBS, action, ACT, plan, pd.horizon * pd.actions,
                                 &result));
        if (trace) {
            print_row("obs", state, OBS);
            print_row("actions", plan, pd.horizon * pd.actions);
        }
        if (t % 10 == 0 || t == PLAN_STEPS - 1)
            printf("step %2d: x=%.2f y=%.2f  v=%+.2f w=%+.2f  status %d cost %.2f worst margin %.3f\n",
                   t, state[0], state[1], action[0], action[1], (int)result.status, result.cost,
                   result.worst_margin);
        step_robot(state, action);
    }

    /* 2. The real-time controller: its planner thread re-plans on the newest
     * observation; observe and action never wait. */
    CHECK(telic_planner_new(model, settings, &realtime));
    CHECK(telic_planner_set_target(realtime, "goal", GOAL, 2));
    CHECK(telic_controller_start(realtime, "max_plan_age_ms = 250", &controller));
    double robot[OBS] = {0.0, 0.0, 0.0, 0.0, 0.0};
    TelicActionInfo info;
    for (int tick = 0; tick < CONTROL_TICKS; tick++) {
        CHECK(telic_controller_observe(controller, robot, OBS));
        CHECK(telic_controller_action(controller, action, ACT, &info));
        if (info.source == TELIC_ACTION_SOURCE_PLAN) step_robot(robot, action);
        TelicControllerMetrics m;
        CHECK(telic_controller_metrics(controller, &m));
        if (m.reads[TELIC_ACTION_SOURCE_PLAN] >= 20) break;
        sleep_ms(10);
    }
    TelicControllerMetrics m;
    CHECK(telic_controller_metrics(controller, &m));
    printf("controller: %llu plans, %llu reads (%llu from plans, %llu no_plan_yet, %llu stale), "
           "last source %s, robot at x=%.2f y=%.2f\n",
           (unsigned long long)m.plans_published, (unsigned long long)m.control_reads,
           (unsigned long long)m.reads[TELIC_ACTION_SOURCE_PLAN],
           (unsigned long long)m.reads[TELIC_ACTION_SOURCE_NO_PLAN_YET],
           (unsigned long long)m.reads[TELIC_ACTION_SOURCE_STALE],
           telic_action_source_name(info.source), robot[0], robot[1]);

done:
    telic_controller_stop(controller);
    telic_planner_free(realtime);
    telic_planner_free(planner);
    telic_model_free(model);
    free(plan);
    free(settings);
    return rc;
}
