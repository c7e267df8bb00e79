//! `telic bench`: planning speed on this machine.

use crate::limits;
use crate::scenario::ModelChoice;
use anyhow::{Context, Result};

#[derive(clap::Args, Debug)]
pub(crate) struct BenchArgs {
    /// Scene (or scenario) whose objective, models and planner are used;
    /// the default re-plans within a control period, so that the control
    /// ticks step through plans rather than time the fallback.
    #[arg(default_value = "reach_realtime")]
    scene: String,
    /// Samples of the FLOP-rate measurement.
    #[arg(long, default_value_t = 1024)]
    samples: usize,
    /// Horizon of the FLOP-rate measurement.
    #[arg(long, default_value_t = 32)]
    horizon: usize,
    /// Planning calls timed per setting.
    #[arg(long, default_value_t = 5)]
    calls: usize,
    /// Control ticks of the tick-latency measurement.
    #[arg(long, default_value_t = 100_000)]
    ticks: usize,
    /// Control-tick rate (Hz).
    #[arg(long, default_value_t = 1000.0)]
    hz: f64,
    /// Measure ticks without loading the cores.
    #[arg(long)]
    no_load: bool,
    /// Run the control thread at normal priority (default: real-time
    /// SCHED_FIFO priority, as robot control loops run, when allowed).
    #[arg(long)]
    no_realtime: bool,
    /// The control thread sleeps until this many µs before each tick and
    /// busy-waits from there (0: sleeps until the tick itself).
    #[arg(long, default_value_t = 200)]
    spin_us: u64,
    /// Only the named parts: matmul, latency, nav2, ticks, render (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// (Internal) spin until killed: the load of the tick measurement.
    #[arg(long, hide = true)]
    burn: bool,
}

/// Loads every core with a spinning child process until dropped.
struct Load(Vec<std::process::Child>);

impl Load {
    fn start() -> Result<Self> {
        let exe = std::env::current_exe().context("finding the telic program")?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let children = (0..cores)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args(["bench", "--burn"])
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .context("starting a load process")
            })
            .collect::<Result<_>>()?;
        Ok(Self(children))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `telic bench`: the parts asked for with `--only` (all by default), or
/// with `--burn` a spinning load process.
pub(crate) fn bench(args: &BenchArgs) -> Result<()> {
    if args.burn {
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    let origin = "command line";
    limits::check(origin, "--ticks", args.ticks, limits::MAX_BENCH_TICKS)?;
    limits::check(origin, "--calls", args.calls, limits::MAX_BENCH_CALLS)?;
    let part = |name: &str| args.only.is_empty() || args.only.iter().any(|p| p == name);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("telic bench {} — {cores} cores", args.scene);
    if part("matmul") {
        matmul(args)?;
    }
    if part("latency") {
        latency(args)?;
    }
    if part("nav2") {
        nav2(args)?;
    }
    if part("ticks") {
        ticks(args, cores)?;
    }
    if part("render") {
        render()?;
    }
    Ok(())
}

/// (e) Camera frames per second on one core, 64×64, for each shipped scene.
fn render() -> Result<()> {
    use crate::bench::render::render_rate;
    use crate::scene::camera::ImageSize;
    println!("\n(e) scene cameras: RGB frames rendered per second on one core");
    for scene in ["reach", "navigate", "push"] {
        let size = ImageSize::default();
        let rate = render_rate(scene, size, 2000)?;
        println!(
            "  {scene:<8} {}x{}: {rate:.0} frames/s per core",
            size.width(),
            size.height()
        );
    }
    Ok(())
}

/// (a) The learned model's FLOP rate inside MPPI against the machine's rate on its layer shapes.
fn matmul(args: &BenchArgs) -> Result<()> {
    use crate::bench;
    let m = bench::matmul(&args.scene, args.samples, args.horizon, args.calls)?;
    println!(
        "\n(a) learned model inside MPPI, {} samples × {} steps, 1 iteration, 1 ONNX Runtime thread",
        m.samples, m.horizon
    );
    println!("  each layer's matrix product alone (ONNX Runtime MatMul, f32, 1 thread):");
    for (rows, k, n, g) in &m.layers {
        println!("    [{rows:>5} × {k:>3}]·[{k:>3} × {n:>3}]  {g:6.1} GFLOP/s");
    }
    println!(
        "  dense-layer work per plan {:.2} GFLOP; plan {:.1} ms, of which model calls {:.1} ms",
        m.flops_per_plan * 1e-9,
        m.plan_seconds * 1e3,
        m.model_seconds * 1e3
    );
    println!(
        "  machine rate on these shapes {:.1} GFLOP/s; model inside MPPI {:.1} GFLOP/s = {:.0}% of it",
        m.machine_gflops(),
        m.model_gflops(),
        100.0 * m.efficiency()
    );
    if let (Some(lo), Some(hi)) = (m.shares.first(), m.shares.last()) {
        println!(
            "  (the median of {} rounds, each a plan and then the same products alone; rounds from {:.0}% to {:.0}%;\n   \
             against the fastest round of the products alone, {:.0}%)",
            m.shares.len(),
            100.0 * lo,
            100.0 * hi,
            100.0 * m.fastest_gemm_seconds / m.model_seconds
        );
    }
    Ok(())
}

/// (b) Plan latency against samples × horizon, analytic and learned.
fn latency(args: &BenchArgs) -> Result<()> {
    use crate::bench;
    let grid = [(256, 16), (256, 32), (1024, 16), (1024, 32)];
    println!(
        "\n(b) plan latency, MPPI 1 iteration, median of {} calls (ms)",
        args.calls
    );
    println!(
        "  {:>7} {:>7} {:>10} {:>10}",
        "samples", "horizon", "analytic", "learned"
    );
    let analytic = bench::latency(&args.scene, ModelChoice::Analytic, &grid, args.calls)?;
    let learned = bench::latency(&args.scene, ModelChoice::Default, &grid, args.calls)?;
    for ((s, h, a), (_, _, l)) in analytic.iter().zip(&learned) {
        println!("  {s:>7} {h:>7} {:>10.2} {:>10.2}", a * 1e3, l * 1e3);
    }
    Ok(())
}

/// (d) The MPPI-Generic / Nav2 problem, on one core and on all of them.
fn nav2(args: &BenchArgs) -> Result<()> {
    use crate::bench;
    let t = bench::nav2(args.calls, 1)?;
    let rate = 1024.0 * 100.0 / t;
    println!(
        "\n(d) the MPPI-Generic / Nav2 problem (navigate: unicycle, dt 0.02 s, 1024 samples × 100 steps, 1 iteration; its goal, effort and smoothness costs, clearance and speed guardrails)"
    );
    println!(
        "  plan {:.2} ms on one core = {:.1} M rollout-steps/s per core (Nav2's published figure: 1024 × 100 in 3.36 ms on an i9-13900K, 30 M/s)",
        t * 1e3,
        rate * 1e-6
    );
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores > 1 {
        let t = bench::nav2(args.calls, cores)?;
        println!(
            "  plan {:.2} ms with planner.threads = {cores} = {:.1} M rollout-steps/s on this machine",
            t * 1e3,
            1024.0 * 100.0 / t * 1e-6
        );
    }
    Ok(())
}

/// (c) Control-tick latency, with `cores` spinning processes loading the machine unless `--no-load`.
fn ticks(args: &BenchArgs, cores: usize) -> Result<()> {
    use crate::bench;
    let load = if args.no_load {
        None
    } else {
        Some(Load::start()?)
    };
    let t = bench::ticks(
        &args.scene,
        ModelChoice::Default,
        args.ticks,
        args.hz,
        !args.no_realtime,
        std::time::Duration::from_micros(args.spin_us),
    )?;
    drop(load);
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    println!(
        "\n(c) control ticks: {} at {} Hz, learned-model planner re-planning, {}",
        t.ticks,
        args.hz,
        if args.no_load {
            "no load".to_string()
        } else {
            format!("{cores} spinning processes loading every core")
        }
    );
    match &t.realtime {
        Ok(()) => println!(
            "  control thread at real-time priority (SCHED_FIFO 80), planner thread at normal priority"
        ),
        Err(why) => println!("  control thread at normal priority ({why})"),
    }
    if t.spin.is_zero() {
        println!("  each tick: sleep until it (clock_nanosleep, absolute)");
    } else {
        println!(
            "  each tick: sleep until {:.0} µs before it (clock_nanosleep, absolute), then busy-wait",
            us(t.spin)
        );
    }
    println!(
        "  observe+action latency p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        us(t.latency[0]),
        us(t.latency[1]),
        us(t.latency[2]),
        us(t.latency[3])
    );
    println!(
        "  wake-up lateness (guest OS and host) p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        us(t.wake[0]),
        us(t.wake[1]),
        us(t.wake[2]),
        us(t.wake[3])
    );
    let steal = t.steal.map_or("unknown".into(), |d| {
        format!("{:.0} ms", d.as_secs_f64() * 1e3)
    });
    println!(
        "  missed deadlines (action ready after its {:.0} µs period): {}; host steal time meanwhile (all CPUs): {steal}",
        us(t.period),
        t.missed,
    );
    println!(
        "  actions from plans {}, fallbacks {}; plans published {}",
        t.from_plan, t.fallback, t.plans
    );
    Ok(())
}
