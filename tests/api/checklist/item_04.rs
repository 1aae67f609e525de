//! Checklist item 04 (in progress).
