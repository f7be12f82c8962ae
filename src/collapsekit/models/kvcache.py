"""A KV cache written in place: :func:`preallocate` swaps each full-attention layer of a
``transformers`` cache for one whose keys and values are views into buffers sized for the
whole decode. ``DynamicLayer`` concatenates at every step, copying the whole cache (~10% of
a 128-row decode step of SmolLM2-135M on CPU); the values and the attention are the same,
so the tokens are too (tests/test_sampling.py)."""

from __future__ import annotations

from transformers.cache_utils import DynamicLayer


class PreallocatedLayer(DynamicLayer):
    """A ``DynamicLayer`` holding ``capacity`` positions; past them, or once its keys are no
    longer a view of the buffer (a reorder or batch selection made new tensors), it
    concatenates as ``DynamicLayer`` does."""

    def __init__(self, layer: DynamicLayer, capacity: int):
        super().__init__()
        k, v = layer.keys, layer.values
        n = k.shape[-2]
        self._k = k.new_empty(*k.shape[:-2], capacity, k.shape[-1])
        self._v = v.new_empty(*v.shape[:-2], capacity, v.shape[-1])
        self._k[..., :n, :], self._v[..., :n, :] = k, v
        self.keys, self.values = self._k[..., :n, :], self._v[..., :n, :]
        self.device, self.is_initialized = k.device, True

    def update(self, key_states, value_states, *args, **kwargs):
        n, m = self.keys.shape[-2], key_states.shape[-2]
        if (n + m > self._k.shape[-2] or key_states.shape[:-2] != self._k.shape[:-2]
                or self.keys.data_ptr() != self._k.data_ptr()
                or self.values.data_ptr() != self._v.data_ptr()):
            return super().update(key_states, value_states, *args, **kwargs)
        self._k[..., n:n + m, :], self._v[..., n:n + m, :] = key_states, value_states
        self.keys, self.values = self._k[..., :n + m, :], self._v[..., :n + m, :]
        return self.keys, self.values


def preallocate(cache, capacity: int):
    """``cache`` with each plain ``DynamicLayer`` (sliding-window and other layers are kept)
    holding ``capacity`` positions; a cache without ``layers`` is returned as it is."""
    for i, layer in enumerate(getattr(cache, "layers", None) or []):
        keys = getattr(layer, "keys", None)
        if type(layer) is DynamicLayer and keys is not None and keys.ndim == 4 \
                and keys.shape[-2] <= capacity:
            cache.layers[i] = PreallocatedLayer(layer, capacity)
    return cache
