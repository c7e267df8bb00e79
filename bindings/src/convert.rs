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
/// as a JSON value, floats exactly; errors name `what` and the offending key.
pub(crate) fn from_plain<T: DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let data = obj
        .py()
        .import("telic._convert")?
        .call_method1("to_data", (obj, what))
        .map_err(|e| error(Kind::Config, e.value(obj.py()).to_string()))?;
    let value = json_value(&data, 0).map_err(|e| error(Kind::Config, format!("{what}: {e}")))?;
    serde_json::from_value(value).map_err(|e| error(Kind::Config, format!("{what}: {e}")))
}

/// Nesting deeper than this is refused, as serde_json refuses it in text.
const MAX_DEPTH: usize = 128;

/// Plain Python data (as `telic._convert.to_data` gives it) as a JSON
/// value, each float the same `f64`: not through JSON text, whose reading
/// back may round the last digit (serde_json's default float parser).
fn json_value(data: &Bound<'_, PyAny>, depth: usize) -> Result<serde_json::Value, String> {
    use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};
    use serde_json::{Number, Value};
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    let number = |n: Option<Number>| n.map(Value::Number).ok_or("not a finite number");
    Ok(if data.is_none() {
        Value::Null
    } else if let Ok(b) = data.cast::<PyBool>() {
        Value::Bool(b.is_true())
    } else if data.cast::<PyInt>().is_ok() {
        match (data.extract::<i64>(), data.extract::<u64>()) {
            (Ok(i), _) => Value::from(i),
            (_, Ok(u)) => Value::from(u),
            // Larger integers read as floats, as serde_json reads them in text.
            _ => number(data.extract::<f64>().ok().and_then(Number::from_f64))?,
        }
    } else if let Ok(f) = data.cast::<PyFloat>() {
        number(Number::from_f64(f.value()))?
    } else if data.cast::<PyString>().is_ok() {
        Value::String(data.extract().map_err(|e: PyErr| e.to_string())?)
    } else if let Ok(list) = data.cast::<PyList>() {
        let items = list.iter().map(|v| json_value(&v, depth + 1));
        Value::Array(items.collect::<Result<_, _>>()?)
    } else if let Ok(dict) = data.cast::<PyDict>() {
        let mut map = serde_json::Map::new();
        for (k, v) in dict.iter() {
            let key: String = k.extract().map_err(|_| "keys must be strings")?;
            map.insert(key, json_value(&v, depth + 1)?);
        }
        Value::Object(map)
    } else {
        return Err(format!(
            "{} is not plain data",
            data.get_type().name().map_err(|e| e.to_string())?
        ));
    })
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
