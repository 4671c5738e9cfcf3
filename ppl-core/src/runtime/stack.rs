//! The thread-local handler stack and `apply_stack`.
//!
//! Handlers are pushed by RAII guards; dropping a guard pops its handler, also when the model
//! returns an error or panics. The stack's own borrow is never held while a handler runs, so
//! handlers (and anything they call) may push handlers or send messages of their own.

use std::cell::RefCell;
use std::rc::Rc;

use super::message::{Message, SiteKind};
use crate::error::{Error, Result};

/// An effect handler: it sees every message sent while it is on the stack.
///
/// `process` runs from the innermost handler outwards before the default behaviour (drawing a
/// value); `postprocess` runs from the innermost handler outwards after it, so an outer handler
/// (typically `trace`) sees the message as every inner handler left it.
pub trait Messenger {
    /// Called before the value is drawn; may set the value, mark it observed, rename the site,
    /// or set `stop` to hide the message from the handlers outside.
    fn process(&mut self, msg: &mut Message) -> Result<()> {
        let _ = msg;
        Ok(())
    }

    /// Called after the value is drawn and any intervention applied.
    fn postprocess(&mut self, msg: &mut Message) -> Result<()> {
        let _ = msg;
        Ok(())
    }
}

/// A handler as the stack holds it: shared, so that its owner can read it after the run.
pub type HandlerRef = Rc<RefCell<dyn Messenger>>;

thread_local! {
    static STACK: RefCell<Vec<HandlerRef>> = const { RefCell::new(Vec::new()) };
}

/// Keeps a handler on the stack; dropping it pops the handler.
#[must_use = "the handler is popped when the guard is dropped"]
pub struct HandlerGuard {
    handler: HandlerRef,
    depth: usize,
}

impl HandlerGuard {
    /// The handler this guard keeps on the stack.
    pub fn handler(&self) -> &HandlerRef {
        &self.handler
    }
}

impl Drop for HandlerGuard {
    fn drop(&mut self) {
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            // Guards drop in reverse order of creation; anything above ours was left by a guard
            // that was leaked (mem::forget) and is removed with ours.
            if s.len() > self.depth && Rc::ptr_eq(&s[self.depth], &self.handler) {
                s.truncate(self.depth);
            } else if let Some(pos) = s.iter().rposition(|h| Rc::ptr_eq(h, &self.handler)) {
                s.truncate(pos);
            }
        });
    }
}

/// Pushes `handler` onto this thread's stack until the returned guard is dropped.
pub fn push(handler: HandlerRef) -> HandlerGuard {
    let depth = STACK.with(|s| {
        let mut s = s.borrow_mut();
        s.push(handler.clone());
        s.len() - 1
    });
    HandlerGuard { handler, depth }
}

/// Pushes a messenger, returning the shared handle (to read it back) and the guard.
pub fn enter<M: Messenger + 'static>(messenger: M) -> (Rc<RefCell<M>>, HandlerGuard) {
    let rc = Rc::new(RefCell::new(messenger));
    let guard = push(rc.clone());
    (rc, guard)
}

/// How many handlers are on this thread's stack.
pub fn depth() -> usize {
    STACK.with(|s| s.borrow().len())
}

fn handler_at(i: usize) -> HandlerRef {
    STACK.with(|s| s.borrow()[i].clone())
}

fn with_handler(
    h: &HandlerRef,
    msg: &mut Message,
    f: impl FnOnce(&mut dyn Messenger, &mut Message) -> Result<()>,
) -> Result<()> {
    let name = &msg.name;
    let mut m = h.try_borrow_mut().map_err(|_| {
        Error::usage(format!(
            "site `{name}` was sent through a handler that is already handling a message \
             (a handler may not call the model it handles)"
        ))
    })?;
    f(&mut *m, msg)
}

/// Sends `msg` through the stack (Pyro's `apply_stack`): `process` from the innermost handler
/// outwards until one sets `stop`, then the default behaviour, then any intervention, then
/// `postprocess` of the same handlers from the innermost outwards.
pub fn apply_stack(msg: &mut Message) -> Result<()> {
    let n = depth();
    let mut lowest = n;
    for i in (0..n).rev() {
        let h = handler_at(i);
        lowest = i;
        with_handler(&h, msg, |m, msg| m.process(msg))?;
        if msg.stop {
            break;
        }
    }
    super::plate::broadcast_to_plates(msg)?;
    if msg.observed {
        check_observed(msg)?;
    }
    default_process(msg)?;
    apply_intervention(msg)?;
    for i in (lowest..n).rev() {
        let h = handler_at(i);
        with_handler(&h, msg, |m, msg| m.postprocess(msg))?;
    }
    Ok(())
}

/// An observed value must fit the site's shape and, while validation is on, its support.
fn check_observed(msg: &Message) -> Result<()> {
    let (Some(value), Some(dist)) = (msg.value.as_ref(), msg.dist.as_ref()) else {
        return Ok(());
    };
    super::plate::check_value_shape(msg, value)?;
    if crate::dist::validation_enabled() && !dist.support().check(value)? {
        return Err(Error::value(
            &msg.name,
            format!(
                "observed value lies outside the support of {} ({})",
                dist.name(),
                dist.support()
            ),
        ));
    }
    Ok(())
}

/// What happens when no handler has set the value: draw it, or fetch the parameter.
fn default_process(msg: &mut Message) -> Result<()> {
    if msg.value.is_some() {
        return Ok(());
    }
    match msg.kind {
        SiteKind::Sample => {
            let dist = msg.dist.as_ref().ok_or_else(|| {
                Error::usage(format!("sample site `{}` has no distribution", msg.name))
            })?;
            let v = crate::rng::with_rng(|rng| {
                if dist.has_rsample() {
                    dist.rsample(rng, &[])
                } else {
                    dist.sample(rng, &[])
                }
            })
            .map_err(|e| e.at_site(&msg.name))?;
            msg.value = Some(v);
        }
        SiteKind::Param => {
            let spec = msg.param.take().ok_or_else(|| {
                Error::usage(format!("param site `{}` has no specification", msg.name))
            })?;
            let v = crate::params::ParamStore::current().get_or_init(
                &msg.name,
                spec.init,
                spec.constraint,
            )?;
            msg.value = Some(v);
        }
        SiteKind::Deterministic | SiteKind::Subsample => {
            return Err(Error::usage(format!(
                "site `{}` of kind {:?} reached the default behaviour without a value",
                msg.name, msg.kind
            )));
        }
    }
    Ok(())
}

/// Replaces the factual value by the intervened one, keeping the factual value on the message.
fn apply_intervention(msg: &mut Message) -> Result<()> {
    if let Some(iv) = msg.intervention.take() {
        let factual = msg
            .value
            .take()
            .expect("default_process always sets a value");
        let v = iv.apply(&factual, &msg.name)?;
        msg.value = Some(v);
        msg.factual_value = Some(factual);
        msg.intervened = true;
    }
    Ok(())
}
