//! Work in progress on the social branch.
