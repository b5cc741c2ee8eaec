"""Action-scoring actor-critic: one logit per admissible action from its features."""
