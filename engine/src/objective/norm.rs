//! Norms that turn a residual vector into a non-negative cost.

use crate::Real;
use crate::limits::num;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// How a residual vector `r` becomes a scalar cost.
///
/// Written as a table, `{ kind = "huber", delta = 0.5 }`, or, for the norms
/// whose parameters all have defaults, by name alone: `"quadratic"`, `"l1"`
/// and `"l2"` (`eps = 0`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Norm {
    /// `Σ rᵢ²` (the default).
    #[default]
    Quadratic,
    /// `Σ |rᵢ|`.
    L1,
    /// `Σ (√(rᵢ² + ε²) − ε)`: L1 far away, quadratic near zero.
    SmoothAbs {
        /// Width of the quadratic region, `ε > 0`.
        eps: Real,
    },
    /// `√(Σ rᵢ² + ε²) − ε`: the Euclidean distance, smoothed at zero.
    L2 {
        /// Smoothing, `ε ≥ 0`.
        #[serde(default)]
        eps: Real,
    },
    /// Huber: `½rᵢ²` for `|rᵢ| ≤ δ`, `δ(|rᵢ| − ½δ)` beyond, summed.
    Huber {
        /// Threshold `δ > 0`.
        delta: Real,
    },
}

/// How a [`Norm`] table is read: unit variants of internally tagged enums ignore
/// unknown keys in serde (serde-rs/serde#2123), empty struct variants do not.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum NormData {
    Quadratic {},
    L1 {},
    SmoothAbs {
        eps: Real,
    },
    L2 {
        #[serde(default)]
        eps: Real,
    },
    Huber {
        delta: Real,
    },
}

impl From<NormData> for Norm {
    fn from(d: NormData) -> Self {
        match d {
            NormData::Quadratic {} => Norm::Quadratic,
            NormData::L1 {} => Norm::L1,
            NormData::SmoothAbs { eps } => Norm::SmoothAbs { eps },
            NormData::L2 { eps } => Norm::L2 { eps },
            NormData::Huber { delta } => Norm::Huber { delta },
        }
    }
}

/// The names [`Norm`] is read from.
const NAMES: &[&str] = &["quadratic", "l1", "smooth_abs", "l2", "huber"];

impl<'de> Deserialize<'de> for Norm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NormVisitor)
    }
}

/// Reads a [`Norm`] from its name or from its table.
struct NormVisitor;

impl<'de> Visitor<'de> for NormVisitor {
    type Value = Norm;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "a norm: \"quadratic\", \"l1\" or \"l2\", or a table with its kind and \
             parameters such as { kind = \"huber\", delta = 0.5 }",
        )
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Norm, E> {
        match name {
            "quadratic" => Ok(Norm::Quadratic),
            "l1" => Ok(Norm::L1),
            "l2" => Ok(Norm::L2 { eps: 0.0 }),
            "smooth_abs" => Err(E::custom(
                "norm \"smooth_abs\" needs its width: write { kind = \"smooth_abs\", eps = 0.01 }",
            )),
            "huber" => Err(E::custom(
                "norm \"huber\" needs its threshold: write { kind = \"huber\", delta = 0.5 }",
            )),
            other => Err(E::unknown_variant(other, NAMES)),
        }
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Norm, M::Error> {
        NormData::deserialize(de::value::MapAccessDeserializer::new(map)).map(Norm::from)
    }
}

impl Norm {
    /// Checks parameters.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Norm::SmoothAbs { eps } if !(eps.is_finite() && eps > 0.0) => {
                Err(format!("smooth_abs needs eps > 0, got {}", num(eps)))
            }
            Norm::L2 { eps } if !(eps.is_finite() && eps >= 0.0) => {
                Err(format!("l2 needs eps >= 0, got {}", num(eps)))
            }
            Norm::Huber { delta } if !(delta.is_finite() && delta > 0.0) => {
                Err(format!("huber needs delta > 0, got {}", num(delta)))
            }
            _ => Ok(()),
        }
    }

    /// The cost of residual `r`.
    #[must_use]
    #[inline(always)]
    pub fn eval(&self, r: &[Real]) -> Real {
        match *self {
            Norm::Quadratic => r.iter().map(|x| x * x).sum(),
            Norm::L1 => r.iter().map(|x| x.abs()).sum(),
            Norm::SmoothAbs { eps } => r.iter().map(|x| (x * x + eps * eps).sqrt() - eps).sum(),
            Norm::L2 { eps } => (r.iter().map(|x| x * x).sum::<Real>() + eps * eps).sqrt() - eps,
            Norm::Huber { delta } => r
                .iter()
                .map(|x| {
                    let a = x.abs();
                    if a <= delta {
                        0.5 * x * x
                    } else {
                        delta * (a - 0.5 * delta)
                    }
                })
                .sum(),
        }
    }

    /// Adds `scale · ∂cost/∂r` to `grad`.
    pub fn add_gradient(&self, r: &[Real], scale: Real, grad: &mut [Real]) {
        match *self {
            Norm::Quadratic => {
                for (g, x) in grad.iter_mut().zip(r) {
                    *g += scale * 2.0 * x;
                }
            }
            Norm::L1 => {
                for (g, x) in grad.iter_mut().zip(r) {
                    *g += scale * x.signum() * Real::from(u8::from(*x != 0.0));
                }
            }
            Norm::SmoothAbs { eps } => {
                for (g, x) in grad.iter_mut().zip(r) {
                    *g += scale * x / (x * x + eps * eps).sqrt();
                }
            }
            Norm::L2 { eps } => {
                let n = (r.iter().map(|x| x * x).sum::<Real>() + eps * eps).sqrt();
                if n > 0.0 {
                    for (g, x) in grad.iter_mut().zip(r) {
                        *g += scale * x / n;
                    }
                }
            }
            Norm::Huber { delta } => {
                for (g, x) in grad.iter_mut().zip(r) {
                    *g += scale * x.clamp(-delta, delta);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_finite_differences() {
        let r = [0.3, -1.7, 0.05];
        for norm in [
            Norm::Quadratic,
            Norm::L1,
            Norm::SmoothAbs { eps: 0.1 },
            Norm::L2 { eps: 0.01 },
            Norm::Huber { delta: 0.5 },
        ] {
            let mut g = [0.0; 3];
            norm.add_gradient(&r, 1.0, &mut g);
            for i in 0..3 {
                let h = 1e-6;
                let (mut p, mut m) = (r, r);
                p[i] += h;
                m[i] -= h;
                let fd = (norm.eval(&p) - norm.eval(&m)) / (2.0 * h);
                assert!(
                    (fd - g[i]).abs() < 1e-5,
                    "{norm:?} dim {i}: {fd} vs {}",
                    g[i]
                );
            }
        }
    }

    #[derive(Deserialize)]
    struct Holder {
        norm: Norm,
    }

    fn read(text: &str) -> Result<Norm, String> {
        toml::from_str::<Holder>(text)
            .map(|h| h.norm)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_a_norm_by_name_or_as_a_table() {
        assert_eq!(read(r#"norm = "l2""#), Ok(Norm::L2 { eps: 0.0 }));
        assert_eq!(read(r#"norm = "l1""#), Ok(Norm::L1));
        assert_eq!(read(r#"norm = "quadratic""#), Ok(Norm::Quadratic));
        assert_eq!(read(r#"norm = { kind = "l2" }"#), Ok(Norm::L2 { eps: 0.0 }));
        assert_eq!(
            read(r#"norm = { kind = "huber", delta = 0.5 }"#),
            Ok(Norm::Huber { delta: 0.5 })
        );
        // Serialised as a table, and read back.
        let text = toml::to_string(&toml::Table::from_iter([(
            "norm".to_string(),
            toml::Value::try_from(Norm::SmoothAbs { eps: 0.25 }).unwrap(),
        )]))
        .unwrap();
        assert_eq!(read(&text), Ok(Norm::SmoothAbs { eps: 0.25 }));
    }

    #[test]
    fn a_name_alone_that_needs_parameters_says_how_to_write_it() {
        let e = read(r#"norm = "huber""#).unwrap_err();
        assert!(e.contains(r#"{ kind = "huber", delta = 0.5 }"#), "{e}");
        let e = read(r#"norm = "smooth_abs""#).unwrap_err();
        assert!(e.contains(r#"kind = "smooth_abs""#), "{e}");
        let e = read(r#"norm = "l3""#).unwrap_err();
        assert!(e.contains("l3") && e.contains("quadratic"), "{e}");
        let e = read(r#"norm = { kind = "l1", eps = 1.0 }"#).unwrap_err();
        assert!(e.contains("eps"), "{e}");
        let e = read("norm = 2").unwrap_err();
        assert!(e.contains(r#""l2""#), "{e}");
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(Norm::SmoothAbs { eps: 0.0 }.validate().is_err());
        assert!(Norm::Huber { delta: -1.0 }.validate().is_err());
        assert!(Norm::L2 { eps: 0.0 }.validate().is_ok());
    }
}
