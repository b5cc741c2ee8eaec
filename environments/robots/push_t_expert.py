"""PushTExpert: a push-primitive planner for Push-T, scored by simulation.

Sampling MPC over raw pusher targets is slow and myopic on Push-T (most
random target sequences never touch the T). This expert searches a small
structured space instead: a *primitive* is

1. an **approach**: waypoints around the T (shortest path in the visibility
   graph of the T's two rectangles inflated by the pusher radius and a
   margin) to a pre-contact point next to a contact point on the T's outline;
2. a **push**: the target ramps through the contact point along a direction
   at an angle to the edge's inward normal, for ``k`` steps;
3. a **retreat** of one step back along the push, so the T comes to rest.

Every primitive is scored by simulating it on the env itself
(``get_state`` / ``set_state``): first cheaply (pusher placed at the
pre-contact point, every push length read off one ramp), then the best few
exactly, approach included, from the true current state. The score is the
T's pose error afterwards (RMS distance of its points to the target T, see
``push_t.pose_error``) plus a time penalty per step; a primitive that reaches
the success coverage on the way wins outright (the soonest). Simulation is
exact, so the chosen primitive is executed open loop and the real episode
repeats the simulated one; if the observed state ever departs from the
prediction (say, actions were sent to another env), it replans. (The snapshot
loop is written out here rather than via ``mpc.evaluate_sequences`` because
it needs every step's predicted state and stops at success.)
"""
from __future__ import annotations

import heapq
import math

import numpy as np

from omnigym.environments.robots import push_t as P

R = P.PUSHER_RADIUS
GAP = 0.008            # pre-contact point: this far (beyond the radius) off the T's surface
MARGIN = 0.006         # approach paths keep the pusher this far off the T
NODE_EXTRA = 0.006     # path corners sit this much further out (the pusher cuts corners a little)
SPACING = 0.02         # contact points every ~2 cm along the outline
INSET = 0.004          # ... but not right on a convex corner
ALPHAS = (-0.5, 0.0, 0.5)  # push directions relative to the inward normal (rad)
TIME_COST = 0.07       # log pose error one extra step is worth (halving the error ~ 10 steps)
TOP = 6                # primitives re-simulated exactly
WORSE = 100.0          # score penalty of a primitive that does not reduce the pose error
COVERAGE_J = 0.004     # coverage >= 0.95 needs pose_error < ~0.0027: only then compute coverage
LIMIT = P.WORKSPACE - 0.002


def _rot(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def _contacts() -> list[tuple[np.ndarray, np.ndarray]]:
    """(point, outward normal) pairs on the T outline, in the T frame, whose
    pre-contact point is clear of the whole T (points deep in the concave
    corners cannot be reached by a round pusher)."""
    (bx, by), (bhx, bhy) = P.T_PIECES[0]
    (sx, sy), (shx, shy) = P.T_PIECES[1]
    yb0, yb1, ys0 = by - bhy, by + bhy, sy - shy
    edges = [  # counter-clockwise outline: (start, end, outward normal)
        ((-shx, ys0), (shx, ys0), (0, -1)),    # stem tip
        ((shx, ys0), (shx, yb0), (1, 0)),      # stem, right side
        ((shx, yb0), (bhx, yb0), (0, -1)),     # bar underside, right
        ((bhx, yb0), (bhx, yb1), (1, 0)),      # bar, right end
        ((bhx, yb1), (-bhx, yb1), (0, 1)),     # bar top
        ((-bhx, yb1), (-bhx, yb0), (-1, 0)),   # bar, left end
        ((-bhx, yb0), (-shx, yb0), (0, -1)),   # bar underside, left
        ((-shx, yb0), (-shx, ys0), (-1, 0)),   # stem, left side
    ]
    out = []
    for a, b, n in edges:
        a, b, n = np.array(a, float), np.array(b, float), np.array(n, float)
        length = float(np.linalg.norm(b - a))
        k = max(2, int(math.ceil((length - 2 * INSET) / SPACING)) + 1)
        for t in np.linspace(INSET / length, 1 - INSET / length, k):
            p = a + t * (b - a)
            if P.t_distance((0.0, 0.0, 0.0), p + n * (R + GAP)) >= R + GAP - 1e-9:
                out.append((p, n))
    return out


CONTACTS = _contacts()


# --- approach paths ------------------------------------------------------------
def _segment_hits(p0, p1, center, axes, half) -> bool:
    """Does segment p0-p1 enter the open rectangle (center, axes, half)? (Liang-Barsky)"""
    d0 = axes.T @ (p0 - center)
    dd = axes.T @ (p1 - p0)
    lo, hi = 0.0, 1.0
    for i in range(2):
        if abs(dd[i]) < 1e-12:
            if abs(d0[i]) >= half[i]:
                return False
            continue
        t0, t1 = (-half[i] - d0[i]) / dd[i], (half[i] - d0[i]) / dd[i]
        if t0 > t1:
            t0, t1 = t1, t0
        lo, hi = max(lo, t0), min(hi, t1)
        if lo >= hi:
            return False
    return hi - lo > 1e-9


class _Obstacle:
    """The T inflated by the pusher radius and a margin, at one pose."""

    def __init__(self, pose):
        self.pose = pose
        self.axes = _rot(pose[2])
        self.rects = []
        for center, half in P.T_PIECES:
            c = self.axes @ np.array(center) + pose[:2]
            # Collision checks use a slightly smaller inflation than the nodes
            # so that paths along an inflated edge still count as free.
            self.rects.append((c, np.array(half) + R + MARGIN - 0.001))
        self.nodes = []
        for center, half in P.T_PIECES:
            for sx in (-1, 1):
                for sy in (-1, 1):
                    local = np.array(center) + np.array([sx, sy]) * (np.array(half) + R + MARGIN + NODE_EXTRA)
                    w = self.axes @ local + pose[:2]
                    if np.all(np.abs(w) <= LIMIT) and P.t_distance(pose, w) >= R + MARGIN:
                        self.nodes.append(w)
        n = len(self.nodes)
        self.visible = [[j != i and self.free(self.nodes[i], self.nodes[j]) for j in range(n)] for i in range(n)]

    def free(self, a, b) -> bool:
        return not any(_segment_hits(a, b, c, self.axes, h) for c, h in self.rects)

    def path(self, start, goal) -> list[np.ndarray]:
        """Waypoints (start excluded, goal included) around the T."""
        waypoints = []
        if P.t_distance(self.pose, start) < R + MARGIN:
            # Touching (after a push): back off along the distance gradient first.
            eps = 1e-4
            g = np.array([P.t_distance(self.pose, start + (eps, 0)) - P.t_distance(self.pose, start - (eps, 0)),
                          P.t_distance(self.pose, start + (0, eps)) - P.t_distance(self.pose, start - (0, eps))])
            g /= max(np.linalg.norm(g), 1e-12)
            depth = R + MARGIN + 0.002 - P.t_distance(self.pose, start)
            start = np.clip(start + g * depth, -LIMIT, LIMIT)
            waypoints.append(start)
        if self.free(start, goal):
            return waypoints + [goal]
        # Dijkstra over start, the corner nodes and the goal.
        nodes = [start] + self.nodes + [goal]
        n = len(nodes)
        goal_i = n - 1

        def edge(i, j) -> bool:
            if 0 < i < goal_i and 0 < j < goal_i:
                return self.visible[i - 1][j - 1]
            return self.free(nodes[i], nodes[j])

        dist = [math.inf] * n
        prev = [-1] * n
        dist[0] = 0.0
        heap = [(0.0, 0)]
        while heap:
            d, i = heapq.heappop(heap)
            if d > dist[i]:
                continue
            if i == goal_i:
                break
            for j in range(1, n):
                if j != i and edge(i, j):
                    nd = d + float(np.linalg.norm(nodes[j] - nodes[i]))
                    if nd < dist[j]:
                        dist[j], prev[j] = nd, i
                        heapq.heappush(heap, (nd, j))
        if prev[goal_i] < 0:  # boxed in (against a wall): go straight, the simulation will judge
            return waypoints + [goal]
        chain = []
        i = goal_i
        while i > 0:
            chain.append(nodes[i])
            i = prev[i]
        return waypoints + chain[::-1]


def _approach_targets(start, waypoints) -> list[np.ndarray]:
    """Jump the target to each waypoint and hold it until the pusher (a
    critically damped PD, 30 rad/s) is nearly there: from rest it then moves
    along the straight segment, so the path's clearance holds."""
    out, prev = [], start
    for w in waypoints:
        d = float(np.linalg.norm(w - prev))
        n = 1 if d <= 0.03 else 2 if d <= 0.2 else 3
        out += [w] * n
        prev = w
    return out


class PushTExpert:
    """Scripted expert for ``robots/PushT-v0`` (see the module docstring).
    Needs ``reset(env=...)``: it plans on that env's snapshots."""

    name = "expert"

    def __init__(self, time_cost: float = TIME_COST, top: int = TOP, **_):
        self.time_cost = float(time_cost)
        self.top = int(top)
        self.env = None
        self._plan: list[np.ndarray] = []
        self._predicted: list[np.ndarray] = []
        self._expected = None

    def reset(self, env=None, seed=None, member=None) -> None:
        if env is None:
            raise ValueError("PushTExpert needs reset(env=...): it plans by simulating the env")
        self.env = env.unwrapped
        self._plan, self._predicted = [], []

    def act(self, obs, info):
        if self.env is None:
            raise RuntimeError("call reset(env=...) before act")
        env = self.env
        if self._plan and not np.array_equal(env.data.qpos, self._expected):
            self._plan, self._predicted = [], []  # the world did not do what we simulated: replan
        if not self._plan:
            self._plan, self._predicted = self._choose()
        action = self._plan.pop(0)
        self._expected = self._predicted.pop(0)
        return action

    # --- planning -----------------------------------------------------------
    def _choose(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        env = self.env
        snapshot = env.get_state()
        try:
            pose = env.t_pose()
            pusher = env.pusher_position()
            j0 = P.pose_error(pose)
            obstacle = _Obstacle(pose)
            candidates = self._screen(snapshot, pose, pusher, j0, obstacle)
            best = None
            for _, touch, direction, k, approach in candidates[:self.top]:
                seq = approach + self._push_targets(touch, direction, k, j0)
                env.set_state(snapshot)
                predicted, score = [], math.inf
                for t, action in enumerate(seq):
                    env.advance(action)
                    predicted.append(env.data.qpos.copy())
                    j = P.pose_error(env.t_pose())
                    if j < COVERAGE_J and env.coverage() >= P.SUCCESS_COVERAGE:
                        # Done: stop here; success beats any pose error, sooner beats later.
                        seq, score = seq[:t + 1], -WORSE + self.time_cost * (t + 1)
                        break
                else:
                    # A primitive that makes things worse only wins when nothing improves.
                    score = self._score(j, j0, len(seq))
                if best is None or score < best[0]:
                    best = (score, list(seq), predicted[:len(seq)])
        finally:
            env.set_state(snapshot)
        if best is None:  # no reachable contact at all (cannot happen in practice): hold still
            return [pusher], [env.data.qpos.copy()]
        return best[1], best[2]

    def _push_speed(self, j0: float) -> float:
        """Metres of target motion per step: fast when far, slow (fine) when close."""
        return float(np.clip(0.35 * j0, 0.003, 0.02))

    def _score(self, j: float, j0: float, steps: int) -> float:
        """Log pose error (halving it is worth the same far or near) plus time."""
        return math.log(max(j, 1e-9)) + self.time_cost * steps + (WORSE if j >= j0 else 0.0)

    def _push_targets(self, touch, direction, k, j0) -> list[np.ndarray]:
        """Ramp the target from where the pusher touches the T, then step back."""
        s = self._push_speed(j0)
        pushes = [np.clip(touch + direction * s * i, -P.WORKSPACE, P.WORKSPACE) for i in range(1, k + 1)]
        retreat = np.clip(pushes[-1] - direction * GAP, -P.WORKSPACE, P.WORKSPACE)
        return pushes + [retreat]

    def _screen(self, snapshot, pose, pusher, j0, obstacle) -> list:
        """Cheap scores for every (contact, direction, length): the pusher is
        placed at rest at the pre-contact point and one ramp is simulated per
        (contact, direction); every prefix of it is a push length."""
        env = self.env
        rot = _rot(pose[2])
        s = self._push_speed(j0)
        k_max = int(min(10, math.ceil((1.5 * j0 + 0.01) / s)))
        qpos0 = snapshot["sim"]["qpos"]
        still = np.zeros_like(snapshot["sim"]["qvel"])
        scored = []
        for p_local, n_local in CONTACTS:
            normal = rot @ n_local
            point = rot @ p_local + pose[:2]
            pre = point + normal * (R + GAP)
            if np.any(np.abs(pre) > LIMIT):
                continue
            approach = _approach_targets(pusher, obstacle.path(pusher, pre))
            touch = point + normal * R
            qpos = qpos0.copy()
            qpos[env.pusher_qpos] = pre
            # The same snapshot, with everything at rest and the pusher waiting at ``pre``.
            ideal = {**snapshot, "sim": {**snapshot["sim"], "qpos": qpos, "qvel": still, "ctrl": pre.copy(),
                                         "qacc_warmstart": still}}
            for alpha in ALPHAS:
                direction = _rot(alpha) @ -normal
                env.set_state(ideal)
                best_j, best_k = math.inf, 0
                for k in range(1, k_max + 1):
                    env.advance(touch + direction * s * k)
                    j = P.pose_error(env.t_pose())
                    if j < best_j:
                        best_j, best_k = j, k
                    elif j > best_j + 0.01:
                        break  # moving away from the goal: longer pushes only get worse
                if best_k:
                    score = self._score(best_j, j0, len(approach) + best_k + 1)
                    scored.append((score, touch, direction, best_k, approach))
        scored.sort(key=lambda c: c[0])
        return scored
