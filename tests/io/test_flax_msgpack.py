"""The Flax legacy msgpack codec (refode/io/_flax_msgpack.py): decode, encode, damage."""
import msgpack
import numpy as np
import pytest

from refode.errors import FormatError
from refode.io import _flax_msgpack as fm


def _ext(shape, dtype, raw, code=fm.EXT_NDARRAY):
    """An array leaf written the way flax.serialization writes it, by hand."""
    return msgpack.ExtType(code, msgpack.packb([list(shape), dtype, raw], use_bin_type=True))


def _tree(rng):
    return {"params": {"Conv_0": {"kernel": rng.standard_normal((3, 3, 2, 4)).astype(np.float32)},
                       "ode_params": {"0": {"w": rng.standard_normal(5)},
                                      "1": {"w": rng.standard_normal(5)}}},
            "step": np.array(7, dtype=np.int32), "empty": {}}


def test_decode_reads_hand_built_flax_bytes(rng):
    kernel = rng.standard_normal((2, 3)).astype(np.float32)
    raw = msgpack.packb({"a": {"kernel": _ext((2, 3), "float32", kernel.tobytes())},
                         "step": _ext((), "int32", np.int32(5).tobytes()),
                         "scalar": _ext((), "float64", np.float64(2.5).tobytes(),
                                        fm.EXT_NPSCALAR),
                         "z": msgpack.ExtType(fm.EXT_COMPLEX, msgpack.packb([1.0, -2.0])),
                         "lr": 0.1}, use_bin_type=True)
    tree = fm.decode(raw, "ck")
    np.testing.assert_array_equal(tree["a"]["kernel"], kernel)
    assert tree["a"]["kernel"].dtype == np.float32
    assert tree["step"].shape == () and int(tree["step"]) == 5
    assert float(tree["scalar"]) == 2.5 and tree["z"] == complex(1, -2) and tree["lr"] == 0.1


def test_encode_then_decode_is_exact(rng):
    tree = _tree(rng)
    back = fm.decode(fm.encode(tree), "ck")
    flat, want = fm.flatten(back), fm.flatten(tree)
    assert set(flat) == set(want) and flat["empty"] == {}
    for key, value in want.items():
        if isinstance(value, np.ndarray):
            assert flat[key].dtype == value.dtype and flat[key].shape == value.shape
            np.testing.assert_array_equal(flat[key], value)


def test_chunked_arrays_are_joined(rng):
    whole = rng.standard_normal(7)
    raw = msgpack.packb({"w": {fm.CHUNKED: True, "shape": {"0": 7},
                               "chunks": {"0": _ext((4,), "float64", whole[:4].tobytes()),
                                          "1": _ext((3,), "float64", whole[4:].tobytes())}}},
                        use_bin_type=True)
    np.testing.assert_array_equal(fm.decode(raw, "ck")["w"], whole)


def test_flatten_names_paths(rng):
    flat = fm.flatten(_tree(rng), "root")
    assert "root/params/ode_params/1/w" in flat and "root/params/Conv_0/kernel" in flat


GOOD = msgpack.packb({"a": {"k": _ext((2,), "float32", b"\0" * 8)}}, use_bin_type=True)


@pytest.mark.parametrize("raw, needle", [
    (GOOD[:-3], "not a complete msgpack checkpoint"),                      # truncated
    (GOOD + b"\x01", "not a complete msgpack checkpoint"),                 # trailing bytes
    (b"", "not a complete msgpack checkpoint"),
    (msgpack.packb([1, 2]), "not a map"),
    (msgpack.packb({"a": {"k": _ext((3,), "float32", b"\0" * 8)}}, use_bin_type=True),
     "a/k: array of shape [3] float32 needs 12 bytes"),
    (msgpack.packb({"a": _ext((2,), "object", b"\0" * 16)}, use_bin_type=True),
     "a: unsupported array dtype"),
    (msgpack.packb({"a": _ext((2,), "bfloat16", b"\0" * 4)}, use_bin_type=True),
     "a: unsupported array dtype"),
    (msgpack.packb({"a": _ext((-1,), "float32", b"")}, use_bin_type=True),
     "a: array shape"),
    (msgpack.packb({"a": msgpack.ExtType(fm.EXT_COMPLEX, msgpack.packb("x"))}),
     "a: complex payload"),
    (msgpack.packb({"a": msgpack.ExtType(9, b"xx")}, use_bin_type=True),
     "a: unknown msgpack extension type 9"),
    (msgpack.packb({"a": msgpack.ExtType(1, b"\xc1")}, use_bin_type=True),
     "a: array payload is not valid msgpack"),
    (msgpack.packb({"w": {fm.CHUNKED: True, "shape": {"0": 5}, "chunks": {
        "0": _ext((4,), "float64", b"\0" * 32)}}}, use_bin_type=True),
     "w: chunked array pieces do not add up"),
])
def test_damaged_bytes_raise_format_error_naming_the_place(raw, needle):
    with pytest.raises(FormatError) as info:
        fm.decode(raw, "checkpoint_3")
    message = str(info.value)
    assert message.startswith("checkpoint_3") and needle in message and "\n" not in message


def test_absurd_nesting_is_refused():
    node = {}
    for _ in range(fm.MAX_DEPTH + 5):
        node = {"x": node}
    with pytest.raises(FormatError, match="nested deeper"):
        fm.decode(msgpack.packb(node), "ck")


def test_encode_refuses_foreign_leaves():
    with pytest.raises(TypeError, match="set"):
        fm.encode({"a": {1, 2}})


def test_encode_of_a_decoded_original_checkpoint_is_byte_identical():
    from tests.io.test_statefulodenets import CHECKPOINTS, FIXTURES

    paths = [FIXTURES / family / name for family, name in CHECKPOINTS.items()]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"original-code fixtures not found at {FIXTURES} "
                    "(set REFODE_STATEFULODENETS)")
    for path in paths:
        raw = path.read_bytes()
        assert fm.encode(fm.decode(raw, path.name)) == raw
