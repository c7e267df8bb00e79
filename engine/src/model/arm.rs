//! A kinematic serial arm read from a URDF: joint-velocity commands in,
//! joint states and link positions (forward kinematics) out.

use super::{ModelSpec, WorldModel, check_predict, check_readout, expect_len};
use crate::Real;
use crate::error::ModelError;
use nalgebra::{Matrix3, Rotation3, Unit, Vector3};
use std::collections::HashMap;
use std::path::Path;

type M3 = Matrix3<Real>;
type V3 = Vector3<Real>;

/// Limits of one movable joint, as read from the URDF `<limit>` element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JointLimits {
    /// Lowest position in radians (`−∞` for a continuous joint).
    pub lower: Real,
    /// Highest position in radians (`+∞` for a continuous joint).
    pub upper: Real,
    /// Largest speed in rad/s (`+∞` when the URDF gives none).
    pub velocity: Real,
}

/// One link of the chain after the root: where its frame sits in its parent's
/// frame, and the movable joint (if any) that rotates it.
#[derive(Clone, Debug)]
struct Segment {
    /// Rotation of the joint origin (URDF `rpy`) in the parent link frame.
    rot: M3,
    /// Translation of the joint origin (URDF `xyz`) in the parent link frame.
    trans: V3,
    /// Index of the movable joint and its unit axis in the joint frame.
    joint: Option<(usize, Unit<V3>)>,
}

/// A serial arm with first-order joint-velocity response, built from a URDF.
///
/// The chain runs from the root link of the URDF tree to a chosen tip link.
/// Revolute and continuous joints are movable; fixed joints are folded into the
/// chain; any other joint type on the chain is an error. With `n` movable joints:
///
/// - observation = latent = state `[q (n), q̇ (n)]`, in chain order;
/// - action `u` = joint velocity commands (`n`), bounded by
///   `± min(URDF velocity limit, max_joint_speed)`;
/// - dynamics `q̇' = q̇ + α(u − q̇)`, `α = 1 − e^{−dt/τ}` (`τ = 0`: `α = 1`),
///   `q' = q + q̇'·dt`;
/// - readouts `q.<joint>` and `qd.<joint>` for every movable joint, then
///   `<link>.x`, `<link>.y`, `<link>.z`: the world position of every link frame
///   on the chain, root and tip included, with the root frame at the world origin.
///
/// ```
/// use telic::model::{SerialArm, WorldModel};
/// let urdf = r#"<robot name="r">
///   <link name="base"/> <link name="tip"/>
///   <joint name="j" type="revolute">
///     <parent link="base"/> <child link="tip"/>
///     <origin xyz="0 0 0.1"/> <axis xyz="0 0 1"/>
///     <limit lower="-1" upper="1" effort="1" velocity="2"/>
///   </joint>
/// </robot>"#;
/// let arm = SerialArm::from_urdf_str(urdf, "tip", 0.05, Some(1.0), 0.0).unwrap();
/// assert_eq!(arm.joint_names(), ["j"]);
/// assert_eq!(arm.spec().action_upper, [1.0]);
/// ```
#[derive(Clone, Debug)]
pub struct SerialArm {
    spec: ModelSpec,
    alpha: Real,
    joint_names: Vec<String>,
    limits: Vec<JointLimits>,
    link_names: Vec<String>,
    segments: Vec<Segment>,
    /// Chain index of the link each movable joint rotates.
    joint_links: Vec<usize>,
    /// Forward-kinematics scratch: world rotation and position of every link.
    rots: Vec<M3>,
    pos: Vec<V3>,
}

fn invalid(m: String) -> ModelError {
    ModelError::Invalid(m)
}

/// The root link of `robot` and the joints from it down to `tip_link`, in
/// order. Errors when the links and joints are not a tree or `tip_link` is
/// not defined.
fn chain_from_root<'r>(
    robot: &'r urdf_rs::Robot,
    tip_link: &str,
) -> Result<(String, Vec<&'r urdf_rs::Joint>), ModelError> {
    let link_set: HashMap<&str, usize> = robot
        .links
        .iter()
        .enumerate()
        .map(|(i, l)| (l.name.as_str(), i))
        .collect();
    // The joint attaching each link to its parent; a link with two parents
    // or a joint naming an unknown link is not a tree.
    let mut parent_joint: HashMap<&str, &urdf_rs::Joint> = HashMap::new();
    for j in &robot.joints {
        for l in [&j.parent.link, &j.child.link] {
            if !link_set.contains_key(l.as_str()) {
                return Err(invalid(format!(
                    "joint '{}' names link '{l}', which is not defined",
                    j.name
                )));
            }
        }
        if parent_joint.insert(j.child.link.as_str(), j).is_some() {
            return Err(invalid(format!(
                "link '{}' is the child of more than one joint",
                j.child.link
            )));
        }
    }
    if !link_set.contains_key(tip_link) {
        let known: Vec<&str> = robot.links.iter().map(|l| l.name.as_str()).collect();
        return Err(invalid(format!(
            "tip link '{tip_link}' is not defined (links: {})",
            known.join(", ")
        )));
    }
    // Walk from the tip up to the root.
    let mut chain_joints: Vec<&urdf_rs::Joint> = Vec::new();
    let mut link = tip_link;
    while let Some(j) = parent_joint.get(link) {
        if chain_joints.len() > robot.joints.len() {
            return Err(invalid(format!(
                "the joints above link '{tip_link}' form a loop"
            )));
        }
        chain_joints.push(j);
        link = j.parent.link.as_str();
    }
    chain_joints.reverse();
    Ok((link.to_string(), chain_joints))
}

/// The fixed transform of joint `j` from its parent link: rotation and
/// translation, both finite.
fn joint_origin(j: &urdf_rs::Joint) -> Result<(M3, V3), ModelError> {
    let o = &j.origin;
    let rot = *Rotation3::from_euler_angles(o.rpy[0], o.rpy[1], o.rpy[2]).matrix();
    let trans = V3::new(o.xyz[0], o.xyz[1], o.xyz[2]);
    if !(rot.iter().all(|x| x.is_finite()) && trans.iter().all(|x| x.is_finite())) {
        return Err(invalid(format!(
            "joint '{}' has a non-finite origin",
            j.name
        )));
    }
    Ok((rot, trans))
}

/// The limits and axis of joint `j` when it moves (revolute or continuous),
/// `None` when it is fixed; errors for other kinds, mimic joints, a bad axis,
/// bad limits or no velocity bound (neither the URDF's nor
/// `max_joint_speed`).
fn movable_joint(
    j: &urdf_rs::Joint,
    max_joint_speed: Option<Real>,
) -> Result<Option<(JointLimits, Unit<V3>)>, ModelError> {
    let movable = match j.joint_type {
        urdf_rs::JointType::Fixed => false,
        urdf_rs::JointType::Revolute | urdf_rs::JointType::Continuous => true,
        ref other => {
            return Err(invalid(format!(
                "joint '{}' is {other:?}; a serial arm supports revolute, continuous and fixed joints",
                j.name
            )));
        }
    };
    if !movable {
        return Ok(None);
    }
    if j.mimic.is_some() {
        return Err(invalid(format!(
            "joint '{}' mimics another joint, which a serial arm does not support",
            j.name
        )));
    }
    let a = V3::new(j.axis.xyz[0], j.axis.xyz[1], j.axis.xyz[2]);
    let Some(axis) = Unit::try_new(a, 1e-9).filter(|u| u.iter().all(|x| x.is_finite())) else {
        return Err(invalid(format!(
            "joint '{}' has a zero or non-finite axis",
            j.name
        )));
    };
    let l = &j.limit;
    let (lower, upper) = if j.joint_type == urdf_rs::JointType::Continuous {
        (Real::NEG_INFINITY, Real::INFINITY)
    } else if l.lower.is_finite() && l.upper.is_finite() && l.lower < l.upper {
        (l.lower, l.upper)
    } else {
        return Err(invalid(format!(
            "revolute joint '{}' needs limits with lower < upper, got [{}, {}]",
            j.name, l.lower, l.upper
        )));
    };
    let velocity = if l.velocity.is_finite() && l.velocity > 0.0 {
        l.velocity
    } else {
        Real::INFINITY
    };
    let bound = velocity.min(max_joint_speed.unwrap_or(Real::INFINITY));
    if !bound.is_finite() {
        return Err(invalid(format!(
            "joint '{}' has no velocity limit; give max_joint_speed",
            j.name
        )));
    }
    let limit = JointLimits {
        lower,
        upper,
        velocity,
    };
    Ok(Some((limit, axis)))
}

/// The names and limits of a chain's movable joints and the names of its
/// links, root to tip.
struct Chain<'a> {
    joint_names: &'a [String],
    link_names: &'a [String],
    limits: &'a [JointLimits],
}

/// The model spec of the arm `robot_name` with `chain`: state `q`, `q̇`,
/// actions `q̇` commands bounded by the velocity limits (and
/// `max_joint_speed`), readouts the state and every link's position.
fn arm_spec(
    robot_name: &str,
    chain: &Chain<'_>,
    max_joint_speed: Option<Real>,
    dt: Real,
) -> Result<ModelSpec, ModelError> {
    let n = chain.joint_names.len();
    let q_names = chain.joint_names.iter().map(|j| format!("q.{j}"));
    let qd_names = chain.joint_names.iter().map(|j| format!("qd.{j}"));
    let state: Vec<String> = q_names.chain(qd_names).collect();
    let mut readouts = state.clone();
    for l in chain.link_names {
        for axis in ["x", "y", "z"] {
            readouts.push(format!("{l}.{axis}"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = readouts.iter().find(|r| !seen.insert(r.as_str())) {
        return Err(invalid(format!(
            "two readouts would both be called '{dup}'; rename a joint or link"
        )));
    }
    let bounds: Vec<Real> = chain
        .limits
        .iter()
        .map(|l| l.velocity.min(max_joint_speed.unwrap_or(Real::INFINITY)))
        .collect();
    let spec = ModelSpec {
        name: format!("serial_arm:{robot_name}"),
        image: None,
        observations: state,
        actions: chain
            .joint_names
            .iter()
            .map(|j| format!("qd_cmd.{j}"))
            .collect(),
        latent_dim: 2 * n,
        readouts,
        action_lower: bounds.iter().map(|b| -b).collect(),
        action_upper: bounds,
        dt,
    };
    spec.validate()?;
    Ok(spec)
}

impl SerialArm {
    /// Reads the URDF file at `path` and builds the chain from its root to
    /// `tip_link`. See [`SerialArm::from_robot`] for the other parameters.
    pub fn from_urdf_file(
        path: impl AsRef<Path>,
        tip_link: &str,
        dt: Real,
        max_joint_speed: Option<Real>,
        tau: Real,
    ) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("cannot read URDF {}: {e}", path.display())))?;
        Self::parse(
            &text,
            &path.display().to_string(),
            tip_link,
            dt,
            max_joint_speed,
            tau,
        )
    }

    /// Parses URDF text and builds the chain from its root to `tip_link`.
    /// See [`SerialArm::from_robot`] for the other parameters.
    pub fn from_urdf_str(
        urdf: &str,
        tip_link: &str,
        dt: Real,
        max_joint_speed: Option<Real>,
        tau: Real,
    ) -> Result<Self, ModelError> {
        Self::parse(urdf, "<string>", tip_link, dt, max_joint_speed, tau)
    }

    fn parse(
        text: &str,
        origin: &str,
        tip_link: &str,
        dt: Real,
        max_joint_speed: Option<Real>,
        tau: Real,
    ) -> Result<Self, ModelError> {
        let robot = urdf_rs::read_from_string(text)
            .map_err(|e| invalid(format!("URDF {origin} is malformed: {e}")))?;
        Self::from_robot(&robot, tip_link, dt, max_joint_speed, tau).map_err(|e| match e {
            ModelError::Invalid(m) => invalid(format!("URDF {origin}: {m}")),
            other => other,
        })
    }

    /// Builds the arm from a parsed URDF.
    ///
    /// - `tip_link`: the last link of the chain (e.g. the tool frame);
    /// - `dt`: time step of one `predict`, in seconds;
    /// - `max_joint_speed`: optional bound on every joint velocity command, in
    ///   rad/s, applied on top of the URDF velocity limits;
    /// - `tau`: time constant of the joint velocity response, in seconds (`0`:
    ///   commands are reached within one step).
    pub fn from_robot(
        robot: &urdf_rs::Robot,
        tip_link: &str,
        dt: Real,
        max_joint_speed: Option<Real>,
        tau: Real,
    ) -> Result<Self, ModelError> {
        if !(tau.is_finite() && tau >= 0.0) {
            return Err(invalid(format!("serial arm tau must be >= 0, got {tau}")));
        }
        if let Some(s) = max_joint_speed
            && !(s.is_finite() && s > 0.0)
        {
            return Err(invalid(format!(
                "serial arm max_joint_speed must be positive, got {s}"
            )));
        }
        let (root, chain_joints) = chain_from_root(robot, tip_link)?;
        let mut link_names = vec![root];
        let mut joint_names = Vec::new();
        let mut limits = Vec::new();
        let mut segments = Vec::new();
        let mut joint_links = Vec::new();
        for j in chain_joints {
            let (rot, trans) = joint_origin(j)?;
            let joint = match movable_joint(j, max_joint_speed)? {
                Some((limit, axis)) => {
                    limits.push(limit);
                    joint_names.push(j.name.clone());
                    joint_links.push(segments.len() + 1);
                    Some((joint_names.len() - 1, axis))
                }
                None => None,
            };
            segments.push(Segment { rot, trans, joint });
            link_names.push(j.child.link.clone());
        }
        let n = joint_names.len();
        if n == 0 {
            return Err(invalid(format!(
                "no revolute joint between the root link '{}' and the tip '{tip_link}'",
                link_names.first().map_or("", String::as_str)
            )));
        }
        let chain = Chain {
            joint_names: &joint_names,
            link_names: &link_names,
            limits: &limits,
        };
        let spec = arm_spec(&robot.name, &chain, max_joint_speed, dt)?;
        let alpha = if tau == 0.0 {
            1.0
        } else {
            1.0 - (-dt / tau).exp()
        };
        let nl = link_names.len();
        Ok(Self {
            spec,
            alpha,
            joint_names,
            limits,
            link_names,
            segments,
            joint_links,
            rots: vec![M3::identity(); nl],
            pos: vec![V3::zeros(); nl],
        })
    }

    /// Number of movable joints `n`.
    #[must_use]
    pub fn num_joints(&self) -> usize {
        self.joint_names.len()
    }

    /// Names of the movable joints, root to tip (the order of `q`, `q̇` and actions).
    #[must_use]
    pub fn joint_names(&self) -> &[String] {
        &self.joint_names
    }

    /// URDF limits of the movable joints, in [`SerialArm::joint_names`] order.
    #[must_use]
    pub fn joint_limits(&self) -> &[JointLimits] {
        &self.limits
    }

    /// Names of the link frames on the chain, root first, tip last.
    #[must_use]
    pub fn link_names(&self) -> &[String] {
        &self.link_names
    }

    /// The velocity response factor `α` of one step.
    #[must_use]
    pub fn alpha(&self) -> Real {
        self.alpha
    }

    /// World positions of every link frame (in [`SerialArm::link_names`] order)
    /// at joint positions `q` (`n` values), written into `out`.
    pub fn link_positions(&mut self, q: &[Real], out: &mut [[Real; 3]]) -> Result<(), ModelError> {
        expect_len("q", q, 1, self.num_joints())?;
        if out.len() != self.link_names.len() {
            return Err(ModelError::Shape {
                what: "link positions",
                got: out.len(),
                expected: self.link_names.len(),
            });
        }
        forward_kinematics(&self.segments, q, &mut self.rots, &mut self.pos);
        for (o, p) in out.iter_mut().zip(&self.pos) {
            *o = [p.x, p.y, p.z];
        }
        Ok(())
    }
}

/// World rotation and position of every link frame at joint positions `q`.
fn forward_kinematics(segments: &[Segment], q: &[Real], rots: &mut [M3], pos: &mut [V3]) {
    let (Some(r0), Some(p0)) = (rots.first_mut(), pos.first_mut()) else {
        return;
    };
    *r0 = M3::identity();
    *p0 = V3::zeros();
    for (k, s) in segments.iter().enumerate() {
        let (r_parent, p_parent) = (rots[k], pos[k]);
        let mut r = r_parent * s.rot;
        if let Some((j, axis)) = &s.joint {
            r *= Rotation3::from_axis_angle(axis, q[*j]).matrix();
        }
        pos[k + 1] = p_parent + r_parent * s.trans;
        rots[k + 1] = r;
    }
}

impl WorldModel for SerialArm {
    analytic_basics!(identity_encode);

    fn predict(&mut self, z: &[Real], u: &[Real], z_next: &mut [Real]) -> Result<(), ModelError> {
        check_predict(&self.spec, z, u, z_next)?;
        let (n, dt, al) = (self.num_joints(), self.spec.dt, self.alpha);
        for ((s, a), o) in z
            .chunks_exact(2 * n)
            .zip(u.chunks_exact(n))
            .zip(z_next.chunks_exact_mut(2 * n))
        {
            let (q, qd) = s.split_at(n);
            let (oq, oqd) = o.split_at_mut(n);
            for i in 0..n {
                let v = qd[i] + al * (a[i] - qd[i]);
                oqd[i] = v;
                oq[i] = q[i] + v * dt;
            }
        }
        Ok(())
    }

    fn readout(&mut self, z: &[Real], y: &mut [Real]) -> Result<(), ModelError> {
        check_readout(&self.spec, z, y)?;
        let (d, p) = (self.spec.latent_dim, self.spec.readout_dim());
        let n = self.num_joints();
        for (s, o) in z.chunks_exact(d).zip(y.chunks_exact_mut(p)) {
            o[..d].copy_from_slice(s);
            forward_kinematics(&self.segments, &s[..n], &mut self.rots, &mut self.pos);
            for (c, x) in o[d..].chunks_exact_mut(3).zip(&self.pos) {
                c.copy_from_slice(x.as_slice());
            }
        }
        Ok(())
    }

    fn predict_jacobians(
        &mut self,
        z: &[Real],
        u: &[Real],
        a: &mut [Real],
        b: &mut [Real],
    ) -> Result<(), ModelError> {
        let (n, dt, al) = (self.num_joints(), self.spec.dt, self.alpha);
        let d = 2 * n;
        expect_len("z", z, 1, d)?;
        expect_len("u", u, 1, n)?;
        expect_len("a", a, d, d)?;
        expect_len("b", b, d, n)?;
        a.fill(0.0);
        b.fill(0.0);
        for i in 0..n {
            // q' = q + dt·((1 − α) q̇ + α u),  q̇' = (1 − α) q̇ + α u
            a[i * d + i] = 1.0;
            a[i * d + n + i] = dt * (1.0 - al);
            a[(n + i) * d + n + i] = 1.0 - al;
            b[i * n + i] = dt * al;
            b[(n + i) * n + i] = al;
        }
        Ok(())
    }

    fn readout_jacobian(&mut self, z: &[Real], c: &mut [Real]) -> Result<(), ModelError> {
        let n = self.num_joints();
        let d = 2 * n;
        let p = self.spec.readout_dim();
        expect_len("z", z, 1, d)?;
        expect_len("c", c, p, d)?;
        c.fill(0.0);
        for i in 0..d {
            c[i * d + i] = 1.0;
        }
        forward_kinematics(&self.segments, &z[..n], &mut self.rots, &mut self.pos);
        // A revolute joint turns every link after it about its world axis
        // through the origin of the link it moves: ∂p_k/∂q_j = ω_j × (p_k − p_j).
        for (j, &lj) in self.joint_links.iter().enumerate() {
            let Some((_, axis)) = self.segments.get(lj - 1).and_then(|s| s.joint.as_ref()) else {
                continue;
            };
            let w = self.rots[lj] * axis.into_inner();
            let pj = self.pos[lj];
            for k in lj..self.link_names.len() {
                let dp = w.cross(&(self.pos[k] - pj));
                for (r, v) in dp.iter().enumerate() {
                    c[(d + 3 * k + r) * d + j] = *v;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ARM3: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sim/assets/arm3.urdf");

    fn arm3() -> SerialArm {
        SerialArm::from_urdf_file(ARM3, "tool", 0.05, Some(1.2), 0.1).unwrap()
    }

    fn tool_at(arm: &mut SerialArm, q: &[Real]) -> [Real; 3] {
        let mut out = vec![[0.0; 3]; arm.link_names().len()];
        arm.link_positions(q, &mut out).unwrap();
        *out.last().unwrap()
    }

    fn close(a: [Real; 3], b: [Real; 3]) -> bool {
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-9)
    }

    #[test]
    fn reads_the_arm3_chain() {
        let arm = arm3();
        assert_eq!(arm.joint_names(), ["base_yaw", "shoulder", "elbow"]);
        assert_eq!(
            arm.link_names(),
            ["base_link", "link1", "link2", "link3", "tool"]
        );
        let l = arm.joint_limits()[1];
        assert_eq!((l.lower, l.upper, l.velocity), (-1.7, 1.7, 1.5));
        let s = arm.spec();
        assert_eq!(s.action_upper, [1.2; 3]);
        assert_eq!(s.action_lower, [-1.2; 3]);
        assert_eq!(&s.readouts[..2], ["q.base_yaw", "q.shoulder"]);
        assert_eq!(s.readouts[3], "qd.base_yaw");
        assert_eq!(s.readout_dim(), 6 + 15);
        assert_eq!(s.readouts.last().unwrap(), "tool.z");
        assert!(s.readout_index("link2.x").is_some());
        let capped = SerialArm::from_urdf_file(ARM3, "tool", 0.05, None, 0.0).unwrap();
        assert_eq!(capped.spec().action_upper, [1.5; 3]);
    }

    #[test]
    fn forward_kinematics_of_arm3() {
        let mut arm = arm3();
        assert!(close(tool_at(&mut arm, &[0.0; 3]), [0.65, 0.0, 0.3]));
        // Shoulder +90° about +y points the arm straight down.
        let down = tool_at(&mut arm, &[0.0, std::f64::consts::FRAC_PI_2, 0.0]);
        assert!(close(down, [0.0, 0.0, 0.3 - 0.65]), "{down:?}");
        // Base yaw +90° swings the arm to +y.
        let side = tool_at(&mut arm, &[std::f64::consts::FRAC_PI_2, 0.0, 0.0]);
        assert!(close(side, [0.0, 0.65, 0.3]), "{side:?}");
        // Elbow −90° points the forearm up.
        let up = tool_at(&mut arm, &[0.0, 0.0, -std::f64::consts::FRAC_PI_2]);
        assert!(close(up, [0.35, 0.0, 0.6]), "{up:?}");
        // Readouts agree with link_positions.
        let mut y = vec![0.0; arm.spec().readout_dim()];
        arm.readout(
            &[0.0, -std::f64::consts::FRAC_PI_2, 0.0, 0.1, 0.2, 0.3],
            &mut y,
        )
        .unwrap();
        let i = arm.spec().readout_index("link3.z").unwrap();
        assert!((y[i] - 0.65).abs() < 1e-9);
        assert_eq!(
            &y[..6],
            &[0.0, -std::f64::consts::FRAC_PI_2, 0.0, 0.1, 0.2, 0.3]
        );
    }

    #[test]
    fn velocity_response_is_first_order() {
        let mut arm = arm3();
        let al = arm.alpha();
        assert!((al - (1.0 - (-0.5f64).exp())).abs() < 1e-12);
        let mut z = [0.0; 6];
        arm.predict(&[0.1, 0.0, 0.0, 0.0, 0.5, 0.0], &[1.0, 0.0, -1.0], &mut z)
            .unwrap();
        assert!((z[3] - al).abs() < 1e-12);
        assert!((z[4] - 0.5 * (1.0 - al)).abs() < 1e-12);
        assert!((z[0] - (0.1 + al * 0.05)).abs() < 1e-12);
        let mut instant = SerialArm::from_urdf_file(ARM3, "tool", 0.05, None, 0.0).unwrap();
        instant
            .predict(&[0.0; 6], &[1.0, 0.0, 0.0], &mut z)
            .unwrap();
        assert_eq!((z[0], z[3]), (0.05, 1.0));
    }

    #[test]
    fn jacobians_match_finite_differences() {
        let mut arm = arm3();
        super::super::tests::check_jacobians(
            &mut arm,
            &[0.3, -0.7, 1.1, 0.2, -0.4, 0.9],
            &[0.5, -1.0, 0.2],
        );
        // A chain with rotated origins, a tilted axis and fixed links in between.
        let urdf = r#"<robot name="t">
          <link name="a"/> <link name="b"/> <link name="c"/> <link name="d"/>
          <joint name="j1" type="continuous">
            <parent link="a"/> <child link="b"/>
            <origin xyz="0.1 0.2 0.3" rpy="0.3 -0.2 0.5"/> <axis xyz="1 1 0"/>
            <limit velocity="2"/>
          </joint>
          <joint name="f" type="fixed">
            <parent link="b"/> <child link="c"/> <origin xyz="0.2 0 0.1" rpy="0 0.4 0"/>
          </joint>
          <joint name="j2" type="revolute">
            <parent link="c"/> <child link="d"/>
            <origin xyz="0 0.3 0" rpy="0.1 0 0"/> <axis xyz="0 0 -1"/>
            <limit lower="-2" upper="2" velocity="3"/>
          </joint>
        </robot>"#;
        let mut t = SerialArm::from_urdf_str(urdf, "d", 0.1, None, 0.05).unwrap();
        assert_eq!(t.joint_limits()[0].lower, Real::NEG_INFINITY);
        super::super::tests::check_jacobians(&mut t, &[0.4, -1.2, 0.3, 0.1], &[1.0, -2.0]);
    }

    #[test]
    fn batched_calls_agree_with_single_ones() {
        let mut arm = arm3();
        let z = [0.1, 0.2, 0.3, 0.0, 0.0, 0.0, -0.5, 0.4, -0.3, 0.1, 0.1, 0.1];
        let p = arm.spec().readout_dim();
        let mut y = vec![0.0; 2 * p];
        arm.readout(&z, &mut y).unwrap();
        let mut y1 = vec![0.0; p];
        arm.readout(&z[6..], &mut y1).unwrap();
        assert_eq!(&y[p..], &y1[..]);
    }

    #[test]
    fn errors_are_clear() {
        let missing = SerialArm::from_urdf_file("/no/such/arm.urdf", "tool", 0.05, None, 0.0)
            .unwrap_err()
            .to_string();
        assert!(missing.contains("/no/such/arm.urdf"), "{missing}");
        let malformed = SerialArm::from_urdf_str("<robot name=", "tool", 0.05, None, 0.0)
            .unwrap_err()
            .to_string();
        assert!(malformed.contains("malformed"), "{malformed}");
        let tip = SerialArm::from_urdf_file(ARM3, "gripper", 0.05, None, 0.0)
            .unwrap_err()
            .to_string();
        assert!(tip.contains("gripper") && tip.contains("link3"), "{tip}");
        let prismatic = r#"<robot name="p"><link name="a"/><link name="b"/>
          <joint name="slide" type="prismatic"><parent link="a"/><child link="b"/>
          <limit lower="0" upper="1" velocity="1"/></joint></robot>"#;
        let e = SerialArm::from_urdf_str(prismatic, "b", 0.05, None, 0.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("slide") && e.contains("Prismatic"), "{e}");
        let dangling = r#"<robot name="p"><link name="a"/>
          <joint name="j" type="revolute"><parent link="a"/><child link="zz"/>
          <limit lower="0" upper="1" velocity="1"/></joint></robot>"#;
        let e = SerialArm::from_urdf_str(dangling, "a", 0.05, None, 0.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("zz"), "{e}");
        let e = SerialArm::from_urdf_file(ARM3, "base_link", 0.05, None, 0.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no revolute joint"), "{e}");
    }
}
