"""Package marker: pyproject.toml ships this folder inside the wheel as `musicutils.pretrained`.

The model files beside it (README.md, config.json, model.weights.h5, train.json, log.csv, and
the first training stage's first_stage_train.json and first_stage_log.csv) are package data;
`musicutils.generate.DEFAULT_CHECKPOINT` finds them with importlib.resources, in a checkout
(editable install) and in an installed wheel alike. Keep this file when you replace the model.
"""
