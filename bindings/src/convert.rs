//! numpy and plain data in and out. Arrays are read by logical index (a
//! non-contiguous view is copied, never misread); integer and float arrays of
//! any width become `float64`; anything else is refused with the argument's name.

use crate::errors::{Kind, error};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An array argument read as `float64` values in row-major order, with its shape.
pub(crate) struct Array {
    pub values: Vec<f64>,
    pub shape: Vec<usize>,
}

impl Array {
    /// Reads `obj` (a numpy array, or anything `numpy.asarray` accepts) named `what`.
    pub fn read(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Self> {
        if let Ok(a) = obj.extract::<PyReadonlyArrayDyn<'_, f64>>() {
            return Ok(Self::of(&a));
        }
        let py = obj.py();
        let np = py.import("numpy")?;
        let arr = np.call_method1("asarray", (obj,)).map_err(|e| {
            error(
                Kind::Input,
                format!("{what} must be an array of numbers: {e}"),
            )
        })?;
        let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
        if !matches!(kind.as_str(), "i" | "u" | "f") {
            let dtype = arr.getattr("dtype")?.str()?.to_string();
            return Err(error(
                Kind::Input,
                format!("{what} must hold real numbers (int or float), got dtype {dtype}"),
            ));
        }
        let arr = np.call_method1("asarray", (arr, "float64"))?;
        let a = arr.extract::<PyReadonlyArrayDyn<'_, f64>>()?;
        Ok(Self::of(&a))
    }

    fn of(a: &PyReadonlyArrayDyn<'_, f64>) -> Self {
        Self {
            values: a.as_array().iter().copied().collect(),
            shape: a.shape().to_vec(),
        }
    }

    /// Checks that the array is `[n]` (one row, `batched` false) or `[B, n]`
    /// (`batched` true); returns the number of rows.
    pub fn rows(&self, what: &str, n: usize, names: &[String]) -> PyResult<(usize, bool)> {
        match self.shape.as_slice() {
            [m] if *m == n => Ok((1, false)),
            [b, m] if *m == n => Ok((*b, true)),
            shape => Err(error(
                Kind::Input,
                format!(
                    "{what} must have shape ({n},) or (batch, {n}){}, got {shape:?}",
                    describe(names)
                ),
            )),
        }
    }

    /// Checks that the array is one row of `n` values, `(n,)` or `(1, n)`
    /// (a batch of one, as gymnasium's vector environments give), and
    /// returns its values. The one rule for every argument that takes a
    /// single observation or action.
    pub fn single(self, what: &str, n: usize, names: &[String]) -> PyResult<Vec<f64>> {
        match self.shape.as_slice() {
            [m] | [1, m] if *m == n => Ok(self.values),
            shape => Err(error(
                Kind::Input,
                format!(
                    "{what} must have shape ({n},) or (1, {n}){}, got {shape:?}",
                    describe(names)
                ),
            )),
        }
    }
}

fn describe(names: &[String]) -> String {
    if names.is_empty() || names.len() > 12 {
        String::new()
    } else {
        format!(" [{}]", names.join(", "))
    }
}

/// A float64 numpy array of `values` with `shape` (row-major).
pub(crate) fn array<'py>(
    py: Python<'py>,
    values: Vec<f64>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let flat = PyArray1::from_vec(py, values);
    if shape.len() == 1 {
        return Ok(flat.into_any());
    }
    Ok(flat.reshape(shape.to_vec())?.into_any())
}

/// A float64 numpy vector holding a copy of `values`, e.g. a model's action
/// bounds (A,).
pub(crate) fn vector<'py>(py: Python<'py>, values: &[f64]) -> PyResult<Bound<'py, PyAny>> {
    array(py, values.to_vec(), &[values.len()])
}

/// Plain data (dicts, lists, numbers, strings, numpy arrays) read into `T`
/// through JSON; errors name `what` and the offending key.
pub(crate) fn from_plain<T: DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let json: String = obj
        .py()
        .import("telic._convert")?
        .call_method1("to_json", (obj, what))
        .map_err(|e| error(Kind::Config, e.value(obj.py()).to_string()))?
        .extract()?;
    serde_json::from_str(&json).map_err(|e| error(Kind::Config, format!("{what}: {e}")))
}

/// `value` as plain Python data (dicts and lists), through JSON.
pub(crate) fn to_plain<'py, T: Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_string(value)
        .map_err(|e| error(Kind::Sim, format!("cannot convert a result: {e}")))?;
    py.import("json")?.call_method1("loads", (json,))
}

/// A JSON value of `base` with the keys of the plain-data mapping `overrides`
/// replaced, read back as `T` (unknown keys are errors naming the key).
pub(crate) fn merged<T: Serialize + DeserializeOwned>(
    base: &T,
    overrides: &Bound<'_, PyAny>,
    what: &str,
) -> PyResult<T> {
    let mut value =
        serde_json::to_value(base).map_err(|e| error(Kind::Config, format!("{what}: {e}")))?;
    let extra: serde_json::Value = from_plain(overrides, what)?;
    let (Some(map), serde_json::Value::Object(extra)) = (value.as_object_mut(), extra) else {
        return Err(error(Kind::Config, format!("{what} must be a dict")));
    };
    for (k, v) in extra {
        map.insert(k, v);
    }
    serde_json::from_value(value).map_err(|e| error(Kind::Config, format!("{what}: {e}")))
}
