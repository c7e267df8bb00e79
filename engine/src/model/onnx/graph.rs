//! One ONNX graph of a bundle: its session, its checked signature, and the
//! input/output tensors reused between calls.

use super::super::bundle::{MAX_GRAPH_BYTES, Normalisation, check_file};
use super::port::{Declared, Elem, Port, check_ports};
use crate::Real;
use crate::error::ModelError;
use ort::session::{
    HasSelectedOutputs, OutputSelector, RunOptions, Session, SessionInputValue,
    builder::GraphOptimizationLevel,
};
use ort::value::Tensor;
use std::path::Path;

/// Session options of a bundle's graphs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionSettings {
    pub intra_threads: usize,
}

/// How many batch sizes keep their tensors; the planner uses two (`N`
/// samples and 1), finite-difference Jacobians two more.
const SLOTS: usize = 4;

/// One input tensor, of the element type its port has.
enum Input {
    F32(Tensor<f32>),
    U8(Tensor<u8>),
}

impl Input {
    /// A zeroed tensor for `port` and `batch` rows.
    fn new(file: &str, port: &Port, batch: usize) -> Result<Self, ModelError> {
        let (shape, n) = (port.shape(batch), batch * port.width);
        let made = match port.elem {
            Elem::F32 => Tensor::<f32>::from_array((shape, vec![0.0; n])).map(Input::F32),
            Elem::U8 => Tensor::<u8>::from_array((shape, vec![0; n])).map(Input::U8),
        };
        made.map_err(|e| backend(file, "input tensor", e))
    }

    /// Writes `batch` rows of `feed`, each `width` values, into the tensor:
    /// float32 as they are (or normalised), uint8 rounded (`check_encode`
    /// has checked that pixels are within `0..=255`).
    fn fill(
        &mut self,
        file: &str,
        feed: &Feed<'_>,
        width: usize,
        batch: usize,
    ) -> Result<(), ModelError> {
        let rows = (0..batch).map(|r| {
            let start = r * feed.stride + feed.offset;
            (
                r * width..(r + 1) * width,
                feed.data.get(start..start + width),
            )
        });
        let mut complete = true;
        match self {
            Input::F32(t) => {
                let data = t.extract_tensor_mut().1;
                for (to, src) in rows {
                    let (Some(dst), Some(src)) = (data.get_mut(to), src) else {
                        complete = false;
                        break;
                    };
                    match feed.norm {
                        Some(n) => normalise(dst, src, n),
                        None => dst.iter_mut().zip(src).for_each(|(d, s)| *d = *s as f32),
                    }
                }
            }
            Input::U8(t) => {
                let data = t.extract_tensor_mut().1;
                for (to, src) in rows {
                    let (Some(dst), Some(src)) = (data.get_mut(to), src) else {
                        complete = false;
                        break;
                    };
                    dst.iter_mut()
                        .zip(src)
                        .for_each(|(d, s)| *d = s.round().clamp(0.0, 255.0) as u8);
                }
            }
        }
        if complete {
            Ok(())
        } else {
            Err(backend(
                file,
                "inputs",
                format!("{batch} rows of {width} values do not fit the buffers"),
            ))
        }
    }

    fn value(&self) -> SessionInputValue<'_> {
        match self {
            Input::F32(t) => SessionInputValue::from(t),
            Input::U8(t) => SessionInputValue::from(t),
        }
    }
}

/// Tensors bound for one batch size: inputs in the graph's order, and run
/// options that preallocate the output.
struct Slot<const N: usize> {
    batch: usize,
    inputs: [Input; N],
    options: RunOptions<HasSelectedOutputs>,
    used: u64,
}

/// Where the rows of one input come from: row `r` is
/// `data[r·stride + offset ..][.. width]`, so that one flat observation
/// (image pixels, then vector entries) feeds two inputs; `norm`, when
/// given, normalises the values as the manifest says.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Feed<'a> {
    data: &'a [Real],
    stride: usize,
    offset: usize,
    norm: Option<&'a Normalisation>,
}

impl<'a> Feed<'a> {
    /// Rows of `width` values, back to back.
    pub(crate) fn rows(data: &'a [Real], width: usize) -> Self {
        Self::columns(data, width, 0)
    }

    /// The columns from `offset` on of rows `stride` values apart.
    pub(crate) fn columns(data: &'a [Real], stride: usize, offset: usize) -> Self {
        Self {
            data,
            stride,
            offset,
            norm: None,
        }
    }

    /// The same rows, normalised by `norm` when there is one.
    pub(crate) fn normalised(self, norm: Option<&'a Normalisation>) -> Self {
        Self { norm, ..self }
    }
}

/// A loaded graph with `N` inputs and one output.
pub(crate) struct Graph<const N: usize> {
    file: &'static str,
    session: Session,
    /// Contract inputs, in contract order.
    inputs: [Port; N],
    /// Graph position of each contract input.
    positions: [usize; N],
    /// Contract inputs in the graph's input order.
    in_graph_order: [Port; N],
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
        let mut in_graph_order = inputs;
        for ((slot, &pos), port) in positions.iter_mut().zip(&found).zip(&inputs) {
            *slot = pos;
            let Some(p) = in_graph_order.get_mut(pos) else {
                return Err(at(ModelError::Invalid(format!(
                    "{file}: input positions out of range"
                ))));
            };
            *p = *port;
        }
        Ok(Self {
            file,
            session,
            inputs,
            positions,
            in_graph_order,
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
        for port in &self.in_graph_order {
            inputs.push(Input::new(file, port, batch)?);
        }
        let inputs: [Input; N] = inputs
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

    /// Runs the graph on `batch` rows: `feeds` in contract order, the
    /// output converted into `out`.
    pub(crate) fn run(
        &mut self,
        batch: usize,
        feeds: [Feed<'_>; N],
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
        for ((feed, &pos), port) in feeds.iter().zip(&self.positions).zip(&self.inputs) {
            let Some(t) = slot.inputs.get_mut(pos) else {
                return Err(backend(file, "inputs", "position out of range"));
            };
            t.fill(file, feed, port.width, batch)?;
        }
        let values: [SessionInputValue<'_>; N] = std::array::from_fn(|j| slot.inputs[j].value());
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
