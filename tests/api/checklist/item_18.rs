//! Checklist item 18 (in progress).
