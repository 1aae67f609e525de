//! The compliance checklist (issue 24 §6), one module per item
//! (numbering fixed in the README's "Compliance" section).

mod item_11;
mod item_12;
