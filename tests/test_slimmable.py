"""Slimmable bottleneck encoder / decoder at a split point (issue 7)."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from torch import nn  # noqa: E402

from splitplan import slimmable as S  # noqa: E402
from splitplan import zoo  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _pair(quantize: bool = False) -> S.SplitModel:
    torch.manual_seed(0)
    return S.SplitModel.from_sequential(
        S.digits_cnn(), S.SPLIT_INDEX, 16, (1, 1, 8, 8), quantize=quantize
    )


@pytest.mark.parametrize("quantize", [False, True])
def test_width_switch_changes_payload_and_leaves_weights_untouched(quantize):
    model = _pair(quantize)
    enc = model.encoder
    before = {n: (t.clone(), t.data_ptr()) for n, t in model.state_dict().items()}
    n_params = len(list(model.parameters()))
    shape = (5, 64, 4, 4)
    for w, channels in zip(S.WIDTHS, (2, 4, 8, 16), strict=True):
        model.set_width(w)
        assert model.width == w and enc.code_width == channels
        elements = 5 * channels * 4 * 4
        expected = elements + 5 * S.SCALE_BYTES if quantize else 4 * elements
        assert enc.payload_bytes(shape) == expected
        assert model.payload_bytes((5, 1, 8, 8)) == expected
        after = model.state_dict()
        assert after.keys() == before.keys()
        for name, (tensor, ptr) in before.items():
            assert after[name].data_ptr() == ptr, name
            assert torch.equal(after[name], tensor), name
        assert len(list(model.parameters())) == n_params


def test_decoder_output_shape_at_every_width():
    model = _pair().eval()
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        h = model.head(x)
        for w in S.WIDTHS:
            model.set_width(w)
            code = model.encoder(h)
            assert code.shape == (3, model.encoder.code_width, 4, 4)
            assert model.decoder(code).shape == h.shape
            assert model(x).shape == (3, 10)
        model.set_width(0.5)
        with pytest.raises(ValueError, match="channels"):
            model.decoder(torch.zeros(3, 16, 4, 4))


def test_int8_code_round_trips_within_half_a_step():
    torch.manual_seed(1)
    z = torch.randn(4, 8, 4, 4) * torch.tensor([0.1, 1.0, 10.0, 100.0]).view(4, 1, 1, 1)
    q, scale = S.quantize_code(z)
    assert q.dtype == torch.int8 and scale.shape == (4,)
    assert int(q.abs().max()) == S.QMAX
    back = S.dequantize_code(q, scale)
    err = (back - z).abs().flatten(1).amax(1)
    assert torch.all(err <= scale / 2 * (1 + 1e-5))

    model = _pair(quantize=True).eval()
    with torch.no_grad():
        h = model.head(torch.randn(2, 1, 8, 8))
        q, scale = model.encoder.encode(h)
        assert q.dtype == torch.int8 and q.numel() + 2 * S.SCALE_BYTES == (
            model.encoder.payload_bytes(h.shape)
        )
        assert torch.allclose(model.encoder(h), S.dequantize_code(q, scale))


def test_quantised_code_passes_gradients_straight_through():
    model = _pair(quantize=True).train()
    model(torch.randn(4, 1, 8, 8)).sum().backward()
    assert model.encoder.conv.weight.grad.abs().sum() > 0


def test_unknown_width_and_bad_arguments():
    model = _pair()
    with pytest.raises(ValueError, match=r"unknown width 0\.3"):
        model.set_width(0.3)
    assert model.width == 1.0
    with pytest.raises(ValueError, match="strictly increasing"):
        S.SlimmableEncoder(8, 8, widths=(1.0, 0.5))
    with pytest.raises(ValueError, match="repeated channel counts"):
        S.SlimmableEncoder(8, 2, widths=(0.125, 0.25))
    with pytest.raises(ValueError, match="split index"):
        S.split_sequential(S.digits_cnn(), 0)
    with pytest.raises(ValueError, match="input shape"):
        model.encoder.payload_bytes((1, 3, 4, 4))


def test_inserts_into_zoo_models():
    mlp = zoo.mlp((20, 32, 32, 10))
    model = S.SplitModel.from_sequential(mlp, 2, 8, (2, 20))  # after the first ReLU: N x 32
    model.set_width(0.25)
    assert model(torch.randn(2, 20)).shape == (2, 10)
    assert model.payload_bytes((2, 20)) == 2 * 2 * 4
    vgg = nn.Sequential(*list(zoo.vgg16(10).children())[:5])  # conv, relu, conv, relu, pool
    model = S.SplitModel.from_sequential(vgg, 2, 32, (1, 3, 16, 16))
    model.set_width(0.125)
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 64, 8, 8)
    assert model.payload_bytes((1, 3, 16, 16)) == 4 * 16 * 16 * 4


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    base = S.train_base(epochs=6, seed=0)
    torch.manual_seed(0)
    model = S.SplitModel.from_sequential(base, S.SPLIT_INDEX, 16, (1, 1, 8, 8))
    weights = {n: t.clone() for n, t in base.state_dict().items()}
    run = S.train_slimmable(model, base, epochs=6, seed=0)
    return base, model, weights, run


def test_every_trained_width_beats_chance_by_far(trained):
    base, model, weights, run = trained
    assert S.accuracy(base) > 80
    for w in model.widths:
        model.set_width(w)
        assert S.accuracy(model) > 50, w  # chance: 10 %
        model.encoder.quantize = True
        assert S.accuracy(model) > 50, w
        model.encoder.quantize = False
    # the teacher and the frozen halves are untouched by training
    assert all(torch.equal(t, weights[n]) for n, t in base.state_dict().items())
    head_tail = model.head.state_dict() | model.tail.state_dict()  # keys as in `base`
    assert head_tail.keys() == weights.keys()
    assert all(torch.equal(t, weights[n]) for n, t in head_tail.items())
    assert len(run["loss"]) == 6 and run["loss"][-1] < run["loss"][0]


def test_training_is_deterministic():
    base = S.train_base(epochs=1, seed=3)
    torch.manual_seed(0)
    a = S.SplitModel.from_sequential(base, S.SPLIT_INDEX, 16, (1, 1, 8, 8))
    b = S.SplitModel.from_sequential(base, S.SPLIT_INDEX, 16, (1, 1, 8, 8))
    b.load_state_dict(a.state_dict())
    ra = S.train_slimmable(a, base, epochs=1, seed=5)
    rb = S.train_slimmable(b, base, epochs=1, seed=5)
    assert ra["loss"] == rb["loss"]
    for (n, t), u in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(t, u), n


def test_trains_at_a_split_after_a_linear_layer():
    # regression: train_slimmable fed an N x C split tensor to the encoder's conv2d unreshaped
    # (forward ran it as N x C x 1 x 1, training did not)
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    model = S.SplitModel.from_sequential(mlp, 3, 8, (2, 1, 8, 8))  # after the ReLU: N x 32
    run = S.train_slimmable(model, mlp, epochs=2, seed=0)
    assert len(run["loss"]) == 2 and run["loss"][-1] < run["loss"][0]
    x = torch.randn(3, 1, 8, 8)
    for w in model.widths:
        model.set_width(w)
        y = model(x)
        assert y.shape == (3, 10)
        assert torch.equal(y, model.tail(model.through(model.head(x))))
