"""How each node's final read was made: live or offline, and by which kind of direct get.

In: the ops DataFrame of a history (docs/contracts.md §1) and the op names
of the workload's final per-node reads (``read``, the cas ``read-node``).
Their completions say how they read (``harness.workloads.streams.read_alone``,
``harness.offline.reads``): ``via`` (``live``: the node's own server, with
every route cut; ``offline``: a copy of its store served alone) and
``direct`` (``batched``: batched direct gets; ``single``: one direct get per
message, on servers without batches, 2.10; ``last-by-subject``: one direct
get of each key's last message). Histories written before these fields
existed have neither (None).

Out (:func:`how_read`): ``{node: {"type", "via", "direct", "tries"}}``, from
the node's last ``ok`` read (else its last read): what results.json keeps as
``final_reads`` and the report shows per node (:func:`describe`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from checkers.schema import client_mask, column

SAID = {"batched": "batched direct gets", "single": "single direct gets",
        "last-by-subject": "direct gets of each key's last message"}  # fmt: skip


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def how_read(ops: pd.DataFrame, fs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per node read by an op of ``fs``: how its read that counted was made (module doc)."""
    wanted = list(fs)
    if not wanted or not len(ops):
        return {}
    mask = np.isin(column(ops, "f"), wanted) & (column(ops, "type") != "invoke") & client_mask(ops)
    rows = np.flatnonzero(mask)
    out: dict[str, dict[str, Any]] = {}
    cols = [column(ops, k)[rows] for k in ("node", "type", "via", "direct")]
    for node, typ, via, direct in zip(*cols, strict=True):
        if not isinstance(node, str):
            continue
        entry = out.setdefault(node, {"type": None, "via": None, "direct": None, "tries": 0})
        entry["tries"] += 1
        if entry["type"] == "ok" and typ != "ok":  # an ok read counts; a later failure does not
            continue
        entry.update(type=str(typ), via=_text(via), direct=_text(direct))
    return out


def describe(entry: dict[str, Any] | None) -> str:
    """``offline: batched direct gets``, ``live: single direct gets``, ``not read (info)``;
    ``""`` for an ok read that does not say (a history from before ``via``/``direct``)."""
    if not entry:
        return "–"
    if entry.get("type") != "ok":
        return f"not read ({entry.get('type')})"
    how = SAID.get(str(entry.get("direct")), entry.get("direct") or "")
    return ": ".join(str(x) for x in (entry.get("via"), how) if x)  # "": not recorded
