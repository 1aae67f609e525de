//! Checklist item 21 (in progress).
