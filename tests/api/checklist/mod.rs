//! The compliance checklist (issue 24 §6), one module per item.

mod item_30;
mod item_31;
mod item_32;
