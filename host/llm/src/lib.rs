//! Language models on edgewasm kernels.

pub mod chat;
pub mod sampling;
