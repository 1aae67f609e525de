//! The compliance checklist (issue 24 §6), one module per item, each run on
//! both databases.

mod item_27;
mod item_28;
mod item_29;
