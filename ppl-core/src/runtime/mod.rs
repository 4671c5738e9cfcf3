//! The effect system: messages, the thread-local handler stack, plates and the primitives.
//!
//! A model is an ordinary function that calls the primitives ([`sample`], [`observe`],
//! [`param`], [`deterministic`], [`factor`]). Each primitive builds a [`Message`] and sends it
//! through the handlers on this thread's stack ([`apply_stack`]), exactly as Pyro's
//! `apply_stack`: handlers are how inference and causal queries change what a model does
//! without changing its code.

mod message;
mod plate;
mod primitives;
mod stack;
mod threads;

pub use message::{
    frame_table, frame_table_with_worlds, Enumerate, InferConfig, Intervention, InterventionFn,
    Mask, Message, ParamInit, ParamSpec, PlateFrame, SiteKind, SiteWorlds, WorldFrame, WorldNoise,
};
pub(crate) use plate::broadcast_to_plates;
pub use plate::{allocate_dim, free_dim, plate, Plate, PlateGuard};
pub use primitives::{
    deterministic, factor, observe, param, param_constrained, sample, sample_with,
};
pub use stack::{apply_stack, depth, enter, push, HandlerGuard, HandlerRef, Messenger};
pub use threads::{keep_freed_memory, pin_thread_count};
