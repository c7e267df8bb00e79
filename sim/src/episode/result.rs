//! What an episode did ([`EpisodeResult`]) and aggregate figures over many
//! ([`Summary`]).

use crate::scene::World;
use serde::{Deserialize, Serialize};
use telic::{Plan, Real};

/// What one episode did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeResult {
    /// The episode's seed (reproduces it exactly).
    pub seed: u64,
    /// The task was achieved within the time limit.
    pub success: bool,
    /// Simulated seconds until success.
    pub time_to_goal: Option<Real>,
    /// Simulated seconds run.
    pub duration: Real,
    /// Running task cost of the executed trajectory (the objective's terms on
    /// the true states, summed over control steps).
    pub task_cost: Real,
    /// Physics steps at which some guardrail was violated in the true state.
    pub violation_steps: usize,
    /// Guardrails violated at least once, with their step counts.
    pub violated: Vec<(String, usize)>,
    /// The smallest true margin over all guardrails and physics steps.
    pub worst_margin: Real,
    /// The guardrail with the smallest margin.
    pub worst_guardrail: String,
    /// Control steps run.
    pub control_steps: usize,
    /// Control steps at which no feasible plan was found (fallback applied).
    pub fallback_steps: usize,
    /// Why the fallback was applied ([`fallback_reason`]), with the number
    /// of control steps for each reason, most frequent first.
    #[serde(default)]
    pub fallback_reasons: Vec<(String, usize)>,
    /// What was wrong with the episode's planner when it was built: each
    /// guardrail that its model-error margins make unsatisfiable
    /// ([`telic::Planner::unsatisfiable_guardrails`]).
    #[serde(default)]
    pub planner_warnings: Vec<String>,
    /// Wall-clock planning time of each control step, in milliseconds.
    pub plan_latency_ms: Vec<Real>,
    /// How far the final state was from the goal ([`World::goal_error`]).
    pub final_error: Vec<(String, Real)>,
    /// How the episode's world was perturbed (`[perturb]`; `None`: it
    /// was not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perturbation: Option<crate::perturb::Draw>,
    /// Why the episode ended early, when the simulation failed (the physics
    /// diverged): it counts as a failure, and the run goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The actuation delay the planner identified by the episode's last
    /// plan (`planner.identify_delay`; `None` when it was off), to set
    /// beside the delay drawn in `perturbation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_identified: Option<usize>,
}

impl EpisodeResult {
    /// An episode of `seed` before its first step.
    pub(crate) fn start(seed: u64) -> Self {
        Self {
            seed,
            success: false,
            time_to_goal: None,
            duration: 0.0,
            task_cost: 0.0,
            violation_steps: 0,
            violated: Vec::new(),
            worst_margin: Real::INFINITY,
            worst_guardrail: String::new(),
            control_steps: 0,
            fallback_steps: 0,
            fallback_reasons: Vec::new(),
            planner_warnings: Vec::new(),
            plan_latency_ms: Vec::new(),
            final_error: Vec::new(),
            perturbation: None,
            failure: None,
            delay_identified: None,
        }
    }

    /// Records where the episode ended in `world`: its duration, its goal
    /// errors and the guardrails (named `names`) violated `violated` times.
    pub(crate) fn finish(&mut self, world: &dyn World, names: &[String], violated: &[usize]) {
        self.duration = world.time();
        self.final_error = world
            .goal_error()
            .into_iter()
            .map(|(name, e)| (name.to_string(), e))
            .collect();
        self.violated = names
            .iter()
            .zip(violated)
            .filter(|(_, n)| **n > 0)
            .map(|(name, n)| (name.clone(), *n))
            .collect();
    }
}

/// Why `plan` fell back on the safe fallback, in a few words: the world
/// model's prediction along the best plan found was not finite (a model
/// returning NaN), a guardrail that plan breaks (the one with the smallest
/// margin, named `guardrails[i]`; marked when it is one of
/// `unsatisfiable`), or a cost that is not finite.
#[must_use]
pub fn fallback_reason(
    plan: &Plan,
    guardrails: &[String],
    unsatisfiable: &[telic::objective::UnsatisfiableGuardrail],
) -> String {
    if plan.readouts.iter().any(|y| !y.is_finite()) {
        return "predicted readouts not finite (the world model returned NaN or inf)".into();
    }
    let worst = plan
        .margins
        .iter()
        .enumerate()
        .filter(|(_, m)| **m < 0.0)
        .min_by(|a, b| a.1.total_cmp(b.1));
    if let Some((i, _)) = worst {
        let name = guardrails.get(i).map_or("?", String::as_str);
        return if unsatisfiable.iter().any(|u| u.guardrail == name) {
            format!("guardrail '{name}' broken (unsatisfiable under the model-error margins)")
        } else {
            format!("guardrail '{name}' broken")
        };
    }
    if plan.cost.is_finite() {
        "no feasible plan".into()
    } else {
        "plan cost not finite".into()
    }
}

/// Adds `n` to the count of `key` in `counts`.
pub(crate) fn count(counts: &mut Vec<(String, usize)>, key: String, n: usize) {
    match counts.iter_mut().find(|(k, _)| *k == key) {
        Some((_, c)) => *c += n,
        None => counts.push((key, n)),
    }
}

/// Most frequent first, then by name.
pub(crate) fn sort_counts(counts: &mut [(String, usize)]) {
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
}

/// Aggregate figures over many episodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Episodes run.
    pub episodes: usize,
    /// Episodes that achieved the task.
    pub successes: usize,
    /// `successes / episodes`.
    pub success_rate: Real,
    /// Mean simulated time to goal over successful episodes (seconds).
    pub mean_time_to_goal: Option<Real>,
    /// Mean executed task cost.
    pub mean_task_cost: Real,
    /// Physics steps with a true guardrail violation, over all episodes.
    pub violation_steps: usize,
    /// Episodes with at least one true violation.
    pub episodes_with_violations: usize,
    /// Smallest true guardrail margin seen.
    pub worst_margin: Real,
    /// The guardrail it belongs to.
    pub worst_guardrail: String,
    /// Control steps that used the safe fallback.
    pub fallback_steps: usize,
    /// Those steps by reason ([`EpisodeResult::fallback_reasons`]), most
    /// frequent first.
    #[serde(default)]
    pub fallback_reasons: Vec<(String, usize)>,
    /// The episodes' planner warnings ([`EpisodeResult::planner_warnings`]),
    /// each once.
    #[serde(default)]
    pub planner_warnings: Vec<String>,
    /// Median plan latency (ms).
    pub plan_latency_p50_ms: Real,
    /// 99th-percentile plan latency (ms).
    pub plan_latency_p99_ms: Real,
    /// Largest plan latency (ms).
    pub plan_latency_max_ms: Real,
    /// Median and 90th percentile over the failed episodes of each final
    /// goal error ([`EpisodeResult::final_error`]): how far the failures got.
    pub failure_final_error: Vec<(String, Real, Real)>,
}

/// Value at quantile `q` (nearest rank) of `xs`; NaN when empty.
#[must_use]
pub fn quantile(xs: &[Real], q: Real) -> Real {
    if xs.is_empty() {
        return Real::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let idx = ((q * v.len() as Real).ceil() as usize).clamp(1, v.len()) - 1;
    v[idx]
}

impl Summary {
    /// Aggregates `results`.
    #[must_use]
    pub fn of(results: &[EpisodeResult]) -> Self {
        let n = results.len();
        let successes = results.iter().filter(|r| r.success).count();
        let ttg: Vec<Real> = results.iter().filter_map(|r| r.time_to_goal).collect();
        let worst = results
            .iter()
            .min_by(|a, b| a.worst_margin.total_cmp(&b.worst_margin));
        let lat: Vec<Real> = results
            .iter()
            .flat_map(|r| r.plan_latency_ms.iter().copied())
            .collect();
        Self {
            episodes: n,
            successes,
            success_rate: if n == 0 {
                0.0
            } else {
                successes as Real / n as Real
            },
            mean_time_to_goal: (!ttg.is_empty())
                .then(|| ttg.iter().sum::<Real>() / ttg.len() as Real),
            mean_task_cost: if n == 0 {
                0.0
            } else {
                results.iter().map(|r| r.task_cost).sum::<Real>() / n as Real
            },
            violation_steps: results.iter().map(|r| r.violation_steps).sum(),
            episodes_with_violations: results.iter().filter(|r| r.violation_steps > 0).count(),
            worst_margin: worst.map_or(Real::INFINITY, |r| r.worst_margin),
            worst_guardrail: worst.map(|r| r.worst_guardrail.clone()).unwrap_or_default(),
            fallback_steps: results.iter().map(|r| r.fallback_steps).sum(),
            fallback_reasons: {
                let mut all = Vec::new();
                for (reason, n) in results.iter().flat_map(|r| &r.fallback_reasons) {
                    count(&mut all, reason.clone(), *n);
                }
                sort_counts(&mut all);
                all
            },
            planner_warnings: {
                let mut all: Vec<String> = Vec::new();
                for w in results.iter().flat_map(|r| &r.planner_warnings) {
                    if !all.contains(w) {
                        all.push(w.clone());
                    }
                }
                all
            },
            plan_latency_p50_ms: quantile(&lat, 0.5),
            plan_latency_p99_ms: quantile(&lat, 0.99),
            plan_latency_max_ms: lat.iter().copied().fold(Real::NAN, Real::max),
            failure_final_error: failure_errors(results),
        }
    }
}

/// `(name, p50, p90)` of each final goal error over the failed episodes.
fn failure_errors(results: &[EpisodeResult]) -> Vec<(String, Real, Real)> {
    let failed: Vec<&EpisodeResult> = results.iter().filter(|r| !r.success).collect();
    let Some(first) = failed.first() else {
        return Vec::new();
    };
    first
        .final_error
        .iter()
        .map(|(name, _)| {
            let xs: Vec<Real> = failed
                .iter()
                .filter_map(|r| r.final_error.iter().find(|(n, _)| n == name))
                .map(|(_, e)| *e)
                .collect();
            (name.clone(), quantile(&xs, 0.5), quantile(&xs, 0.9))
        })
        .collect()
}
