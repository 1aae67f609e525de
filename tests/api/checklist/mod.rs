//! The compliance checklist (issue 24 §6), one module per item; see
//! /work/wt/CHECKLIST.md for the numbering and the README's "Compliance".

mod item_03;
mod item_04;
mod item_09;
mod item_14;
mod item_17;
mod item_18;
mod item_19;
mod item_21;
