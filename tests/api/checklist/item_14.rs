//! Checklist item 14 (in progress).
