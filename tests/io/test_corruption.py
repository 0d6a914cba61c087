"""Random byte corruption: a damaged file never loads different numbers silently.

Every array carries a Fletcher-32 checksum and the reader refuses unwritten or lost
chunks, so a file with one changed byte either loads bitwise the same arrays (the byte
was unused or informational) or raises FormatError. Run in a child process so that a
crash inside the HDF5 library would show up as a failure instead of killing pytest.
"""
import subprocess
import sys
import textwrap

import refode

from .conftest import small_net

#: corrupted copies tried, and the seed choosing the bytes.
N_CORRUPTIONS, SEED = 150, 7

CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import refode
    from refode.errors import FormatError

    path, out, n, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    raw = open(path, "rb").read()
    ref = refode.load(path)
    rng = np.random.default_rng(seed)
    same = refused = 0
    for _ in range(n):
        data = bytearray(raw)
        j = int(rng.integers(0, len(data)))
        data[j] = (data[j] + int(rng.integers(1, 256))) % 256
        open(out, "wb").write(bytes(data))
        try:
            model = refode.load(out)
        except FormatError as exc:
            assert str(exc).startswith("/"), exc
            refused += 1
            continue
        for kind in ("params", "state"):
            for name, arr in getattr(ref, kind).items():
                got = getattr(model, kind)[name]
                assert got.tobytes() == arr.tobytes(), f"byte {j} changed {name} silently"
        same += 1
    print(same, refused)
""")


def test_single_byte_corruptions_are_detected_or_harmless(tmp_path):
    path = tmp_path / "net.h5"
    refode.save(small_net(), path)
    res = subprocess.run([sys.executable, "-c", CHILD, str(path), str(tmp_path / "bad.h5"),
                          str(N_CORRUPTIONS), str(SEED)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    same, refused = map(int, res.stdout.split())
    assert same + refused == N_CORRUPTIONS and refused >= N_CORRUPTIONS // 10
