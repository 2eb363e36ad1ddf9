//! The Node.js binding of hannoy: converts and checks arguments, runs the engine off the main
//! thread, and maps its errors to the API's error codes. It knows nothing of HNSW.

mod abort;
mod convert;
mod database;
mod errors;
mod queue;
mod reader;
mod tasks;
mod writer;

use napi_derive::napi;

/// The distance metrics. 'bq-*' are binary-quantized: one bit per dimension (the sign).
#[napi(string_enum)]
pub enum Metric {
    #[napi(value = "euclidean")]
    Euclidean,
    #[napi(value = "cosine")]
    Cosine,
    #[napi(value = "manhattan")]
    Manhattan,
    #[napi(value = "hamming")]
    Hamming,
    #[napi(value = "bq-euclidean")]
    BqEuclidean,
    #[napi(value = "bq-cosine")]
    BqCosine,
    #[napi(value = "bq-manhattan")]
    BqManhattan,
}
