"""A screen's driver state (counters and the merged top, chunk after chunk in order) and its
checkpoint folder (``.checkpoint/``), from which ``resume=True`` continues a killed screen.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from matforge.errors import ScreenError
from matforge.screen.chunk import ChunkResult
from matforge.screen.ranking import ParetoFront, pareto_mask

if TYPE_CHECKING:
    from matforge.screen.streaming import Screen

__all__ = ["Checkpoint", "ScreenState", "atomic_parquet", "merge_top"]

@dataclass
class ScreenState:
    done: int
    n_chunks: int
    counts: dict[str, int]
    filtered: dict[str, int]
    top: Any
    previous_seconds: float = 0.0

    @classmethod
    def new(cls, n_chunks: int) -> ScreenState:
        import pandas as pd

        return cls(0, n_chunks, {}, {}, pd.DataFrame())

    def merge(self, r: ChunkResult, screen: Screen) -> None:
        import pandas as pd

        for k, v in r.counts.items():
            self.counts[k] = self.counts.get(k, 0) + v
        for k, v in r.filtered.items():
            self.filtered[k] = self.filtered.get(k, 0) + v
        if len(r.top):
            both = pd.concat([self.top, r.top], ignore_index=True) if len(self.top) else r.top
            self.top = merge_top(both, screen)
        self.done += 1


def merge_top(df, screen: Screen):
    score = df["score"].to_numpy(dtype=np.float64)
    index = df["index"].to_numpy(dtype=np.int64)
    order = np.lexsort((index, -score))
    if screen.dedupe:
        keys = df["_key"].to_numpy()[order]
        _, first = np.unique(keys, return_index=True)
        order = order[np.sort(first)]
    if isinstance(screen.ranking, ParetoFront):
        sub = df.iloc[order]
        front = pareto_mask(screen.ranking.matrix({c: sub[c].to_numpy() for c in sub.columns}))
        return sub[front].reset_index(drop=True)
    if screen.top_k:
        order = order[: screen.top_k]
    return df.iloc[order].reset_index(drop=True)


class Checkpoint:
    """``.checkpoint/``: ``state.json`` (atomic) + ``top-N.parquet`` + per-chunk parts."""

    def __init__(self, path: Path, config: str):
        self.path = path
        self.config = config

    def reset(self) -> None:
        if self.path.exists():
            shutil.rmtree(self.path)
        (self.path / "parts").mkdir(parents=True)
        (self.path / "rejects").mkdir(parents=True)

    def load(self, state: ScreenState) -> ScreenState:
        import pandas as pd

        f = self.path / "state.json"
        if not f.exists():
            self.reset()
            return state
        saved = json.loads(f.read_text())
        if saved.get("config") != self.config:
            raise ScreenError(
                f"{self.path}: the checkpoint belongs to a different screen configuration "
                "(space, models, filter, ranking or chunk size changed); run without --resume"
            )
        state.done = int(saved["done"])
        state.counts = {k: int(v) for k, v in saved["counts"].items()}
        state.filtered = {k: int(v) for k, v in saved["filtered"].items()}
        state.previous_seconds = float(saved.get("seconds", 0.0))
        top_file = self.path / saved["top"] if saved.get("top") else None
        state.top = pd.read_parquet(top_file) if top_file and top_file.exists() else pd.DataFrame()
        (self.path / "parts").mkdir(parents=True, exist_ok=True)
        (self.path / "rejects").mkdir(parents=True, exist_ok=True)
        return state

    def commit(self, state: ScreenState, r: ChunkResult) -> None:
        if r.full is not None and len(r.full):
            atomic_parquet(r.full, self.path / "parts" / f"part-{r.chunk:07d}.parquet")
        if r.rejects is not None and len(r.rejects):
            atomic_parquet(r.rejects, self.path / "rejects" / f"part-{r.chunk:07d}.parquet")
        top_name = f"top-{state.done:07d}.parquet"
        if len(state.top):
            atomic_parquet(state.top, self.path / top_name)
        tmp = self.path / "state.json.tmp"
        tmp.write_text(
            json.dumps(
                {
                    "config": self.config,
                    "done": state.done,
                    "n_chunks": state.n_chunks,
                    "counts": state.counts,
                    "filtered": state.filtered,
                    "top": top_name if len(state.top) else None,
                    "seconds": state.previous_seconds + r.seconds,
                }
            )
        )
        os.replace(tmp, self.path / "state.json")
        for old in self.path.glob("top-*.parquet"):
            if old.name != top_name:
                old.unlink(missing_ok=True)

    def _parts(self, folder: str, n_done: int | None = None) -> list[Path]:
        return sorted((self.path / folder).glob("part-*.parquet"))

    def merge_parts(self, target: Path) -> None:
        """Concatenate the per-chunk result parts into one Parquet file (streaming)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = None
        tmp = target.with_suffix(".parquet.tmp")
        try:
            for part in self._parts("parts"):
                table = pq.read_table(part)
                if writer is None:
                    schema = table.schema
                    writer = pq.ParquetWriter(tmp, schema)
                writer.write_table(table.cast(schema) if table.schema != schema else table)
            if writer is None:
                pq.write_table(pa.table({"index": pa.array([], pa.int64())}), tmp)
        finally:
            if writer is not None:
                writer.close()
        os.replace(tmp, target)

    def merge_rejects(self, target: Path) -> int:
        import pandas as pd

        parts = self._parts("rejects")
        n = 0
        with open(target, "w", encoding="utf-8", newline="") as fh:
            fh.write("index,formula,reason\n")
            for part in parts:
                df = pd.read_parquet(part)
                df.to_csv(fh, header=False, index=False)
                n += len(df)
        if n == 0:
            target.unlink(missing_ok=True)
        return n


def atomic_parquet(df, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)
