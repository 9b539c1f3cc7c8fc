//! JSON values between Rust and Python: `serde_json::Value` to `dict`/`list`/`str`/`int`/`float`/
//! `bool`/`None` and back. Records (interactions, sessions, analyses) cross as their serde form, so
//! Python sees exactly the fields the REST API and `crow ... --json` print.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

use crate::error::invalid;

/// A JSON value as a Python object.
pub fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let items = a.iter().map(|x| to_py(py, x)).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// Any serializable value as a Python object (through its JSON form).
pub fn ser_to_py<'py, T: serde::Serialize>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(v).map_err(|e| crate::error::CrowError::new_err(e.to_string()))?;
    to_py(py, &value)
}

/// A Python object (dict, list, tuple, str, int, float, bool, None) as a JSON value; `what`
/// names it in errors.
pub fn from_py(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(invalid(format!("{what}: the integer {obj} does not fit in 64 bits")));
    }
    if obj.is_instance_of::<PyFloat>() {
        let f: f64 = obj.extract()?;
        return Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| invalid(format!("{what}: {f} is not a finite number")));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.extract::<String>()?));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key: String = k
                .extract()
                .map_err(|_| invalid(format!("{what}: keys must be strings, got {}", k.get_type())))?;
            let inner = from_py(&v, &format!("{what}.{key}"))?;
            map.insert(key, inner);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for (i, x) in obj.try_iter()?.enumerate() {
            out.push(from_py(&x?, &format!("{what}[{i}]"))?);
        }
        return Ok(Value::Array(out));
    }
    // numpy scalars and the like: anything that converts to float or int.
    if let Ok(i) = obj.call_method0("__index__").and_then(|v| v.extract::<i64>()) {
        return Ok(Value::from(i));
    }
    if let Ok(f) = obj.call_method0("__float__").and_then(|v| v.extract::<f64>()) {
        return Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| invalid(format!("{what}: {f} is not a finite number")));
    }
    Err(PyTypeError::new_err(format!(
        "{what}: {} cannot be stored as JSON (use dict, list, str, int, float, bool or None)",
        obj.get_type()
    )))
}

/// A JSON object from a Python dict (None: an empty object).
pub fn object_from_py(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Map<String, Value>> {
    match obj {
        None => Ok(Map::new()),
        Some(o) if o.is_none() => Ok(Map::new()),
        Some(o) => match from_py(o, what)? {
            Value::Object(m) => Ok(m),
            _ => Err(invalid(format!("{what}: expected a dict, got {}", o.get_type()))),
        },
    }
}

/// Milliseconds since the epoch from an int (milliseconds) or a `datetime` (naive: UTC).
pub fn millis(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<i64>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if obj.is_instance_of::<PyInt>() {
        return Ok(Some(obj.extract()?));
    }
    if obj.hasattr("timestamp")? {
        let py = obj.py();
        // A naive datetime is taken as UTC, not local time.
        let aware = if obj.getattr("tzinfo")?.is_none() {
            let tz = py.import("datetime")?.getattr("timezone")?.getattr("utc")?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("tzinfo", tz)?;
            obj.call_method("replace", (), Some(&kwargs))?
        } else {
            obj.clone()
        };
        let secs: f64 = aware.call_method0("timestamp")?.extract()?;
        return Ok(Some((secs * 1000.0).round() as i64));
    }
    Err(invalid(format!(
        "{what}: expected milliseconds since the epoch (int) or a datetime, got {}",
        obj.get_type()
    )))
}

/// Checks that `obj` is a C-contiguous numpy array of `dtype` with `ndim` dimensions (and the
/// given sizes where `shape` has `Some`), naming `what` and the expectation in the error.
pub fn check_array<'py, T: numpy::Element, D: numpy::ndarray::Dimension>(
    obj: &Bound<'py, PyAny>,
    what: &str,
    expected: &str,
    shape: &[Option<usize>],
) -> PyResult<numpy::PyReadonlyArray<'py, T, D>> {
    use numpy::{PyArrayDescrMethods as _, PyArrayMethods as _, PyUntypedArray, PyUntypedArrayMethods as _};
    let py = obj.py();
    let Ok(arr) = obj.cast::<PyUntypedArray>() else {
        return Err(invalid(format!(
            "{what}: expected a numpy.ndarray {expected}, got {}",
            obj.get_type()
        )));
    };
    let dtype = arr.dtype();
    if !dtype.is_equiv_to(&numpy::dtype::<T>(py)) {
        return Err(invalid(format!(
            "{what}: expected a numpy.ndarray {expected}, got dtype {dtype} (convert with .astype(numpy.{}))",
            numpy::dtype::<T>(py)
        )));
    }
    let actual = arr.shape();
    let fits = actual.len() == shape.len()
        && shape
            .iter()
            .zip(actual)
            .all(|(want, got)| want.is_none_or(|w| w == *got));
    if !fits {
        return Err(invalid(format!(
            "{what}: expected a numpy.ndarray {expected}, got shape {actual:?}"
        )));
    }
    if !arr.is_c_contiguous() {
        return Err(invalid(format!(
            "{what}: the array is not C-contiguous (a strided view?): pass numpy.ascontiguousarray({what})"
        )));
    }
    let typed = arr
        .cast::<numpy::PyArray<T, D>>()
        .map_err(|e| invalid(format!("{what}: {e}")))?;
    typed
        .try_readonly()
        .map_err(|e| invalid(format!("{what}: the array is being written elsewhere: {e}")))
}
