"""Cross-matching source lists: pairs within a radius, and chains across many lists.

Astro-WISE's AssociateList links the sources of several lists that lie within a radius
of one another. Two kinds of answer are useful:

* **pairs** between two lists: one-to-one, nearest first (a source claimed by two keeps the
  nearer), as for comparing two catalogues of one field;
* **chains** over any number of lists: the connected groups of the "within the radius"
  graph (friends of friends), each a set of (list, source) members, as for following a
  source through the dithers and nights that saw it. A group holds at most one source of
  each list unless two sources of one list lie within the radius of one chain.

Positions are in degrees; distances are measured on the sphere (chord lengths of unit
vectors, exact for any separation), so the poles and RA = 0/360 need no care.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def chord(radius_arcsec: float) -> float:
    """The straight-line distance between unit vectors ``radius_arcsec`` apart."""
    return 2.0 * np.sin(np.radians(radius_arcsec / 3600.0) / 2.0)


def pairs(
    ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray, radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one nearest pairs within the radius: indices into list 1 and list 2 and the
    separations in arcsec."""
    from scipy.spatial import cKDTree

    empty = np.empty(0, int), np.empty(0, int), np.empty(0)
    if len(ra1) == 0 or len(ra2) == 0:
        return empty
    v2 = unit_vectors(ra2, dec2)
    distance, nearest = cKDTree(v2).query(
        unit_vectors(ra1, dec1), distance_upper_bound=chord(radius_arcsec)
    )
    found = np.flatnonzero(np.isfinite(distance))
    order = found[np.argsort(distance[found], kind="stable")]
    _, first = np.unique(nearest[order], return_index=True)
    chosen = np.sort(order[first])
    separation = np.degrees(2 * np.arcsin(distance[chosen] / 2)) * 3600.0
    return chosen, nearest[chosen], separation


def chains(
    lists: Sequence[tuple[np.ndarray, np.ndarray]], radius_arcsec: float, min_members: int = 2
) -> list[list[tuple[int, int]]]:
    """Friends-of-friends groups over all lists: each a sorted list of (list index, source
    index), with at least ``min_members`` members from at least two lists."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    owners = np.concatenate([np.full(len(ra), i) for i, (ra, _) in enumerate(lists)] or [[]])
    index = np.concatenate([np.arange(len(ra)) for ra, _ in lists] or [[]]).astype(int)
    if owners.size == 0:
        return []
    vectors = np.vstack([unit_vectors(ra, dec) for ra, dec in lists])
    links = cKDTree(vectors).query_pairs(chord(radius_arcsec), output_type="ndarray")
    links = links[owners[links[:, 0]] != owners[links[:, 1]]]  # across lists only
    n = owners.size
    graph = coo_matrix((np.ones(len(links)), (links[:, 0], links[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    groups: dict[int, list[int]] = {}
    for member, group in enumerate(label):
        groups.setdefault(int(group), []).append(member)
    out = []
    for members in groups.values():
        if len(members) >= min_members and len(set(owners[members])) >= 2:
            out.append(sorted((int(owners[m]), int(index[m])) for m in members))
    return sorted(out)
