//! The tensors of the bundle contract and the load-time check of a graph's
//! declared inputs and outputs against them.

use crate::error::ModelError;
use crate::model::ImageSpec;
use ort::value::{TensorElementType, ValueType};

/// Element type of a contract tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    /// float32: every vector tensor, and a `float32` image.
    F32,
    /// uint8: a `uint8` image.
    U8,
}

impl Elem {
    /// The name ONNX Runtime gives the type (`Declared::elem`).
    fn short(self) -> &'static str {
        match self {
            Elem::F32 => "f32",
            Elem::U8 => "u8",
        }
    }

    /// The name the manifest gives it.
    fn long(self) -> &'static str {
        match self {
            Elem::F32 => "float32",
            Elem::U8 => "uint8",
        }
    }
}

/// One tensor of the bundle contract: `name` is `[batch, width]` (or, for
/// an image, `[batch, C, H, W]` with `width = C·H·W`), and its sizes come
/// from the manifest field `field`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Port {
    pub name: &'static str,
    /// Values per batch row.
    pub width: usize,
    pub field: &'static str,
    pub elem: Elem,
    /// `Some` for the image input: rank 4 with these sizes after the batch.
    pub image: Option<ImageSpec>,
}

impl Port {
    /// A float32 `[batch, width]` tensor.
    pub(crate) const fn vector(name: &'static str, width: usize, field: &'static str) -> Self {
        Self {
            name,
            width,
            field,
            elem: Elem::F32,
            image: None,
        }
    }

    /// The `[batch, C, H, W]` image input of `encode.onnx`.
    pub(crate) fn image(image: ImageSpec, elem: Elem) -> Self {
        Self {
            name: "image",
            width: image.len(),
            field: "image",
            elem,
            image: Some(image),
        }
    }

    /// The batch shape of this tensor: `[batch, width]` or `[batch, C, H, W]`.
    pub(crate) fn shape(&self, batch: usize) -> Vec<usize> {
        match self.image {
            Some(i) => vec![batch, i.channels, i.height, i.width],
            None => vec![batch, self.width],
        }
    }

    /// The shape the contract asks for, as messages write it.
    fn wanted(&self) -> String {
        match self.image {
            Some(i) => format!("[batch, {}, {}, {}]", i.channels, i.height, i.width),
            None => format!("[batch, {}]", self.width),
        }
    }

    /// The sizes after the batch axis, each with the manifest key that sets it.
    fn sizes(&self) -> Vec<(usize, &'static str, &'static str)> {
        match self.image {
            Some(i) => vec![
                (i.channels, "channels", "image.channels"),
                (i.height, "height", "image.height"),
                (i.width, "width", "image.width"),
            ],
            None => vec![(self.width, "width", self.field)],
        }
    }
}

/// What a graph declares for one of its inputs or outputs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Declared {
    pub name: String,
    /// Element type, e.g. `f32` or `u8`, or the kind of a non-tensor value.
    pub elem: String,
    /// Dimensions (`-1` when dynamic); `None` for non-tensor values.
    pub shape: Option<Vec<i64>>,
}

impl Declared {
    pub(crate) fn of(name: &str, ty: &ValueType) -> Self {
        match ty {
            ValueType::Tensor { ty, shape, .. } => Declared {
                name: name.to_string(),
                elem: match ty {
                    TensorElementType::Float32 => "f32".into(),
                    TensorElementType::Uint8 => "u8".into(),
                    other => other.to_string(),
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
        check_port(kind, port, d).map_err(|m| ModelError::Invalid(format!("{file}: {m}")))?;
        positions.push(pos);
    }
    Ok(positions)
}

/// Checks one declared tensor against its port: element type, rank, a
/// dynamic batch axis and static sizes equal to the manifest's.
fn check_port(kind: &str, port: &Port, d: &Declared) -> Result<(), String> {
    let (name, want) = (port.name, port.wanted());
    let (short, long) = (port.elem.short(), port.elem.long());
    let Some(shape) = &d.shape else {
        return Err(format!(
            "{kind} `{name}` is a {}, expected a {long} tensor {want}",
            d.elem
        ));
    };
    if d.elem != short {
        let by = if port.image.is_some() {
            " (the manifest's image.dtype)"
        } else {
            ""
        };
        return Err(format!(
            "{kind} `{name}` has element type {}, expected {short} ({long}){by}",
            d.elem
        ));
    }
    let sizes = port.sizes();
    let Some((&batch, dims)) = shape.split_first().filter(|(_, d)| d.len() == sizes.len()) else {
        return Err(format!(
            "{kind} `{name}` has rank {} (shape {shape:?}), expected rank {} {want}",
            shape.len(),
            sizes.len() + 1
        ));
    };
    if batch >= 0 {
        return Err(format!(
            "{kind} `{name}` has a fixed batch dimension of {batch}; export it as a dynamic \
             axis ({want})"
        ));
    }
    for (&dim, (size, what, key)) in dims.iter().zip(sizes) {
        if dim >= 0 && usize::try_from(dim).ok() != Some(size) {
            return Err(format!(
                "{kind} `{name}` has {what} {dim}, but the manifest's {key} gives {size} ({want})"
            ));
        }
    }
    Ok(())
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

    const Z: Port = Port::vector("z", 4, "latent_dim");
    const U: Port = Port::vector("u", 2, "actions");

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
    fn an_image_input_is_rank_four_with_the_manifests_sizes() {
        let spec = ImageSpec {
            channels: 3,
            height: 16,
            width: 16,
        };
        let image = Port::image(spec, Elem::U8);
        let obs = Port::vector("obs", 2, "observations");
        let ok = [
            decl("obs", "f32", Some(&[-1, 2])),
            decl("image", "u8", Some(&[-1, 3, -1, 16])),
        ];
        assert_eq!(
            check_ports("encode.onnx", "input", &ok, &[image, obs]).unwrap(),
            [1, 0]
        );
        let cases: [(&[i64], &str, &str); 5] = [
            (
                &[-1, 3, 16, 16],
                "f32",
                "has element type f32, expected u8 (uint8)",
            ),
            (
                &[-1, 3, 256],
                "u8",
                "has rank 3 (shape [-1, 3, 256]), expected rank 4",
            ),
            (
                &[-1, 1, 16, 16],
                "u8",
                "has channels 1, but the manifest's image.channels gives 3",
            ),
            (
                &[-1, 3, 32, 16],
                "u8",
                "has height 32, but the manifest's image.height gives 16",
            ),
            (&[4, 3, 16, 16], "u8", "fixed batch dimension of 4"),
        ];
        for (shape, elem, want) in cases {
            let d = [decl("image", elem, Some(shape))];
            let e = check_ports("encode.onnx", "input", &d, &[image])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("input `image`") && e.contains(want),
                "{want}: {e}"
            );
        }
        let e = check_ports("encode.onnx", "input", &ok[..1], &[image, obs])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no input named `image`"), "{e}");
    }
}
