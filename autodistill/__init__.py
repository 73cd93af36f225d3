"""autodistill: knowledge-distillation-driven neural architecture search."""
