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
            "pixel-3",
            233.6e9,
            29.9e9,
            4e9,
            5.0,
            "derived: Google Pixel 3 = Snapdragon 845 CPU, 4x Kryo 385 Gold (Cortex-A75) at "
            "2.8 GHz x 16 fp32 FLOP/cycle (two 128-bit NEON FMA pipes) + 4x Kryo 385 Silver "
            "(Cortex-A55) at 1.7 GHz x 8; quad-channel 16-bit LPDDR4X-3733 = 29.9 GB/s "
            "(WikiChip, Snapdragon 845); 4 GB RAM (Pixel 3); power 5 W assumed. "
            "HW-NAS-Bench measures NB201 on this CPU",
        ),
        DeviceClass(
            "apple-m1-cpu",
            409.6e9,
            68.25e9,
            16e9,
            15.0,
            "derived: laptop CPU, Apple M1 (MacBook Air 2020), 4 Firestorm cores at 3.2 GHz x 4 "
            "128-bit FMA pipes (32 fp32 FLOP/cycle); efficiency cores not counted; 128-bit "
            "LPDDR4X-4266 = 68.25 GB/s (Apple); up to 16 GB; power 15 W assumed",
        ),
        DeviceClass(
            "xeon-gold-6226",
            2.07e12,
            140.8e9,
            192e9,
            125.0,
            "derived: Intel Xeon Gold 6226 (ark.intel.com), 12 cores at 2.7 GHz base x 64 fp32 "
            "FLOP/cycle (two AVX-512 FMA units); 6 channels DDR4-2933 = 140.8 GB/s; TDP 125 W; "
            "192 GB RAM assumed. HELP measures NB201 on this CPU",
        ),
        DeviceClass(
            "rtx-2080-ti",
            13.45e12,
            616e9,
            11e9,
            250.0,
            "NVIDIA GeForce RTX 2080 Ti reference specification: 4352 CUDA cores at 1545 MHz boost "
            "(x2) = 13.45 TFLOPS fp32, 11 GB GDDR6 352-bit 616 GB/s, 250 W. HELP measures NB201 "
            "on it",
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
# `trace_medians()` below. All are *downlink* throughputs: uploads are usually slower, so
# these presets are optimistic for the device's uplink; pass an override where it matters.
#   3G:  Norway HSDPA logs (Riiser et al., MMSys'13), 127 traces: median 1.35 Mbit/s.
#   LTE: 5Gophers 1.0 walking trace, the 315 one-second samples on a 4G radio (Minneapolis,
#        carrier aggregation): median 147 Mbit/s. Its RTT is not in the data: 50 ms assumed.
#   5G:  5Gophers 1.0 (Narayanan et al., WWW'20), 7,257 one-second samples over three US
#        carriers: median 277.6 Mbit/s; median RTT 84.6 ms over 720 samples (one way: half).
# Wi-Fi, Ethernet and the wired backhaul are assumptions, not measurements.
UPLINKS = {
    "3g": (1.35e6 / 8, 0.05),  # latency assumed
    "lte": (147e6 / 8, 0.025),  # latency assumed
    "5g": (277.6e6 / 8, 0.0423),
    "wifi": (100e6 / 8, 0.003),  # assumed: 100 Mbit/s, 3 ms
    "ethernet": (1e9 / 8, 0.0005),  # assumed: 1 Gbit/s, 0.5 ms
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
    with open(gophers / "03-User-Mobility" / "walking-trace.csv") as fh:
        lte = [float(r["throughput_mbps"]) for r in csv.DictReader(fh) if r["radio_type"] == "4G"]
    return {
        "3g_mbit_per_s": statistics.median(hsdpa),
        "lte_mbit_per_s": statistics.median(lte),
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
    """A named network (`PRESETS`); `bandwidth_bytes_per_s` overrides the device's uplink.

    - ``3tier-<link>``: a Jetson Nano device, a T4 edge server over <link> (``3g``, ``lte``,
      ``5g``, ``wifi``, ``ethernet``; see `UPLINKS`), an A100 cloud behind a wired backhaul.
    - ``pi4-edge-<link>``, ``phone-edge-<link>``: a Raspberry Pi 4 or a Pixel 3 and one RTX
      2080 Ti edge server: the classes whose NAS-Bench-201 latencies are measured (HW-NAS-Bench,
      HELP).
    - ``star-wifi``: a device and three edge servers (T4, Orin Nano, A100), one Wi-Fi link each.
    - ``chain-4``: four Jetson Orin Nanos in a row on 1 Gbit/s Ethernet (a multi-hop pipeline).
    - ``mesh-5``: a Jetson Nano device on Wi-Fi to two Orin Nanos, which reach each other, a T4
      and an A100 over a partial 1 Gbit/s Ethernet mesh (results return to the device).

    Node speeds are peak x `efficiency`; the device radio's transmit power (1 W) is assumed."""
    tier, _, link = name.rpartition("-")
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    if tier in ("3tier", "pi4-edge", "phone-edge") and link in UPLINKS:
        bw, lat = UPLINKS[link]
        bw = bandwidth_bytes_per_s or bw
        if tier == "3tier":
            nodes = (
                _node("device", "jetson-nano", efficiency, 1.0),
                _node("edge", "t4", efficiency),
                _node("cloud", "a100", efficiency),
            )
            links = (Link("device", "edge", bw, lat), Link("edge", "cloud", *WIRED_BACKHAUL))
            return Network(nodes, links, "device", "device")
        device = "raspberry-pi-4" if tier == "pi4-edge" else "pixel-3"
        nodes = (_node("device", device, efficiency, 1.0), _node("edge", "rtx-2080-ti", efficiency))
        return Network(nodes, (Link("device", "edge", bw, lat),), "device", "device")
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
    if name == "mesh-5":
        bw, lat = UPLINKS["wifi"]
        bw = bandwidth_bytes_per_s or bw
        nodes = (
            _node("device", "jetson-nano", efficiency, 1.0),
            _node("orin-a", "jetson-orin-nano", efficiency),
            _node("orin-b", "jetson-orin-nano", efficiency),
            _node("edge-t4", "t4", efficiency),
            _node("cloud-a100", "a100", efficiency),
        )
        wired = [
            ("orin-a", "orin-b"),
            ("orin-a", "edge-t4"),
            ("orin-b", "edge-t4"),
            ("edge-t4", "cloud-a100"),
            ("orin-b", "cloud-a100"),
        ]
        links = (
            Link("device", "orin-a", bw, lat),
            Link("device", "orin-b", bw, lat),
            *(Link(a, b, *UPLINKS["ethernet"]) for a, b in wired),
        )
        return Network(nodes, links, "device", "device")
    raise ValueError(f"unknown network preset {name!r}; expected one of {', '.join(PRESETS)}")


PRESETS = (
    *(f"{tier}-{link}" for tier in ("3tier", "pi4-edge", "phone-edge") for link in UPLINKS),
    "star-wifi",
    "chain-4",
    "mesh-5",
)
