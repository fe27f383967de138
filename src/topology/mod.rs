//! The topology derived once from a validated inventory (issue #2).
