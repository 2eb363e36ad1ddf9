//! Conversions from JavaScript values, with the contract's error codes for bad input.

use std::ops::Deref;

use hannoy_engine::{MetricKind, Quantization};
use napi::bindgen_prelude::*;

use crate::errors::{Failure, Outcome};

/// Typed arrays of up to this many elements (64 KiB) are copied on the main thread instead of
/// being read in place: a worker thread that drops a napi typed array hands its release back to
/// the main thread through a threadsafe function, one more wake-up of the event loop per call,
/// which costs more than copying a query vector or a small id list.
const COPY_MAX: usize = 16 * 1024;

/// Floats from a `Float32Array` (read in place when large, see `COPY_MAX`) or a `number[]`.
pub enum Floats {
    Typed(Float32Array),
    Owned(Vec<f32>),
}

impl Deref for Floats {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match self {
            Floats::Typed(array) => array,
            Floats::Owned(vec) => vec,
        }
    }
}

/// Ids from a `Uint32Array` (read in place when large) or a `number[]` of integers 0 … 4294967295.
pub enum Ids {
    Typed(Uint32Array),
    Owned(Vec<u32>),
}

impl Deref for Ids {
    type Target = [u32];
    fn deref(&self) -> &[u32] {
        match self {
            Ids::Typed(array) => array,
            Ids::Owned(vec) => vec,
        }
    }
}

fn is_typed_array_of(value: &Unknown<'_>, kind: TypedArrayType) -> bool {
    if !value.is_typedarray().unwrap_or(false) {
        return false;
    }
    // SAFETY: `value` is a live handle of the current call's scope and is a typed array.
    let info = unsafe { TypedArray::from_napi_value(value.env(), value.raw()) };
    matches!(info, Ok(info) if info.typed_array_type == kind)
}

fn array_elements<'a>(value: &Unknown<'a>, what: &str) -> Outcome<Vec<Unknown<'a>>> {
    if !value.is_array().unwrap_or(false) {
        return Err(Failure::invalid(format!(
            "{what} must be a typed array or an array of numbers"
        )));
    }
    // SAFETY: `value` is a live handle of the current call's scope and is an array.
    let array = unsafe { Array::from_napi_value(value.env(), value.raw()) }
        .map_err(|e| Failure::invalid(format!("{what}: {e}")))?;
    (0..array.len())
        .map(|i| {
            array
                .get::<Unknown>(i)
                .ok()
                .flatten()
                .ok_or_else(|| Failure::invalid(format!("{what}[{i}] is missing")))
        })
        .collect()
}

pub fn number(value: &Unknown<'_>, what: &str) -> Outcome<f64> {
    if value.get_type().ok() != Some(ValueType::Number) {
        return Err(Failure::invalid(format!("{what} must be a number")));
    }
    // SAFETY: the value was checked to be a number.
    unsafe { f64::from_napi_value(value.env(), value.raw()) }
        .map_err(|e| Failure::invalid(e.reason))
}

/// An integer in `min..=max`.
pub fn integer(value: &Unknown<'_>, what: &str, min: f64, max: f64) -> Outcome<f64> {
    let x = number(value, what)?;
    if x.fract() != 0.0 || !(min..=max).contains(&x) {
        return Err(Failure::invalid(format!(
            "{what} must be an integer from {min} to {max}, received {x}"
        )));
    }
    Ok(x)
}

pub fn id(value: &Unknown<'_>, what: &str) -> Outcome<u32> {
    integer(value, what, 0.0, u32::MAX as f64).map(|x| x as u32)
}

pub fn index(value: &Unknown<'_>) -> Outcome<u16> {
    integer(value, "index", 0.0, u16::MAX as f64).map(|x| x as u16)
}

pub fn floats(value: &Unknown<'_>, what: &str) -> Outcome<Floats> {
    if is_typed_array_of(value, TypedArrayType::Float32) {
        // SAFETY: checked above to be a Float32Array of the current call's scope.
        let array = unsafe { Float32Array::from_napi_value(value.env(), value.raw()) }
            .map_err(|e| Failure::invalid(format!("{what}: {e}")))?;
        if array.len() <= COPY_MAX {
            return Ok(Floats::Owned(array.to_vec()));
        }
        return Ok(Floats::Typed(array));
    }
    if value.is_typedarray().unwrap_or(false) {
        return Err(Failure::invalid(format!(
            "{what} must be a Float32Array or an array of numbers"
        )));
    }
    let elements = array_elements(value, what)?;
    let mut out = Vec::with_capacity(elements.len());
    for (i, element) in elements.iter().enumerate() {
        let x = number(element, &format!("{what}[{i}]"))?;
        if !x.is_finite() || x.abs() > f32::MAX as f64 {
            return Err(Failure::invalid(format!(
                "{what}[{i}] is NaN, infinite or too large for a 32-bit float"
            )));
        }
        out.push(x as f32);
    }
    Ok(Floats::Owned(out))
}

pub fn ids(value: &Unknown<'_>, what: &str) -> Outcome<Ids> {
    if is_typed_array_of(value, TypedArrayType::Uint32) {
        // SAFETY: checked above to be a Uint32Array of the current call's scope.
        let array = unsafe { Uint32Array::from_napi_value(value.env(), value.raw()) }
            .map_err(|e| Failure::invalid(format!("{what}: {e}")))?;
        if array.len() <= COPY_MAX {
            return Ok(Ids::Owned(array.to_vec()));
        }
        return Ok(Ids::Typed(array));
    }
    if value.is_typedarray().unwrap_or(false) {
        return Err(Failure::invalid(format!(
            "{what} must be a Uint32Array or an array of integers"
        )));
    }
    let elements = array_elements(value, what)?;
    elements
        .iter()
        .enumerate()
        .map(|(i, element)| id(element, &format!("{what}[{i}]")))
        .collect::<Outcome<Vec<u32>>>()
        .map(Ids::Owned)
}

/// One of a fixed set of names (`names`), turned into its value by `parse`.
fn one_of<T>(
    value: &Unknown<'_>,
    what: &str,
    names: &[&str],
    parse: impl Fn(&str) -> Option<T>,
) -> Outcome<T> {
    let list = || {
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if value.get_type().ok() != Some(ValueType::String) {
        return Err(Failure::invalid(format!(
            "{what} must be one of {}",
            list()
        )));
    }
    // SAFETY: the value was checked to be a string.
    let name = unsafe { String::from_napi_value(value.env(), value.raw()) }
        .map_err(|e| Failure::invalid(e.reason))?;
    parse(&name)
        .ok_or_else(|| Failure::invalid(format!("unknown {what} '{name}': use one of {}", list())))
}

pub fn metric(value: &Unknown<'_>) -> Outcome<MetricKind> {
    let names = MetricKind::ALL.map(MetricKind::name);
    one_of(value, "metric", &names, MetricKind::from_name)
}

pub fn quantization(value: &Unknown<'_>) -> Outcome<Quantization> {
    let names = Quantization::ALL.map(Quantization::name);
    one_of(value, "quantization", &names, Quantization::from_name)
}

/// An options argument: `undefined`/`null` or an object.
pub fn options<'a>(value: Option<Unknown<'a>>, what: &str) -> Outcome<Option<Object<'a>>> {
    let Some(value) = value else { return Ok(None) };
    match value.get_type() {
        Ok(ValueType::Undefined) | Ok(ValueType::Null) => Ok(None),
        Ok(ValueType::Object) => {
            // SAFETY: the value was checked to be an object.
            unsafe { Object::from_napi_value(value.env(), value.raw()) }
                .map(Some)
                .map_err(|e| Failure::invalid(e.reason))
        }
        _ => Err(Failure::invalid(format!("{what} must be an object"))),
    }
}

/// A property of an options object, `None` when absent or `undefined`.
pub fn field<'a>(object: Option<&Object<'a>>, name: &str) -> Outcome<Option<Unknown<'a>>> {
    let Some(object) = object else {
        return Ok(None);
    };
    let value: Unknown = object
        .get_named_property(name)
        .map_err(|e| Failure::invalid(format!("{name}: {}", e.reason)))?;
    match value.get_type() {
        Ok(ValueType::Undefined) => Ok(None),
        _ => Ok(Some(value)),
    }
}

pub fn optional_integer(
    object: Option<&Object<'_>>,
    name: &str,
    min: f64,
    max: f64,
) -> Outcome<Option<f64>> {
    field(object, name)?
        .map(|v| integer(&v, name, min, max))
        .transpose()
}

/// An optional boolean property of an options object.
pub fn optional_bool(object: Option<&Object<'_>>, name: &str) -> Outcome<Option<bool>> {
    match field(object, name)? {
        None => Ok(None),
        Some(value) if value.get_type().ok() == Some(ValueType::Boolean) => {
            // SAFETY: checked to be a boolean of the current call's scope.
            unsafe { bool::from_napi_value(value.env(), value.raw()) }
                .map(Some)
                .map_err(|e| Failure::invalid(e.reason))
        }
        Some(_) => Err(Failure::invalid(format!("{name} must be a boolean"))),
    }
}

/// A non-empty string argument.
pub fn path(value: &Unknown<'_>, what: &str) -> Outcome<String> {
    if value.get_type().ok() != Some(ValueType::String) {
        return Err(Failure::invalid(format!("{what} must be a string")));
    }
    // SAFETY: checked to be a string of the current call's scope.
    let path = unsafe { String::from_napi_value(value.env(), value.raw()) }
        .map_err(|e| Failure::invalid(e.reason))?;
    if path.is_empty() {
        return Err(Failure::invalid(format!("{what} must not be empty")));
    }
    Ok(path)
}
