//! Language models on edgewasm kernels.
