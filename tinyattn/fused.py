"""The fused, in-place sequence loops of the RNN and the GRU: the same
equations as `tinyattn.rnn` and `tinyattn.gru`, written for speed.

Read the plain loop first (`tinyattn.recurrent.RecurrentLayer.forward`
over each cell's ``*_gates_forward`` / ``*_gates_backward``): it is the
definition. These loops compute the same numbers with three tricks that
lesson 12 measures:

- every work array is allocated once and reused (``out=``), so a step
  allocates nothing;
- the sigmoid gates' pre-activations are scaled by ½ in scaled copies of
  the weights, so one ``np.tanh`` over all gates gives every activation
  (σ(a) = (tanh(a/2) + 1) / 2);
- the backward writes each step's pre-activation gradients into one
  (T, B, G·H) array, so the weight and input gradients are one product
  each after the loop.

They stay because `benchmarks/bench_rnn.py` measured them at least 15 %
faster than the plain loop on the machine this was built on (see the
README's Performance section); the LSTM's fused loop gained only 7–12 %
there and was removed, so the LSTM always runs the plain loop. A layer
uses these loops when ``fused=True`` (the default), and
``tests/test_fused.py`` checks them equal to the plain loop, outputs and
every gradient, with and without padding.
"""

from __future__ import annotations

import numpy as np

from tinyattn._validate import check_array


class FusedLoops:
    """Work arrays and the input projection shared by the fused loops."""

    def _buf(self, name: str, shape) -> np.ndarray:
        """A work array reused across calls (no page faults every step).

        Only caches and internals point at buffers; every array returned
        to the caller is a fresh copy, so reuse never leaks out.
        """
        buffers = self.__dict__.setdefault("_buffers", {})
        buf = buffers.get(name)
        if buf is None or buf.shape != tuple(shape):
            buf = buffers[name] = np.empty(shape, dtype=self.dtype)
        return buf

    def _upstream(self, dhs, shape) -> np.ndarray:
        """Check ``dhs (B, T, H)`` and return it time-major (a view)."""
        check_array(dhs, "dhs", shape, self.dtype)
        return dhs.transpose(1, 0, 2)  # (B, T, H) -> (T, B, H)

    @staticmethod
    def _batch_first(hs_tm, keep):
        """Outputs (T, B, H) -> (B, T, H), zero at pads, as a fresh array."""
        out = hs_tm.transpose(1, 0, 2)  # (T, B, H) -> (B, T, H)
        if keep is not None:
            return out * keep.transpose(1, 0, 2)  # (B, T, 1) broadcast, a copy
        return np.ascontiguousarray(out)

    def _scale(self, gates_sigmoid) -> np.ndarray:
        """0.5 on sigmoid gates, 1 on tanh gates, one entry per column (G·H,).

        σ(a) = (tanh(a/2) + 1) / 2, so scaling the pre-activations of the
        sigmoid gates by ½ (folded into scaled weight copies) lets one
        np.tanh call activate every gate of a step at once.
        """
        # In the layer's dtype: a float64 scale would silently turn every
        # float32 product into a mixed-precision one, twice as slow.
        per_gate = np.where(np.asarray(gates_sigmoid), 0.5, 1.0).astype(self.dtype)
        return per_gate.repeat(self.hidden_size)

    def _input_projection(self, xs, W_x, b):
        """All steps' input projections in one product: (T, B, G·H)."""
        T, B, D = xs.shape
        out = self._buf("proj", (T, B, W_x.shape[1]))
        # (T·B, D) @ (D, G·H) -> (T·B, G·H)
        np.matmul(xs.reshape(T * B, D), W_x, out=out.reshape(T * B, -1))
        out += b
        return out

    def _input_gradients(self, xs, dA, W_x, key_W="W_x", key_b=None):
        """Weight and input gradients of the input projection, one product each.

        ``dA (T, B, G·H)`` holds the pre-activation gradients of all steps;
        returns ``dx (B, T, D)``.
        """
        T, B, D = xs.shape
        dA2 = dA.reshape(T * B, -1)  # (T·B, G·H)
        self.grads[key_W] += xs.reshape(T * B, D).T @ dA2  # dW_x = X^T dA
        if key_b is not None:
            self.grads[key_b] += dA2.sum(axis=0)
        dx = dA2 @ W_x.T  # (T·B, G·H) @ (G·H, D) -> (T·B, D)
        # (T·B, D) -> (T, B, D) -> (B, T, D)
        return np.ascontiguousarray(dx.reshape(T, B, D).transpose(1, 0, 2))


class FusedRNN(FusedLoops):
    """`tinyattn.RNN`'s loop, in place."""

    def _weights(self):
        return self.params["W_xh"], self.params["W_hh"], self.params["b_h"]

    def _fused_forward(self, x, h0, lengths):
        """Run the sequence; returns ``hs (B, T, H)`` and ``h_T (B, H)``."""
        xs, keep = self._prepare(x, lengths)
        T, B, _ = xs.shape
        h0 = self._state(h0, "h0", B)
        W_xh, W_hh, b_h = self._weights()
        hs = self._buf("hs", (T + 1, B, self.hidden_size))  # hs[0] = h0
        hs[0] = h0
        act = self._input_projection(xs, W_xh, b_h)  # (T, B, H), becomes tanh(a)
        rec = self._buf("rec", (B, self.hidden_size))
        for t in range(T):
            a = act[t]
            a += np.matmul(hs[t], W_hh, out=rec)  # the only per-step product
            np.tanh(a, out=a)  # a now holds the new state
            if keep is None:
                hs[t + 1] = a
            else:  # frozen past the length: h_t = h_{t-1} + keep·(h_new − h_{t-1})
                np.subtract(a, hs[t], out=hs[t + 1])
                hs[t + 1] *= keep[t]
                hs[t + 1] += hs[t]
        self._cache = (xs, hs, act, keep)
        return self._batch_first(hs[1:], keep), hs[T].copy()

    def _fused_backward(self, dhs, dh_T):
        """Backpropagate through time; returns ``dx (B, T, D)``, ``dh0 (B, H)``."""
        xs, hs, act, keep = self._take_cache()
        T, B, D = xs.shape
        H = self.hidden_size
        dhs = self._upstream(dhs, (B, T, H))
        dh = self._state(dh_T, "dh_T", B).copy()  # dL/dh_t, carried backwards
        W_xh, W_hh, _ = self._weights()
        dA = self._buf("dA", (T, B, H))
        tmp = self._buf("tmp", (B, H))
        for t in reversed(range(T)):
            da = dA[t]
            if keep is None:
                dh += dhs[t]  # h_t feeds the output and step t+1
                da[...] = dh
            else:  # pads: the output is the constant 0 and the state passes through
                dh += dhs[t] * keep[t]
                np.multiply(dh, keep[t], out=da)
                dh -= da
            np.multiply(act[t], act[t], out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            da *= tmp  # tanh'(a) = 1 − h²; reuse the stored activation
            if keep is None:
                np.matmul(da, W_hh.T, out=dh)  # dh_{t-1} = da W_hh^T
            else:
                dh += da @ W_hh.T
        # Weight gradients as one product over all steps, not one per step.
        dA2 = dA.reshape(T * B, H)
        self.grads["W_hh"] += hs[:-1].reshape(T * B, H).T @ dA2
        dx = self._input_gradients(xs, dA, W_xh, "W_xh", "b_h")
        return dx, dh


class FusedGRU(FusedLoops):
    """`tinyattn.GRU`'s loop, in place, one tanh for the r and z sigmoids."""

    def _weights(self):
        p = self.params
        return p["W_x"], p["W_h"], p["b_x"], p["b_h"]

    def _fused_forward(self, x, h0, lengths):
        """Run the sequence; returns ``hs (B, T, H)`` and ``h_T (B, H)``."""
        xs, keep = self._prepare(x, lengths)
        T, B, _ = xs.shape
        H = self.hidden_size
        h0 = self._state(h0, "h0", B)
        W_x, W_h, b_x, b_h = self._weights()
        s = self._scale([True, True, False])  # (3H,)
        # r, z pre-activations scaled by ½ so one tanh gives both sigmoids.
        gates = self._input_projection(xs, W_x * s, b_x * s)  # (T, B, 3H) -> r, z, n
        W_hs, b_hs = W_h * s, b_h * s
        hs = self._buf("hs", (T + 1, B, H))
        hs[0] = h0
        # reset_after: ah = h W_h + b_h for all gates; else r ⊙ h_prev.
        side = self._buf("side", (T, B, 3 * H if self.reset_after else H))
        diff = self._buf("diff", (B, H))
        for t in range(T):
            g, h_prev = gates[t], hs[t]
            rz, a_n = g[:, :2 * H], g[:, 2 * H:]
            if self.reset_after:
                ah = np.matmul(h_prev, W_hs, out=side[t])  # the one product per step
                ah += b_hs
                rz += ah[:, :2 * H]
            else:
                rz += h_prev @ W_hs[:, :2 * H]
                rz += b_hs[:2 * H]
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5  # now σ(a_r), σ(a_z)
            r, z = g[:, :H], g[:, H:2 * H]
            if self.reset_after:
                a_n += np.multiply(r, ah[:, 2 * H:], out=diff)
            else:
                rh = np.multiply(r, h_prev, out=side[t])
                a_n += rh @ W_h[:, 2 * H:]
                a_n += b_h[2 * H:]
            np.tanh(a_n, out=a_n)  # now n
            # h = n + z ⊙ (h_prev − n)
            np.subtract(h_prev, a_n, out=diff)
            diff *= z
            if keep is not None:  # frozen past the length
                diff += a_n
                diff -= h_prev
                diff *= keep[t]
                np.add(h_prev, diff, out=hs[t + 1])
            else:
                np.add(a_n, diff, out=hs[t + 1])
        self._cache = (xs, hs, gates, side, keep)
        return self._batch_first(hs[1:], keep), hs[T].copy()

    def _fused_backward(self, dhs, dh_T):
        """Backpropagate through time; returns ``dx (B, T, D)``, ``dh0 (B, H)``."""
        xs, hs, gates, side, keep = self._take_cache()
        T, B, D = xs.shape
        H = self.hidden_size
        dhs = self._upstream(dhs, (B, T, H))
        dh = self._state(dh_T, "dh_T", B).copy()
        W_x, W_h, _, _ = self._weights()
        dAx = self._buf("dAx", (T, B, 3 * H))  # gradients of the input pre-activations
        dAh = self._buf("dAh", (T, B, 3 * H)) if self.reset_after else dAx
        dhn = self._buf("dhn", (B, H))
        tmp = self._buf("tmp", (B, H))
        for t in reversed(range(T)):
            g, h_prev = gates[t], hs[t]
            r, z, n = g[:, :H], g[:, H:2 * H], g[:, 2 * H:]
            dax = dAx[t]
            da_r, da_z, da_n = dax[:, :H], dax[:, H:2 * H], dax[:, 2 * H:]
            if keep is None:
                dh += dhs[t]
                dhn[...] = dh
                dh.fill(0.0)  # dh now collects dL/dh_{t-1}
            else:
                dh += dhs[t] * keep[t]
                np.multiply(dh, keep[t], out=dhn)  # only real steps reach the cell
                dh -= dhn  # pads pass dh straight to h_{t-1}
            # h = (1 − z) n + z h_prev
            np.subtract(h_prev, n, out=da_z)
            da_z *= dhn  # dz = dh (h_prev − n)
            np.multiply(z, z, out=tmp)
            np.subtract(z, tmp, out=tmp)
            da_z *= tmp  # σ'(a_z) = z (1 − z)
            np.multiply(dhn, z, out=tmp)
            dh += tmp  # direct path h_prev -> h
            np.subtract(dhn, tmp, out=da_n)  # dn = dh (1 − z)
            np.multiply(n, n, out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            da_n *= tmp  # tanh'(a_n) = 1 − n²
            if self.reset_after:
                np.multiply(da_n, side[t][:, 2 * H:], out=da_r)  # dr = da_n ⊙ ah_n
                dah = dAh[t]
                dah[:, 2 * H:] = da_n * r  # a_n = ... + r ⊙ ah_n
            else:
                drh = da_n @ W_h[:, 2 * H:].T  # a_n = ... + (r ⊙ h_prev) W_hn
                np.multiply(drh, h_prev, out=da_r)
                drh *= r
                dh += drh
            np.multiply(r, r, out=tmp)
            np.subtract(r, tmp, out=tmp)
            da_r *= tmp  # σ'(a_r) = r (1 − r)
            if self.reset_after:
                dah[:, :2 * H] = dax[:, :2 * H]
                dh += dah @ W_h.T  # one product for all three gates
            else:
                dh += dax[:, :2 * H] @ W_h[:, :2 * H].T
        # Weight gradients as one product over all steps.
        hp = hs[:-1].reshape(T * B, H)  # h_{t-1} for every step
        if self.reset_after:
            dah2 = dAh.reshape(T * B, 3 * H)
            self.grads["W_h"] += hp.T @ dah2
            self.grads["b_h"] += dah2.sum(axis=0)
        else:
            dax2 = dAx.reshape(T * B, 3 * H)
            self.grads["W_h"][:, :2 * H] += hp.T @ dax2[:, :2 * H]
            self.grads["W_h"][:, 2 * H:] += side.reshape(T * B, H).T @ dax2[:, 2 * H:]
            self.grads["b_h"] += dax2.sum(axis=0)
        dx = self._input_gradients(xs, dAx, W_x, "W_x", "b_x")
        return dx, dh
