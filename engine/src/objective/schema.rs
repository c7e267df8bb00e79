//! What an objective is compiled against: the names of the readouts it may
//! read, and the latent and action sizes. A planner's schema is its model's
//! ([`ReadoutSchema::from`] a [`ModelSpec`]); a validator's is the scene's
//! ground truth ([`ReadoutSchema::truth`]). Both resolve the same specs by
//! the same rules, including the one that turns a point name into readouts.

use super::error::ObjectiveError;
use crate::Real;
use crate::model::ModelSpec;
use nalgebra::Vector3;

/// The readout names, latent size and action count an objective is
/// resolved against, with the name of their source for error messages.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadoutSchema {
    source: String,
    readouts: Vec<String>,
    latent_dim: usize,
    actions: usize,
}

impl From<&ModelSpec> for ReadoutSchema {
    fn from(model: &ModelSpec) -> Self {
        Self {
            source: model.name.clone(),
            readouts: model.readouts.clone(),
            latent_dim: model.latent_dim,
            actions: model.action_dim(),
        }
    }
}

impl ReadoutSchema {
    /// The schema of a scene's ground truth: the readouts it measures, named
    /// `readouts`, for a robot of `actions` actions. Errors call it model
    /// `ground truth`. It has a latent of one value, which no term can use:
    /// latent goals have no ground truth.
    #[must_use]
    pub fn truth(readouts: &[String], actions: usize) -> Self {
        Self {
            source: "ground truth".into(),
            readouts: readouts.to_vec(),
            latent_dim: 1,
            actions,
        }
    }

    /// The name of the model (or `ground truth`) the readouts come from.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The readout names, in readout order.
    #[must_use]
    pub fn readouts(&self) -> &[String] {
        &self.readouts
    }

    /// Readout size `P`.
    #[must_use]
    pub fn readout_dim(&self) -> usize {
        self.readouts.len()
    }

    /// Latent size `D`.
    #[must_use]
    pub fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    /// Action size `A`.
    #[must_use]
    pub fn action_dim(&self) -> usize {
        self.actions
    }

    /// Index of the readout called `name`.
    #[must_use]
    pub fn index(&self, name: &str) -> Option<usize> {
        self.readouts.iter().position(|r| r == name)
    }

    /// Index of the readout called `name`; the error lists the readouts there are.
    pub fn readout(&self, name: &str) -> Result<usize, ObjectiveError> {
        self.index(name)
            .ok_or_else(|| ObjectiveError::UnknownReadout {
                readout: name.to_string(),
                model: self.source.clone(),
                available: self.readouts.clone(),
            })
    }

    /// The point called `name`: readouts `name.x` and `name.y` must exist,
    /// `name.z` may. The error names the first of `x`, `y` that is missing.
    pub fn point(&self, name: &str) -> Result<Point, ObjectiveError> {
        Ok(Point {
            x: self.readout(&format!("{name}.x"))?,
            y: self.readout(&format!("{name}.y"))?,
            z: self.index(&format!("{name}.z")),
        })
    }

    /// [`ReadoutSchema::point`], `None` where it is an error.
    #[must_use]
    pub fn find_point(&self, name: &str) -> Option<Point> {
        self.point(name).ok()
    }
}

/// A point of the robot located by readouts: `<name>.x`, `<name>.y` and,
/// when the readouts have it, `<name>.z` (else the point is at `z = 0`).
/// Resolve one with [`ReadoutSchema::point`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    x: usize,
    y: usize,
    z: Option<usize>,
}

impl Point {
    /// Whether a readout gives the point's height (else it is at `z = 0`).
    #[must_use]
    pub fn has_z(&self) -> bool {
        self.z.is_some()
    }

    /// The point's position in readouts `y`; `None` when `y` is too short
    /// for its readouts.
    #[must_use]
    pub fn position(&self, y: &[Real]) -> Option<[Real; 3]> {
        let z = match self.z {
            Some(i) => *y.get(i)?,
            None => 0.0,
        };
        Some([*y.get(self.x)?, *y.get(self.y)?, z])
    }

    /// The readout indices of `x`, `y` and (if any) `z`.
    pub(crate) fn indices(&self) -> (usize, usize, Option<usize>) {
        (self.x, self.y, self.z)
    }

    /// Bound on the point's position error given per-readout errors `e`.
    pub(crate) fn error(&self, e: &[Real]) -> Real {
        let z = self.z.map_or(0.0, |i| e[i] * e[i]);
        (e[self.x] * e[self.x] + e[self.y] * e[self.y] + z).sqrt()
    }

    /// The point's position in readouts `y`, which the objective has
    /// checked are as wide as the schema it was resolved against.
    pub(crate) fn get(&self, y: &[Real]) -> Vector3<Real> {
        Vector3::new(y[self.x], y[self.y], self.z.map_or(0.0, |i| y[i]))
    }
}
