"""NAS-Bench-201 as a search space, with measured accuracies and measured device latencies.

Each of the 15,625 NB201 cells names a CIFAR network (the NB201 macro skeleton, see
`build_model`). The table shipped in ``splitplan/data/nb201/`` (see its README) gives, per cell,
the test accuracy on CIFAR-10, CIFAR-100 and ImageNet16-120 (NATS-Bench, 200 epochs, mean over
seeds) and the measured latency of the whole network on a Raspberry Pi 4 and a Pixel 3
(HW-NAS-Bench), an RTX 2080 Ti at batch 1 and a Xeon Gold 6226 (HELP). `DEVICE_COLUMNS` maps
splitplan's device classes to those columns.

Layers. A cell network is a chain of 19 splittable layers (``stem``, ``cells.0`` .. ``cells.16``,
``head``): what the profiler makes of `build_model` at ``block`` granularity. Finer cuts would
add little: every tensor inside a cell has the shape of the cell's output, so a cut inside a cell
sends at least as many bytes as the cut after it. Per device class, the 19 layer times are the
measured latency split in proportion to the layers' host-CPU times from a table of measured
primitive times (see `space`).

``none`` edges are kept as NB201's reference code has them (``x.mul(0.)``), so every cell reads
its predecessor's tensor and the DNN is a chain even for the 341 cells whose output does not
depend on their input (`is_connected` is False; such a network outputs a constant).
HW-NAS-Bench's Pi 4 and Pixel 3 latencies of most of those are near 0 (median 0.14 ms and
0.05 ms: the converted graph is constant-folded); their layer times are scaled down to that, as
measured, so on the Pi 4 and Pixel 3 presets the fastest point of the front is such a
10 %-accurate network.

The networks are the CIFAR-10 ones (32x32 input, 10 classes) whose latencies were measured; with
``dataset="cifar100"`` or ``"imagenet16-120"`` only the accuracy comes from that dataset.

The package, by concern (each module's doc says more; nothing imports torch at import time):

- `cell`: operations, edges, architecture strings (`parse_arch`, `arch_string`, `is_connected`)
  and `Nb201Error`;
- `table`: the shipped accuracy / latency table and the primitive-time table;
- `model`: the torch network, its layers in closed form (`layer_specs`), primitive timing;
- `space`: `Nb201Space`, the `splitplan.nas.Space` protocol;
- `front`: `plan_latency`, `exact_front` (through `splitplan.nas.planner`), `nasc_comparison`.

Run ``python -m splitplan.nas.nb201 data --shared ../shared/data`` to rebuild the table and
``python -m splitplan.nas.nb201 op-times`` to re-measure the primitive times.
"""

from __future__ import annotations

from .cell import (
    CELLS_PER_STAGE,
    CHANNELS,
    EDGES,
    N_ARCHS,
    NUM_CLASSES,
    OPS,
    RESOLUTION,
    Nb201Error,
    arch_string,
    is_connected,
    parse_arch,
)
from .front import (
    CellPlan,
    ExactFront,
    exact_front,
    front_reference,
    nasc_comparison,
    placement,
    plan_latency,
)
from .model import (
    INPUT_BYTES,
    OP_TIMES_FORMAT,
    LayerSpec,
    build_model,
    layer_specs,
    machine_description,
    measure_op_times,
    primitive_keys,
)
from .space import Nb201Space
from .table import (
    CHANCE_ACCURACY,
    DATA_DIR,
    DATA_FILE,
    DATASETS,
    DEVICE_COLUMNS,
    LATENCY_COLUMNS,
    OP_TIMES_FILE,
    Nb201Table,
    build_data,
    load_op_times,
    load_table,
)

__all__ = [
    "CELLS_PER_STAGE",
    "CHANCE_ACCURACY",
    "CHANNELS",
    "DATASETS",
    "DATA_DIR",
    "DATA_FILE",
    "DEVICE_COLUMNS",
    "EDGES",
    "INPUT_BYTES",
    "LATENCY_COLUMNS",
    "NUM_CLASSES",
    "N_ARCHS",
    "OPS",
    "OP_TIMES_FILE",
    "OP_TIMES_FORMAT",
    "RESOLUTION",
    "CellPlan",
    "ExactFront",
    "LayerSpec",
    "Nb201Error",
    "Nb201Space",
    "Nb201Table",
    "arch_string",
    "build_data",
    "build_model",
    "exact_front",
    "front_reference",
    "is_connected",
    "layer_specs",
    "load_op_times",
    "load_table",
    "machine_description",
    "measure_op_times",
    "nasc_comparison",
    "parse_arch",
    "placement",
    "plan_latency",
    "primitive_keys",
]
