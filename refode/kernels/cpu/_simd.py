"""Register-blocked multiply-adds on SIMD vectors: the micro-kernel of the direct convolution.

LLVM's loop vectoriser vectorises one loop at a time and keeps its accumulators in
memory between the iterations of an outer loop; a convolution that is to run near the
machine's multiply-add rate needs the opposite: a block of accumulators that stays in
vector registers while the loop over input channels and taps streams through (the
micro-kernel of oneDNN's and every GEMM's design). Numba has no vector type, so this
module writes that one loop nest as LLVM IR, through :func:`numba.extending.intrinsic`:
:func:`tap_block` makes the intrinsic for a block of ``pb`` output positions times one
vector of output channels. Everything else (the padded grid, the packed weights, the
tasks) is ordinary Numba code in :mod:`refode.kernels.cpu._conv2d_direct`.

Each accumulator lane sums its terms in a fixed order, one fused multiply-add
(``llvm.fma``: one rounding per term, as BLAS's GEMMs do) per input channel and tap, the
channels outermost and the taps in the order ``(ki, kj)``; nothing is reassociated and no
fastmath flag is involved, so results do not depend on the thread count or the block
shape.
"""
import llvmlite.binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _host_has(feature):
    try:
        return bool(llvm.get_host_cpu_features().get(feature, False))
    except RuntimeError:  # LLVM cannot read the host's features
        return False


#: bytes of one vector register of this machine: 64 with AVX-512, else 32 (AVX2; elsewhere
#: LLVM splits the vectors into what the machine has, which stays correct).
VECTOR_BYTES = 64 if _host_has("avx512f") else 32
#: vector registers of this machine (AVX-512: 32, AVX2: 16).
VECTOR_REGISTERS = 32 if VECTOR_BYTES == 64 else 16
#: output positions per block (the narrow and the wide block): the wide block's
#: accumulators, its weight vector and a broadcast input fit in the vector registers.
BLOCK_WIDTHS = (8, 16) if VECTOR_REGISTERS == 32 else (4, 8)


def lanes(dtype):
    """Output channels per block: the elements of ``dtype`` in one vector register."""
    return VECTOR_BYTES // dtype.itemsize


def tap_block(pb, size=None, stride=1):
    """The intrinsic ``block(xg, wt, out, k, wp, n, o0, h, j0)`` for blocks of ``pb`` positions,
    its taps unrolled for kernels of ``size x size`` (``k`` must then be ``size``) or, with
    ``size=None``, in loops over ``k``; ``stride`` is the convolution's stride.

    It adds, for the output positions ``(h, j0 .. j0 + pb - 1)`` of image ``n`` and the
    output channels ``o0 .. o0 + L - 1`` (``L`` = :func:`lanes`), the correlation

        out[n, o, h, j] = sum over c, then ki, kj of  wt[c, ki k + kj, o] * xg[c, n, (s h + ki) wp + s j + kj]

    (``s`` the stride)

    and writes the positions ``j < Wo`` and channels ``o < O`` of it (the rest of the
    block is computed and dropped).

    Parameters
    ----------
    xg : (C, N, Lp) C-contiguous float array, the zero-padded input planes on rows of
        ``wp`` (:mod:`refode.kernels.cpu._conv2d_direct`); a block reads up to index
        ``(s h + k - 1) wp + s (j0 + pb - 1) + k - 1`` of a plane.
    wt : (C, k k, Op) C-contiguous, the packed weights (``Op >= o0 + L``)
    out : (N, O, Ho, Wo) C-contiguous, same dtype
    k, wp, n, o0, h, j0 : int
        Kernel size, grid row length, image, first output channel, output row, first
        output column.
    """

    @intrinsic
    def block(typingctx, xg, wt, out, k, wp, n, o0, h, j0):
        arrays = (xg, wt, out)
        if not all(isinstance(a, types.Array) and a.layout == "C" for a in arrays):
            return None
        if (xg.ndim, wt.ndim, out.ndim) != (3, 3, 4) or len({a.dtype for a in arrays}) != 1:
            return None
        if not isinstance(xg.dtype, types.Float):
            return None
        return types.void(xg, wt, out, k, wp, n, o0, h, j0), _codegen(pb, size, stride)

    return block


def _arguments(context, builder, sig, args):
    """The three arrays and the integer arguments of an intrinsic (as ``intp``), and its
    vector type ``(vty, lanes, itemsize, llvm.fma of vty)``."""
    arrays = [context.make_array(t)(context, builder, a) for t, a in zip(sig.args[:3], args[:3])]
    ints = [context.cast(builder, a, t, types.intp) for a, t in zip(args[3:], sig.args[3:])]
    dtype = sig.args[0].dtype
    width = VECTOR_BYTES * 8 // dtype.bitwidth
    vty = ir.VectorType(context.get_data_type(dtype), width)
    fma = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vty, [vty, vty, vty]),
        f"llvm.fma.v{width}f{dtype.bitwidth}")
    return arrays, ints, (vty, width, dtype.bitwidth // 8, fma)


def _codegen(pb, size, stride):
    def codegen(context, builder, sig, args):
        (xg, wt, out), (k, wp, n, o0, h, j0), (vty, width, itemsize, fma) = _arguments(
            context, builder, sig, args)
        chans, n_img, lp = cgutils.unpack_tuple(builder, xg.shape, 3)
        _, taps, opad = cgutils.unpack_tuple(builder, wt.shape, 3)
        _, n_out, ho, wo = cgutils.unpack_tuple(builder, out.shape, 4)
        mul, add = builder.mul, builder.add

        def const(v):
            return ir.Constant(cgutils.intp_t, v)

        accs = [cgutils.alloca_once_value(builder, ir.Constant(vty, [0.0] * width))
                for _ in range(pb)]
        xbase = builder.gep(xg.data, [add(mul(n, lp), mul(const(stride), add(mul(h, wp), j0)))])
        wbase = builder.gep(wt.data, [o0])
        undef = ir.Constant(vty, ir.Undefined)
        splat = ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)
        kk = k if size is None else const(size)

        def tap(wc, xc, ki, kj):
            """acc[b] = fma(x[c, (s h + ki) wp + s (j0 + b) + kj], w[c, ki k + kj], acc[b])"""
            wptr = builder.gep(wc, [mul(add(mul(ki, kk), kj), opad)])
            wv = builder.load(builder.bitcast(wptr, vty.as_pointer()), align=itemsize)
            xt = builder.gep(xc, [add(mul(ki, wp), kj)])
            for b in range(pb):
                s = builder.load(builder.gep(xt, [const(b * stride)]))
                sv = builder.shuffle_vector(
                    builder.insert_element(undef, s, ir.Constant(ir.IntType(32), 0)),
                    undef, splat)
                builder.store(builder.call(fma, [sv, wv, builder.load(accs[b])]), accs[b])

        with cgutils.for_range(builder, chans) as c_loop:
            xc = builder.gep(xbase, [mul(c_loop.index, mul(n_img, lp))])
            wc = builder.gep(wbase, [mul(c_loop.index, mul(taps, opad))])
            if size is None:  # taps in loops over ki, kj of run-time length k
                with cgutils.for_range(builder, k) as ki_loop:
                    with cgutils.for_range(builder, k) as kj_loop:
                        tap(wc, xc, ki_loop.index, kj_loop.index)
            else:  # the size x size taps unrolled, in the same order
                for ki in range(size):
                    for kj in range(size):
                        tap(wc, xc, const(ki), const(kj))
        # out[n, o0 + o, h, j0 + b] for o < min(L, O - o0), b < min(pb, Wo - j0)
        n_o = builder.select(builder.icmp_signed("<", builder.sub(n_out, o0), const(width)),
                             builder.sub(n_out, o0), const(width))
        n_p = builder.sub(wo, j0)
        ybase = builder.gep(out.data, [add(mul(add(mul(n, n_out), o0), mul(ho, wo)),
                                           add(mul(h, wo), j0))])
        plane = mul(ho, wo)
        vecs = [builder.load(a) for a in accs]
        with builder.if_else(builder.icmp_signed(">=", n_p, const(pb))) as (whole, short):
            with whole:  # rows of pb positions per channel: transpose, vector stores
                rows = _channel_rows(builder, vecs, width)
                for o, pieces in enumerate(rows):
                    with builder.if_then(builder.icmp_signed("<", const(o), n_o)):
                        for start, piece in pieces:
                            ptr = builder.gep(ybase, [add(mul(const(o), plane), const(start))])
                            builder.store(piece, builder.bitcast(ptr, piece.type.as_pointer()),
                                          align=itemsize)
            with short:  # fewer than pb columns left (rows shorter than a block)
                for b, vec in enumerate(vecs):
                    with builder.if_then(builder.icmp_signed("<", const(b), n_p)):
                        with cgutils.for_range(builder, n_o) as o_loop:
                            ptr = builder.gep(ybase, [add(mul(o_loop.index, plane), const(b))])
                            builder.store(builder.extract_element(vec, o_loop.index), ptr)
        return context.get_dummy_value()

    return codegen


def _transpose_masks(width):
    """The shuffles of an in-register transpose of ``width`` vectors of ``width`` lanes
    (``width`` a power of two): ``log2(width)`` stages ``(g, lo, hi)``; at stage ``g`` the
    pair ``(i, i + g)`` (bit ``g`` of ``i`` clear) becomes ``(shuffle(v_i, v_i+g, lo),
    shuffle(v_i, v_i+g, hi))``, interleaving blocks of ``g`` lanes."""
    stages, g = [], 1
    while g < width:
        lo, hi = [], []
        for base in range(0, width, 2 * g):
            lo += [base + t for t in range(g)] + [width + base + t for t in range(g)]
            hi += [base + g + t for t in range(g)] + [width + base + g + t for t in range(g)]
        stages.append((g, lo, hi))
        g *= 2
    return stages


def _channel_rows(builder, vecs, width):
    """Transpose accumulators ``vecs[b][o]`` (``pb`` vectors over channels) into, for each
    channel ``o``, pieces ``(start, vector over positions start ..)`` covering ``pb``."""
    pb = len(vecs)
    zero = ir.Constant(vecs[0].type, [0.0] * width)
    rows = [[] for _ in range(width)]
    for start in range(0, pb, width):
        group = list(vecs[start:start + width])
        count = len(group)
        group += [zero] * (width - count)
        for g, lo, hi in _transpose_masks(width):
            for i in range(width):
                if not i & g:
                    a, b = group[i], group[i + g]
                    group[i] = builder.shuffle_vector(a, b, _mask(lo))
                    group[i + g] = builder.shuffle_vector(a, b, _mask(hi))
        for o in range(width):
            piece = group[o]
            if count < width:  # the first ``count`` lanes only
                piece = builder.shuffle_vector(piece, piece, _mask(range(count)))
            rows[o].append((start, piece))
    return rows


def _mask(lanes):
    return ir.Constant(ir.VectorType(ir.IntType(32), len(lanes)), list(lanes))



def tap_gradient(size, chunk):
    """The intrinsic ``block(xf, gt, dw, wp, span, c, o0)``: the weight gradient of input
    channel ``c`` and one vector of output channels ``o0 .. o0 + L - 1`` of a ``size x
    size`` stride-1 convolution,

        dw[o, c, ki, kj] = sum over p = 0 .. span - 1 of  gt[p, o] * xf[c, p + ki wp + kj]

    summed in two levels, as a GEMM blocks its inner dimension: each run of ``chunk``
    positions is summed in order into fresh accumulators (one multiply-add, ``llvm.fma``,
    per term), and the runs' sums are added in order (a sum over all ``p`` in one
    accumulator was 10x less accurate at W1's size: float32 4.8e-6 against 3.8e-7 relative
    to the largest entry). The ``size^2`` accumulator vectors (one per tap) stay in registers while
    ``p`` runs: per position one vector load of the cotangent and ``size^2`` broadcast
    multiply-adds. Writes the channels ``o < O``.

    Parameters
    ----------
    xf : (C, M) C-contiguous float array, the padded input grid folded over the batch
    gt : (M, Op) C-contiguous, the output cotangent on the grid positions, transposed
        (zeros in the scratch positions and past the ``O`` channels; ``Op >= o0 + L``)
    dw : (O, C, size, size) C-contiguous, same dtype
    wp, span, c, o0 : int
        Grid row length, positions summed (``span + (size - 1) (wp + 1) <= M``), input
        channel, first output channel.
    """

    @intrinsic
    def block(typingctx, xf, gt, dw, wp, span, c, o0):
        arrays = (xf, gt, dw)
        if not all(isinstance(a, types.Array) and a.layout == "C" for a in arrays):
            return None
        if (xf.ndim, gt.ndim, dw.ndim) != (2, 2, 4) or len({a.dtype for a in arrays}) != 1:
            return None
        if not isinstance(xf.dtype, types.Float):
            return None
        return types.void(xf, gt, dw, wp, span, c, o0), _gradient_codegen(size, chunk)

    return block


def _gradient_codegen(size, chunk):
    def codegen(context, builder, sig, args):
        (xf, gt, dw), (wp, span, c, o0), (vty, width, itemsize, fma) = _arguments(
            context, builder, sig, args)
        _, m = cgutils.unpack_tuple(builder, xf.shape, 2)
        _, opad = cgutils.unpack_tuple(builder, gt.shape, 2)
        n_out, chans, _, _ = cgutils.unpack_tuple(builder, dw.shape, 4)
        mul, add = builder.mul, builder.add

        def const(v):
            return ir.Constant(cgutils.intp_t, v)

        taps = [(ki, kj) for ki in range(size) for kj in range(size)]
        zero = ir.Constant(vty, [0.0] * width)
        accs = [cgutils.alloca_once_value(builder, zero) for _ in taps]
        totals = [cgutils.alloca_once_value(builder, zero) for _ in taps]
        offsets = [add(mul(const(ki), wp), const(kj)) for ki, kj in taps]
        xrow = builder.gep(xf.data, [mul(c, m)])
        gcol = builder.gep(gt.data, [o0])
        undef = ir.Constant(vty, ir.Undefined)
        splat = ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)
        runs = builder.sdiv(add(span, const(chunk - 1)), const(chunk))
        with cgutils.for_range(builder, runs) as q_loop:
            start = mul(q_loop.index, const(chunk))
            left = builder.sub(span, start)
            count = builder.select(builder.icmp_signed("<", left, const(chunk)), left,
                                   const(chunk))
            for acc in accs:
                builder.store(zero, acc)
            with cgutils.for_range(builder, count) as p_loop:
                p = add(start, p_loop.index)
                gptr = builder.gep(gcol, [mul(p, opad)])
                gv = builder.load(builder.bitcast(gptr, vty.as_pointer()), align=itemsize)
                xp = builder.gep(xrow, [p])
                for acc, off in zip(accs, offsets):
                    s = builder.load(builder.gep(xp, [off]))
                    sv = builder.shuffle_vector(
                        builder.insert_element(undef, s, ir.Constant(ir.IntType(32), 0)),
                        undef, splat)
                    builder.store(builder.call(fma, [sv, gv, builder.load(acc)]), acc)
            for acc, total in zip(accs, totals):
                builder.store(builder.fadd(builder.load(total), builder.load(acc)), total)
        # dw[o0 + o, c, ki, kj] for o < min(L, O - o0)
        left = builder.sub(n_out, o0)
        n_o = builder.select(builder.icmp_signed("<", left, const(width)), left, const(width))
        area = const(size * size)
        base = builder.gep(dw.data, [mul(add(mul(o0, chans), c), area)])
        vecs = [builder.load(a) for a in totals]
        with cgutils.for_range(builder, n_o) as o_loop:
            row = builder.gep(base, [mul(mul(o_loop.index, chans), area)])
            for t, vec in enumerate(vecs):
                builder.store(builder.extract_element(vec, o_loop.index),
                              builder.gep(row, [const(t)]))
        return context.get_dummy_value()

    return codegen
