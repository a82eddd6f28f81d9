"""Newton's method vs gradient descent on two 2-D problems, with tinygraph's second derivatives.

Newton's step solves H(x) d = -grad f(x), with the Hessian H from tg.hessian (a gradient of a
gradient: backward passes recorded as graphs and differentiated again). On a quadratic it lands on
the minimum in one step whatever the conditioning; gradient descent's steps are limited by the
largest curvature (lr < 2/L), so it crawls along the flattest direction: with lr = 1/L, about
κ·ln(10) = 115 steps per digit for a condition number κ = L/μ = 50. On Rosenbrock's banana
valley Newton (with a backtracking line search, which keeps each step a descent step) takes a
couple of dozen steps, gradient descent tens of thousands.

    python examples/newton.py --out out/newton [--fast]
"""

import numpy as np
from _common import parse_args, pyplot, save_figure, start, table

import tinygraph as tg

# -----------------------------------------------------------------------------
KAPPA = 50.0  # condition number of the quadratic
ANGLE = np.pi / 6  # its principal axes are rotated by 30 degrees
X0_QUAD = np.array([-4.0, 3.0])
X0_ROSEN = np.array([-1.2, 1.0])  # the classic start
TOL = 1e-8  # stop when |grad f| < TOL
GD_STEPS = 50_000  # the cap for gradient descent
ROSEN_LR = 1e-3  # about the largest step that keeps gradient descent stable on Rosenbrock
# -----------------------------------------------------------------------------

args = parse_args("newton", __doc__)
if args.fast:
    GD_STEPS = 3000
start(args, "Newton's method vs gradient descent: second derivatives with tg.hessian")

c, s = np.cos(ANGLE), np.sin(ANGLE)
R = np.array([[c, -s], [s, c]])
A = R @ np.diag([1.0, KAPPA]) @ R.T  # eigenvalues 1 and KAPPA
B = np.array([1.0, 2.0])


def quad(x):
    """0.5 xᵀA x - bᵀx, minimum at A⁻¹b."""
    return 0.5 * x @ (A @ x) - B @ x


def rosen(x):
    """Rosenbrock's (1 - x)² + 100 (y - x²)², minimum 0 at (1, 1)."""
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def rosen_hessian(x):
    """The Hessian written out by hand, to check tg.hessian against."""
    return np.array([[2 - 400 * (x[1] - 3 * x[0] ** 2), -400 * x[0]], [-400 * x[0], 200.0]])


def newton(f, x0, max_steps=100):
    """Newton steps with backtracking (halve until f decreases); the path and the step count."""
    vg, hess = tg.value_and_grad(f), tg.hessian(f)
    x, path = x0.copy(), [x0.copy()]
    for k in range(max_steps):
        fx, g = vg(x)
        if np.linalg.norm(g) < TOL:
            return path, k
        d = -np.linalg.solve(hess(x), g)
        t = 1.0
        while vg(x + t * d)[0] > fx + 1e-4 * t * (g @ d) and t > 1e-10:  # Armijo condition
            t /= 2
        x = x + t * d
        path.append(x.copy())
    return path, max_steps


def descent(f, x0, lr, max_steps):
    """Plain gradient descent with a fixed learning rate; the path and the step count."""
    vg = tg.value_and_grad(f)
    x, path = x0.copy(), [x0.copy()]
    for k in range(max_steps):
        _, g = vg(x)
        if np.linalg.norm(g) < TOL:
            return path, k
        x = x - lr * g
        path.append(x.copy())
    return path, max_steps


# The Hessians tinygraph computes, against the closed forms
h_quad = tg.hessian(quad)(X0_QUAD)
h_rosen = tg.hessian(rosen)(X0_ROSEN)
hvp_err = np.abs(tg.hvp(rosen, X0_ROSEN, np.array([1.0, -2.0]))
                 - rosen_hessian(X0_ROSEN) @ np.array([1.0, -2.0])).max()
table("Hessians from tg.hessian vs closed forms", ["problem", "max abs error", "eigenvalues"], [
    ["quadratic (A)", np.abs(h_quad - A).max(),
     ", ".join(f"{e:.4g}" for e in np.linalg.eigvalsh(h_quad))],
    ["Rosenbrock at (-1.2, 1)", np.abs(h_rosen - rosen_hessian(X0_ROSEN)).max(),
     ", ".join(f"{e:.4g}" for e in np.linalg.eigvalsh(h_rosen))],
    ["Rosenbrock, tg.hvp vs H v", hvp_err, "-"],
], args.out)

runs = {
    ("quadratic", "Newton"): newton(quad, X0_QUAD),
    # lr = 1/L: the steep direction is solved in one step, the flat one shrinks by 1 - 1/κ
    ("quadratic", "gradient descent"): descent(quad, X0_QUAD, 1 / KAPPA, GD_STEPS),
    ("Rosenbrock", "Newton"): newton(rosen, X0_ROSEN),
    ("Rosenbrock", "gradient descent"): descent(rosen, X0_ROSEN, ROSEN_LR, GD_STEPS),
}
x_star = {"quadratic": np.linalg.solve(A, B), "Rosenbrock": np.array([1.0, 1.0])}
fs = {"quadratic": quad, "Rosenbrock": rosen}
rows = []
for (prob, method), (path, steps) in runs.items():
    end = path[-1]
    rows.append([prob, method, steps, "yes" if steps < GD_STEPS else "no (cap)",
                 np.linalg.norm(end - x_star[prob]),
                 float(fs[prob](tg.Node(end)).data) - float(fs[prob](tg.Node(x_star[prob])).data)])
table(f"steps to |grad f| < {TOL:g} (gradient descent capped at {GD_STEPS})",
      ["problem", "method", "steps", "converged", "distance to minimum", "f - f*"], rows, args.out)

plt = pyplot()
if plt is not None:
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, prob, (lo, hi) in zip(axes, ("quadratic", "Rosenbrock"),
                                  [((-5, 3), (-2, 4)), ((-1.6, 1.6), (-0.6, 1.8))], strict=True):
        xs, ys = np.meshgrid(np.linspace(*lo, 300), np.linspace(*hi, 300))
        pts = np.stack([xs.ravel(), ys.ravel()], axis=1)
        if prob == "quadratic":
            z = 0.5 * np.einsum("ni,ij,nj->n", pts, A, pts) - pts @ B
            z = z - z.min()
        else:
            z = (1 - pts[:, 0]) ** 2 + 100 * (pts[:, 1] - pts[:, 0] ** 2) ** 2
        ax.contour(xs, ys, np.log1p(z.reshape(xs.shape)), levels=25, colors="0.7", linewidths=0.6)
        for method, color in (("gradient descent", "tab:orange"), ("Newton", "tab:blue")):
            path, steps = runs[(prob, method)]
            p = np.array(path)
            ax.plot(p[:, 0], p[:, 1], "-", color=color, lw=1.2, alpha=0.9,
                    label=f"{method}: {steps}{'+' if steps >= GD_STEPS else ''} "
                          f"step{'' if steps == 1 else 's'}")
            ax.plot(p[:, 0], p[:, 1], "o", color=color, ms=3 if method == "Newton" else 1.2)
        ax.plot(*x_star[prob], "*", color="black", ms=12, label="minimum")
        ax.set_title(f"{prob}" + (f" (condition number {KAPPA:g})" if prob == "quadratic"
                                   else " (start (-1.2, 1))"))
        ax.set_xlim(*lo)
        ax.set_ylim(*hi)
        ax.legend(loc="lower right" if prob == "quadratic" else "lower left", fontsize=9)
    fig.suptitle("Newton's method (Hessian from tg.hessian) vs gradient descent")
    save_figure(fig, args.out, "newton_vs_gd")
