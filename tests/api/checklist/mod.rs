//! The compliance checklist as tests (issue 24 §6): one module per item of
//! the 35-point checklist that UK GDPR, PECR, the ICO's direct-marketing and
//! consent guidance, RFC 8058/2369/2919/3464/5965 and the Gmail, Yahoo and
//! Microsoft bulk-sender rules add up to. The numbering is fixed
//! (`item_NN`, NN from 01 to 35); each module's `//!` line states its item
//! and source, and each test runs on both databases through the real server
//! and a real SMTP capture. Item 35 (the relay's reverse DNS) is the
//! operator's and has no module; the README's "Compliance" section lists
//! every item with the test that proves it and the settings that affect it.

mod common;

mod item_01;
mod item_02;
mod item_03;
mod item_04;
mod item_05;
mod item_06;
mod item_07;
mod item_08;
mod item_09;
mod item_10;
mod item_11;
mod item_12;
mod item_13;
mod item_14;
mod item_15;
mod item_16;
mod item_17;
mod item_18;
mod item_19;
mod item_20;
mod item_21;
mod item_22;
mod item_23;
mod item_24;
mod item_25;
mod item_26;
mod item_27;
mod item_28;
mod item_29;
mod item_30;
mod item_31;
mod item_32;
mod item_33;
mod item_34;
