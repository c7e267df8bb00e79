//! The closed loop: observe → plan → act → step physics, with ground-truth validation.
