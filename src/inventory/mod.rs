//! The inventory: the operator's TOML, parsed and validated (issue #2).
