"""Gradient-boosted classification trees: scikit-learn's GradientBoostingClassifier, compiled.

The algorithm is sklearn's default GradientBoostingClassifier, step for step: log-prior start,
100 stages of depth-3 regression trees on the negative log-loss gradient (one tree per class,
or one for two classes), best splits by squared error between any two distinct float32 values
(closer than 1e-7 counts as equal), midpoint thresholds, leaves set by one Newton step (times
(K - 1) / K for K > 2 classes), shrinkage 0.1, and impurity importances averaged over trees that
split and normalised to sum 1. Ties between equally good splits on different features go to
the first in a random feature order, as in sklearn, from a seeded generator of our own; so the
trees are sklearn's except where such ties (or rounding) make sklearn's choice random too.
Speed comes from sorting each feature once, growing a tree level by level from per-bin sums
that rule out most splits without visiting them, and fitting a stage's trees in parallel.
"""

from __future__ import annotations

import numba
import numpy as np

FEATURE_THRESHOLD = 1e-7  # sklearn: feature values closer than this cannot be split apart
EPSILON = float(np.finfo(np.float64).eps)  # sklearn: a node this pure is a leaf


def fit_boosted_trees(
    x_train: np.ndarray,
    labels: np.ndarray,
    x_test: np.ndarray,
    *,
    n_stages: int = 100,
    learning_rate: float = 0.1,
    max_depth: int = 3,
    n_bins: int = 128,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature importances (d,) and predicted class indices on train and test.

    `labels` are class indices 0..K-1, each present; predictions are class indices too.
    `seed` draws each node's feature order, which settles ties between equally good splits;
    `n_bins` only organises the search, never changes its result.
    """
    n_classes = int(labels.max()) + 1
    x_train = np.ascontiguousarray(x_train, dtype=np.float32)  # sklearn's trees split float32
    x_test = np.ascontiguousarray(x_test, dtype=np.float32)
    order = np.ascontiguousarray(np.argsort(x_train, axis=0, kind="stable").T)  # (d, n)
    sorted_values = np.ascontiguousarray(np.take_along_axis(x_train, order.T, axis=0).T)
    bins, bin_start = _bin_by_rank(order, sorted_values, n_bins)
    onehot = np.eye(n_classes)[labels]
    raw_train, raw_test = _initial_raw(onehot, len(x_train), len(x_test))
    importance = _boost(
        x_train,
        order,
        sorted_values,
        bins,
        bin_start,
        np.ascontiguousarray(onehot if n_classes > 2 else onehot[:, 1:]),
        raw_train,
        x_test,
        raw_test,
        n_stages,
        learning_rate,
        max_depth,
        seed,
    )
    return importance, _predict(raw_train), _predict(raw_test)


def _bin_by_rank(
    order: np.ndarray, sorted_values: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cut each feature's sorted values into about n_bins runs, only where they can be split.

    Returns each sample's bin per feature (n, d) and each bin's first sorted position
    (d, n_bins + 1); features with fewer distinct values get empty trailing bins.
    """
    d, n = order.shape
    bins = np.empty((n, d), dtype=np.int32)
    bin_start = np.full((d, n_bins + 1), n, dtype=np.int64)
    targets = np.arange(1, n_bins) * n // n_bins
    for f in range(d):
        values = sorted_values[f].astype(np.float64)
        cuts = np.flatnonzero(values[1:] > values[:-1] + FEATURE_THRESHOLD) + 1
        starts = np.zeros(1, dtype=np.int64)
        if len(cuts):
            chosen = cuts[np.minimum(np.searchsorted(cuts, targets), len(cuts) - 1)]
            starts = np.concatenate([starts, np.unique(chosen)])
        bin_start[f, : len(starts)] = starts
        bins[order[f], f] = np.searchsorted(starts, np.arange(n), side="right") - 1
    return bins, bin_start


def _initial_raw(onehot: np.ndarray, n_train: int, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's start: the link of the clipped class priors (symmetric multinomial, or logit)."""
    eps = np.finfo(np.float64).eps
    prior = np.clip(onehot.mean(axis=0), eps, 1 - eps)
    if len(prior) > 2:
        start = np.log(prior) - np.log(prior).mean()
    else:
        start = np.log(prior[1:] / (1 - prior[1:]))
    return np.tile(start, (n_train, 1)), np.tile(start, (n_test, 1))


def _predict(raw: np.ndarray) -> np.ndarray:
    """Class index per row from raw scores: argmax, or the logit's sign for two classes."""
    if raw.shape[1] == 1:
        return (raw[:, 0] > 0).astype(np.int64)
    return raw.argmax(axis=1)


@numba.njit(cache=True, parallel=True)
def _boost(
    x,
    order,
    sorted_values,
    bins,
    bin_start,
    targets,
    raw,
    x_test,
    raw_test,
    n_stages,
    rate,
    max_depth,
    seed,
):
    """Run every stage, updating raw scores in place; return the normalised importances."""
    d = x.shape[1]
    n_trees = targets.shape[1]
    importance = np.zeros((n_stages, n_trees, d))
    split = np.zeros((n_stages, n_trees), dtype=np.bool_)
    for stage in range(n_stages):
        gradient = _negative_gradient(raw, targets)
        for k in numba.prange(n_trees):
            split[stage, k] = _fit_tree(
                x,
                order,
                sorted_values,
                bins,
                bin_start,
                gradient[:, k],
                targets[:, k],
                n_trees,
                raw[:, k],
                x_test,
                raw_test[:, k],
                rate,
                max_depth,
                importance[stage, k],
                (seed * n_stages + stage) * n_trees + k,
            )
    relevant = importance.reshape(n_stages * n_trees, d)[split.ravel()]
    if relevant.shape[0] == 0:
        return np.zeros(d)
    mean = np.zeros(d)
    for t in range(relevant.shape[0]):
        mean += relevant[t]
    mean /= relevant.shape[0]
    return mean / mean.sum()


@numba.njit(cache=True)
def _negative_gradient(raw, targets):
    """y - p: softmax probabilities for several trees per stage, the sigmoid for one."""
    n, k = raw.shape
    gradient = np.empty((n, k))
    for i in range(n):
        if k == 1:
            gradient[i, 0] = targets[i, 0] - 1.0 / (1.0 + np.exp(-raw[i, 0]))
            continue
        top = raw[i].max()
        total = 0.0
        for c in range(k):
            total += np.exp(raw[i, c] - top)
        for c in range(k):
            gradient[i, c] = targets[i, c] - np.exp(raw[i, c] - top) / total
    return gradient


@numba.njit(cache=True)
def _fit_tree(
    x,
    order,
    sorted_values,
    bins,
    bin_start,
    g,
    y,
    n_trees,
    raw,
    x_test,
    raw_test,
    rate,
    max_depth,
    importance,
    tree_seed,
):
    """Grow one regression tree on g level by level, Newton leaves, update raw; True if it split.

    Nodes are numbered heap-wise (children of j are 2j+1, 2j+2); node[i] is sample i's node.
    """
    n = x.shape[0]
    size = 2 ** (max_depth + 1) - 1
    node = np.zeros(n, dtype=np.int16)
    weight, total, squares = np.zeros(size), np.zeros(size), np.zeros(size)
    leaf, exists = np.ones(size, dtype=np.bool_), np.zeros(size, dtype=np.bool_)
    feature, threshold = np.full(size, -1), np.zeros(size)
    for i in range(n):
        total[0] += g[i]
        squares[0] += g[i] * g[i]
    weight[0] = n
    exists[0] = True
    leaf[0] = max_depth == 0 or _is_pure(weight[0], total[0], squares[0])
    hist = np.zeros((0, x.shape[1], bin_start.shape[1] - 1, 3))
    for depth in range(max_depth):
        first, stop = 2**depth - 1, 2 ** (depth + 1) - 1
        if not _any_open(leaf, exists, first, stop):
            break
        hist = _histograms(bins, bin_start, g, node, depth, leaf, exists, weight, hist)
        _find_splits(
            order,
            sorted_values,
            bin_start,
            hist,
            g,
            node,
            first,
            stop,
            leaf,
            exists,
            weight,
            total,
            feature,
            threshold,
            tree_seed,
        )
        for i in range(n):
            j = node[i]
            if not leaf[j]:
                child = 2 * j + 1 if x[i, feature[j]] <= threshold[j] else 2 * j + 2
                node[i] = child
                weight[child] += 1.0
                total[child] += g[i]
                squares[child] += g[i] * g[i]
        for j in range(first, stop):
            if not exists[j] or leaf[j]:
                continue
            for child in (2 * j + 1, 2 * j + 2):
                exists[child] = True
                leaf[child] = depth + 1 == max_depth or _is_pure(
                    weight[child], total[child], squares[child]
                )
            importance[feature[j]] += (
                _impurity(weight[j], total[j], squares[j]) * weight[j]
                - _impurity(weight[2 * j + 1], total[2 * j + 1], squares[2 * j + 1])
                * weight[2 * j + 1]
                - _impurity(weight[2 * j + 2], total[2 * j + 2], squares[2 * j + 2])
                * weight[2 * j + 2]
            ) / n
    # leaves: one Newton step, sum(g) / sum(p (1 - p)) with p = y - g
    numerator, denominator = np.zeros(size), np.zeros(size)
    for i in range(n):
        p = y[i] - g[i]
        numerator[node[i]] += g[i]
        denominator[node[i]] += p * (1.0 - p)
    value = np.zeros(size)
    scale = 1.0 if n_trees == 1 else (n_trees - 1) / n_trees
    for j in range(size):
        if exists[j] and leaf[j] and abs(denominator[j]) >= 1e-150:
            value[j] = scale * numerator[j] / denominator[j]
    for i in range(n):
        raw[i] += rate * value[node[i]]
    for i in range(x_test.shape[0]):
        j = 0
        while not leaf[j]:
            j = 2 * j + 1 if x_test[i, feature[j]] <= threshold[j] else 2 * j + 2
        raw_test[i] += rate * value[j]
    return not leaf[0]


@numba.njit(cache=True)
def _any_open(leaf, exists, first, stop):
    """Whether any node numbered first..stop-1 exists and is to be split."""
    return np.any(exists[first:stop] & ~leaf[first:stop])


@numba.njit(cache=True)
def _histograms(bins, bin_start, g, node, depth, leaf, exists, weight, parent):
    """Count, sum of g and sum of its positive part per (open node at `depth`, feature, bin).

    Below the root only the smaller child of each split is summed over its samples; the
    other is its parent's histogram minus it.
    """
    n, d = bins.shape
    first, stop = 2**depth - 1, 2 ** (depth + 1) - 1
    hist = np.zeros((stop - first, d, bin_start.shape[1] - 1, 3))
    direct = np.zeros(stop - first, dtype=np.bool_)
    for j in range(first, stop):
        if depth == 0 or not exists[j]:
            direct[j - first] = depth == 0
            continue
        sibling = j + 1 if j % 2 == 1 else j - 1
        smaller = weight[j] < weight[sibling] or (weight[j] == weight[sibling] and j % 2 == 1)
        direct[j - first] = smaller and not (leaf[j] and leaf[sibling])
    for i in range(n):
        j = node[i]
        if j < first or not direct[j - first]:
            continue
        s, gi = j - first, g[i]
        gp = gi if gi > 0.0 else 0.0
        for f in range(d):
            b = bins[i, f]
            hist[s, f, b, 1] += gi
            hist[s, f, b, 2] += gp
            if depth > 0:
                hist[s, f, b, 0] += 1.0
    if depth == 0:  # every sample is in the root: its counts are the bin sizes
        for f in range(d):
            for b in range(hist.shape[2]):
                hist[0, f, b, 0] = bin_start[f, b + 1] - bin_start[f, b]
    for j in range(first, stop):
        if depth > 0 and exists[j] and not leaf[j] and not direct[j - first]:
            sibling = j + 1 if j % 2 == 1 else j - 1
            hist[j - first] = parent[(j - 1) // 2 - (first - 1) // 2] - hist[sibling - first]
    return hist


@numba.njit(cache=True)
def _find_splits(
    order,
    sorted_values,
    bin_start,
    hist,
    g,
    node,
    first,
    stop,
    leaf,
    exists,
    weight,
    total,
    feature,
    threshold,
    tree_seed,
):
    """Best split of every open node numbered first..stop-1; nodes without one become leaves.

    Exact search, made cheap: per (node, feature, bin of sorted values) counts, sums of g and
    of its positive part (`hist`) give every split at a bin edge at once (edges sit where the sorted
    values jump by more than 1e-7, so each is a valid split) and an upper bound on the splits
    inside each bin (`_bin_bound`). Only bins whose bound reaches the best edge are scanned
    sample by sample. As in sklearn's scan, features are tried in a random order and
    positions left to right, and only a strictly better split replaces the best so far.
    """
    d, n_bins = hist.shape[1], hist.shape[2]
    count, sums, positive = hist[:, :, :, 0], hist[:, :, :, 1], hist[:, :, :, 2]
    for j in range(first, stop):
        if not exists[j] or leaf[j]:
            continue
        s, w, t = j - first, weight[j], total[j]
        edge_best = -np.inf
        for f in range(d):
            left_w, left_t = 0.0, 0.0
            for b in range(n_bins):
                if count[s, f, b] > 0.0 and left_w > 0.0:
                    edge_best = max(edge_best, _proxy(left_t, left_w, t, w))
                left_w += count[s, f, b]
                left_t += sums[s, f, b]
        floor = edge_best - 1e-12 * abs(edge_best)  # bins bounded below this cannot win
        best = -np.inf
        best_f, best_b, best_lo, best_hi = -1, -1, np.float32(0.0), np.float32(0.0)
        for f in _feature_order(d, tree_seed * 64 + j):
            left_w, left_t = 0.0, 0.0
            for b in range(n_bins):
                c = count[s, f, b]
                if c == 0.0:
                    continue
                if left_w > 0.0:
                    proxy = _proxy(left_t, left_w, t, w)
                    if proxy > best:
                        best, best_f, best_b = proxy, f, b  # an edge: its values found below
                if (
                    c > 1.0
                    and _bin_bound(left_t, left_w, c, sums[s, f, b], positive[s, f, b], t, w)
                    >= floor
                ):
                    scan_w, scan_t, last = left_w, left_t, np.float32(np.inf)
                    for p in range(bin_start[f, b], bin_start[f, b + 1]):
                        i = order[f, p]
                        if node[i] != j:
                            continue
                        v = sorted_values[f, p]
                        if scan_w > left_w and v > last + FEATURE_THRESHOLD:
                            proxy = _proxy(scan_t, scan_w, t, w)
                            if proxy > best:
                                best, best_f, best_b, best_lo, best_hi = proxy, f, -1, last, v
                        scan_w += 1.0
                        scan_t += g[i]
                        last = v
                left_w += c
                left_t += sums[s, f, b]
        if best_f < 0:
            leaf[j] = True  # every feature constant within the node: nothing to split
            continue
        if best_b >= 0:
            best_lo, best_hi = _values_around_edge(
                order, sorted_values, node, j, best_f, bin_start[best_f, best_b]
            )
        feature[j] = best_f
        threshold[j] = np.float64(best_lo) / 2.0 + np.float64(best_hi) / 2.0
        if threshold[j] == best_hi:
            threshold[j] = best_lo


@numba.njit(cache=True)
def _bin_bound(left_total, left_weight, count, bin_total, bin_positive, total, weight):
    """An upper bound on the proxy of the splits strictly inside one bin.

    Such a split moves 1 to count - 1 of the bin's samples to the left, adding between the
    bin's negative and positive parts to the left sum. The proxy is jointly convex in (left
    sum, left count), so over that box it peaks at a corner.
    """
    low_w, high_w = left_weight + 1.0, left_weight + count - 1.0
    low_t, high_t = left_total + bin_total - bin_positive, left_total + bin_positive
    return max(
        max(_proxy(low_t, low_w, total, weight), _proxy(high_t, low_w, total, weight)),
        max(_proxy(low_t, high_w, total, weight), _proxy(high_t, high_w, total, weight)),
    )


@numba.njit(cache=True)
def _feature_order(d, key):
    """A permutation of range(d) that depends only on `key` (splitmix64 draws, Fisher-Yates)."""
    features = np.arange(d)
    state = np.uint64(key)
    for i in range(d - 1, 0, -1):
        state += np.uint64(0x9E3779B97F4A7C15)
        z = state
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        r = int(z % np.uint64(i + 1))
        features[i], features[r] = features[r], features[i]
    return features


@numba.njit(cache=True)
def _proxy(left_total, left_weight, total, weight):
    """sklearn's proxy for a split's squared-error decrease: sum_l^2 / n_l + sum_r^2 / n_r."""
    right_total = total - left_total
    return left_total * left_total / left_weight + right_total * right_total / (
        weight - left_weight
    )


@numba.njit(cache=True)
def _values_around_edge(order, sorted_values, node, j, f, edge):
    """Node j's largest value of feature f below sorted position `edge` and smallest from it."""
    lo = np.float32(0.0)
    for p in range(edge - 1, -1, -1):
        if node[order[f, p]] == j:
            lo = sorted_values[f, p]
            break
    for p in range(edge, order.shape[1]):
        if node[order[f, p]] == j:
            return lo, sorted_values[f, p]
    return lo, lo


@numba.njit(cache=True)
def _impurity(weight, total, squares):
    """Variance of the targets in a node (sklearn's squared-error impurity)."""
    mean = total / weight
    return squares / weight - mean * mean


@numba.njit(cache=True)
def _is_pure(weight, total, squares):
    """A node too small or too uniform to split, as sklearn decides."""
    return weight < 2.0 or _impurity(weight, total, squares) <= EPSILON
