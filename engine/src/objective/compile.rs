//! Resolving an [`ObjectiveSpec`] against a [`ReadoutSchema`]: names become
//! indices and every value is checked, so a spec that names a readout the
//! schema lacks fails here, once, with an error naming the item at fault.
//! Items are checked in order (terms, bodies, guardrails), each stopping at
//! its first error.

use super::error::{Item, ObjectiveError};
use super::guardrail::{Body, Guard};
use super::schema::ReadoutSchema;
use super::{
    BodySpec, Guardrail, GuardrailSpec, LimitSpec, Objective, ObjectiveSpec, Phase, Res, Residual,
    Shape, Term, TermSpec,
};
use crate::Real;
use crate::error::PlanError;
use crate::limits::num;
use crate::model::ModelSpec;

impl ObjectiveSpec {
    /// Resolves names against `model` and checks every value; the error names
    /// the term, guardrail or body at fault ([`PlanError::Objective`]).
    pub fn compile(&self, model: &ModelSpec) -> Result<Objective, PlanError> {
        self.compile_with(&ReadoutSchema::from(model))
    }

    /// [`ObjectiveSpec::compile`] against any readout schema, e.g. a scene's
    /// ground truth ([`ReadoutSchema::truth`]).
    pub fn compile_with(&self, schema: &ReadoutSchema) -> Result<Objective, PlanError> {
        compile(self, schema).map_err(PlanError::Objective)
    }
}

/// The objective of `spec` over the readouts of `schema`.
fn compile(spec: &ObjectiveSpec, schema: &ReadoutSchema) -> Result<Objective, ObjectiveError> {
    unique("terms", spec.terms.iter().map(|t| t.name.as_str()))?;
    unique(
        "guardrails",
        spec.guardrails.iter().map(GuardrailSpec::name),
    )?;
    unique("bodies", spec.bodies.iter().map(|b| b.name.as_str()))?;
    let terms = spec
        .terms
        .iter()
        .map(|t| compile_term(t, schema).map_err(|e| e.at(Item::Term(t.name.clone()))))
        .collect::<Result<Vec<_>, _>>()?;
    let bodies = spec
        .bodies
        .iter()
        .map(|b| {
            let body = compile_body(b, schema).map_err(|e| e.at(Item::Body(b.name.clone())))?;
            Ok((b.name.clone(), body))
        })
        .collect::<Result<Vec<_>, ObjectiveError>>()?;
    let guards = spec
        .guardrails
        .iter()
        .map(|g| compile_guardrail(g, schema, &bodies))
        .collect::<Result<Vec<_>, _>>()?;
    let max_term_width = terms
        .iter()
        .map(|t| match &t.res {
            Res::Readout(i) => i.len(),
            Res::Latent => schema.latent_dim(),
            Res::Action | Res::ActionRate => schema.action_dim(),
        })
        .max()
        .unwrap_or(0);
    Ok(Objective {
        terms,
        guards,
        latent_dim: schema.latent_dim(),
        action_dim: schema.action_dim(),
        readout_dim: schema.readout_dim(),
        max_term_width,
    })
}

/// Checks that no two entries of the list `list` share a name: terms are
/// addressed by name ([`Objective::set_target`]), guardrails and bodies in
/// reports and in guardrails' `bodies`, and a second entry of one name would
/// be silently passed over.
fn unique<'a>(
    list: &'static str,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), ObjectiveError> {
    let mut seen = std::collections::BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(ObjectiveError::Duplicate {
                list,
                name: name.to_string(),
            });
        }
    }
    Ok(())
}

/// Indices of the readouts called `names`.
fn readouts(schema: &ReadoutSchema, names: &[String]) -> Result<Vec<usize>, ObjectiveError> {
    names.iter().map(|r| schema.readout(r)).collect()
}

/// One cost term; errors are not yet located at the term.
fn compile_term(t: &TermSpec, schema: &ReadoutSchema) -> Result<Term, ObjectiveError> {
    t.norm.validate().map_err(ObjectiveError::value)?;
    if !(t.weight.is_finite() && t.weight >= 0.0) {
        return Err(ObjectiveError::value(format!(
            "weight must be >= 0, got {}",
            num(t.weight)
        )));
    }
    let (res, target, width) = match &t.residual {
        Residual::Readout {
            readouts: names,
            target,
        } => {
            let idx = readouts(schema, names)?;
            let n = idx.len();
            (Res::Readout(idx), target.clone(), n)
        }
        Residual::Latent { target } => (Res::Latent, target.clone(), schema.latent_dim()),
        Residual::Action { target } => (Res::Action, target.clone(), schema.action_dim()),
        Residual::ActionRate => (Res::ActionRate, Vec::new(), schema.action_dim()),
    };
    let target = match (&res, target.is_empty()) {
        (Res::ActionRate, _) => target,
        (Res::Latent, true) => Vec::new(),
        (_, true) => vec![0.0; width],
        (_, false) if target.len() != width => {
            return Err(ObjectiveError::shape(format!(
                "target has {} values, the residual has {width}",
                target.len()
            )));
        }
        _ => target,
    };
    if target.iter().any(|x| !x.is_finite()) {
        return Err(ObjectiveError::value("target is not finite"));
    }
    Ok(Term {
        name: t.name.clone(),
        res,
        target,
        norm: t.norm,
        weight: t.weight,
        running: t.phase != Phase::Terminal,
        terminal: t.phase != Phase::Running,
    })
}

/// One robot body; errors are not yet located at the body.
fn compile_body(b: &BodySpec, schema: &ReadoutSchema) -> Result<Body, ObjectiveError> {
    if !(b.radius.is_finite() && b.radius >= 0.0) {
        return Err(ObjectiveError::value(format!(
            "radius must be >= 0, got {}",
            num(b.radius)
        )));
    }
    match b.points.as_slice() {
        [a] => Ok(Body {
            a: schema.point(a)?,
            b: None,
            radius: b.radius,
        }),
        [a, c] => Ok(Body {
            a: schema.point(a)?,
            b: Some(schema.point(c)?),
            radius: b.radius,
        }),
        _ => Err(ObjectiveError::shape(format!(
            "needs 1 or 2 points, got {}",
            b.points.len()
        ))),
    }
}

/// The bodies called `names` (all of them if `names` is empty) for the
/// guardrail `guard`.
fn select_bodies(
    bodies: &[(String, Body)],
    names: &[String],
    guard: &str,
) -> Result<Vec<Body>, ObjectiveError> {
    if bodies.is_empty() {
        return Err(ObjectiveError::NoBodies {
            guardrail: guard.to_string(),
        });
    }
    if names.is_empty() {
        return Ok(bodies.iter().map(|(_, b)| b.clone()).collect());
    }
    names
        .iter()
        .map(|n| {
            bodies
                .iter()
                .find(|(name, _)| name == n)
                .map(|(_, b)| b.clone())
                .ok_or_else(|| ObjectiveError::UnknownBody { body: n.clone() })
        })
        .collect()
}

/// Per-readout box limits; errors are not yet located at the guardrail.
fn compile_limits(l: &LimitSpec, schema: &ReadoutSchema) -> Result<Guard, ObjectiveError> {
    if l.lower.len() != l.readouts.len() || l.upper.len() != l.readouts.len() {
        return Err(ObjectiveError::shape(format!(
            "{} readouts but {} lower and {} upper limits",
            l.readouts.len(),
            l.lower.len(),
            l.upper.len()
        )));
    }
    if l.readouts.is_empty() {
        return Err(ObjectiveError::shape(
            "readouts is empty: a limit needs at least one readout",
        ));
    }
    if l.lower.iter().zip(&l.upper).any(|(a, b)| !(a <= b)) {
        return Err(ObjectiveError::value(
            "a lower limit exceeds its upper limit",
        ));
    }
    Ok(Guard::Limits {
        idx: readouts(schema, &l.readouts)?,
        lower: l.lower.clone(),
        upper: l.upper.clone(),
    })
}

/// One guardrail, over the named `bodies`; every error but a missing body
/// list is located at the guardrail.
fn compile_guardrail(
    g: &GuardrailSpec,
    schema: &ReadoutSchema,
    bodies: &[(String, Body)],
) -> Result<Guardrail, ObjectiveError> {
    let name = g.name().to_string();
    let buffer = g.margin();
    let guard = check_buffer(buffer)
        .and_then(|()| compile_guard(g, schema, bodies))
        .map_err(|e| match e {
            e @ ObjectiveError::NoBodies { .. } => e,
            e => e.at(Item::Guardrail(name.clone())),
        })?;
    Ok(Guardrail {
        name,
        buffer,
        current: Real::INFINITY,
        tightening: Vec::new(),
        guard,
    })
}

/// Checks a guardrail's safety buffer.
fn check_buffer(buffer: Real) -> Result<(), ObjectiveError> {
    if buffer.is_finite() && buffer >= 0.0 {
        Ok(())
    } else {
        Err(ObjectiveError::value(format!(
            "margin must be >= 0, got {}",
            num(buffer)
        )))
    }
}

/// What guardrail `g` checks, resolved against `schema` and `bodies`.
fn compile_guard(
    g: &GuardrailSpec,
    schema: &ReadoutSchema,
    bodies: &[(String, Body)],
) -> Result<Guard, ObjectiveError> {
    let name = g.name();
    match g {
        GuardrailSpec::KeepOut {
            shape, bodies: on, ..
        } => {
            let on = select_bodies(bodies, on, name);
            distance_guard(std::slice::from_ref(shape), 0.0, on)
        }
        GuardrailSpec::Clearance {
            min_distance,
            obstacles,
            bodies: on,
            ..
        } => {
            if !(min_distance.is_finite() && *min_distance >= 0.0) {
                return Err(ObjectiveError::value("min_distance must be >= 0"));
            }
            distance_guard(obstacles, *min_distance, select_bodies(bodies, on, name))
        }
        GuardrailSpec::Workspace {
            lower,
            upper,
            bodies: on,
            ..
        } => {
            if lower.iter().zip(upper).any(|(a, b)| !(a < b)) {
                return Err(ObjectiveError::value("workspace lower must be < upper"));
            }
            Ok(Guard::Workspace {
                bodies: select_bodies(bodies, on, name)?,
                lower: (*lower).into(),
                upper: (*upper).into(),
            })
        }
        GuardrailSpec::JointPosition(l)
        | GuardrailSpec::JointVelocity(l)
        | GuardrailSpec::ReadoutLimit(l) => compile_limits(l, schema),
        GuardrailSpec::Speed {
            readouts: r, max, ..
        } => speed_guard(schema, r, *max),
    }
}

/// Bodies at least `min_distance` from every shape of `shapes`: the shapes
/// are checked before the bodies' selection (`bodies`) is looked at.
fn distance_guard(
    shapes: &[Shape],
    min_distance: Real,
    bodies: Result<Vec<Body>, ObjectiveError>,
) -> Result<Guard, ObjectiveError> {
    for s in shapes {
        s.validate().map_err(ObjectiveError::value)?;
    }
    Ok(Guard::Distance {
        bodies: bodies?,
        shapes: shapes.iter().map(Shape::compile).collect(),
        min_distance,
    })
}

/// The norm of the readouts called `names` at most `max`.
fn speed_guard(
    schema: &ReadoutSchema,
    names: &[String],
    max: Real,
) -> Result<Guard, ObjectiveError> {
    if !(max.is_finite() && max >= 0.0) {
        return Err(ObjectiveError::value("max must be >= 0"));
    }
    if names.is_empty() {
        return Err(ObjectiveError::shape(
            "readouts is empty: a speed guardrail needs the readouts of a velocity \
             (e.g. [\"vel.x\", \"vel.y\"])",
        ));
    }
    Ok(Guard::Speed {
        idx: readouts(schema, names)?,
        max,
    })
}
