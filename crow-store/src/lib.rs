//! crow-store
