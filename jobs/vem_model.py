"""The MLflow model of a trained VeM pipeline (MLflow models-from-code: no pickled object).

``mlflow.pyfunc.load_model("models:/vem-small/1").predict(df)`` with one row per video:
``uri`` (a path or URL of the video) and optional ``seed``, ``steps``, ``guidance_scale``,
``adapter_strength``, ``bpm``; returns a frame with ``audio`` (float32 samples at
``sample_rate``) and ``sample_rate``. The weights are the pipeline folder logged as the
``pipeline`` artifact (safetensors + JSON).
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel


class VeMModel(PythonModel):  # type: ignore[misc]
    def load_context(self, context: Any) -> None:
        from vem.pipeline import VeMPipeline  # noqa: PLC0415

        self.pipe = VeMPipeline.from_pretrained(context.artifacts["pipeline"])

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]  # no hints: MLflow reads them as a schema
        import pandas as pd  # noqa: PLC0415

        from jobs import storage  # noqa: PLC0415

        out = []
        for row in model_input.to_dict("records"):
            controls = {k: row[k] for k in ("seed", "steps", "guidance_scale", "adapter_strength", "bpm")
                        if k in row and row[k] is not None and row[k] == row[k]}
            for k in ("seed", "steps"):
                if k in controls:
                    controls[k] = int(controls[k])
            wav = self.pipe(storage.read_bytes(str(row["uri"])), **controls)
            out.append({"audio": wav.tolist(), "sample_rate": self.pipe.config.mel.sample_rate})
        return pd.DataFrame(out)


mlflow.models.set_model(VeMModel())
