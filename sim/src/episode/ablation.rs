//! A world model without its error margins, for the `margins` ablation
//! (`[episode] ablate = "margins"`): everything it computes is the wrapped
//! model's, but it claims no [`WorldModel::readout_errors`], so the planner
//! takes its readouts as exact.

use telic::{ModelError, ModelSpec, Real, WorldModel};

/// The wrapped model, without its readout errors.
pub struct WithoutErrorMargins(pub Box<dyn WorldModel>);

impl WorldModel for WithoutErrorMargins {
    fn spec(&self) -> &ModelSpec {
        self.0.spec()
    }

    fn encode(&mut self, obs: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
        self.0.encode(obs, z)
    }

    fn predict(&mut self, z: &[Real], u: &[Real], z_next: &mut [Real]) -> Result<(), ModelError> {
        self.0.predict(z, u, z_next)
    }

    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        self.0.readout(z, y)
    }

    fn step(
        &mut self,
        z: &[Real],
        y: &[Real],
        u: &[Real],
        z_next: &mut [Real],
        y_next: &mut [Real],
    ) -> Result<(), ModelError> {
        self.0.step(z, y, u, z_next, y_next)
    }

    fn readout_errors(&self) -> Option<Vec<Vec<Real>>> {
        None
    }

    fn fork(&self) -> Option<Box<dyn WorldModel>> {
        self.0
            .fork()
            .map(|m| Box::new(WithoutErrorMargins(m)) as Box<dyn WorldModel>)
    }

    fn predict_jacobians(
        &mut self,
        z: &[Real],
        u: &[Real],
        a: &mut [Real],
        b: &mut [Real],
    ) -> Result<(), ModelError> {
        self.0.predict_jacobians(z, u, a, b)
    }

    fn readout_jacobian(&mut self, z: &[Real], c: &mut [Real]) -> Result<(), ModelError> {
        self.0.readout_jacobian(z, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telic::model::PointMass;

    /// A point mass that claims error margins, as a learned bundle does.
    struct Claims(PointMass);

    impl WorldModel for Claims {
        fn spec(&self) -> &ModelSpec {
            self.0.spec()
        }
        fn encode(&mut self, obs: &[Real], z: &mut [Real]) -> Result<(), ModelError> {
            self.0.encode(obs, z)
        }
        fn predict(
            &mut self,
            z: &[Real],
            u: &[Real],
            z_next: &mut [Real],
        ) -> Result<(), ModelError> {
            self.0.predict(z, u, z_next)
        }
        fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
            self.0.readout(z, y)
        }
        fn readout_errors(&self) -> Option<Vec<Vec<Real>>> {
            Some(vec![vec![0.5; 3]; self.spec().readouts.len()])
        }
        fn fork(&self) -> Option<Box<dyn WorldModel>> {
            Some(Box::new(Claims(self.0.clone())))
        }
    }

    #[test]
    fn the_margins_are_gone_and_nothing_else_changes() {
        let mut plain = Claims(PointMass::new(2, 0.1, 1.0).unwrap());
        let mut ablated =
            WithoutErrorMargins(Box::new(Claims(PointMass::new(2, 0.1, 1.0).unwrap())));
        assert!(plain.readout_errors().is_some());
        assert!(ablated.readout_errors().is_none());
        assert!(ablated.fork().unwrap().readout_errors().is_none());
        assert_eq!(ablated.spec(), plain.spec());
        let (obs, u) = ([0.1, -0.2, 0.3, 0.0], [0.5, -1.0]);
        let (mut z0, mut z1) = ([0.0; 4], [0.0; 4]);
        plain.encode(&obs, &mut z0).unwrap();
        ablated.encode(&obs, &mut z1).unwrap();
        assert_eq!(z0, z1);
        let (mut n0, mut n1) = ([0.0; 4], [0.0; 4]);
        plain.predict(&z0, &u, &mut n0).unwrap();
        ablated.predict(&z1, &u, &mut n1).unwrap();
        assert_eq!(n0, n1);
        let p = plain.spec().readouts.len();
        let (mut y0, mut y1) = (vec![0.0; p], vec![0.0; p]);
        plain.readout(&n0, &mut y0).unwrap();
        ablated.readout(&n1, &mut y1).unwrap();
        assert_eq!(y0, y1);
    }
}
