"""The explainability benchmark's parts, one home per question: `verdicts` (three-valued
verdicts against baselines, the decision table), `baselines` (model-free per-slot scores and
null explanations), `findings` (the per-model text generated from results.json). The driver
is `servable.study.xai_benchmark`."""
