//! The rollout pool: threads do not change plans, jobs not started are taken
//! back, a dying worker is reported.

use super::*;

#[test]
fn rollout_threads_do_not_change_plans() {
    // Samples split unevenly between 1, 2 and 3 threads; kept rollouts too.
    for kind in KINDS {
        let cfg = |threads| PlannerConfig {
            samples: 203,
            keep_rollouts: 7,
            threads,
            ..config(kind, 5)
        };
        let mut one = planner(REACH, cfg(1));
        let reference = run(&mut *one, [0.0; 4], 5);
        let kept = one.plan(&[0.1, 0.0, 0.0, 0.0]).unwrap().rollouts.clone();
        for threads in [2, 3] {
            let mut p = planner(REACH, cfg(threads));
            assert_eq!(
                run(&mut *p, [0.0; 4], 5),
                reference,
                "{kind:?} on {threads} threads"
            );
            let again = p.plan(&[0.1, 0.0, 0.0, 0.0]).unwrap();
            assert_eq!(again.rollouts, kept, "{kind:?} on {threads} threads");
        }
    }
}

#[test]
fn jobs_of_workers_that_do_not_start_are_rolled_out_by_the_planner() {
    let core = |threads| {
        let model = point_mass();
        let obj = objective(REACH, model.spec());
        let cfg = PlannerConfig {
            samples: 203,
            threads,
            ..config(PlannerKind::Mppi, 3)
        };
        super::core::Core::new(model, obj, cfg).unwrap()
    };
    let mut one = core(1);
    let mut stalled = core(3);
    assert!(stalled.stall_rollout_workers());
    let bits = |v: &[Real]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mean = vec![0.1; one.sizes().0 * one.sizes().1];
    let std = one.sigma().to_vec();
    // Drawn by the workers' shares, then read from the shared sequences;
    // every time, each job is sent, not started, and taken back.
    for draw in [true, false, true] {
        if draw {
            one.sample_and_evaluate(1, 203, &mean, &std).unwrap();
            stalled.sample_and_evaluate(1, 203, &mean, &std).unwrap();
        } else {
            one.evaluate(203).unwrap();
            stalled.evaluate(203).unwrap();
        }
        assert_eq!(bits(stalled.seqs()), bits(one.seqs()));
        assert_eq!(bits(stalled.costs()), bits(one.costs()));
        assert_eq!(bits(stalled.violations()), bits(one.violations()));
    }
}

/// A point mass whose copies for rollout workers panic once `doom` is set.
#[derive(Debug)]
struct Mortal {
    inner: PointMass,
    fork: bool,
    doom: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl WorldModel for Mortal {
    fn spec(&self) -> &ModelSpec {
        self.inner.spec()
    }
    fn fork(&self) -> Option<Box<dyn WorldModel>> {
        Some(Box::new(Mortal {
            inner: self.inner.clone(),
            fork: true,
            doom: self.doom.clone(),
        }))
    }
    fn encode(&mut self, o: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
        self.inner.encode(o, z)
    }
    fn predict(&mut self, z: &[Real], u: &[Real], n: &mut [Real]) -> Result<(), ModelError> {
        assert!(
            !(self.fork && self.doom.load(std::sync::atomic::Ordering::SeqCst)),
            "the rollout worker's model fails (on purpose)"
        );
        self.inner.predict(z, u, n)
    }
    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        self.inner.readout(z, y)
    }
}

#[test]
fn a_rollout_worker_that_dies_is_reported_and_planning_goes_on() {
    let doom = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let model = Mortal {
        inner: point_mass(),
        fork: false,
        doom: doom.clone(),
    };
    let obj = objective(REACH, model.spec());
    let cfg = PlannerConfig {
        samples: 256,
        threads: 2,
        ..config(PlannerKind::Mppi, 0)
    };
    let mut p = Mppi::new(model, obj, cfg).unwrap();
    // The planner's thread waits for the worker's job instead of taking it
    // back when the worker has not started it (as on a loaded machine), so
    // the worker's model is called on every plan.
    assert!(p.core_mut().never_take_back_jobs());
    assert!(p.plan(&[0.0; 4]).unwrap().status.is_feasible());
    doom.store(true, std::sync::atomic::Ordering::SeqCst);
    match p.plan(&[0.0; 4]) {
        Err(PlanError::Model(ModelError::Backend(msg))) => {
            assert!(msg.contains("rollout worker"), "{msg}");
        }
        other => panic!("expected the worker's failure, got {other:?}"),
    }
    // The planner's own thread rolls out from now on.
    for _ in 0..3 {
        let plan = p.plan(&[0.0; 4]).unwrap();
        assert!(plan.status.is_feasible() && plan.action[0] > 0.0);
    }
}

#[test]
fn threads_out_of_range_are_refused() {
    for threads in [0, 65] {
        let cfg = PlannerConfig {
            threads,
            ..Default::default()
        };
        let err = cfg.validate().unwrap_err();
        assert!(
            err.contains("planner.threads") && err.contains("1..=64"),
            "{err}"
        );
    }
}
