//! Reading what C hands in: buffers and strings, checked before use.
//!
//! Every raw pointer from C goes through one of these functions, so the
//! checks a C caller can get wrong (null, length, alignment, NaN, UTF-8)
//! are made in one place, and each unsafe block has one safety argument.

use crate::error::Error;
use std::ffi::{CStr, c_char};

/// The `len` values at `ptr`, which must all be finite (NaN and infinity
/// are refused naming `what` and the index).
///
/// # Safety
/// `ptr` is null or valid for reading `len` `double`s for the call.
pub(crate) unsafe fn values<'a>(
    ptr: *const f64,
    len: usize,
    what: &str,
) -> Result<&'a [f64], Error> {
    check_buffer(ptr, len, what)?;
    // SAFETY: non-null and aligned (checked above), valid for `len` reads
    // (the caller's contract), and `len` doubles fit in `isize` (checked).
    let values = unsafe { std::slice::from_raw_parts(ptr, len) };
    if let Some((i, x)) = values.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(Error::input(format!(
            "{what}[{i}] is {x}: every value must be finite"
        )));
    }
    Ok(values)
}

/// The caller's buffer of `len` values at `ptr`, to write into; `len` must
/// be `expected`.
///
/// # Safety
/// `ptr` is null or valid for writing `len` `double`s for the call, and no
/// other reference to that memory is used during it.
pub(crate) unsafe fn buffer<'a>(
    ptr: *mut f64,
    len: usize,
    expected: usize,
    what: &str,
) -> Result<&'a mut [f64], Error> {
    if len != expected {
        return Err(Error::input(format!(
            "{what} has length {len}, expected {expected}"
        )));
    }
    check_buffer(ptr, len, what)?;
    // SAFETY: non-null and aligned (checked above), valid and unaliased for
    // `len` writes (the caller's contract), `len` doubles fit in `isize`.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

fn check_buffer(ptr: *const f64, len: usize, what: &str) -> Result<(), Error> {
    if ptr.is_null() {
        return Err(Error::null(what));
    }
    if !ptr.is_aligned() {
        return Err(Error::input(format!("{what} is not aligned for double")));
    }
    if len > isize::MAX as usize / size_of::<f64>() {
        return Err(Error::input(format!("{what} has length {len}, too long")));
    }
    Ok(())
}

/// The NUL-terminated UTF-8 string at `ptr`, named `what` in errors.
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(Error::null(what));
    }
    // SAFETY: non-null, and NUL-terminated and valid for the call (the
    // caller's contract).
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str()
        .map_err(|e| Error::input(format!("{what} is not UTF-8: {e}")))
}

/// Like [`text`], but null is allowed and means "none".
///
/// # Safety
/// As [`text`].
pub(crate) unsafe fn optional_text<'a>(
    ptr: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, Error> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: as this function's contract, and `ptr` is not null.
    unsafe { text(ptr, what) }.map(Some)
}

/// Writes `value` through the out-parameter `out`.
///
/// # Safety
/// `out` is null or valid for writing one `T`.
pub(crate) unsafe fn write<T>(out: *mut T, value: T, what: &str) -> Result<(), Error> {
    if out.is_null() {
        return Err(Error::null(what));
    }
    if !out.is_aligned() {
        return Err(Error::input(format!("{what} is misaligned")));
    }
    // SAFETY: non-null and aligned (checked), valid for one write (the
    // caller's contract); `write` does not drop the old, possibly
    // uninitialised, contents.
    unsafe { out.write(value) };
    Ok(())
}

/// Checks an out-parameter before the work that fills it is done, so that
/// a null one is refused before anything is built.
pub(crate) fn check_out<T>(out: *mut T, what: &str) -> Result<(), Error> {
    if out.is_null() {
        return Err(Error::null(what));
    }
    Ok(())
}
