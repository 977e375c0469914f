"""The trainable MobileNetV2-like space on digits: arch keys, weight sharing, training, retraining,
save / load and the Space protocol (issue 5)."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import splitplan  # noqa: E402
from splitplan import digits  # noqa: E402
from splitplan.devices import network_preset  # noqa: E402
from splitplan.nas import mbv2  # noqa: E402
from splitplan.nas.mbv2 import Arch, Mbv2Space, Supernet, parse_arch  # noqa: E402

MID = "d2-3-1_w0.75-0.5-1.0_k3-5-3_e3-6-6"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these networks are tiny, and two threads on a loaded 2-core machine
    spin-wait for each other (several times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _fresh(seed: int = 0) -> Supernet:
    torch.manual_seed(seed)
    net = Supernet()
    # give the BN running statistics non-trivial values
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(32, 1, 8, 8), Arch.largest())
    return net.eval()


@pytest.fixture(scope="module")
def trained(one_thread) -> Supernet:
    calls = []
    net = mbv2.train_supernet(
        epochs=3, seed=0, rule="sandwich", progress=lambda *a: calls.append(a)
    )
    assert [c[:2] for c in calls] == [(1, 3), (2, 3), (3, 3)]
    assert calls[-1][2] < calls[0][2]  # the training loss fell
    return net


# --------------------------------------------------------------------------- arch keys


def test_parse_round_trip_and_canonical_form():
    a = parse_arch("d2-3-2_w0.5-1.0-1.0_k3-5-3_e3-6-6")
    assert a.depths == (2, 3, 2) and a.widths == (0.5, 1.0, 1.0)
    assert a.kernels == (3, 5, 3) and a.expansions == (3, 6, 6)
    assert a.key == "d2-3-2_w0.5-1.0-1.0_k3-5-3_e3-6-6" and parse_arch(a.key) == a
    assert mbv2.canonical(" d2-3-2_w0.5-1-1_k3-5-3_e3-6-6 ") == a.key
    assert a.channels() == (8, 24, 32)
    assert len(a.blocks()) == 7 and a.blocks()[0] == (0, 0, mbv2.STEM, 8, 3, 3 * mbv2.STEM)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "expected 'd<depths>"),
        ("resnet18", "expected 'd<depths>"),
        ("d2-3-2_w0.5-1.0-1.0_k3-5-3", "expected 'd<depths>"),
        ("w0.5-1.0-1.0_d2-3-2_k3-5-3_e3-6-6", "expected 'd<depths>"),
        ("d2-3_w0.5-1.0-1.0_k3-5-3_e3-6-6", "2 values, expected 3"),
        ("d2-3-2-1_w0.5-1.0-1.0_k3-5-3_e3-6-6", "4 values, expected 3"),
        ("d2-x-2_w0.5-1.0-1.0_k3-5-3_e3-6-6", "not numeric"),
        ("d2-3-4_w0.5-1.0-1.0_k3-5-3_e3-6-6", r"depths\[2\] = 4 is not one of 1, 2, 3"),
        ("d2-3-2_w0.6-1.0-1.0_k3-5-3_e3-6-6", r"widths\[0\] = 0.6"),
        ("d2-3-2_w0.5-1.0-1.0_k3-7-3_e3-6-6", r"kernels\[1\] = 7"),
        ("d2-3-2_w0.5-1.0-1.0_k3-5-3_e3-6-4", r"expansions\[2\] = 4"),
        ("d2-3-2_w0.5-1.0-1.0_k3-5-5_e3-6-6", r"kernels\[2\] = 5 is not one of 3$"),
    ],
)
def test_bad_keys_raise_clear_errors(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_arch(text)


def test_space_enumeration():
    keys = mbv2.all_archs()
    assert len(keys) == len(set(keys)) == mbv2.SPACE_SIZE == 36 * 36 * 18
    assert Arch.largest().key in keys and Arch.smallest().key in keys
    assert all(parse_arch(k).key == k for k in keys[:: mbv2.SPACE_SIZE // 50])
    rng = __import__("random").Random(0)
    assert all(Arch.sample(rng).key in set(keys) for _ in range(50))


def test_a_5x5_kernel_on_2x2_maps_is_its_central_3x3_window():
    """Why the last stage (2x2 maps) offers k = 3 only."""
    x, w = torch.randn(4, 6, 2, 2), torch.randn(6, 1, 5, 5)
    five = torch.nn.functional.conv2d(x, w, padding=2, groups=6)
    three = torch.nn.functional.conv2d(x, w[:, :, 1:4, 1:4], padding=1, groups=6)
    torch.testing.assert_close(five, three)


# --------------------------------------------------------------------------- weight sharing


def _storages(module: torch.nn.Module) -> dict[int, str]:
    tensors = dict(module.named_parameters()) | dict(module.named_buffers())
    return {t.untyped_storage().data_ptr(): n for n, t in tensors.items()}


def test_subnet_tensors_are_views_of_the_supernet():
    net = _fresh()
    owned = _storages(net)
    shared = net.shared_tensors(MID)
    # every tensor the subnet reads lives in a supernet parameter's or buffer's storage
    assert all(t.untyped_storage().data_ptr() in owned for t in shared.values())
    # names and shapes are exactly those of the standalone network
    plain = mbv2.build_net(MID).state_dict()
    plain = {n: t for n, t in plain.items() if not n.endswith("num_batches_tracked")}
    assert {n: tuple(t.shape) for n, t in shared.items()} == {
        n: tuple(t.shape) for n, t in plain.items()
    }
    # a 3x3 kernel is the central window of the 5x5 supernet kernel; widths are leading slices
    dw = net.stages[0][0].depthwise.conv.weight
    assert torch.equal(shared["blocks.0.depthwise.conv.weight"], dw[: 3 * mbv2.STEM, :, 1:4, 1:4])
    expand = net.stages[1][0].expand.conv.weight
    assert torch.equal(shared["blocks.2.expand.conv.weight"], expand[: 12 * 6, :12])


def test_gradients_of_a_subnet_land_in_the_supernet_slice():
    net = _fresh()
    net.train()
    loss = torch.nn.functional.cross_entropy(
        net(torch.randn(16, 1, 8, 8), MID), torch.randint(0, 10, (16,))
    )
    loss.backward()
    dw = net.stages[0][0].depthwise.conv.weight.grad  # stage 0: hidden 48, kernel 3
    assert dw[:48, :, 1:4, 1:4].abs().sum() > 0
    assert dw[48:].abs().sum() == 0  # channels the subnet does not use
    ring = dw.clone()
    ring[:, :, 1:4, 1:4] = 0
    assert ring.abs().sum() == 0  # outside the central 3x3 window
    proj = net.stages[0][1].project.conv.weight.grad  # stage 0 width 0.75: 12 of 16 outputs
    assert proj[:12].abs().sum() > 0 and proj[12:].abs().sum() == 0
    assert net.stages[0][2].expand.conv.weight.grad is None  # depth 2 of 3: third block unused
    assert net.stages[2][1].expand.conv.weight.grad is None


def test_changing_a_supernet_tensor_changes_the_subnet_output():
    net = _fresh()
    x = torch.randn(8, 1, 8, 8)
    with torch.no_grad():
        before = net(x, MID)
        net.stages[0][0].depthwise.conv.weight[:, :, 0, 0] += 1.0  # outside the 3x3 window
        assert torch.equal(net(x, MID), before)
        net.stages[0][0].depthwise.conv.weight[:, :, 2, 2] += 1.0  # the centre: used
        assert not torch.allclose(net(x, MID), before)


@pytest.mark.parametrize("arch", [MID, Arch.largest().key, Arch.smallest().key])
def test_extracted_subnet_matches_the_supernet_path(arch):
    net = _fresh()
    x = torch.randn(16, 1, 8, 8)
    sub = net.subnet(arch, calibrate=False)
    assert isinstance(sub, mbv2.Mbv2Net) and not sub.training
    with torch.no_grad():
        torch.testing.assert_close(sub(x), net(x, arch))
        net.train(), sub.train()  # batch statistics: equal as well
        torch.testing.assert_close(sub(x), net(x, arch))
    net.eval()
    # the extracted weights are copies: later changes to the supernet do not reach them
    shared = net.shared_tensors(arch)
    assert not set(_storages(sub)) & set(_storages(net))
    for name, t in sub.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            assert torch.equal(t, shared[name]), name


def test_calibration_recomputes_bn_statistics_only():
    net = _fresh()
    raw, cal = net.subnet(MID, calibrate=False), net.subnet(MID)
    x_train = digits.splits()["train"][0]
    assert not torch.allclose(raw.stem.bn.running_mean, cal.stem.bn.running_mean)
    mean = cal.stem.conv(x_train).mean((0, 2, 3))
    torch.testing.assert_close(cal.stem.bn.running_mean, mean, rtol=1e-3, atol=1e-4)
    for (n, a), b in zip(raw.named_parameters(), cal.parameters(), strict=True):
        assert torch.equal(a, b), n


# --------------------------------------------------------------------------- training


def test_data_splits():
    d = digits.splits()
    assert {k: len(v[1]) for k, v in d.items()} == {"train": 1077, "val": 360, "test": 360}
    assert d["train"][0].shape[1:] == (1, 8, 8)
    assert abs(float(d["train"][0].mean())) < 1e-4 and abs(float(d["train"][0].std()) - 1) < 1e-4
    assert set(d["test"][1].tolist()) == set(range(10))


def test_short_supernet_training_beats_chance(trained):
    for arch in (Arch.largest(), Arch.smallest()):
        assert trained.evaluate(arch, "test") > 40.0, arch.key  # chance: 10 %
    assert trained.meta["epochs"] == 3 and trained.meta["rule"] == "sandwich"
    with pytest.raises(ValueError, match="unknown split"):
        trained.evaluate(MID, "dev")


def test_training_is_deterministic_given_the_seed():
    a = mbv2.train_supernet(epochs=1, seed=3, rule="uniform")
    b = mbv2.train_supernet(epochs=1, seed=3, rule="uniform")
    c = mbv2.train_supernet(epochs=1, seed=4, rule="uniform")
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.evaluate(MID) == b.evaluate(MID)


def test_bad_training_arguments():
    with pytest.raises(ValueError, match="unknown rule"):
        mbv2.train_supernet(epochs=1, rule="greedy")
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        mbv2.train_supernet(epochs=0)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        mbv2.retrain(MID, epochs=0)
    with pytest.raises(ValueError, match="bad architecture"):
        mbv2.retrain("d9", epochs=1)


def test_retrain_from_scratch():
    small = Arch.smallest().key
    r = mbv2.retrain(small, epochs=3, seed=0)
    assert set(r) >= {"accuracy_test", "accuracy_val", "epochs", "seconds"}
    assert r["arch"] == small and r["epochs"] == 3 and r["seconds"] > 0
    assert 50.0 < r["accuracy_test"] <= 100.0 and 50.0 < r["accuracy_val"] <= 100.0
    flops, params = mbv2.model_stats(mbv2.build_net(small))
    assert (r["flops"], r["params"]) == (flops, params)
    again = mbv2.retrain(small, epochs=3, seed=0)
    assert (again["accuracy_test"], again["accuracy_val"]) == (
        r["accuracy_test"],
        r["accuracy_val"],
    )


# --------------------------------------------------------------------------- save / load


def test_save_and_load(trained, tmp_path):
    path = tmp_path / "supernet.pt"
    trained.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["supernet.pt"]  # no temporary file left
    loaded = Supernet.load(path)
    assert loaded.meta == trained.meta
    s1, s2 = trained.state_dict(), loaded.state_dict()
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)
    assert loaded.evaluate(MID) == trained.evaluate(MID)


def test_load_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a saved supernet"):
        Supernet.load(bad)
    other = tmp_path / "other.pt"
    torch.save({"format": mbv2.FORMAT, "space": {"depths": [1]}, "meta": {}, "state": {}}, other)
    with pytest.raises(ValueError, match="different space"):
        Supernet.load(other)


# --------------------------------------------------------------------------- the Space


def test_space_protocol(trained):
    optuna = pytest.importorskip("optuna")
    space = Mbv2Space(trained, profile_repeats=1)
    assert space.name == "mbv2"
    params = {"d0": 2, "d1": 3, "d2": 1, "w0": 0.75, "w1": 0.5, "w2": 1.0}
    params |= {"k0": 3, "k1": 5, "k2": 3, "e0": 3, "e1": 6, "e2": 6}
    assert space.suggest(optuna.trial.FixedTrial(params)) == MID
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    key = space.suggest(study.ask())
    assert parse_arch(key).key == key
    acc = space.accuracy(MID)
    assert acc == trained.evaluate(MID, "val") and 0 <= acc <= 100
    assert space.accuracy(MID.replace("1.0", "1")) == acc
    assert len(space.all_archs()) == mbv2.SPACE_SIZE
    assert Mbv2Space(trained, enumerate_max=1000).all_archs() is None


def test_space_dnn_is_a_valid_instance_dnn(trained):
    space = Mbv2Space(trained, profile_repeats=1)
    classes = ["jetson-nano", "t4", "a100"]
    dnn = space.dnn(MID, classes)
    names = [la.name for la in dnn.layers]
    assert names == ["stem", *(f"blocks.{i}" for i in range(6)), "head", "classifier"]
    assert dnn.output_layer == "classifier" and dnn.input_bytes == 64 * 4
    for la in dnn.layers:
        assert set(la.time_s) >= {*classes, "host-cpu"} and all(t > 0 for t in la.time_s.values())
        assert la.flops > 0 and la.out_bytes > 0
    flops, _ = mbv2.model_stats(mbv2.build_net(MID))
    assert sum(la.flops for la in dnn.layers) == pytest.approx(flops)
    inst = splitplan.Instance(dnn, network_preset("3tier-wifi"), name="mbv2")  # validates
    assert splitplan.evaluate(inst, {n: "device" for n in inst.layer_names}).latency_s > 0
    assert space.dnn(MID, ["t4"]).layers[0].time_s.keys() >= {"t4", "host-cpu"}
    with pytest.raises(ValueError, match="no times for device class"):
        space.dnn(MID, ["no-such-device"])


def test_space_trains_lazily_and_caches_to_a_file(tmp_path):
    path = tmp_path / "cache" / "mbv2.pt"
    calls = []
    space = Mbv2Space(path=path, epochs=1, rule="uniform", progress=lambda *a: calls.append(a))
    assert calls == [] and not path.exists()
    first = space.supernet
    assert len(calls) == 1 and path.exists()
    again = Mbv2Space(path=path, epochs=1, rule="uniform", progress=lambda *a: calls.append(a))
    loaded = again.supernet
    assert len(calls) == 1  # loaded, not retrained
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in first.state_dict().items())
    other = Mbv2Space(path=path, epochs=1, seed=5, rule="uniform", progress=lambda *a: None)
    assert other.supernet.meta["seed"] == 5  # other settings: trained again, file replaced
    assert Supernet.load(path).meta["seed"] == 5
