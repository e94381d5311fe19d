"""The explainability benchmark's parts, one home per question, each reading the methods'
`Explanation`s through `runs` (Context, MethodRun, run_method): `agreement`, `stability`,
`faithfulness` (feature and slot curves, captum's metrics), `randomisation`, `physics`,
`correlation`, `verdicts` (three-valued verdicts against baselines, the decision table),
`baselines` (model-free per-slot scores and null explanations), `findings` (the per-model
text generated from results.json). The driver is `servable.study.xai_benchmark`."""
