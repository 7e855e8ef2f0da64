"""Package marker: pyproject.toml ships this folder inside the wheel as `musicutils.chorales`.

The .mid files beside it are package data; `musicutils.data.BUNDLED_CHORALES` finds them with
importlib.resources, in a checkout (editable install) and in an installed wheel alike.
"""
