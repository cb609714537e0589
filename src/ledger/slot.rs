//! A place that holds at most one message reference (the C aio message slot).

use super::msg::MsgRef;

/// Holds at most one [`MsgRef`]. `take` always clears; `set` hands back what
/// was there so that nothing is silently dropped.
#[derive(Debug, Default)]
pub struct MsgSlot {
    held: Option<MsgRef>,
}

impl MsgSlot {
    /// An empty slot.
    pub fn new() -> Self {
        MsgSlot { held: None }
    }

    /// Puts `m` in the slot and returns the previous occupant, if any.
    #[must_use = "a message displaced from the slot must be released"]
    pub fn set(&mut self, m: MsgRef) -> Option<MsgRef> {
        self.held.replace(m)
    }

    /// Removes and returns the held message, leaving the slot empty.
    pub fn take(&mut self) -> Option<MsgRef> {
        self.held.take()
    }

    /// The held message, without taking it.
    pub fn peek(&self) -> Option<&MsgRef> {
        self.held.as_ref()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_none()
    }
}
