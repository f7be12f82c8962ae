"""Watch collapse while training: streaming metrics (:mod:`.metrics`), the :class:`Monitor`
for any training loop and the :class:`CollapseCallback` for ``transformers.Trainer`` /
TRL trainers (:mod:`.callback`). This package imports torch and transformers."""

from .callback import CollapseCallback, Monitor
from .metrics import (AttentionEntropy, NeuralCollapse, OutputDiversity, PolicyEntropy,
                      SpectralGeometry, StreamingMetric, reduce_moments)

__all__ = ["CollapseCallback", "Monitor", "AttentionEntropy", "NeuralCollapse",
           "OutputDiversity", "PolicyEntropy", "SpectralGeometry", "StreamingMetric",
           "reduce_moments"]
