"""A learner's recurrent step backward chained over a few time steps.

Backpropagation through time calls the step backward once per step, in
reverse, feeding each step's ``dh_prev`` (and ``dc_prev``) into the step
before. Checking the input gradient per time step shows where an error
enters: when the last step is right and earlier ones are wrong, the
gradient a step hands back to its predecessor is what is wrong.
"""

from __future__ import annotations

import numpy as np

from tinyattn.gradcheck import TOL_LAYER, check_gradients

STEPS = 3


def chained_check(ex, fn, seed: int = 0, steps: int = STEPS):
    """Gradient-check ``fn`` chained over ``steps`` steps of ``ex``'s forward.

    Returns
    -------
    line : str
        The per-time-step errors of dx, or why they could not be computed.
    diagnoses : list of str
    """
    rng = np.random.default_rng(seed + 1)
    shapes = list(ex.shapes.items())
    (_, (B, D)), states = shapes[0], shapes[1:1 + ex.n_state]
    weights = shapes[1 + ex.n_state:]
    arrays = {"x": rng.standard_normal((B, steps, D))}
    state_names = ["h0", "c0"][: ex.n_state]
    for sname, (_, shape) in zip(state_names, states):
        arrays[sname] = rng.standard_normal(shape)
    for wname, shape in weights:
        arrays[wname] = rng.standard_normal(shape) * 0.5  # keep the gates off saturation
    wargs = [arrays[w] for w, _ in weights]

    def run():
        state, hs, caches = [arrays[s] for s in state_names], [], []
        for t in range(steps):
            out, cache = ex.forward(arrays["x"][:, t], *state, *wargs)
            state = list(out) if isinstance(out, tuple) else [out]
            hs.append(state[0])
            caches.append(cache)
        return (np.stack(hs, axis=1),) + tuple(state[1:]), caches  # hs (B, T, H), c_T

    def backward(douts):
        _, caches = run()
        dstate = [np.zeros_like(arrays["h0"])] + [d.copy() for d in douts[1:]]
        dx = np.zeros_like(arrays["x"])
        dws = [np.zeros_like(w) for w in wargs]
        for t in reversed(range(steps)):
            dstate[0] = dstate[0] + douts[0][:, t]  # h_t feeds the output and step t+1
            g = fn(*[d.copy() for d in dstate], caches[t])
            dx[:, t] = g[0]
            dstate = [np.asarray(s) for s in g[1:1 + ex.n_state]]
            for dw, gw in zip(dws, g[1 + ex.n_state:]):
                dw += gw  # a weight is used at every step: its gradients add up
        grads = {"x": dx, **dict(zip(state_names, dstate))}
        grads.update({w: dw for (w, _), dw in zip(weights, dws)})
        return grads

    try:
        result = check_gradients(lambda: run()[0], backward, arrays, tol=TOL_LAYER,
                                 seed=seed, time_axes={"x": 1})
    except Exception as err:  # noqa: BLE001  (the learner's code)
        return f"chained over {steps} steps: could not run ({type(err).__name__}: {err})", []
    rep = result["x"]
    head = f"chained over {steps} steps (backprop through time), dx per step:"
    if rep.passed:
        return f"{head} right at every step (max error {rep.error:.1e})", []
    per_t = [rep.parts[f"t={t}"] for t in range(steps)]
    line = head + " " + ", ".join(f"t={t} {'✓' if e <= rep.tol else '✗'} {e:.1e}"
                                  for t, e in enumerate(per_t))
    if per_t[-1] <= rep.tol and any(e > rep.tol for e in per_t[:-1]):
        back = " and ".join(["dh_prev", "dc_prev"][: ex.n_state])
        return line, [
            f"the last step is right but earlier steps are wrong: the gradient your step "
            f"hands back to the previous step ({back}) is wrong; it is the recurrent path "
            "that carries dh_next (and dc_next) back in time"]
    return line, []
