"""The frozen graph of a run's workflow version, as the engine reads it: versions never
change once published, so each is parsed once per process (the newest 512 are kept)."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict

from overture.orchestration.definition import Graph
from overture.orchestration.models import Run, WorkflowVersion
from overture.platform.db import db

_graphs: OrderedDict[uuid.UUID, Graph] = OrderedDict()
_graphs_lock = threading.Lock()


def graph_of(run: Run) -> Graph:
    return graph_of_version(run.version_id)


def graph_of_version(version_id: uuid.UUID) -> Graph:
    """The frozen graph of a version (versions never change, so cache them)."""
    graph = _graphs.get(version_id)
    if graph is None:
        version = db.session.get(WorkflowVersion, version_id)
        graph = Graph.of(version.definition)
        graph.pins = dict(version.pins or {})
        with _graphs_lock:
            _graphs[version_id] = graph
            if len(_graphs) > 512:
                _graphs.popitem(last=False)
    return graph
