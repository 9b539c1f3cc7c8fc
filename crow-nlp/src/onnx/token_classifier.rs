//! PLACEHOLDER — being written (token classifier).
