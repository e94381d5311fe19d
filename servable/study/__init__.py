"""Studies built on training and explanations: ablation by masking and retraining, and the
reproduction of the FAIR AI paper's tables and figures."""
