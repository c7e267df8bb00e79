//! Rollout and adjoint (backward) pass: the task cost `J`, the guardrail
//! margins, the augmented-Lagrangian penalty and their exact gradient with
//! respect to the action sequence.
//!
//! The forward pass is the one-sequence rollout the shield traces with
//! ([`rollout::sequence`]): stage `t` scores `y_{t+1}, z_{t+1}` reached by
//! `u_t`, together with `u_t` and `u_{t−1}` (`u_{−1}` is the action applied
//! last), and the terminal terms are added at `t = H−1`. With stage functions `ℓ_t` (cost plus penalty),
//! `A_t = ∂f/∂z`, `B_t = ∂f/∂u` at `(z_t, u_t)` and `C_t = ∂r/∂z` at `z_t`,
//! reverse-mode differentiation (the discrete adjoint; Nocedal & Wright,
//! *Numerical Optimization*, 2nd ed., §8.2) gives, for `t = H−1, …, 0`,
//!
//! ```text
//! p_{t+1} = ∂ℓ_t/∂z_{t+1} + C_{t+1}ᵀ ∂ℓ_t/∂y_{t+1} + A_{t+1}ᵀ p_{t+2}     (no last term at t = H−1)
//! ∂L/∂u_t = ∂ℓ_t/∂u_t + ∂ℓ_{t+1}/∂u_t + B_tᵀ p_{t+1}
//! ```
//!
//! one Jacobian evaluation per step: the gradient costs about one rollout
//! whatever the number of actions.

use crate::Real;
use crate::error::ModelError;
use crate::model::WorldModel;
use crate::objective::{Objective, ObjectiveScratch, Stage, StageGradient};
use crate::planner::rollout::{self, Dims, Record, Start};

/// Summary of one rollout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rollout {
    /// Task cost `J` ([`rollout::sequence`], as the shield's trace).
    cost: Real,
    /// Summed violation of the buffered margins ([`rollout::sequence`]).
    violation: Real,
    /// Augmented-Lagrangian penalty (0 without multipliers).
    penalty: Real,
}

impl Rollout {
    /// No rollout yet: infinitely costly and infeasible.
    pub const NONE: Rollout = Rollout {
        cost: Real::INFINITY,
        violation: Real::INFINITY,
        penalty: 0.0,
    };

    /// Task cost `J`.
    pub fn cost(&self) -> Real {
        self.cost
    }

    /// Summed guardrail violation (0 when feasible).
    pub fn violation(&self) -> Real {
        self.violation
    }

    /// The augmented Lagrangian `J + penalty`.
    pub fn lagrangian(&self) -> Real {
        self.cost + self.penalty
    }
}

/// Multipliers `λ ≥ 0` (one per guardrail and step, `H×G`), penalty `ρ > 0` and
/// the slack `δ ≥ 0` of the PHR augmented Lagrangian for `m − δ ≥ 0`:
///
/// ```text
/// ψ(m; λ, ρ) = (1/(2ρ)) · (max(0, λ − ρ(m − δ))² − λ²)
/// ```
///
/// (Powell 1969, Hestenes 1969, Rockafellar 1973; Nocedal & Wright, 2nd ed.,
/// ch. 17). `ψ` is continuously differentiable with `∂ψ/∂m = −max(0, λ − ρ(m − δ))`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Multipliers {
    lambda: Vec<Real>,
    rho: Real,
    slack: Real,
}

impl Multipliers {
    pub fn new(len: usize) -> Self {
        Self {
            lambda: vec![0.0; len],
            rho: 1.0,
            slack: 0.0,
        }
    }

    /// `max(0, λ_i − ρ(m − δ))`, the multiplier estimate at margin `m`; `−∂ψ/∂m`.
    fn weight(&self, i: usize, m: Real) -> Real {
        let l = self.lambda.get(i).copied().unwrap_or(0.0);
        let w = (l - self.rho * (m - self.slack)).max(0.0);
        // An unbounded margin (a guardrail with nothing to check) exerts no force.
        if w.is_nan() { 0.0 } else { w }
    }

    /// `ψ(m; λ_i, ρ)`.
    fn penalty(&self, i: usize, m: Real) -> Real {
        let l = self.lambda.get(i).copied().unwrap_or(0.0);
        let w = self.weight(i, m);
        (w * w - l * l) / (2.0 * self.rho)
    }

    /// Starts a call: `λ = 0`, penalty `rho`, slack `slack`.
    pub fn reset(&mut self, rho: Real, slack: Real) {
        self.lambda.fill(0.0);
        self.rho = rho;
        self.slack = slack;
    }

    /// Multiplies the penalty `ρ` by `growth`.
    pub fn grow_penalty(&mut self, growth: Real) {
        self.rho *= growth;
    }

    /// First-order update `λ ← max(0, λ − ρ(m − δ))` (Nocedal & Wright,
    /// eq. 17.39 in its inequality form); returns the largest change.
    pub fn update(&mut self, margins: &[Real]) -> Real {
        let (rho, slack) = (self.rho, self.slack);
        let mut change: Real = 0.0;
        for (l, m) in self.lambda.iter_mut().zip(margins) {
            let w = (*l - rho * (m - slack)).max(0.0);
            // A non-finite margin leaves its multiplier where it was.
            let w = if w.is_finite() { w } else { *l };
            change = change.max((w - *l).abs());
            *l = w;
        }
        change
    }
}

/// Rollout buffers and Jacobians for one sequence, allocated once.
#[derive(Debug)]
pub(crate) struct Adjoint {
    h: usize,
    a: usize,
    d: usize,
    p: usize,
    g: usize,
    /// Latents `z_0 … z_H` (`(H+1)×D`).
    z: Vec<Real>,
    /// Readouts `y_1 … y_H` (`H×P`).
    y: Vec<Real>,
    /// Buffered margins `m_{t,k}` of `y_{t+1}` (`H×G`).
    margins: Vec<Real>,
    jac_a: Vec<Real>,
    jac_b: Vec<Real>,
    jac_c: Vec<Real>,
    costate: Vec<Real>,
    carry: Vec<Real>,
    gy: Vec<Real>,
    gz: Vec<Real>,
    gu_prev: Vec<Real>,
    dm: Vec<Real>,
    scratch: ObjectiveScratch,
}

impl Adjoint {
    /// Buffers for horizon `h`, `a` actions, latent size `d`, `p` readouts.
    pub fn new(h: usize, a: usize, d: usize, p: usize, objective: &Objective) -> Self {
        let g = objective.num_guardrails();
        Self {
            h,
            a,
            d,
            p,
            g,
            z: vec![0.0; (h + 1) * d],
            y: vec![0.0; h * p],
            margins: vec![0.0; h * g],
            jac_a: vec![0.0; d * d],
            jac_b: vec![0.0; d * a],
            jac_c: vec![0.0; p * d],
            costate: vec![0.0; d],
            carry: vec![0.0; d],
            gy: vec![0.0; p],
            gz: vec![0.0; d],
            gu_prev: vec![0.0; a],
            dm: vec![0.0; p],
            scratch: objective.scratch(),
        }
    }

    fn check(&self, what: &'static str, got: usize, expected: usize) -> Result<(), ModelError> {
        if got == expected {
            Ok(())
        } else {
            Err(ModelError::Shape {
                what,
                got,
                expected,
            })
        }
    }

    /// The buffered margins `m_{t,k}` of the last [`Self::forward`] (`H×G`).
    pub fn margins(&self) -> &[Real] {
        &self.margins
    }

    /// Rolls `u` (`H×A`) out from `start`, keeping the trajectory for
    /// [`Self::backward`]: the one-sequence rollout of [`rollout::sequence`],
    /// plus the penalty of the margins it records.
    pub fn forward<M: WorldModel + ?Sized>(
        &mut self,
        model: &mut M,
        objective: &Objective,
        start: Start<'_>,
        u: &[Real],
        mult: Option<&Multipliers>,
    ) -> Result<Rollout, ModelError> {
        let (h, a, d, p, g) = (self.h, self.a, self.d, self.p, self.g);
        self.check("z0", start.z0().len(), d)?;
        self.check("u_last", start.u_last().len(), a)?;
        self.check("actions", u.len(), h * a)?;
        let rec = Record::new(
            &mut self.z,
            &mut self.y,
            &mut self.margins,
            &mut self.scratch,
        );
        let dims = Dims::new(h, a, d, p);
        let score = rollout::sequence(model, objective, start, u, dims, rec)?;
        let mut out = Rollout {
            cost: score.cost(),
            violation: score.violation(),
            penalty: 0.0,
        };
        if let Some(mult) = mult {
            // Summed in the order of the margins: step by step, guardrail by
            // guardrail.
            for (i, mk) in self.margins[..h * g].iter().enumerate() {
                out.penalty += mult.penalty(i, *mk);
            }
        }
        if !out.penalty.is_finite() {
            out.penalty = Real::INFINITY;
        }
        Ok(out)
    }

    /// Writes `∂(J + penalty)/∂u` into `grad` (`H×A`), for the sequence `u`
    /// last passed to [`Self::forward`] with the same multipliers.
    pub fn backward<M: WorldModel + ?Sized>(
        &mut self,
        model: &mut M,
        objective: &Objective,
        u_last: &[Real],
        u: &[Real],
        mult: Option<&Multipliers>,
        grad: &mut [Real],
    ) -> Result<(), ModelError> {
        let (h, a, d, p, g) = (self.h, self.a, self.d, self.p, self.g);
        self.check("u_last", u_last.len(), a)?;
        self.check("actions", u.len(), h * a)?;
        self.check("gradient", grad.len(), h * a)?;
        grad.fill(0.0);
        self.carry.fill(0.0);
        for t in (0..h).rev() {
            let z_t = &self.z[t * d..(t + 1) * d];
            let z_next = &self.z[(t + 1) * d..(t + 2) * d];
            let y = &self.y[t * p..(t + 1) * p];
            let u_t = &u[t * a..(t + 1) * a];
            let u_prev = if t == 0 {
                u_last
            } else {
                &u[(t - 1) * a..t * a]
            };
            self.gy.fill(0.0);
            self.gz.fill(0.0);
            self.gu_prev.fill(0.0);
            objective.add_stage_gradient(
                Stage {
                    y,
                    z: z_next,
                    u: u_t,
                    u_prev,
                    terminal: t + 1 == h,
                },
                &mut self.scratch,
                StageGradient {
                    gy: &mut self.gy,
                    gz: &mut self.gz,
                    gu: &mut grad[t * a..(t + 1) * a],
                    gu_prev: &mut self.gu_prev,
                },
            );
            if t > 0 {
                for (o, x) in grad[(t - 1) * a..t * a].iter_mut().zip(&self.gu_prev) {
                    *o += x;
                }
            }
            if let Some(mult) = mult {
                for k in 0..g {
                    let w = mult.weight(t * g + k, self.margins[t * g + k]);
                    if w > 0.0 {
                        objective.margin_gradient_with(k, y, &mut self.scratch, &mut self.dm);
                        for (o, x) in self.gy.iter_mut().zip(&self.dm) {
                            *o -= w * x;
                        }
                    }
                }
            }
            // p_{t+1} = ∂ℓ/∂z + Cᵀ ∂ℓ/∂y + A_{t+1}ᵀ p_{t+2}
            model.readout_jacobian(z_next, &mut self.jac_c)?;
            for j in 0..d {
                let mut s = self.gz[j] + self.carry[j];
                for i in 0..p {
                    s += self.jac_c[i * d + j] * self.gy[i];
                }
                self.costate[j] = s;
            }
            model.predict_jacobians(z_t, u_t, &mut self.jac_a, &mut self.jac_b)?;
            for (k, o) in grad[t * a..(t + 1) * a].iter_mut().enumerate() {
                for i in 0..d {
                    *o += self.jac_b[i * a + k] * self.costate[i];
                }
            }
            for j in 0..d {
                let mut s = 0.0;
                for i in 0..d {
                    s += self.jac_a[i * d + j] * self.costate[i];
                }
                self.carry[j] = s;
            }
        }
        Ok(())
    }

    /// The cost and its gradient in one call: `J + penalty` and `∂/∂u` into
    /// `grad`. Without multipliers the cost is the shield's ([`rollout::sequence`]).
    pub fn cost_gradient<M: WorldModel + ?Sized>(
        &mut self,
        model: &mut M,
        objective: &Objective,
        start: Start<'_>,
        u: &[Real],
        mult: Option<&Multipliers>,
        grad: &mut [Real],
    ) -> Result<Rollout, ModelError> {
        let roll = self.forward(model, objective, start, u, mult)?;
        self.backward(model, objective, start.u_last(), u, mult, grad)?;
        Ok(roll)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{PointMass, Unicycle};
    use crate::objective::{
        BodySpec, GuardrailSpec, Norm, ObjectiveSpec, Phase, Residual, Shape, TermSpec,
    };
    use crate::planner::PlannerConfig;
    use crate::planner::core::Core;
    use crate::rng::Rng;

    fn term(name: &str, residual: Residual, norm: Norm, weight: Real, phase: Phase) -> TermSpec {
        TermSpec {
            name: name.into(),
            residual,
            norm,
            weight,
            phase,
        }
    }

    fn readout(names: &[&str], target: &[Real]) -> Residual {
        Residual::Readout {
            readouts: names.iter().map(|s| (*s).to_string()).collect(),
            target: target.to_vec(),
        }
    }

    /// Compares `cost_gradient` with central differences of `Core::trace`
    /// (task cost) and of `forward` (augmented Lagrangian), over random
    /// sequences, observations and multipliers.
    fn check<M: WorldModel + Clone>(model: M, spec: &ObjectiveSpec, obs_scale: Real, seed: u64) {
        let ms = model.spec().clone();
        let objective = spec.compile(&ms).unwrap();
        let h = 7;
        let config = PlannerConfig {
            horizon: h,
            samples: 4,
            ..PlannerConfig::default()
        };
        let mut core = Core::new(model.clone(), objective.clone(), config).unwrap();
        let (a, d, p) = (ms.action_dim(), ms.latent_dim, ms.readout_dim());
        let g = objective.num_guardrails();
        let mut adj = Adjoint::new(h, a, d, p, &objective);
        let mut model = model;
        let mut rng = Rng::new(seed);
        for case in 0..4 {
            let obs: Vec<Real> = (0..ms.obs_dim())
                .map(|_| obs_scale * rng.range(-1.0, 1.0))
                .collect();
            core.begin(&obs).unwrap();
            let mut u = vec![0.0; h * a];
            for (i, x) in u.iter_mut().enumerate() {
                let k = i % a;
                *x = rng.range(ms.action_lower[k], ms.action_upper[k]);
            }
            for (k, x) in core.state_mut().u_last_mut().iter_mut().enumerate() {
                *x = rng.range(ms.action_lower[k], ms.action_upper[k]);
            }
            let u_last = core.state().start().u_last().to_vec();
            let z0 = core.state().start().z0().to_vec();
            let mut mult = Multipliers::new(h * g);
            mult.rho = rng.range(0.5, 20.0);
            mult.slack = 1e-3;
            for l in &mut mult.lambda {
                *l = if rng.uniform() < 0.5 {
                    0.0
                } else {
                    rng.range(0.0, 5.0)
                };
            }
            for with_mult in [false, true] {
                let mm = with_mult.then_some(&mult);
                let mut grad = vec![0.0; h * a];
                let roll = adj
                    .cost_gradient(
                        &mut model,
                        &objective,
                        Start::new(&z0, &u_last),
                        &u,
                        mm,
                        &mut grad,
                    )
                    .unwrap();
                let (_, traced) = core.trace(&u).unwrap();
                assert!(
                    (roll.cost - traced).abs() <= 1e-9 * traced.abs().max(1.0),
                    "rollout cost {} vs Core::trace {traced}",
                    roll.cost
                );
                let f = |uu: &[Real], core: &mut Core<M>, adj: &mut Adjoint, model: &mut M| {
                    if with_mult {
                        adj.forward(model, &objective, Start::new(&z0, &u_last), uu, mm)
                            .unwrap()
                            .lagrangian()
                    } else {
                        core.trace(uu).unwrap().1
                    }
                };
                for i in 0..h * a {
                    let step = 1e-6;
                    let mut up = u.clone();
                    up[i] += step;
                    let mut um = u.clone();
                    um[i] -= step;
                    let fd = (f(&up, &mut core, &mut adj, &mut model)
                        - f(&um, &mut core, &mut adj, &mut model))
                        / (2.0 * step);
                    let tol = 1e-5 * fd.abs().max(grad[i].abs()).max(1.0);
                    assert!(
                        (fd - grad[i]).abs() <= tol,
                        "case {case}, multipliers {with_mult}, u[{i}]: adjoint {} vs central difference {fd}",
                        grad[i]
                    );
                }
            }
        }
    }

    #[test]
    fn cost_gradient_matches_finite_differences_point_mass() {
        let spec = ObjectiveSpec {
            terms: vec![
                term(
                    "goal",
                    readout(&["pos.x", "pos.y"], &[1.0, -0.5]),
                    Norm::Quadratic,
                    1.0,
                    Phase::Both,
                ),
                term(
                    "speed",
                    readout(&["speed"], &[0.3]),
                    Norm::Huber { delta: 0.2 },
                    0.5,
                    Phase::Running,
                ),
                term(
                    "effort",
                    Residual::Action { target: vec![] },
                    Norm::SmoothAbs { eps: 0.1 },
                    0.1,
                    Phase::Running,
                ),
                term(
                    "smooth",
                    Residual::ActionRate,
                    Norm::Quadratic,
                    0.2,
                    Phase::Running,
                ),
                term(
                    "latent",
                    Residual::Latent {
                        target: vec![0.5, 0.5, 0.0, 0.0],
                    },
                    Norm::L2 { eps: 0.1 },
                    0.3,
                    Phase::Terminal,
                ),
            ],
            guardrails: vec![GuardrailSpec::KeepOut {
                name: "ball".into(),
                margin: 0.05,
                shape: Shape::Sphere {
                    center: [0.4, 0.1, 0.0],
                    radius: 0.3,
                },
                bodies: vec![],
            }],
            bodies: vec![BodySpec {
                name: "p".into(),
                points: vec!["pos".into()],
                radius: 0.1,
            }],
        };
        for seed in 0..3 {
            check(PointMass::new(2, 0.1, 2.0).unwrap(), &spec, 0.8, seed);
        }
    }

    #[test]
    fn cost_gradient_matches_finite_differences_unicycle() {
        let spec = ObjectiveSpec {
            terms: vec![
                term(
                    "goal",
                    readout(&["base.x", "base.y"], &[1.5, 0.5]),
                    Norm::Quadratic,
                    1.0,
                    Phase::Running,
                ),
                term(
                    "face",
                    readout(&["heading"], &[0.7]),
                    Norm::Quadratic,
                    2.0,
                    Phase::Terminal,
                ),
                term(
                    "effort",
                    Residual::Action { target: vec![] },
                    Norm::Quadratic,
                    0.05,
                    Phase::Running,
                ),
                term(
                    "smooth",
                    Residual::ActionRate,
                    Norm::Quadratic,
                    0.1,
                    Phase::Running,
                ),
            ],
            guardrails: vec![
                GuardrailSpec::KeepOut {
                    name: "post".into(),
                    margin: 0.0,
                    shape: Shape::Sphere {
                        center: [0.6, 0.2, 0.0],
                        radius: 0.25,
                    },
                    bodies: vec![],
                },
                GuardrailSpec::Speed {
                    name: "slow".into(),
                    margin: 0.0,
                    readouts: vec!["v".into()],
                    max: 0.6,
                },
            ],
            bodies: vec![BodySpec {
                name: "base".into(),
                points: vec!["base".into()],
                radius: 0.2,
            }],
        };
        for seed in 10..13 {
            check(Unicycle::new(0.1, 1.0, 2.0, 0.2).unwrap(), &spec, 0.5, seed);
        }
    }
}
