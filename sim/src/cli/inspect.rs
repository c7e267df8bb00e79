//! `telic inspect`: a world-model bundle loaded, summarised and checked
//! against its `reference.json`.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub(crate) struct InspectArgs {
    /// The bundle folder.
    bundle: PathBuf,
    /// Largest allowed |difference| from `reference.json`.
    #[arg(long, default_value_t = 1e-4)]
    tolerance: f64,
}

/// Reads `path` as text, refusing anything but a regular file (or a link to
/// one) of at most `max` bytes.
#[cfg(feature = "onnx")]
fn read_capped(path: &std::path::Path, max: u64) -> Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() || meta.len() > max {
        bail!(
            "{} is not a regular file of at most {max} bytes",
            path.display()
        );
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max).read_to_string(&mut text))
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(text)
}

#[cfg(not(feature = "onnx"))]
pub(crate) fn inspect(_args: &InspectArgs) -> Result<()> {
    bail!("`telic inspect` needs telic-sim built with the `onnx` feature")
}

/// Prints what the manifest of the bundle in `bundle` says.
#[cfg(feature = "onnx")]
fn print_manifest(bundle: &std::path::Path, m: &telic::model::bundle::Manifest) {
    println!("bundle       {}", bundle.display());
    println!("name         {} (format {})", m.name, m.format_version);
    println!("dt           {} s", m.dt);
    if let Some(i) = &m.image {
        println!(
            "image        {}×{}×{} {} {}, layout {}: the head of each observation",
            i.channels,
            i.height,
            i.width,
            i.dtype.name(),
            i.channel_order.name(),
            i.layout.name()
        );
    }
    println!(
        "observations {} [{}]",
        m.observations.len(),
        m.observations.join(", ")
    );
    let actions: Vec<String> = m
        .actions
        .iter()
        .map(|a| format!("{} in [{}, {}]", a.name, a.lower, a.upper))
        .collect();
    println!("actions      {} [{}]", actions.len(), actions.join(", "));
    println!("latent       {}", m.latent_dim);
    println!(
        "readouts     {} [{}]",
        m.readouts.len(),
        m.readouts.join(", ")
    );
    println!(
        "provenance   scene {}, {} samples, {} episodes, seed {}",
        m.provenance.scene, m.provenance.samples, m.provenance.episodes, m.provenance.seed
    );
    if let Some(q) = &m.readout_error_quantiles {
        println!(
            "error margins quantile {} over {} steps for {} readouts",
            q.quantile,
            q.horizon(),
            q.margins.len()
        );
    }
}

/// `telic inspect`: loads the bundle, prints its manifest and checks its
/// graphs against `reference.json`.
#[cfg(feature = "onnx")]
pub(crate) fn inspect(args: &InspectArgs) -> Result<()> {
    use telic::WorldModel;
    crate::onnx_runtime::locate()?;
    let mut model = telic::model::OnnxModel::load(&args.bundle)?;
    print_manifest(&args.bundle, model.manifest());
    let reference = args.bundle.join("reference.json");
    if !reference.exists() {
        println!("reference    none (no reference.json): parity not checked");
        return Ok(());
    }
    let text = read_capped(&reference, 256 << 20)?;
    let r: std::collections::BTreeMap<String, Vec<f64>> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a reference file", reference.display()))?;
    let get = |k: &str| {
        r.get(k)
            .cloned()
            .with_context(|| format!("{} lacks `{k}`", reference.display()))
    };
    let (obs, u, z_ref, z_next_ref, y_ref) =
        (get("obs")?, get("u")?, get("z")?, get("z_next")?, get("y")?);
    let spec = model.spec().clone();
    // Flat rows: an image's C·H·W pixels (if any), then the vector entries.
    let b = obs.len() / spec.obs_dim().max(1);
    let mut z = vec![0.0; b * spec.latent_dim];
    let mut z_next = vec![0.0; b * spec.latent_dim];
    let mut y = vec![0.0; b * spec.readout_dim()];
    let dir = args.bundle.display();
    model
        .encode(&obs, &mut z)
        .with_context(|| format!("bundle {dir}: encode.onnx on the reference inputs"))?;
    model
        .predict(&z_ref, &u, &mut z_next)
        .with_context(|| format!("bundle {dir}: predict.onnx on the reference inputs"))?;
    model
        .readout(&z_ref, &mut y)
        .with_context(|| format!("bundle {dir}: readout.onnx on the reference inputs"))?;
    // The reference inputs are real observations and latents: every output
    // must be finite, and NaN, which compares false with everything, is a
    // mismatch (a NaN difference would vanish in a running maximum).
    let diff = |graph: &str, a: &[f64], b: &[f64]| -> Result<f64> {
        if a.len() != b.len() {
            bail!(
                "reference sizes do not match the bundle ({} vs {})",
                a.len(),
                b.len()
            );
        }
        if let Some(i) = a.iter().position(|x| !x.is_finite()) {
            bail!(
                "bundle {dir}: {graph}.onnx returned {} at index {i} on the reference inputs",
                a[i]
            );
        }
        let mut worst = 0.0;
        for (x, y) in a.iter().zip(b) {
            let d = (x - y).abs();
            if !(d <= worst) {
                worst = if d.is_nan() { f64::INFINITY } else { d };
            }
        }
        Ok(worst)
    };
    let d = [
        ("encode", diff("encode", &z, &z_ref)?),
        ("predict", diff("predict", &z_next, &z_next_ref)?),
        ("readout", diff("readout", &y, &y_ref)?),
    ];
    let worst = d.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    println!(
        "reference    {b} rows: max |Rust - reference| encode {:.2e}, predict {:.2e}, readout {:.2e}",
        d[0].1, d[1].1, d[2].1
    );
    if !(worst <= args.tolerance) {
        bail!(
            "the bundle's graphs differ from its reference by {worst:.3e} > {:.1e}",
            args.tolerance
        );
    }
    println!(
        "parity       ok (max {worst:.2e} <= {:.1e})",
        args.tolerance
    );
    Ok(())
}
