//! Checklist item 16 (in progress).
