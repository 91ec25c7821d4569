//! The shared store: PostgreSQL, for several server nodes (to be written).
