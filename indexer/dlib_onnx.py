"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``,
as installed by ``face_recognition_models``) as an ONNX model with the same
computation, read with numpy and built with ``onnx.helper``: no dlib, no
PyTorch. ``indexer.model`` runs it with onnxruntime (~5 ms a face on one
core, against ~75 ms for dlib-bin's own).

The model: input ``chips``, float32 (N, 3, 150, 150), RGB face chips with
raw 0..255 values, channel first (``dlib.get_face_chip(rgb, shape, 150,
0.25)`` transposed); output ``descriptors``, float32 (N, 128), what dlib's
``compute_face_descriptor`` returns. dlib's input scaling, ``(pixel -
mean) / 256`` with the means stored in the file, is part of the graph.

How dlib stores a network (read from dlib's own source,
github.com/davisking/dlib at 3d40bf57: ``dlib/serialize.h``,
``dlib/dnn/core.h``, ``layers.h``, ``input.h``, ``loss.h``,
``cuda/tensor.h``, ``cuda/cpu_dlib.cpp``): recursively, outermost object
first. The loss layer, then every wrapper's version number from the outside
in, then the input layer, then each layer's own fields from the input
outwards. Tag and skip layers store only a version number, and ``add_prev``
does not store which tag it adds: the file alone does not give the wiring.
So the network's type, ``anet_type`` of dlib's
``examples/dnn_face_recognition_ex.cpp``, is written out here
(``network_layers``) and every stored layer is checked against it; a file
of another shape is refused with the layer and offset where it differs.

The details that matter for exactness:

- integers are a control byte (0x80: negative; low 4 bits: the byte count)
  and that many little-endian bytes; floats a mantissa and an exponent
  integer; tensors raw little-endian float32;
- a strided convolution or pool has no padding, a 3x3 stride-1 one pads 1
  (``stride != 1 ? 0 : kernel / 2``);
- ``affine`` is batch norm folded into a per-channel scale and shift;
- ``add_prev`` of tensors of different shapes gives the larger shape in each
  dimension, the smaller input zero-filled at the high end: channels double
  in every down-sampling block, and twice the sizes differ too (3x3 against
  4x4, 1x1 against 2x2);
- the last fully connected layer stores (inputs, outputs) and computes
  ``x @ W``.

Measured over the faces of ``tests/data``: at most 4e-7 from dlib's own
descriptors (``tests/model/test_encoder.py`` holds it to 1e-4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

CONVERTER_VERSION = 1  # part of the cached file's name: a new converter makes a new file
OPSET = 17
CHIP_SIZE = 150


class DlibFormatError(ValueError):
    """The weights file is not the network this converter knows."""


# -- dlib's serialisation primitives -------------------------------------------


class Reader:
    """dlib's encodings of integers, floats, booleans, strings and tensors."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, message: str) -> DlibFormatError:
        return DlibFormatError(f"{message} (at byte {self.pos})")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(f"the file ends early: {n} more bytes wanted")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def integer(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if not 1 <= size <= 8:
            raise self.fail(f"not an integer: control byte 0x{control:02x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def real(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        special = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        return special[exponent] if exponent in special else math.ldexp(float(mantissa), exponent)

    def boolean(self) -> bool:
        byte = self.take(1)
        if byte not in (b"0", b"1"):
            raise self.fail(f"not a boolean: {byte!r}")
        return byte == b"1"

    def string(self) -> str:
        return self.take(self.integer()).decode("latin-1")

    def tensor(self) -> np.ndarray:
        self.version("tensor", (2,))
        shape = tuple(self.integer() for _ in range(4))
        return np.frombuffer(self.take(4 * math.prod(shape)), dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self) -> tuple[int, ...]:
        self.version("alias_tensor", (1,))
        return tuple(self.integer() for _ in range(4))

    def version(self, what: str, allowed: tuple[int, ...]) -> int:
        found = self.integer()
        if found not in allowed:
            raise self.fail(f"{what}: version {found}, expected one of {allowed}")
        return found

    def name(self, allowed: tuple[str, ...]) -> str:
        found = self.string()
        if found not in allowed:
            raise self.fail(f"expected a layer {' or '.join(allowed)}, found {found!r}")
        return found


# -- the network ---------------------------------------------------------------


@dataclass
class Layer:
    """One layer of the network; ``args`` are its template arguments
    (``con``: filters, rows, columns, stride y, stride x; pools: rows,
    columns, strides; ``tag``/``skip``/``add_prev``: the tag id), ``params``
    what the file holds for it."""

    kind: str
    args: tuple = ()
    params: dict = field(default_factory=dict)


def network_layers() -> list[Layer]:
    """``anet_type`` of dnn_face_recognition_ex.cpp, outermost (the loss) first::

        residual<N>      = add_prev1<block<N,1,tag1<SUBNET>>>
        residual_down<N> = add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,2,tag1<SUBNET>>>>>>
        block<N,stride>  = affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride,SUBNET>>>>>
        ares<N> = relu<residual<N>>, ares_down<N> = relu<residual_down<N>>
        anet_type = loss_metric<fc_no_bias<128,avg_pool_everything<
            ares_down<256>  ares<256> ares<256> ares_down<256>  ares<128> ares<128> ares_down<128>
            ares<64> ares<64> ares<64> ares_down<64>  ares<32> ares<32> ares<32>
            max_pool<3,3,2,2,relu<affine<con<32,7,7,2,2,input_rgb_image_sized<150>>>>>>>>
    """

    def block(n: int, stride: int) -> list[Layer]:
        return [Layer("affine"), Layer("con", (n, 3, 3, 1, 1)), Layer("relu"), Layer("affine"),
                Layer("con", (n, 3, 3, stride, stride))]

    def ares(n: int) -> list[Layer]:
        return [Layer("relu"), Layer("add_prev", (1,)), *block(n, 1), Layer("tag", (1,))]

    def ares_down(n: int) -> list[Layer]:
        return [Layer("relu"), Layer("add_prev", (2,)), Layer("avg_pool", (2, 2, 2, 2)), Layer("skip", (1,)),
                Layer("tag", (2,)), *block(n, 2), Layer("tag", (1,))]

    levels = (ares_down(256) + ares(256) + ares(256) + ares_down(256) + ares(128) + ares(128) + ares_down(128)
              + ares(64) + ares(64) + ares(64) + ares_down(64) + ares(32) + ares(32) + ares(32))
    return [Layer("loss_metric"), Layer("fc", (128,)), Layer("avg_pool", (0, 0, 1, 1)), *levels,
            Layer("max_pool", (3, 3, 2, 2)), Layer("relu"), Layer("affine"), Layer("con", (32, 7, 7, 2, 2)),
            Layer("input", (CHIP_SIZE, CHIP_SIZE))]


def _padding(kernel: int, stride: int) -> int:
    return 0 if stride != 1 else kernel // 2


def _read_input(r: Reader, layer: Layer) -> None:
    r.name(("input_rgb_image_sized",))
    means = np.array([r.real() for _ in range(3)], dtype=np.float32)  # red, green, blue: C++ floats
    size = (r.integer(), r.integer())
    if size != layer.args:
        raise r.fail(f"input of {size}, expected {layer.args}")
    layer.params["means"] = means


def _read_con(r: Reader, layer: Layer) -> None:
    version = r.name(("con_4", "con_5", "con_6"))
    params = r.tensor().reshape(-1)
    shape = (r.integer(), r.integer(), r.integer(), r.integer(), r.integer())  # filters, rows, cols, strides
    pads = (r.integer(), r.integer())
    filters = r.alias_tensor()
    r.alias_tensor()  # the biases' view: (1, filters, 1, 1)
    for _ in range(4):
        r.real()  # learning-rate and weight-decay multipliers: training only
    use_bias = r.boolean() if version in ("con_5", "con_6") else True
    fused_relu = r.boolean() if version == "con_6" else False
    if shape != layer.args:
        raise r.fail(f"convolution {shape}, expected {layer.args}")
    if pads != (_padding(shape[1], shape[3]), _padding(shape[2], shape[4])):
        raise r.fail(f"convolution padding {pads}")
    weights = math.prod(filters)
    if params.size != weights + (shape[0] if use_bias else 0):
        raise r.fail("convolution parameters do not match its filters")
    layer.params.update(weight=params[:weights].reshape(filters),  # (out, in, rows, cols), as ONNX's Conv
                        bias=params[weights:] if use_bias else None, relu=fused_relu)


def _read_fc(r: Reader, layer: Layer) -> None:
    version = r.name(("fc_2", "fc_3"))
    outputs, inputs = r.integer(), r.integer()
    params = r.tensor().reshape(-1)
    r.alias_tensor()
    r.alias_tensor()
    bias_mode = r.integer()  # 1: no bias (fc_no_bias)
    for _ in range(4):
        r.real()
    if version == "fc_3":
        r.boolean()
    if (outputs, bias_mode) != (layer.args[0], 1) or params.size != inputs * outputs:
        raise r.fail(f"fully connected layer of {outputs} outputs, bias mode {bias_mode}")
    layer.params["weight"] = params.reshape(inputs, outputs)


def _read_affine(r: Reader, layer: Layer) -> None:
    version = r.name(("affine_", "affine_2"))
    params = r.tensor().reshape(-1)
    n = math.prod(r.alias_tensor())
    r.alias_tensor()
    mode = r.integer()  # 0: one scale and shift per channel
    disabled = r.boolean() if version == "affine_2" else False
    if mode != 0 or disabled:
        raise r.fail(f"affine layer of mode {mode}{', disabled' if disabled else ''}")
    layer.params.update(gamma=params[:n], beta=params[n : 2 * n])


def _read_relu(r: Reader, layer: Layer) -> None:
    if r.name(("relu_", "relu_2")) == "relu_2" and r.boolean():
        raise r.fail("a disabled relu")


def _read_pool(r: Reader, layer: Layer) -> None:
    r.name(("max_pool_2",) if layer.kind == "max_pool" else ("avg_pool_2",))
    shape = (r.integer(), r.integer(), r.integer(), r.integer())
    pads = (r.integer(), r.integer())
    if shape != layer.args:
        raise r.fail(f"{layer.kind} {shape}, expected {layer.args}")
    layer.params["pads"] = pads


def _read_add_prev(r: Reader, layer: Layer) -> None:
    r.name(("add_prev_",))


_READERS = {"con": _read_con, "fc": _read_fc, "affine": _read_affine, "relu": _read_relu,
            "max_pool": _read_pool, "avg_pool": _read_pool, "add_prev": _read_add_prev}


def _training_state(r: Reader, tensors: int) -> None:
    """What ``add_layer`` stores after a layer: three flags and its gradient
    and output buffers (empty in a deployed network)."""
    for _ in range(3):
        r.boolean()
    for _ in range(tensors):
        r.tensor()


def read_network(data: bytes) -> list[Layer]:
    """The layers of ``network_layers()`` with their parameters from ``data``
    (the bytes of the .dat file). Raises ``DlibFormatError``."""
    layers = network_layers()
    r = Reader(data)
    r.version("loss layer", (1,))
    name = r.name(("loss_metric_", "loss_metric_2"))
    if name == "loss_metric_2":
        r.real(), r.real()  # margin and distance threshold: training only
    middle, bottom, inputs = layers[1:-2], layers[-2], layers[-1]
    for layer in middle:  # the wrappers' versions, outside in
        if layer.kind in ("tag", "skip"):
            r.version(f"{layer.kind} layer", (1,))
        else:
            layer.params["wrapper"] = r.version("layer", (1, 2))
    # The layer on the input holds the input layer itself.
    bottom_version = r.version("first layer", (2, 3))
    _read_input(r, inputs)
    _READERS[bottom.kind](r, bottom)
    _training_state(r, 3)
    if bottom_version == 3:
        r.integer()  # sample expansion factor
    for layer in reversed(middle):  # each layer's fields, inside out
        if layer.kind not in ("tag", "skip"):
            _READERS[layer.kind](r, layer)
            _training_state(r, 3 if layer.params.pop("wrapper") == 2 else 2)
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} bytes left after the network")
    return layers


# -- the ONNX graph ------------------------------------------------------------


class _Graph:
    def __init__(self) -> None:
        self.nodes: list = []
        self.constants: list = []
        self.count = 0

    def _name(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, base: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self._name(base)
        self.constants.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op: str, inputs: list[str], base: str, **attrs) -> str:
        from onnx import helper

        out = self._name(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _out_size(size: int, window: int, stride: int, pad: int) -> int:
    return 1 + (size + 2 * pad - window) // stride


def build_model(layers: list[Layer]):
    """The ONNX ``ModelProto`` of the read network (checked by ``onnx.checker``)."""
    from onnx import TensorProto, checker, helper

    g = _Graph()
    means = layers[-1].params["means"].reshape(1, 3, 1, 1)
    x = g.op("Sub", ["chips", g.const("input_means", means)], "input_centred")
    x = g.op("Mul", [x, g.const("input_scale", np.array(1 / 256, np.float32))], "input")  # exact: a power of 2
    shape: tuple[int, ...] = (3, CHIP_SIZE, CHIP_SIZE)  # channels, rows, columns
    tags: dict[int, tuple[str, tuple]] = {}
    for layer in reversed(layers[1:-1]):  # from the input outwards
        p, kind = layer.params, layer.kind
        if kind == "tag":  # the nearest tag below a layer is the latest one seen
            tags[layer.args[0]] = (x, shape)
        elif kind == "skip":
            x, shape = tags[layer.args[0]]
        elif kind == "con":
            n = p["weight"].shape[0]
            rows, cols, sy, sx = layer.args[1:]
            py, px = _padding(rows, sy), _padding(cols, sx)
            bias = [g.const("con_b", p["bias"])] if p["bias"] is not None else []
            inputs = [x, g.const("con_w", p["weight"]), *bias]
            x = g.op("Conv", inputs, "con", kernel_shape=[rows, cols], strides=[sy, sx], pads=[py, px, py, px])
            if p["relu"]:
                x = g.op("Relu", [x], "con_relu")
            shape = (n, _out_size(shape[1], rows, sy, py), _out_size(shape[2], cols, sx, px))
        elif kind == "affine":
            x = g.op("Mul", [x, g.const("affine_gamma", p["gamma"].reshape(1, -1, 1, 1))], "affine_scale")
            x = g.op("Add", [x, g.const("affine_beta", p["beta"].reshape(1, -1, 1, 1))], "affine")
        elif kind == "relu":
            x = g.op("Relu", [x], "relu")
        elif kind in ("max_pool", "avg_pool"):
            rows, cols, sy, sx = layer.args
            if rows == 0:  # avg_pool_everything
                x, shape = g.op("GlobalAveragePool", [x], "avg_pool_everything"), (shape[0], 1, 1)
                continue
            py, px = p["pads"]
            x = g.op("MaxPool" if kind == "max_pool" else "AveragePool", [x], kind, kernel_shape=[rows, cols],
                     strides=[sy, sx], pads=[py, px, py, px])
            shape = (shape[0], _out_size(shape[1], rows, sy, py), _out_size(shape[2], cols, sx, px))
        elif kind == "add_prev":
            other, other_shape = tags[layer.args[0]]
            out = tuple(max(a, b) for a, b in zip(shape, other_shape))

            def widened(t: str, s: tuple, out: tuple = out) -> str:
                if s == out:
                    return t
                pads = [0, 0, 0, 0, 0, *(o - d for o, d in zip(out, s))]  # zeros at the high end
                return g.op("Pad", [t, g.const("pads", np.array(pads, np.int64))], "add_prev_pad", mode="constant")

            x, shape = g.op("Add", [widened(x, shape), widened(other, other_shape)], "add_prev"), out
        elif kind == "fc":
            weight = p["weight"]
            if weight.shape[0] != math.prod(shape):
                raise DlibFormatError(f"fully connected layer of {weight.shape[0]} inputs after {shape}")
            x = g.op("Flatten", [x], "flatten", axis=1)  # (channel, row, column) order, as dlib's
            x = g.op("MatMul", [x, g.const("fc_w", weight)], "fc")
            shape = (weight.shape[1],)
    g.nodes.append(helper.make_node("Identity", [x], ["descriptors"], name="descriptors"))
    graph = helper.make_graph(
        g.nodes, "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("chips", TensorProto.FLOAT, ["N", 3, CHIP_SIZE, CHIP_SIZE])],
        [helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["N", shape[0]])],
        g.constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="facesearch", producer_version=str(CONVERTER_VERSION))
    model.ir_version = 8
    checker.check_model(model)
    return model


def convert(data: bytes) -> bytes:
    """The serialised ONNX model of the dlib weights ``data``."""
    return build_model(read_network(data)).SerializeToString()
