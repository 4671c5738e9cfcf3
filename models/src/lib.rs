//! models
pub mod data;
