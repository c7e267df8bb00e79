//! The exploration policy of one collected episode: which policy, and its
//! colored noise along the episode, all drawn from the episode's seed.

use super::{CollectConfig, Policy};
use telic::rng::{ColoredNoise, Rng};
use telic::{ModelSpec, Real};

/// Salt that keeps the exploration stream apart from the scene's own use of the seed.
const POLICY_SALT: u64 = 0xC011_EC75_EED0_0001;

/// An episode's policy and noise, drawn up front for all its steps.
pub(super) struct Exploration {
    policy: Policy,
    /// ε: one colored sequence per action, `steps` long.
    eps: Vec<Real>,
    steps: usize,
    /// Middle of each action's bounds.
    mid: Vec<Real>,
    /// Half range of each action's bounds.
    half: Vec<Real>,
}

impl Exploration {
    /// Draws the policy and noise of the episode of `seed`, `steps` control
    /// steps of actions laid out as `spec`'s, with the mix of `cfg`.
    pub(super) fn draw(cfg: &CollectConfig, spec: &ModelSpec, seed: u64, steps: usize) -> Self {
        let mut rng = Rng::new(seed ^ POLICY_SALT);
        let policy = if rng.uniform() < cfg.planner_fraction {
            Policy::Planner {
                noise: rng.range(0.0, cfg.planner_noise),
            }
        } else {
            Policy::Random {
                scale: rng.range(cfg.random_scale[0], cfg.random_scale[1]),
            }
        };
        let mut eps = vec![0.0; spec.action_dim() * steps];
        let mut colored = ColoredNoise::new(steps, cfg.noise_beta);
        for row in eps.chunks_mut(steps) {
            colored.sample(&mut rng, row);
        }
        let mid: Vec<Real> = (spec.action_lower.iter().zip(&spec.action_upper))
            .map(|(lo, hi)| 0.5 * (lo + hi))
            .collect();
        let half: Vec<Real> = (spec.action_lower.iter().zip(&spec.action_upper))
            .map(|(lo, hi)| 0.5 * (hi - lo))
            .collect();
        Self {
            policy,
            eps,
            steps,
            mid,
            half,
        }
    }

    /// The policy drawn.
    pub(super) fn policy(&self) -> Policy {
        self.policy
    }

    /// Writes the (unclamped) action of step `t` into `u`: the planner's
    /// action `base` plus noise, or noise around the middle of the bounds.
    pub(super) fn action(&self, t: usize, base: Option<&[Real]>, u: &mut [Real]) {
        for (j, uj) in u.iter_mut().enumerate() {
            let e = self.eps.get(j * self.steps + t).copied().unwrap_or(0.0);
            let (m, h) = (
                self.mid.get(j).copied().unwrap_or(0.0),
                self.half.get(j).copied().unwrap_or(0.0),
            );
            *uj = match self.policy {
                Policy::Planner { noise } => {
                    let b = base.and_then(|b| b.get(j)).copied();
                    b.unwrap_or(m) + noise * h * e
                }
                Policy::Random { scale } => m + h * (scale * e).clamp(-1.0, 1.0),
            };
        }
    }
}
