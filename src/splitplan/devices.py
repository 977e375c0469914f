"""Device classes with datasheet figures, a roofline estimate of layer times, network presets.

Figures are peak numbers from the vendors' datasheets (sources per entry). Peaks are not what a
DNN layer reaches: `roofline_time_s` divides the roofline bound max(flops / peak, bytes / bandwidth)
by an efficiency, a fraction of peak that should be measured on the device (`efficiency_from`
computes it from measured layer times); the default `DEFAULT_EFFICIENCY` is an assumption, not
a measurement. Derived figures (cores x clock x FLOPs per cycle) say so.
"""

from __future__ import annotations

from dataclasses import dataclass

from .instance import DNN, INPUT, Link, Network, Node

DEFAULT_EFFICIENCY = 0.3  # assumed fraction of peak reached by DNN layers; measure it


@dataclass(frozen=True)
class DeviceClass:
    name: str
    peak_flops_per_s: float  # fp32
    memory_bandwidth_bytes_per_s: float
    memory_bytes: float
    power_w: float
    source: str


DEVICES: dict[str, DeviceClass] = {
    d.name: d
    for d in (
        DeviceClass(
            "raspberry-pi-4",
            48e9,
            12.8e9,
            4e9,
            6.4,
            "derived: BCM2711, 4x Cortex-A72 at 1.5 GHz x 8 fp32 FLOP/cycle (NEON FMA); "
            "32-bit LPDDR4-3200 = 12.8 GB/s; power 6.4 W assumed (not a datasheet figure)",
        ),
        DeviceClass(
            "jetson-nano",
            236e9,
            25.6e9,
            4e9,
            10.0,
            "NVIDIA Jetson Nano module datasheet: 128-core Maxwell GPU at 921 MHz (x2 FLOP/FMA), "
            "4 GB 64-bit LPDDR4 25.6 GB/s, 10 W mode",
        ),
        DeviceClass(
            "jetson-orin-nano",
            1.28e12,
            68e9,
            8e9,
            15.0,
            "NVIDIA Jetson Orin Nano 8GB datasheet: 1024-core Ampere GPU at 625 MHz (x2), "
            "128-bit LPDDR5 68 GB/s, 7-15 W",
        ),
        DeviceClass(
            "t4",
            8.1e12,
            320e9,
            16e9,
            70.0,
            "NVIDIA T4 datasheet: 8.1 TFLOPS fp32 (65 fp16 tensor), 16 GB GDDR6 320 GB/s, 70 W",
        ),
        DeviceClass(
            "a100",
            19.5e12,
            2039e9,
            80e9,
            400.0,
            "NVIDIA A100 80GB SXM datasheet: 19.5 TFLOPS fp32 (312 fp16 tensor), HBM2e "
            "2,039 GB/s, 400 W",
        ),
        DeviceClass(
            "h100",
            67e12,
            3.35e12,
            80e9,
            700.0,
            "NVIDIA H100 SXM datasheet: 67 TFLOPS fp32 (989 fp16 tensor, dense), HBM3 3.35 TB/s, "
            "700 W",
        ),
    )
}


def roofline_time_s(
    flops: float, bytes_moved: float, device: DeviceClass, efficiency: float = DEFAULT_EFFICIENCY
) -> float:
    """Estimated time of a layer: max(flops / peak, bytes / bandwidth) / efficiency."""
    if not 0 < efficiency <= 1:
        raise ValueError(f"efficiency must be in (0, 1], got {efficiency}")
    bound = max(flops / device.peak_flops_per_s, bytes_moved / device.memory_bandwidth_bytes_per_s)
    return bound / efficiency


def layer_bytes_moved(dnn: DNN) -> list[float]:
    """Per layer: bytes read and written (inputs + parameters + output): the roofline traffic."""
    out = {INPUT: dnn.input_bytes} | {la.name: la.out_bytes for la in dnn.layers}
    return [sum(out[s] for s in la.inputs) + la.param_bytes + la.out_bytes for la in dnn.layers]


def efficiency_from(dnn: DNN, device: DeviceClass, measured_class: str) -> float:
    """The efficiency that makes the roofline match the layers' measured times on `device`."""
    moved = layer_bytes_moved(dnn)
    ideal = sum(
        roofline_time_s(la.flops, b, device, 1.0)
        for la, b in zip(dnn.layers, moved, strict=True)
        if measured_class in la.time_s
    )
    measured = sum(la.time_s[measured_class] for la in dnn.layers if measured_class in la.time_s)
    if measured <= 0:
        raise ValueError(f"no measured times of class {measured_class!r} in {dnn.name}")
    return min(1.0, ideal / measured)


def with_roofline_times(
    dnn: DNN, classes: list[str], efficiency: float = DEFAULT_EFFICIENCY
) -> DNN:
    """`dnn` with roofline-estimated `time_s` added for the given classes where none is measured."""
    from dataclasses import replace

    moved = layer_bytes_moved(dnn)
    layers = []
    for la, b in zip(dnn.layers, moved, strict=True):
        times = dict(la.time_s)
        for name in classes:
            times.setdefault(name, roofline_time_s(la.flops, b, DEVICES[name], efficiency))
        layers.append(replace(la, time_s=times))
    return replace(dnn, layers=tuple(layers))


# --------------------------------------------------------------------------- networks

# Medians of the real traces in ../shared/data/bandwidth-traces (see its README), computed by
# `trace_medians()` below. Both are *downlink* throughputs: uploads are usually slower, so
# these presets are optimistic for the device's uplink; pass an override where it matters.
#   3G: Norway HSDPA logs (Riiser et al., MMSys'13), 127 traces: median 1.35 Mbit/s.
#   5G: 5Gophers 1.0 (Narayanan et al., WWW'20), 7,257 one-second samples over three US
#       carriers: median 277.6 Mbit/s; median RTT 84.6 ms over 720 samples (one way: half).
# Wi-Fi and the wired backhaul are assumptions, not measurements.
UPLINKS = {
    "3g": (1.35e6 / 8, 0.05),  # latency assumed
    "5g": (277.6e6 / 8, 0.0423),
    "wifi": (100e6 / 8, 0.003),  # assumed: 100 Mbit/s, 3 ms
}
WIRED_BACKHAUL = (1e9 / 8, 0.01)  # assumed: 1 Gbit/s, 10 ms to a regional cloud


def trace_medians(root: str) -> dict[str, float]:
    """Recompute the medians above from the shared trace folder (Mbit/s, and RTT in ms)."""
    import csv
    import statistics
    from pathlib import Path

    base = Path(root)
    hsdpa = [
        float(line.split()[1])
        for f in (base / "pensieve_fcc_hsdpa" / "cooked_traces").iterdir()
        if "http" not in f.name
        for line in f.read_text().splitlines()
        if len(line.split()) >= 2
    ]
    gophers = base / "5gophers" / "All-Carriers"
    with open(gophers / "01-Throughput" / "data.csv") as fh:
        nr = [float(r["throughput_mbps"]) for r in csv.DictReader(fh)]
    with open(gophers / "02-Round-Trip-Times" / "data.csv") as fh:
        rtt = [float(r["rtt_ms"]) for r in csv.DictReader(fh)]
    return {
        "3g_mbit_per_s": statistics.median(hsdpa),
        "5g_mbit_per_s": statistics.median(nr),
        "5g_rtt_ms": statistics.median(rtt),
    }


def _node(name: str, device: str, efficiency: float, tx_power_w: float = 0.0) -> Node:
    d = DEVICES[device]
    return Node(
        name, d.peak_flops_per_s * efficiency, d.name, d.memory_bytes, d.power_w, tx_power_w
    )


def network_preset(
    name: str, efficiency: float = DEFAULT_EFFICIENCY, bandwidth_bytes_per_s: float | None = None
) -> Network:
    """A named network: ``3tier-3g``, ``3tier-5g``, ``3tier-wifi`` (Jetson Nano device, T4 edge,
    A100 cloud), ``star-wifi`` (a device and three edge servers), ``chain-4`` (four Jetson Orin
    Nanos in a row on 1 Gbit/s Ethernet). `bandwidth_bytes_per_s` overrides the device's uplink.
    Node speeds are peak x `efficiency`; the device radio's transmit power (1 W) is assumed."""
    if name.startswith("3tier-") and name[6:] in UPLINKS:
        bw, lat = UPLINKS[name[6:]]
        bw = bandwidth_bytes_per_s or bw
        nodes = (
            _node("device", "jetson-nano", efficiency, 1.0),
            _node("edge", "t4", efficiency),
            _node("cloud", "a100", efficiency),
        )
        links = (Link("device", "edge", bw, lat), Link("edge", "cloud", *WIRED_BACKHAUL))
        return Network(nodes, links, "device", "device")
    if name == "star-wifi":
        bw, lat = UPLINKS["wifi"]
        bw = bandwidth_bytes_per_s or bw
        servers = [("edge-t4", "t4"), ("edge-orin", "jetson-orin-nano"), ("edge-a100", "a100")]
        nodes = (
            _node("device", "jetson-nano", efficiency, 1.0),
            *(_node(n, d, efficiency) for n, d in servers),
        )
        links = tuple(Link("device", n, bw, lat) for n, _ in servers)
        return Network(nodes, links, "device", "device")
    if name == "chain-4":
        bw = bandwidth_bytes_per_s or 1e9 / 8
        nodes = tuple(_node(f"dev{k}", "jetson-orin-nano", efficiency) for k in range(4))
        links = tuple(Link(f"dev{k}", f"dev{k + 1}", bw, 0.0005) for k in range(3))
        return Network(nodes, links, "dev0", "dev3")
    raise ValueError(f"unknown network preset {name!r}; expected one of {', '.join(PRESETS)}")


PRESETS = ("3tier-3g", "3tier-5g", "3tier-wifi", "star-wifi", "chain-4")
