"""From a spec to torch: the compiled Model and its blocks, the equations of motion, expressions as torch functions."""
