//! The machine's f32 matrix-multiply rate as ONNX Runtime reaches it: a
//! one-node `MatMul` graph, written in memory, run by the same runtime and
//! settings (one intra-op thread) as a bundle's graphs. The reference a
//! learned model's FLOP rate is measured against (`telic bench`).

use ort::session::builder::GraphOptimizationLevel;
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session};
use ort::value::Tensor;
use std::time::Instant;
use telic::ModelError;
use telic::model::onnx::onnx_environment as environment;

/// Seconds ONNX Runtime takes for one `[rows × k]·[k × n]` f32 `MatMul`, on
/// one thread (the best of three rounds of [`MatmulTimer::seconds`]).
pub fn matmul_seconds(rows: usize, k: usize, n: usize) -> Result<f64, ModelError> {
    let mut timer = MatmulTimer::new(rows, k, n)?;
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        best = best.min(timer.seconds()?);
    }
    Ok(best)
}

/// One `[rows × k]·[k × n]` f32 `MatMul` graph in a session of its own (one
/// intra-op thread), with its inputs, ready to be timed again and again:
/// `telic bench` times it between planning calls, so that the model and
/// the reference share the machine's load of the moment.
pub struct MatmulTimer {
    session: Session,
    a: Tensor<f32>,
    b: Tensor<f32>,
    /// The output written into a tensor allocated once, as a bundle's
    /// graphs do: an allocation per product would slow the reference.
    options: RunOptions<HasSelectedOutputs>,
    reps: usize,
}

impl std::fmt::Debug for MatmulTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatmulTimer")
            .field("a", &self.a.shape())
            .field("b", &self.b.shape())
            .field("reps", &self.reps)
            .finish_non_exhaustive()
    }
}

fn fail(what: &str, e: &dyn std::fmt::Display) -> ModelError {
    ModelError::Backend(format!("matmul reference: {what}: {e}"))
}

impl MatmulTimer {
    /// The graph for these sizes, compiled.
    pub fn new(rows: usize, k: usize, n: usize) -> Result<Self, ModelError> {
        let model = matmul_model(rows, k, n);
        let session = Session::builder(environment()?)
            .map_err(|e| fail("session builder", &e))?
            .with_intra_threads(1)
            .map_err(|e| fail("threads", &e))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| fail("optimisation", &e))?
            .commit_from_memory(&model)
            .map_err(|e| fail("graph", &e))?;
        let a: Vec<f32> = (0..rows * k).map(|i| (i % 13) as f32 * 0.01).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 11) as f32 * 0.01).collect();
        let a = Tensor::<f32>::from_array(([rows, k], a)).map_err(|e| fail("tensor", &e))?;
        let b = Tensor::<f32>::from_array(([k, n], b)).map_err(|e| fail("tensor", &e))?;
        let c = Tensor::<f32>::from_array(([rows, n], vec![0.0; rows * n]))
            .map_err(|e| fail("tensor", &e))?;
        let options = RunOptions::new()
            .map_err(|e| fail("run options", &e))?
            .with_outputs(OutputSelector::no_default().with("C").preallocate("C", c));
        let flops = 2.0 * (rows * k * n) as f64;
        let reps = ((2e8 / flops).ceil() as usize).clamp(3, 20_000);
        Ok(Self {
            session,
            a,
            b,
            options,
            reps,
        })
    }

    /// Seconds per product, the mean of one round of repetitions (about
    /// 0.2 GFLOP in all).
    pub fn seconds(&mut self) -> Result<f64, ModelError> {
        let t = Instant::now();
        for _ in 0..self.reps {
            let out = self
                .session
                .run_with_options(ort::inputs!["A" => &self.a, "B" => &self.b], &self.options)
                .map_err(|e| fail("run", &e))?;
            std::hint::black_box(&out);
        }
        Ok(t.elapsed().as_secs_f64() / self.reps as f64)
    }
}

/// An ONNX model (IR 8, opset 17) computing `C = A·B` for `A: [rows, k]`,
/// `B: [k, n]`, both inputs, as protobuf bytes.
fn matmul_model(rows: usize, k: usize, n: usize) -> Vec<u8> {
    let tensor_type = |dims: &[usize]| {
        let mut shape = Vec::new();
        for d in dims {
            shape.extend(field(1, &varint_field(1, *d as u64)));
        }
        let mut tensor = varint_field(1, 1); // elem_type FLOAT
        tensor.extend(field(2, &shape));
        field(1, &tensor) // TypeProto.tensor_type
    };
    let value_info = |name: &str, dims: &[usize]| {
        let mut v = field(1, name.as_bytes());
        v.extend(field(2, &tensor_type(dims)));
        v
    };
    let mut node = field(1, b"A");
    node.extend(field(1, b"B"));
    node.extend(field(2, b"C"));
    node.extend(field(4, b"MatMul"));
    let mut graph = field(1, &node);
    graph.extend(field(2, b"matmul"));
    graph.extend(field(11, &value_info("A", &[rows, k])));
    graph.extend(field(11, &value_info("B", &[k, n])));
    graph.extend(field(12, &value_info("C", &[rows, n])));
    let mut opset = field(1, b"");
    opset.extend(varint_field(2, 17));
    let mut model = varint_field(1, 8); // ir_version
    model.extend(field(7, &graph));
    model.extend(field(8, &opset));
    model
}

fn varint(mut x: u64, out: &mut Vec<u8>) {
    loop {
        let b = (x & 0x7f) as u8;
        x >>= 7;
        if x == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn varint_field(number: u64, value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(number << 3, &mut out);
    varint(value, &mut out);
    out
}

fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint((number << 3) | 2, &mut out);
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}
