"""Orders: placing, the pipeline's steps, compensation, tracking."""
