//! One ONNX graph of a bundle: its session, its checked signature, and the
//! input/output tensors reused between calls.

use super::super::bundle::{MAX_GRAPH_BYTES, Normalisation, check_file};
use crate::Real;
use crate::error::ModelError;
use ort::session::{
    HasSelectedOutputs, OutputSelector, RunOptions, Session, SessionInputValue,
    builder::GraphOptimizationLevel,
};
use ort::value::{Tensor, TensorElementType, ValueType};
use std::path::Path;

/// One tensor of the bundle contract: `name` is `[batch, width]` float32, and
/// `width` comes from the manifest field `field`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Port {
    pub name: &'static str,
    pub width: usize,
    pub field: &'static str,
}

/// What a graph declares for one of its inputs or outputs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Declared {
    pub name: String,
    /// Element type, e.g. `f32`, or the kind of a non-tensor value.
    pub elem: String,
    /// Dimensions (`-1` when dynamic); `None` for non-tensor values.
    pub shape: Option<Vec<i64>>,
}

impl Declared {
    fn of(name: &str, ty: &ValueType) -> Self {
        match ty {
            ValueType::Tensor { ty, shape, .. } => Declared {
                name: name.to_string(),
                elem: if *ty == TensorElementType::Float32 {
                    "f32".into()
                } else {
                    ty.to_string()
                },
                shape: Some(shape.to_vec()),
            },
            other => Declared {
                name: name.to_string(),
                elem: other.to_string(),
                shape: None,
            },
        }
    }
}

fn names(ports: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = ports.map(|n| format!("`{n}`")).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Checks a graph's declared inputs or outputs (`kind`) against the contract
/// and returns, for each expected port, the position of the graph's tensor.
pub(crate) fn check_ports(
    file: &str,
    kind: &str,
    declared: &[Declared],
    expected: &[Port],
) -> Result<Vec<usize>, ModelError> {
    let bad = |m: String| Err(ModelError::Invalid(format!("{file}: {m}")));
    let contract = || names(expected.iter().map(|p| p.name.to_string()));
    if let Some(extra) = declared
        .iter()
        .find(|d| !expected.iter().any(|p| p.name == d.name))
    {
        return bad(format!(
            "unexpected {kind} `{}`; the bundle contract's {kind}s are {}",
            extra.name,
            contract()
        ));
    }
    let mut positions = Vec::with_capacity(expected.len());
    for port in expected {
        let Some(pos) = declared.iter().position(|d| d.name == port.name) else {
            return bad(format!(
                "no {kind} named `{}`; the graph's {kind}s are {}, the contract's are {}",
                port.name,
                names(declared.iter().map(|d| d.name.clone())),
                contract()
            ));
        };
        let Some(d) = declared.get(pos) else {
            return bad(format!("{kind} `{}` vanished", port.name));
        };
        let want = format!("[batch, {}]", port.width);
        let Some(shape) = &d.shape else {
            return bad(format!(
                "{kind} `{}` is a {}, expected a float32 tensor {want}",
                port.name, d.elem
            ));
        };
        if d.elem != "f32" {
            return bad(format!(
                "{kind} `{}` has element type {}, expected f32 (float32)",
                port.name, d.elem
            ));
        }
        let &[batch, width] = shape.as_slice() else {
            return bad(format!(
                "{kind} `{}` has rank {} (shape {shape:?}), expected rank 2 {want}",
                port.name,
                shape.len()
            ));
        };
        if batch >= 0 {
            return bad(format!(
                "{kind} `{}` has a fixed batch dimension of {batch}; export it as a dynamic \
                 axis ({want})",
                port.name
            ));
        }
        if width >= 0 && usize::try_from(width).ok() != Some(port.width) {
            return bad(format!(
                "{kind} `{}` has width {width}, but the manifest's {} gives {} ({want})",
                port.name, port.field, port.width
            ));
        }
        positions.push(pos);
    }
    Ok(positions)
}

/// Session options of a bundle's graphs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionSettings {
    pub intra_threads: usize,
}

/// How many batch sizes keep their tensors; the planner uses two (`N`
/// samples and 1), finite-difference Jacobians two more.
const SLOTS: usize = 4;

/// Tensors bound for one batch size: inputs in the graph's order, and run
/// options that preallocate the output.
struct Slot<const N: usize> {
    batch: usize,
    inputs: [Tensor<f32>; N],
    options: RunOptions<HasSelectedOutputs>,
    used: u64,
}

/// A loaded graph with `N` inputs and one output.
pub(crate) struct Graph<const N: usize> {
    file: &'static str,
    session: Session,
    /// Contract inputs, in contract order.
    inputs: [Port; N],
    /// Graph position of each contract input.
    positions: [usize; N],
    /// Widths in the graph's input order.
    widths: [usize; N],
    output: Port,
    slots: Vec<Slot<N>>,
    clock: u64,
}

impl<const N: usize> std::fmt::Debug for Graph<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("file", &self.file)
            .field("inputs", &self.inputs)
            .field("output", &self.output)
            .field(
                "cached_batch_sizes",
                &self.slots.iter().map(|s| s.batch).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn backend(file: &str, what: &str, e: impl std::fmt::Display) -> ModelError {
    ModelError::Backend(format!("{file}: {what}: {e}"))
}

impl<const N: usize> Graph<N> {
    /// Loads `dir/file` and checks its signature against the contract.
    pub(crate) fn load(
        dir: &Path,
        file: &'static str,
        inputs: [Port; N],
        output: Port,
        settings: SessionSettings,
    ) -> Result<Self, ModelError> {
        let path = dir.join(file);
        check_file(dir, file, MAX_GRAPH_BYTES)?;
        let env = super::runtime::environment()?;
        let session = Session::builder(env)
            .map_err(|e| backend(file, "session builder", e))?
            .with_intra_threads(settings.intra_threads)
            .map_err(|e| backend(file, "intra-op threads", e))?
            .with_inter_threads(1)
            .map_err(|e| backend(file, "inter-op threads", e))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| backend(file, "optimisation level", e))?
            .commit_from_file(&path)
            .map_err(|e| {
                ModelError::Invalid(format!(
                    "bundle {}: {file} could not be loaded by ONNX Runtime (not a valid ONNX \
                     model?): {e}",
                    dir.display()
                ))
            })?;
        let declared_in: Vec<Declared> = session
            .inputs()
            .iter()
            .map(|o| Declared::of(o.name(), o.dtype()))
            .collect();
        let declared_out: Vec<Declared> = session
            .outputs()
            .iter()
            .map(|o| Declared::of(o.name(), o.dtype()))
            .collect();
        let at = |m: ModelError| match m {
            ModelError::Invalid(m) => ModelError::Invalid(format!("bundle {}: {m}", dir.display())),
            other => other,
        };
        let found = check_ports(file, "input", &declared_in, &inputs).map_err(at)?;
        check_ports(file, "output", &declared_out, &[output]).map_err(at)?;
        let mut positions = [0; N];
        let mut widths = [0; N];
        for ((slot, &pos), port) in positions.iter_mut().zip(&found).zip(&inputs) {
            *slot = pos;
            let Some(w) = widths.get_mut(pos) else {
                return Err(at(ModelError::Invalid(format!(
                    "{file}: input positions out of range"
                ))));
            };
            *w = port.width;
        }
        Ok(Self {
            file,
            session,
            inputs,
            positions,
            widths,
            output,
            slots: Vec::with_capacity(SLOTS),
            clock: 0,
        })
    }

    /// Index of the slot for `batch`, created (evicting the least recently
    /// used one when full) if needed.
    fn slot(&mut self, batch: usize) -> Result<usize, ModelError> {
        self.clock += 1;
        if let Some(i) = self.slots.iter().position(|s| s.batch == batch) {
            if let Some(s) = self.slots.get_mut(i) {
                s.used = self.clock;
            }
            return Ok(i);
        }
        let file = self.file;
        let mut inputs = Vec::with_capacity(N);
        for &w in &self.widths {
            inputs.push(
                Tensor::<f32>::from_array(([batch, w], vec![0.0; batch * w]))
                    .map_err(|e| backend(file, "input tensor", e))?,
            );
        }
        let inputs: [Tensor<f32>; N] = inputs
            .try_into()
            .map_err(|_| backend(file, "input tensors", "wrong count"))?;
        let w = self.output.width;
        let out = Tensor::<f32>::from_array(([batch, w], vec![0.0; batch * w]))
            .map_err(|e| backend(file, "output tensor", e))?;
        let options = RunOptions::new()
            .map_err(|e| backend(file, "run options", e))?
            .with_outputs(
                OutputSelector::no_default()
                    .with(self.output.name)
                    .preallocate(self.output.name, out),
            );
        let slot = Slot {
            batch,
            inputs,
            options,
            used: self.clock,
        };
        if self.slots.len() < SLOTS {
            self.slots.push(slot);
            return Ok(self.slots.len() - 1);
        }
        let (lru, _) = self
            .slots
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.used)
            .ok_or_else(|| backend(file, "slots", "none"))?;
        if let Some(s) = self.slots.get_mut(lru) {
            *s = slot;
        }
        Ok(lru)
    }

    /// Runs the graph on `batch` rows: `srcs` in contract order (the first
    /// normalised by `norm` when given), the output converted into `out`.
    pub(crate) fn run(
        &mut self,
        batch: usize,
        srcs: [&[Real]; N],
        norm: Option<&Normalisation>,
        out: &mut [Real],
    ) -> Result<(), ModelError> {
        if batch == 0 {
            return Ok(());
        }
        let i = self.slot(batch)?;
        let file = self.file;
        let Some(slot) = self.slots.get_mut(i) else {
            return Err(backend(file, "slots", "lost"));
        };
        for (k, (src, &pos)) in srcs.iter().zip(&self.positions).enumerate() {
            let Some(t) = slot.inputs.get_mut(pos) else {
                return Err(backend(file, "inputs", "position out of range"));
            };
            let (_, dst) = t.extract_tensor_mut();
            match norm.filter(|_| k == 0) {
                Some(n) => normalise(dst, src, n),
                None => {
                    for (d, s) in dst.iter_mut().zip(src.iter()) {
                        *d = *s as f32;
                    }
                }
            }
        }
        let values: [SessionInputValue<'_>; N] =
            std::array::from_fn(|j| SessionInputValue::from(&slot.inputs[j]));
        let outputs = self
            .session
            .run_with_options(values, &slot.options)
            .map_err(|e| backend(file, "run", e))?;
        let Some(value) = outputs.get(self.output.name) else {
            return Err(backend(
                file,
                "run",
                format!("no output `{}`", self.output.name),
            ));
        };
        let (shape, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| backend(file, "output", e))?;
        let w = self.output.width;
        if shape.as_ref() != [batch as i64, w as i64] || data.len() != out.len() {
            return Err(ModelError::Backend(format!(
                "{file}: output `{}` has shape {shape:?}, expected [{batch}, {w}]",
                self.output.name
            )));
        }
        for (o, v) in out.iter_mut().zip(data) {
            *o = Real::from(*v);
        }
        Ok(())
    }
}

/// `dst = (src − mean) / std`, column by column, as float32.
fn normalise(dst: &mut [f32], src: &[Real], n: &Normalisation) {
    let o = n.mean.len().max(1);
    for (drow, srow) in dst.chunks_mut(o).zip(src.chunks(o)) {
        for (((d, s), m), sd) in drow.iter_mut().zip(srow).zip(&n.mean).zip(&n.std) {
            *d = ((s - m) / sd) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(name: &str, elem: &str, shape: Option<&[i64]>) -> Declared {
        Declared {
            name: name.into(),
            elem: elem.into(),
            shape: shape.map(<[i64]>::to_vec),
        }
    }

    const Z: Port = Port {
        name: "z",
        width: 4,
        field: "latent_dim",
    };
    const U: Port = Port {
        name: "u",
        width: 2,
        field: "actions",
    };

    #[test]
    fn binds_inputs_by_name_in_any_order() {
        let d = [
            decl("u", "f32", Some(&[-1, 2])),
            decl("z", "f32", Some(&[-1, -1])),
        ];
        assert_eq!(
            check_ports("predict.onnx", "input", &d, &[Z, U]).unwrap(),
            [1, 0]
        );
    }

    #[test]
    fn names_graph_tensor_and_mismatch() {
        let cases: [(Vec<Declared>, &str); 7] = [
            (
                vec![
                    decl("x", "f32", Some(&[-1, 4])),
                    decl("u", "f32", Some(&[-1, 2])),
                ],
                "unexpected input `x`",
            ),
            (vec![decl("z", "f32", Some(&[-1, 4]))], "no input named `u`"),
            (
                vec![
                    decl("z", "f64", Some(&[-1, 4])),
                    decl("u", "f32", Some(&[-1, 2])),
                ],
                "input `z` has element type f64",
            ),
            (
                vec![
                    decl("z", "f32", Some(&[-1, 1, 4])),
                    decl("u", "f32", Some(&[-1, 2])),
                ],
                "input `z` has rank 3",
            ),
            (
                vec![
                    decl("z", "f32", Some(&[1, 4])),
                    decl("u", "f32", Some(&[-1, 2])),
                ],
                "input `z` has a fixed batch dimension of 1",
            ),
            (
                vec![
                    decl("z", "f32", Some(&[-1, 5])),
                    decl("u", "f32", Some(&[-1, 2])),
                ],
                "input `z` has width 5, but the manifest's latent_dim gives 4",
            ),
            (
                vec![
                    decl("z", "seq(f32)", None),
                    decl("u", "f32", Some(&[-1, 2])),
                ],
                "input `z` is a seq(f32)",
            ),
        ];
        for (declared, want) in cases {
            let e = check_ports("predict.onnx", "input", &declared, &[Z, U])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("predict.onnx") && e.contains(want),
                "{want}: {e}"
            );
        }
    }

    #[test]
    fn normalises_per_column() {
        let n = Normalisation {
            mean: vec![1.0, -1.0],
            std: vec![2.0, 0.5],
        };
        let mut dst = [0.0f32; 4];
        normalise(&mut dst, &[3.0, 0.0, 1.0, -1.5], &n);
        assert_eq!(dst, [1.0, 2.0, 0.0, -1.0]);
    }
}
