//! Checklist item 03 (in progress).
