//! What the robot believed beside what was: the readouts its world model
//! decoded from the observation ([`telic::Plan::decoded`]) paired with the
//! scene's true readouts of the same names, and the scene's moving parts
//! drawn where the model believed them.

use telic::objective::Shape;
use telic::{ModelSpec, Real};

/// How a believed yaw is read from the readouts.
#[derive(Clone, Copy, Debug)]
enum Yaw {
    /// `<name>.cos` and `<name>.sin` (the push box's).
    CosSin(usize, usize),
    /// `<name>.yaw`, in radians.
    Angle(usize),
}

/// A moving part that the model's readouts place: `<name>.x`, `<name>.y`
/// and optionally its yaw.
#[derive(Clone, Debug)]
struct Placed {
    name: String,
    x: usize,
    y: usize,
    yaw: Option<Yaw>,
}

/// The pairing of a model's readouts with the truth, made once per episode.
#[derive(Clone, Debug, Default)]
pub(super) struct Belief {
    /// Names of the readouts both the model and the truth have.
    names: Vec<String>,
    /// Their indices in the model's readouts and in the true ones.
    model_index: Vec<usize>,
    truth_index: Vec<usize>,
    placed: Vec<Placed>,
}

impl Belief {
    /// Pairs `model`'s readouts with `truth` (the scene's true readout
    /// names) and finds which of `visuals` (the scene's moving parts) the
    /// model's readouts place.
    pub(super) fn new(model: &ModelSpec, truth: &[String], visuals: &[(String, Shape)]) -> Self {
        let mut out = Self::default();
        for (i, name) in model.readouts.iter().enumerate() {
            if let Some(k) = truth.iter().position(|t| t == name) {
                out.names.push(name.clone());
                out.model_index.push(i);
                out.truth_index.push(k);
            }
        }
        let find = |name: &str, part: &str| model.readout_index(&format!("{name}.{part}"));
        for (name, _) in visuals {
            let (Some(x), Some(y)) = (find(name, "x"), find(name, "y")) else {
                continue;
            };
            let yaw = match (find(name, "cos"), find(name, "sin"), find(name, "yaw")) {
                (Some(c), Some(s), _) => Some(Yaw::CosSin(c, s)),
                (_, _, Some(a)) => Some(Yaw::Angle(a)),
                _ => None,
            };
            out.placed.push(Placed {
                name: name.clone(),
                x,
                y,
                yaw,
            });
        }
        out
    }

    /// Names of the paired readouts, the order of [`Belief::believed`] and
    /// [`Belief::true_values`].
    pub(super) fn names(&self) -> &[String] {
        &self.names
    }

    /// The paired readouts' values in the model's `decoded` readouts (empty
    /// when `decoded` is too short: a plan of another model).
    pub(super) fn believed(&self, decoded: &[Real]) -> Vec<Real> {
        pick(decoded, &self.model_index)
    }

    /// The paired readouts' values in the scene's true readouts `truth`.
    pub(super) fn true_values(&self, truth: &[Real]) -> Vec<Real> {
        pick(truth, &self.truth_index)
    }

    /// The moving parts in `visuals` that the model places, moved to where
    /// `decoded` says they are (height and size kept; turned to the
    /// believed yaw when the model reads one out).
    pub(super) fn shapes(
        &self,
        decoded: &[Real],
        visuals: &[(String, Shape)],
    ) -> Vec<(String, Shape)> {
        self.placed
            .iter()
            .filter_map(|p| {
                let (_, shape) = visuals.iter().find(|(n, _)| *n == p.name)?;
                let x = *decoded.get(p.x)?;
                let y = *decoded.get(p.y)?;
                let yaw = match p.yaw {
                    Some(Yaw::CosSin(c, s)) => Some(decoded.get(s)?.atan2(*decoded.get(c)?)),
                    Some(Yaw::Angle(a)) => Some(*decoded.get(a)?),
                    None => None,
                };
                [x, y]
                    .iter()
                    .chain(&yaw)
                    .all(|v| v.is_finite())
                    .then(|| (p.name.clone(), placed(shape, x, y, yaw)))
            })
            .collect()
    }
}

/// `values` at `indices`; empty when one is out of range.
fn pick(values: &[Real], indices: &[usize]) -> Vec<Real> {
    indices
        .iter()
        .map(|&i| values.get(i).copied())
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default()
}

/// `shape` moved so that its centre is at `(x, y)` (height kept), turned to
/// `yaw` when given.
fn placed(shape: &Shape, x: Real, y: Real, yaw: Option<Real>) -> Shape {
    let mut out = shape.clone();
    match &mut out {
        Shape::Box { center, rpy, .. } => {
            center[0] = x;
            center[1] = y;
            if let Some(yaw) = yaw {
                rpy[2] = yaw;
            }
        }
        Shape::Sphere { center, .. } | Shape::Cylinder { center, .. } => {
            center[0] = x;
            center[1] = y;
        }
        Shape::Capsule { a, b, .. } => {
            let (dx, dy) = (x - 0.5 * (a[0] + b[0]), y - 0.5 * (a[1] + b[1]));
            for p in [a, b] {
                p[0] += dx;
                p[1] += dy;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec(readouts: &[&str]) -> ModelSpec {
        let mut spec = telic::model::Pusher::new(&Default::default())
            .map(|m| telic::WorldModel::spec(&m).clone())
            .unwrap();
        spec.readouts = readouts.iter().map(|s| (*s).to_string()).collect();
        spec
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn readouts_pair_by_name_and_parts_move_to_the_believed_pose() {
        let model = spec(&["box.x", "box.y", "box.cos", "box.sin", "latent_only"]);
        let truth = names(&["pusher.x", "box.y", "box.x", "box.cos", "box.sin"]);
        let box_shape = Shape::Box {
            center: [0.1, 0.2, 0.05],
            half_extents: [0.05, 0.05, 0.05],
            rpy: [0.0; 3],
        };
        let pusher = Shape::Sphere {
            center: [0.0, 0.0, 0.01],
            radius: 0.03,
        };
        let visuals = vec![
            ("pusher".to_string(), pusher),
            ("box".to_string(), box_shape),
        ];
        let b = Belief::new(&model, &truth, &visuals);
        assert_eq!(b.names(), &names(&["box.x", "box.y", "box.cos", "box.sin"]));
        let decoded = [0.3, -0.1, 0.0, 1.0, 7.0];
        assert_eq!(b.believed(&decoded), vec![0.3, -0.1, 0.0, 1.0]);
        assert_eq!(
            b.true_values(&[9.0, 2.0, 1.0, 0.5, 0.4]),
            vec![1.0, 2.0, 0.5, 0.4]
        );
        // Only the box is placed by the model's readouts.
        let shapes = b.shapes(&decoded, &visuals);
        assert_eq!(shapes.len(), 1);
        let Shape::Box { center, rpy, .. } = &shapes[0].1 else {
            panic!("{shapes:?}");
        };
        assert_eq!(shapes[0].0, "box");
        assert_eq!(center, &[0.3, -0.1, 0.05]);
        assert!((rpy[2] - std::f64::consts::FRAC_PI_2 as Real).abs() < 1e-12);
        // A short or non-finite belief draws nothing and pairs nothing.
        assert!(b.believed(&decoded[..2]).is_empty());
        assert!(b.shapes(&[Real::NAN, 0.0, 1.0, 0.0], &visuals).is_empty());
    }
}
