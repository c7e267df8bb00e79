//! The weight matrices of an ONNX graph, read straight from its protobuf:
//! what a dense layer costs per row (`2·in·out` FLOPs per matrix), without a
//! protobuf library.
//!
//! The path walked is `ModelProto.graph` (field 7) → `GraphProto.initializer`
//! (field 5) → `TensorProto.dims` (field 1, packed or not) and `.name` (field 8).

/// A two-dimensional initializer (a dense layer's weights) of a graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matrix {
    /// Initializer name.
    pub name: String,
    /// Its two sizes, as stored.
    pub rows: usize,
    /// See `rows`.
    pub cols: usize,
}

impl Matrix {
    /// Multiply-add FLOPs per input row: `2·rows·cols`.
    #[must_use]
    pub fn flops_per_row(&self) -> f64 {
        2.0 * self.rows as f64 * self.cols as f64
    }
}

/// The weight matrices (initializers with two sizes, both above 1) of the
/// ONNX model in `bytes`, in file order.
pub fn matrices(bytes: &[u8]) -> Result<Vec<Matrix>, String> {
    let mut out = Vec::new();
    for (field, value) in fields(bytes)? {
        if let (7, Value::Bytes(graph)) = (field, value) {
            for (f, v) in fields(graph)? {
                if let (5, Value::Bytes(tensor)) = (f, v) {
                    let (name, dims) = tensor_dims(tensor)?;
                    if let [r, c] = dims[..]
                        && r > 1
                        && c > 1
                    {
                        out.push(Matrix {
                            name,
                            rows: r,
                            cols: c,
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

fn tensor_dims(tensor: &[u8]) -> Result<(String, Vec<usize>), String> {
    let mut dims = Vec::new();
    let mut name = String::new();
    for (f, v) in fields(tensor)? {
        match (f, v) {
            (1, Value::Varint(d)) => dims.push(d as usize),
            (1, Value::Bytes(packed)) => {
                let mut at = 0;
                while at < packed.len() {
                    dims.push(varint(packed, &mut at)? as usize);
                }
            }
            (8, Value::Bytes(s)) => name = String::from_utf8_lossy(s).into_owned(),
            _ => {}
        }
    }
    Ok((name, dims))
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The top-level fields of one protobuf message.
fn fields(buf: &[u8]) -> Result<Vec<(u64, Value<'_>)>, String> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < buf.len() {
        let key = varint(buf, &mut at)?;
        let (field, wire) = (key >> 3, key & 7);
        let value = match wire {
            0 => Value::Varint(varint(buf, &mut at)?),
            1 => {
                at = skip(buf, at, 8)?;
                Value::Fixed
            }
            2 => {
                let len = varint(buf, &mut at)? as usize;
                let end = skip(buf, at, len)?;
                let bytes = &buf[at..end];
                at = end;
                Value::Bytes(bytes)
            }
            5 => {
                at = skip(buf, at, 4)?;
                Value::Fixed
            }
            w => return Err(format!("unsupported protobuf wire type {w}")),
        };
        out.push((field, value));
    }
    Ok(out)
}

fn skip(buf: &[u8], at: usize, n: usize) -> Result<usize, String> {
    at.checked_add(n)
        .filter(|end| *end <= buf.len())
        .ok_or_else(|| "truncated protobuf".to_string())
}

fn varint(buf: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut x = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(b) = buf.get(*at) else {
            return Err("truncated protobuf varint".into());
        };
        *at += 1;
        x |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(x);
        }
    }
    Err("protobuf varint too long".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_layers_of_a_shipped_predictor() {
        let dir = crate::scenario::models_dir().join("reach");
        let bytes = std::fs::read(dir.join("predict.onnx")).unwrap();
        let m = matrices(&bytes).unwrap();
        // The reach predictor: (latent 32 + action 3) → 256 → 256 → 32, as
        // its manifest's provenance says (hidden 256, latent 32).
        let sizes: Vec<(usize, usize)> = m
            .iter()
            .map(|m| (m.rows.min(m.cols), m.rows.max(m.cols)))
            .collect();
        assert!(sizes.contains(&(256, 256)), "{sizes:?}");
        assert!(sizes.contains(&(32, 256)), "{sizes:?}");
        assert!(matrices(&bytes[..bytes.len() / 2]).is_err());
    }
}
