//! A small, fast, seedable random number generator.
//!
//! Planners must be reproducible from a seed on every platform and across
//! dependency upgrades, so Telic carries its own generator (xoshiro256++,
//! seeded through SplitMix64) instead of relying on a crate whose stream may
//! change between versions. Normal deviates come from a 256-layer ziggurat
//! (Marsaglia and Tsang, 2000, with Doornik's 2005 fix of the layer/value bit
//! correlation): about 99% of draws cost one 64-bit word, a multiply and a
//! compare, where Box–Muller costs a logarithm, a square root and a sine.

use crate::Real;
use crate::math::{Wide, wide};
use std::sync::OnceLock;

/// xoshiro256++ by Blackman and Vigna, seeded with SplitMix64.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole stream is determined by `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self {
            s: [next(), next(), next(), next()],
        }
    }

    /// Stream `index` of the family `seed`: [`Rng::new`] of the two mixed,
    /// so that neighbouring indices start far apart (plain `seed + index`
    /// would share three of four seeding words between neighbours).
    /// Planners draw sample `i`'s noise from stream `i`, so that any thread
    /// can draw any sample.
    #[must_use]
    pub fn stream(seed: u64, index: usize) -> Self {
        let mut z = (index as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self::new(seed ^ z ^ (z >> 31))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> Real {
        (self.next_u64() >> 11) as Real * (1.0 / (1u64 << 53) as Real)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: Real, hi: Real) -> Real {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in `0..n` (`n > 0`; returns 0 for `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `(0, 1]`: never zero, so its logarithm is finite.
    fn uniform_open0(&mut self) -> Real {
        1.0 - self.uniform()
    }

    /// Standard normal deviate (ziggurat).
    #[inline]
    pub fn normal(&mut self) -> Real {
        let mut x = 0.0;
        self.fill_normal(std::slice::from_mut(&mut x));
        x
    }

    /// Fills `out` with standard normal deviates, as many calls of
    /// [`Rng::normal`] would.
    ///
    /// The state stays in registers: the common case (99% of draws, one
    /// table lookup and a comparison) is inlined here, and only the rest
    /// takes a copy of the state to the rejection steps.
    pub fn fill_normal(&mut self, out: &mut [Real]) {
        let zig = Ziggurat::get();
        let mut rng = Rng { s: self.s };
        for out in out {
            let bits = rng.next_u64();
            let i = (bits & 0xff) as usize;
            // The top 53 bits as a uniform in (−1, 1): independent of `i`.
            let u = 2.0 * ((bits >> 11) as Real * (1.0 / (1u64 << 53) as Real)) - 1.0;
            let x = u * zig.x[i];
            *out = if x.abs() < zig.x[i + 1] {
                x
            } else {
                let mut rest = Rng { s: rng.s };
                let x = rest.normal_rejected(zig, i, u, x);
                rng.s = rest.s;
                x
            };
        }
        self.s = rng.s;
    }

    /// The ziggurat past its quick test: draw `x = u·xᵢ` fell outside the
    /// rectangle inside layer `i`. Finishes that draw (tail or wedge), and
    /// draws again while rejected.
    #[cold]
    #[inline(never)]
    fn normal_rejected(&mut self, zig: &Ziggurat, i: usize, u: Real, x: Real) -> Real {
        let (mut i, mut u, mut x) = (i, u, x);
        loop {
            if i == 0 {
                return self.tail(u < 0.0);
            }
            let f = zig.f[i + 1] + (zig.f[i] - zig.f[i + 1]) * self.uniform();
            if f < (-0.5 * x * x).exp() {
                return x;
            }
            let bits = self.next_u64();
            i = (bits & 0xff) as usize;
            u = 2.0 * ((bits >> 11) as Real * (1.0 / (1u64 << 53) as Real)) - 1.0;
            x = u * zig.x[i];
            if x.abs() < zig.x[i + 1] {
                return x;
            }
        }
    }

    /// A draw from the normal's tail beyond `R` (Marsaglia, 1964).
    #[cold]
    fn tail(&mut self, negative: bool) -> Real {
        loop {
            let x = self.uniform_open0().ln() / ZIG_R;
            let y = self.uniform_open0().ln();
            if -2.0 * y >= x * x {
                return if negative { x - ZIG_R } else { ZIG_R - x };
            }
        }
    }
}

/// Start of the ziggurat's tail (256 layers).
#[allow(clippy::excessive_precision)]
const ZIG_R: Real = 3.654_152_885_361_008_8;
/// Area of each layer and of the base with its tail.
#[allow(clippy::excessive_precision)]
const ZIG_V: Real = 4.928_673_233_99e-3;

/// The ziggurat's layer edges `x[i]` (decreasing, `x[0]` the base's
/// equivalent width, `x[1] = R`, `x[256] = 0`) and `f[i] = exp(−x[i]²/2)`.
struct Ziggurat {
    x: [Real; 257],
    f: [Real; 257],
}

impl Ziggurat {
    fn get() -> &'static Ziggurat {
        static TABLES: OnceLock<Ziggurat> = OnceLock::new();
        TABLES.get_or_init(|| {
            let pdf = |x: Real| (-0.5 * x * x).exp();
            let mut x = [0.0; 257];
            x[0] = ZIG_V / pdf(ZIG_R);
            x[1] = ZIG_R;
            for i in 1..255 {
                x[i + 1] = (-2.0 * (ZIG_V / x[i] + pdf(x[i])).ln()).sqrt();
            }
            x[256] = 0.0;
            let mut f = [0.0; 257];
            for (f, x) in f.iter_mut().zip(&x) {
                *f = pdf(*x);
            }
            Ziggurat { x, f }
        })
    }
}

/// Colored (power-law) noise of exponent `beta` along sequences of length `n`,
/// as used by iCEM (Pinneri et al., 2020): β = 0 is white noise, β = 2 is
/// Brownian-like, smoother noise that explores more efficiently for robots.
///
/// Generated in the frequency domain by scaling white Gaussian coefficients by
/// `f^{-β/2}` and transforming back with a direct DFT whose basis is computed
/// once (horizons are short, so `O(n²)` beats planning an FFT). Each sequence
/// has zero mean (no DC term) and is scaled to unit standard deviation: the
/// basis rows are orthogonal, so its variance is `Σ cₖ²·‖rowₖ‖²/n`, known
/// from the coefficients before the sequence is built (Parseval).
#[derive(Clone, Debug)]
pub struct ColoredNoise {
    n: usize,
    white: bool,
    /// The DFT's basis with the scales folded in: for each frequency
    /// `k ≥ 1`, a row `scale_k · mult_k · cos(2πkt/n)` over the steps `t`
    /// and (below Nyquist) a row `−scale_k · mult_k · sin(2πkt/n)`, one per
    /// normal coefficient, padded with zeros to 32 steps (longer horizons:
    /// to a multiple of four).
    basis: Vec<Real>,
    /// `‖rowₖ‖²/n` of each basis row: a sequence's variance per unit of
    /// its coefficient squared.
    power: Vec<Real>,
    /// One draw's coefficients, one per row of the basis.
    coef: Vec<Real>,
}

impl ColoredNoise {
    /// A generator for sequences of length `n` with exponent `beta ≥ 0`.
    #[must_use]
    pub fn new(n: usize, beta: Real) -> Self {
        let white = beta == 0.0 || n < 3;
        let mut rows: Vec<Vec<Real>> = Vec::new();
        if !white {
            let tau = std::f64::consts::TAU;
            // The DC term is skipped so each sequence has zero mean; the
            // Nyquist term (even n) appears once and has no sine, the others
            // twice.
            for k in 1..=n / 2 {
                let nyquist = n.is_multiple_of(2) && k == n / 2;
                let scale = (k as Real / n as Real).powf(-beta / 2.0);
                let mult = if nyquist { 1.0 } else { 2.0 };
                let angle = |t: usize| tau * (k * t) as Real / n as Real;
                rows.push((0..n).map(|t| scale * mult * angle(t).cos()).collect());
                if !nyquist {
                    rows.push((0..n).map(|t| -scale * mult * angle(t).sin()).collect());
                }
            }
        }
        // Rows of 32 for horizons up to 32, so that `Spectrum` sums them in
        // registers; longer ones padded to whole vectors.
        let width = if n <= IN_REGISTERS {
            IN_REGISTERS
        } else {
            n.next_multiple_of(4)
        };
        let mut basis = vec![0.0; rows.len() * width];
        for (row, to) in rows.iter().zip(basis.chunks_exact_mut(width.max(1))) {
            to[..n].copy_from_slice(row);
        }
        let power = rows
            .iter()
            .map(|row| row.iter().map(|x| x * x).sum::<Real>() / n as Real)
            .collect();
        Self {
            n,
            white,
            basis,
            power,
            coef: vec![0.0; rows.len()],
        }
    }

    /// Sequence length.
    #[must_use]
    pub fn len(&self) -> usize {
        self.n
    }

    /// True for zero-length sequences.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Fills `out` (length `n`) with one sequence.
    pub fn sample(&mut self, rng: &mut Rng, out: &mut [Real]) {
        let n = self.n.min(out.len());
        let out = &mut out[..n];
        if self.white || n < self.n {
            rng.fill_normal(out);
            return;
        }
        rng.fill_normal(&mut self.coef);
        let var: Real = self
            .coef
            .iter()
            .zip(&self.power)
            .map(|(c, w)| c * c * w)
            .sum();
        let inv = deviation_inverse(var);
        for c in &mut self.coef {
            *c *= inv;
        }
        wide(Spectrum {
            coef: &self.coef,
            basis: &self.basis,
            out,
        });
    }
}

/// `Σⱼ coefⱼ · basisⱼ`: [`ColoredNoise::sample`]'s loops over time, in
/// vectors (the coefficients already scaled for unit deviation).
struct Spectrum<'a> {
    coef: &'a [Real],
    basis: &'a [Real],
    out: &'a mut [Real],
}

/// Longest sequence whose spectrum is summed in registers: the basis width
/// of every shorter one.
const IN_REGISTERS: usize = 32;

impl Wide for Spectrum<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let out = self.out;
        let n = out.len();
        let width = self.basis.len() / self.coef.len().max(1);
        if width == IN_REGISTERS {
            // A fixed length: the compiler keeps the 32 sums in eight vector
            // registers while it adds every row (the padding adds zeros).
            // Checked in the assembly: small changes to this block (such as
            // normalising in `acc`) put the sums back in memory.
            let mut acc = [0.0; IN_REGISTERS];
            for (c, row) in self
                .coef
                .iter()
                .zip(self.basis.as_chunks::<IN_REGISTERS>().0)
            {
                for (a, x) in acc.iter_mut().zip(row) {
                    *a += c * x;
                }
            }
            // Out through a copy: a slice of `acc` itself, of a length known
            // only at run time, keeps the sums in memory while they are added
            // (the latency of a store and a load on every row: 12% slower
            // plans with colored noise).
            let sums = acc;
            out.copy_from_slice(&sums[..n]);
        } else {
            out.fill(0.0);
            for (c, row) in self.coef.iter().zip(self.basis.chunks_exact(width)) {
                for (o, x) in out.iter_mut().zip(row) {
                    *o += c * x;
                }
            }
        }
    }
}

/// `1/√var`, or 0 for a sequence without spread.
fn deviation_inverse(var: Real) -> Real {
    if var > 0.0 { 1.0 / var.sqrt() } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut r = Rng::new(1);
        let n = 200_000;
        let xs: Vec<Real> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<Real>() / n as Real;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<Real>() / n as Real;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }

    #[test]
    fn ziggurat_tables_are_the_published_ones() {
        // rand_distr's tables (Doornik's ZIGNOR constants).
        let z = Ziggurat::get();
        assert!((z.x[0] - 3.910_757_959_537_09).abs() < 1e-9, "{}", z.x[0]);
        assert!((z.x[2] - 3.449_278_298_560_964).abs() < 1e-9, "{}", z.x[2]);
        assert!(
            (z.x[255] - 0.215_241_895_984_875).abs() < 1e-6,
            "{}",
            z.x[255]
        );
        assert!(z.x.windows(2).all(|w| w[0] > w[1]));
    }

    #[test]
    fn normal_matches_the_normal_distribution() {
        // Fractions below a few points against Φ, the tails included.
        let mut r = Rng::new(11);
        let n = 2_000_000;
        let points = [-4.0, -3.0, -2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0];
        let phi = [
            3.167_124_183_311_998e-5,
            1.349_898_031_630_095e-3,
            2.275_013_194_817_921e-2,
            0.158_655_253_931_457_05,
            0.5,
            0.691_462_461_274_013_1,
            0.841_344_746_068_543,
            0.977_249_868_051_820_8,
            0.998_650_101_968_369_9,
            0.999_968_328_758_166_9,
        ];
        let mut below = [0usize; 10];
        let mut beyond_r = 0;
        for _ in 0..n {
            let x = r.normal();
            assert!(x.is_finite());
            for (b, p) in below.iter_mut().zip(points) {
                *b += usize::from(x < p);
            }
            beyond_r += usize::from(x.abs() > ZIG_R);
        }
        for ((b, p), q) in below.iter().zip(points).zip(phi) {
            let frac = *b as Real / n as Real;
            // Five binomial standard deviations.
            let tol = 5.0 * (q * (1.0 - q) / n as Real).sqrt();
            assert!((frac - q).abs() < tol, "P(x < {p}) = {frac}, expected {q}");
        }
        // P(|x| > R) = 2.58e-4: the tail sampler runs and lands beyond R.
        assert!((300..=740).contains(&beyond_r), "{beyond_r}");
    }

    #[test]
    fn colored_sequences_have_zero_mean_and_unit_deviation() {
        let mut r = Rng::new(12);
        for n in [3, 4, 5, 8, 16, 29, 30, 31, 32, 33, 50, 64] {
            for beta in [0.5, 1.0, 2.0, 3.0] {
                let mut g = ColoredNoise::new(n, beta);
                let mut x = vec![0.0; n];
                for _ in 0..20 {
                    g.sample(&mut r, &mut x);
                    let mean = x.iter().sum::<Real>() / n as Real;
                    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<Real>() / n as Real;
                    assert!(mean.abs() < 1e-12, "n {n} beta {beta}: mean {mean}");
                    assert!((var - 1.0).abs() < 1e-12, "n {n} beta {beta}: var {var}");
                }
            }
        }
    }

    #[test]
    fn colored_noise_is_smoother_than_white() {
        let mut r = Rng::new(3);
        let n = 32;
        let mut white_gen = ColoredNoise::new(n, 0.0);
        let mut red_gen = ColoredNoise::new(n, 2.0);
        let roughness = |x: &[Real]| x.windows(2).map(|w| (w[1] - w[0]).powi(2)).sum::<Real>();
        let (mut white, mut red) = (0.0, 0.0);
        for _ in 0..200 {
            let mut a = vec![0.0; n];
            white_gen.sample(&mut r, &mut a);
            white += roughness(&a);
            red_gen.sample(&mut r, &mut a);
            red += roughness(&a);
        }
        assert!(red < 0.3 * white, "red {red} white {white}");
    }
}
