//! Fast elementary functions for the rollout hot path.
//!
//! `f64::sin_cos` calls the C library, which handles every argument up to
//! 1e308 and cannot be inlined; a rollout evaluates it for every sample at
//! every step with angles of a few radians. [`sin_cos`] reduces the argument
//! by π/2 in two Cody–Waite rounds (exact to 118 bits for |x| < 2²⁰·π/2) and
//! evaluates fdlibm's minimax kernels, so results are within an ulp or two of
//! the C library's and the code inlines into the caller's loop. Arguments
//! outside that range, infinities and NaN go to the C library.

// The constants are fdlibm's, with the digits it publishes.
#![allow(clippy::excessive_precision)]

use crate::Real;

const INV_PIO2: Real = std::f64::consts::FRAC_2_PI;
// π/2 in pieces (fdlibm's `__rem_pio2`): the first 33 bits, the next 33, and
// what is left after them.
const PIO2_1: Real = 1.570_796_326_734_125_614_17;
const PIO2_2: Real = 6.077_100_506_303_965_976_60e-11;
const PIO2_2T: Real = 2.022_266_248_795_950_631_54e-21;
/// Adding then subtracting it rounds to the nearest integer (|x| < 2⁵¹).
const TO_INT: Real = 1.5 / Real::EPSILON;
/// Largest |x| reduced here: 2²⁰·π/2.
const REDUCE_MAX: Real = 1_647_099.0;

/// `(sin x, cos x)`, within an ulp or two of `f64::sin_cos`.
///
/// Branch-free past the range check, so that random angles in a batch cost
/// no mispredictions: the quadrant picks the kernels and signs by selects
/// and sign-bit flips.
///
/// ```
/// let (s, c) = telic::math::sin_cos(1.0);
/// assert!((s - 1.0_f64.sin()).abs() < 1e-15 && (c - 1.0_f64.cos()).abs() < 1e-15);
/// ```
#[inline(always)]
#[must_use]
pub fn sin_cos(x: Real) -> (Real, Real) {
    if !(x.abs() < REDUCE_MAX) {
        return x.sin_cos();
    }
    reduced_sin_cos(x)
}

/// [`sin_cos`] for the body of a loop over a batch: `(sin x, cos x, false)`
/// bit for bit, without a branch, so that the compiler can turn the loop into
/// vector instructions (inside [`wide`], four rows at a time with AVX2).
/// Arguments beyond the reduced range (|x| ≥ 2²⁰·π/2, infinities, NaN) give
/// `(0, 1, true)`: the caller recomputes those rows with [`sin_cos`] after
/// the loop.
#[inline(always)]
#[must_use]
pub fn sin_cos_near(x: Real) -> (Real, Real, bool) {
    let near = x.abs() < REDUCE_MAX;
    let (s, c) = reduced_sin_cos(if near { x } else { 0.0 });
    (s, c, !near)
}

/// `(sin x, cos x)` for |x| < [`REDUCE_MAX`], without a branch.
#[inline(always)]
fn reduced_sin_cos(x: Real) -> (Real, Real) {
    // `k`'s last bits are the integer f = round(2x/π) (TO_INT has an ulp of
    // one), so the quadrant is read from them without a float-to-int
    // conversion, which has no vector instruction before AVX-512.
    let k = x * INV_PIO2 + TO_INT;
    let f = k - TO_INT;
    let q = k.to_bits() & 3;
    // Two rounds of Cody–Waite: hi + lo is x − f·π/2 to about 118 bits.
    let t = x - f * PIO2_1;
    let w = f * PIO2_2;
    let r = t - w;
    let w = f * PIO2_2T - ((t - r) - w);
    let hi = r - w;
    let lo = (r - hi) - w;
    let s = kernel_sin(hi, lo);
    let c = kernel_cos(hi, lo);
    // Quadrant q: (sin, cos) = (s, c), (c, −s), (−s, −c), (−c, s).
    let odd = q & 1 == 1;
    let a = if odd { c } else { s };
    let b = if odd { s } else { c };
    let sin = Real::from_bits(a.to_bits() ^ ((q & 2) << 62));
    let cos = Real::from_bits(b.to_bits() ^ (((q + 1) & 2) << 62));
    (sin, cos)
}

/// `x.clamp(lo, hi)` (`lo ≤ hi`) as two selects, which vectorize; NaN
/// stays NaN.
#[inline(always)]
#[must_use]
pub fn clip(x: Real, lo: Real, hi: Real) -> Real {
    let x = if x < lo { lo } else { x };
    if x > hi { hi } else { x }
}

/// Whether every value of `xs` is finite, as one vector loop of integer
/// operations (which, unlike a float sum, the compiler may vectorize).
#[must_use]
pub fn all_finite(xs: &[Real]) -> bool {
    struct AllFinite<'a>(&'a [Real]);
    impl Wide for AllFinite<'_> {
        type Output = bool;
        #[inline(always)]
        fn run(self) -> bool {
            // The exponent field plus one carries into the sign bit exactly
            // when the field is all ones: infinities and NaN.
            const EXPONENT: u64 = 0x7ff0_0000_0000_0000;
            const ONE: u64 = 1 << 52;
            let carries = self
                .0
                .iter()
                .fold(0, |acc, x| acc | ((x.to_bits() & EXPONENT) + ONE));
            carries >> 63 == 0
        }
    }
    wide(AllFinite(xs))
}

/// A loop to compile for the widest vectors this CPU has: see [`wide`].
pub trait Wide {
    /// What the loop returns.
    type Output;
    /// Runs the loop. Implementations must be `#[inline(always)]`, so that
    /// [`wide`] compiles them, and what they call inline, with AVX2.
    fn run(self) -> Self::Output;
}

/// Runs `k` compiled for AVX2 when the CPU has it (checked once, then a
/// cached flag), else for the baseline target (SSE2 on x86-64).
///
/// Vector code computes exactly what the scalar code computes: Rust never
/// contracts `a·b + c` into a fused multiply-add or reorders a sum, so both
/// builds give the same bits.
#[inline(always)]
pub fn wide<K: Wide>(k: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2<K: Wide>(k: K) -> K::Output {
            k.run()
        }
        // SAFETY: the CPU has AVX2, checked just above; that is the only
        // requirement of a `target_feature` function.
        #[allow(unsafe_code)]
        return unsafe { avx2(k) };
    }
    k.run()
}

/// `sin x` ([`sin_cos`]'s first half).
#[inline(always)]
#[must_use]
pub fn sin(x: Real) -> Real {
    sin_cos(x).0
}

/// `cos x` ([`sin_cos`]'s second half).
#[inline(always)]
#[must_use]
pub fn cos(x: Real) -> Real {
    sin_cos(x).1
}

/// `floor(x)` without a library call or a branch (|x| < 2⁵¹; beyond, `x` is
/// an integer already and is returned as it is; NaN stays NaN).
#[inline(always)]
#[must_use]
pub fn floor(x: Real) -> Real {
    let r = (x + TO_INT) - TO_INT;
    let down = r - Real::from(u8::from(r > x));
    if x.abs() < TO_INT / 3.0 { down } else { x }
}

/// fdlibm's `__kernel_sin` on `[−π/4, π/4]`, `x + y` the reduced argument.
#[inline(always)]
fn kernel_sin(x: Real, y: Real) -> Real {
    const S1: Real = -1.666_666_666_666_663_243_48e-1;
    const S2: Real = 8.333_333_333_322_489_461_24e-3;
    const S3: Real = -1.984_126_982_985_794_931_34e-4;
    const S4: Real = 2.755_731_370_707_006_767_89e-6;
    const S5: Real = -2.505_076_025_340_686_341_95e-8;
    const S6: Real = 1.589_690_995_211_550_102_21e-10;
    let z = x * x;
    let w = z * z;
    let r = S2 + z * (S3 + z * S4) + z * w * (S5 + z * S6);
    let v = z * x;
    x - ((z * (0.5 * y - v * r) - y) - v * S1)
}

/// fdlibm's `__kernel_cos` on `[−π/4, π/4]`, `x + y` the reduced argument.
#[inline(always)]
fn kernel_cos(x: Real, y: Real) -> Real {
    const C1: Real = 4.166_666_666_666_660_190_37e-2;
    const C2: Real = -1.388_888_888_887_410_957_49e-3;
    const C3: Real = 2.480_158_728_947_672_941_78e-5;
    const C4: Real = -2.755_731_435_139_066_330_35e-7;
    const C5: Real = 2.087_572_321_298_174_827_90e-9;
    const C6: Real = -1.135_964_755_778_819_482_65e-11;
    let z = x * x;
    let w = z * z;
    let r = z * (C1 + z * (C2 + z * C3)) + w * w * (C4 + z * (C5 + z * C6));
    let hz = 0.5 * z;
    let w = 1.0 - hz;
    w + (((1.0 - w) - hz) + (z * r - x * y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn ulps(a: Real, b: Real) -> Real {
        (a - b).abs() / (Real::EPSILON * b.abs().max(Real::MIN_POSITIVE))
    }

    #[test]
    fn all_finite_finds_any_infinity_or_nan() {
        let specials = [
            Real::INFINITY,
            Real::NEG_INFINITY,
            Real::NAN,
            -Real::NAN,
            Real::from_bits(0x7ff0_0000_0000_0001), // a signalling NaN
        ];
        let finite = [0.0, -0.0, 1.0, -2.5, Real::MAX, Real::MIN, 5e-324];
        assert!(all_finite(&[]));
        // Lengths around the vector widths, the bad value at every place.
        for n in [1, 3, 4, 7, 16, 17, 61] {
            let xs: Vec<Real> = (0..n).map(|i| finite[i % finite.len()]).collect();
            assert!(all_finite(&xs), "{xs:?}");
            for at in 0..n {
                for bad in specials {
                    let mut ys = xs.clone();
                    ys[at] = bad;
                    assert!(!all_finite(&ys), "{bad} at {at} of {n}");
                }
            }
        }
    }

    #[test]
    fn sin_cos_match_the_c_library() {
        let mut rng = Rng::new(3);
        for k in 0..300_000 {
            let scale = [1e-8, 0.5, 4.0, 100.0, 1e5, 1.6e6][k % 6];
            let x = rng.range(-scale, scale);
            let (s, c) = sin_cos(x);
            let (s0, c0) = x.sin_cos();
            assert!(
                ulps(s, s0) <= 2.0 && ulps(c, c0) <= 2.0,
                "x = {x}: {s} vs {s0}, {c} vs {c0}"
            );
        }
    }

    #[test]
    fn exact_points_and_the_outside_of_the_range() {
        assert_eq!(sin_cos(0.0), (0.0, 1.0));
        let (s, c) = sin_cos(std::f64::consts::FRAC_PI_2);
        assert!((s - 1.0).abs() < 1e-16 && c.abs() < 1e-16);
        for x in [1e7, -3e9, 1e300] {
            assert_eq!(sin_cos(x), x.sin_cos());
        }
        assert!(sin(Real::NAN).is_nan() && cos(Real::INFINITY).is_nan());
    }

    #[test]
    fn wide_loops_give_the_scalar_bits() {
        struct Batch<'a>(&'a [Real]);
        impl Wide for Batch<'_> {
            type Output = (Vec<(Real, Real)>, usize);
            #[inline(always)]
            fn run(self) -> Self::Output {
                let mut out = vec![(0.0, 0.0); self.0.len()];
                let mut far = 0;
                for (x, o) in self.0.iter().zip(&mut out) {
                    let (s, c, f) = sin_cos_near(*x);
                    *o = (s, c);
                    far += usize::from(f);
                }
                (out, far)
            }
        }
        let mut rng = Rng::new(5);
        let mut xs: Vec<Real> = (0..80_000).map(|_| rng.range(-40.0, 40.0)).collect();
        let far = [1e7, Real::NAN, Real::INFINITY, 3e300, -2e6];
        xs.extend(far);
        xs.extend([-0.0, -1.0, 0.5, 1.6e6]);
        let (out, n_far) = wide(Batch(&xs));
        assert_eq!(n_far, far.len());
        for (x, (s, c)) in xs.iter().zip(out) {
            let (s0, c0) = if far.iter().any(|f| f.to_bits() == x.to_bits()) {
                (0.0, 1.0)
            } else {
                sin_cos(*x)
            };
            assert!(
                s.to_bits() == s0.to_bits() && c.to_bits() == c0.to_bits(),
                "x = {x}: ({s}, {c}) vs ({s0}, {c0})"
            );
        }
    }

    #[test]
    fn floor_matches() {
        for x in [
            -2.5, -2.0, -1e-300, -0.0, 0.0, 0.3, 1.0, 1.999_999, 4e15, -7e16,
        ] {
            assert_eq!(floor(x), x.floor(), "{x}");
        }
        assert!(floor(Real::NAN).is_nan());
        assert_eq!(floor(Real::NEG_INFINITY), Real::NEG_INFINITY);
    }
}
