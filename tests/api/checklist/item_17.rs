//! Checklist item 17 (in progress).
