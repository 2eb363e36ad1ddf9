//! The Node.js binding of hannoy: converts and checks arguments, runs the engine off the main
//! thread, and maps its errors to the API's error codes. It knows nothing of HNSW.

mod abort;
mod convert;
mod database;
mod errors;
mod pool;
mod prefetch;
mod queue;
mod reader;
mod settle;
mod tasks;
mod writer;
