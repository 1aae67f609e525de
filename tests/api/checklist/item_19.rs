//! Checklist item 19 (in progress).
