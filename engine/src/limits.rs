//! Upper limits on what a user can size, the error that names a value above
//! one, and how numbers read in messages.
//!
//! Every size a configuration sets (samples, horizon, iterations, threads,
//! time budgets, and in `telic-sim` episode lengths, scene counts and
//! worker counts) has a documented upper limit, checked by the
//! configuration's `validate()` before anything is allocated. The limits are
//! generous for real use; they exist so that a typing slip (`samples =
//! 100000000`) is an error naming the key, the value and the limit rather
//! than an allocation failure, an overflow or a run that never ends.

use crate::Real;
use std::fmt;
use thiserror::Error;

/// A value a limit speaks of: a count (samples, steps, bytes) or a real
/// number (seconds, milliseconds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    /// A whole number. Products of sizes are computed with saturating
    /// arithmetic ([`product`]), so a product too large to hold still reads
    /// as far above its limit.
    Count(u64),
    /// A real number.
    Real(Real),
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Count(n) => write!(f, "{n}"),
            Amount::Real(x) => write!(f, "{}", num(*x)),
        }
    }
}

impl From<usize> for Amount {
    fn from(n: usize) -> Self {
        Amount::Count(u64::try_from(n).unwrap_or(u64::MAX))
    }
}

impl From<u64> for Amount {
    fn from(n: u64) -> Self {
        Amount::Count(n)
    }
}

impl From<Real> for Amount {
    fn from(x: Real) -> Self {
        Amount::Real(x)
    }
}

/// A size, count or duration above its documented upper limit.
#[derive(Clone, Debug, Error, PartialEq)]
#[error("{key} = {value} is above its limit of {limit}")]
pub struct LimitError {
    /// The setting, as written in files (`planner.samples`, `--jobs`), or
    /// the product of settings that is limited.
    pub key: String,
    /// The value given (or the product it makes).
    pub value: Amount,
    /// The largest value allowed.
    pub limit: Amount,
}

impl LimitError {
    /// `Ok` unless `value > limit`, else the error naming `key`. A NaN is
    /// not above a limit: it is left to the caller's check that values are
    /// finite, whose message says so.
    ///
    /// ```
    /// use telic::limits::LimitError;
    ///
    /// assert!(LimitError::check("planner.samples", 256usize, 1024usize).is_ok());
    /// let err = LimitError::check("planner.samples", 100_000_000usize, 1024usize).unwrap_err();
    /// assert_eq!(err.to_string(), "planner.samples = 100000000 is above its limit of 1024");
    /// ```
    pub fn check(
        key: &str,
        value: impl Into<Amount>,
        limit: impl Into<Amount>,
    ) -> Result<(), LimitError> {
        let (value, limit) = (value.into(), limit.into());
        let above = match (value, limit) {
            (Amount::Count(v), Amount::Count(l)) => v > l,
            (Amount::Real(v), Amount::Real(l)) => v > l,
            (Amount::Count(v), Amount::Real(l)) => (v as Real) > l,
            (Amount::Real(v), Amount::Count(l)) => v > l as Real,
        };
        if !above {
            Ok(())
        } else {
            Err(LimitError {
                key: key.to_string(),
                value,
                limit,
            })
        }
    }
}

/// The product of sizes, saturating at `u64::MAX` (above every limit).
#[must_use]
pub fn product(sizes: &[usize]) -> u64 {
    sizes.iter().fold(1u64, |p, &s| {
        p.saturating_mul(u64::try_from(s).unwrap_or(u64::MAX))
    })
}

/// `x` as messages print it: the shortest form that reads back as `x`, in
/// exponent notation when `|x| >= 1e6` or `0 < |x| < 1e-4` (so `1e308` is
/// not 309 digits and `1e-300` not 300 zeros).
///
/// ```
/// use telic::limits::num;
///
/// assert_eq!(num(0.05).to_string(), "0.05");
/// assert_eq!(num(1e308).to_string(), "1e308");
/// assert_eq!(num(-2.5e-300).to_string(), "-2.5e-300");
/// assert_eq!(num(f64::NAN).to_string(), "NaN");
/// ```
#[must_use]
pub fn num(x: Real) -> Num {
    Num(x)
}

/// A number formatted for a message; see [`num`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Num(pub Real);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        let a = x.abs();
        if x.is_finite() && x != 0.0 && !(1e-4..1e6).contains(&a) {
            write!(f, "{x:e}")
        } else {
            write!(f, "{x}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_switch_to_exponents_far_from_one() {
        assert_eq!(num(1.0).to_string(), "1");
        assert_eq!(num(999_999.0).to_string(), "999999");
        assert_eq!(num(1e6).to_string(), "1e6");
        assert_eq!(num(1e-4).to_string(), "0.0001");
        assert_eq!(num(9e-5).to_string(), "9e-5");
        assert_eq!(num(0.0).to_string(), "0");
        assert_eq!(num(f64::INFINITY).to_string(), "inf");
        assert_eq!(num(1e-300).to_string(), "1e-300");
    }

    #[test]
    fn saturated_products_are_above_every_limit() {
        assert!(LimitError::check("x", f64::INFINITY, 1.0).is_err());
        assert!(LimitError::check("x", f64::NAN, 1.0).is_ok());
        assert_eq!(product(&[usize::MAX, usize::MAX, usize::MAX]), u64::MAX);
        assert!(LimitError::check("x", product(&[usize::MAX; 3]), u64::MAX - 1).is_err());
        assert!(LimitError::check("x", 3usize, 3usize).is_ok());
    }
}
