// navigate_node.cpp: Telic in a C++ control stack, held the way a ROS 2
// controller plugin would hold it: a class owns the handles (RAII, freed in
// reverse order whatever happens), is configured from scenario-schema TOML
// text, activates the real-time controller, and in its update() hands the
// newest state over and reads the command back, without waiting.
//
//   c++ -std=c++17 -Ibindings/c/include examples/c/navigate_node.cpp
//       -Ltarget/debug -ltelic_c -Wl,-rpath,target/debug -o navigate_node
// (one command).
//   ./navigate_node examples/c/navigate.toml
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "telic.h"

namespace {

// A Telic error as a C++ exception, with the library's message.
void check(TelicStatus status, const char *what) {
    if (status != TELIC_STATUS_OK)
        throw std::runtime_error(std::string(what) + ": " + telic_last_error());
}

template <class T, void (*Free)(T *)>
struct Deleter {
    void operator()(T *p) const { Free(p); }
};
using Model = std::unique_ptr<TelicModel, Deleter<TelicModel, telic_model_free>>;
using Planner = std::unique_ptr<TelicPlanner, Deleter<TelicPlanner, telic_planner_free>>;
using Controller =
    std::unique_ptr<TelicController, Deleter<TelicController, telic_controller_stop>>;

// A navigation controller: configure once, activate, update every control
// period, deactivate. Copying is forbidden (it owns a planner thread).
class NavigateController {
  public:
    NavigateController(const std::string &model_params, std::string settings)
        : settings_(std::move(settings)) {
        TelicModel *m = nullptr;
        check(telic_model_analytic("unicycle", model_params.c_str(), &m), "model");
        model_.reset(m);
        check(telic_model_dims(model_.get(), &dims_), "model dims");
    }
    NavigateController(const NavigateController &) = delete;
    NavigateController &operator=(const NavigateController &) = delete;

    // Starts planning towards `goal` (x, y); the planner thread starts now.
    void activate(const std::array<double, 2> &goal) {
        TelicPlanner *p = nullptr;
        check(telic_planner_new(model_.get(), settings_.c_str(), &p), "planner");
        Planner planner(p);
        check(telic_planner_set_target(planner.get(), "goal", goal.data(), goal.size()), "goal");
        TelicController *c = nullptr;
        check(telic_controller_start(planner.get(), "max_plan_age_ms = 250", &c), "controller");
        controller_.reset(c);  // the planner handle, now used up, is freed here
    }

    // One control period: the state in, the command out; never waits.
    TelicActionSource update(const std::array<double, 5> &state, std::array<double, 2> &command) {
        check(telic_controller_observe(controller_.get(), state.data(), state.size()), "observe");
        TelicActionInfo info;
        check(telic_controller_action(controller_.get(), command.data(), command.size(), &info),
              "action");
        return info.source;
    }

    TelicControllerMetrics metrics() const {
        TelicControllerMetrics m;
        check(telic_controller_metrics(controller_.get(), &m), "metrics");
        return m;
    }

    void deactivate() { controller_.reset(); }

  private:
    std::string settings_;
    Model model_;
    TelicModelDims dims_{};
    Controller controller_;
};

std::string read_file(const char *path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(std::string("cannot read ") + path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// The robot: the unicycle of the model, one control period.
void step_robot(std::array<double, 5> &s, const std::array<double, 2> &u) {
    const double dt = 0.1, alpha = 1.0 - std::exp(-dt / 0.2);
    s[3] += alpha * (u[0] - s[3]);
    s[4] += alpha * (u[1] - s[4]);
    const double mid = s[2] + 0.5 * s[4] * dt;
    s[2] += s[4] * dt;
    s[0] += s[3] * std::cos(mid) * dt;
    s[1] += s[3] * std::sin(mid) * dt;
}

}  // namespace

int main(int argc, char **argv) {
    try {
        const char *path = argc > 1 ? argv[1] : "examples/c/navigate.toml";
        NavigateController node("dt = 0.1\nmax_speed = 1.0\nmax_turn_rate = 2.0\ntau = 0.2\n",
                                read_file(path));
        // A bad call is an exception with the library's message, not a crash.
        try {
            NavigateController bad("dt = 0.1\nwheels = 3\n", "");
        } catch (const std::runtime_error &e) {
            std::printf("refused as expected: %s\n", e.what());
        }
        node.activate({4.0, 0.0});
        std::array<double, 5> robot{};
        std::array<double, 2> command{};
        for (int tick = 0; tick < 400; ++tick) {
            if (node.update(robot, command) == TELIC_ACTION_SOURCE_PLAN) step_robot(robot, command);
            if (node.metrics().reads[TELIC_ACTION_SOURCE_PLAN] >= 20) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        const TelicControllerMetrics m = node.metrics();
        std::printf("node: %llu plans published, %llu of %llu reads from plans, robot at x=%.2f\n",
                    static_cast<unsigned long long>(m.plans_published),
                    static_cast<unsigned long long>(m.reads[TELIC_ACTION_SOURCE_PLAN]),
                    static_cast<unsigned long long>(m.control_reads), robot[0]);
        node.deactivate();
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "navigate_node: %s\n", e.what());
        return 1;
    }
}
