"""Builds tiny ONNX detectors for crow-vision's tests (tests/detector.rs).

    python make_tiny_detector.py OUT_DIR

Every model takes a fixed 64x64 RGB image and outputs fixed boxes whose class scores are a
linear function of the input's centre pixel (which letterboxing never covers), so a test picks
the scores with the colour of a solid frame:

    candidate  box (input pixels, x0 y0 x1 y1)   class scores (R, G, B: the centre pixel)
    0          22 22 42 42                        person = R
    1           6 36 14 44                        class 1 = G
    2          43 22 53 34                        person = 0.5 R, class 2 = B
    3          23 23 43 43 (overlaps 0)           person = 0.9 R

Written models (all opset 13, IR 8):
    yolo.onnx       NCHW input, output [1, 4 + 3, 4]: cx, cy, w, h then 3 class scores.
    yolo_obj.onnx   NCHW input, output [1, 4, 5 + 3]: cx, cy, w, h, objectness (always 1), scores.
    ssd.onnx        NCHW input, outputs boxes [1, 4, 4] (normalized y0 x0 y1 x1) and
                    scores [1, 4, 4] with the background first (class ids shifted by one).
    ssd_tf.onnx     NHWC input, TensorFlow-style outputs detection_boxes [1, 4, 4],
                    detection_classes [1, 4] (floats: 1, 2, 1, 1 -> the first class the best
                    one above), detection_scores [1, 4] and num_detections [1] (= 3: the
                    fourth candidate is not counted).
    wrong.onnx      NCHW input, one output [1, 10]: no detector layout fits it.
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 64
# (x0, y0, x1, y1) in input pixels.
BOXES = np.array(
    [[22, 22, 42, 42], [6, 36, 14, 44], [43, 22, 53, 34], [23, 23, 43, 43]],
    dtype=np.float32,
)
N = len(BOXES)
C = 3
# WEIGHTS[channel, class, candidate]: score(class, candidate) = sum over channels of pixel * weight.
WEIGHTS = np.zeros((3, C, N), dtype=np.float32)
WEIGHTS[0, 0, 0] = 1.0  # candidate 0: person = R
WEIGHTS[1, 1, 1] = 1.0  # candidate 1: class 1 = G
WEIGHTS[0, 0, 2] = 0.5  # candidate 2: person = 0.5 R ...
WEIGHTS[2, 2, 2] = 1.0  # ... class 2 = B
WEIGHTS[0, 0, 3] = 0.9  # candidate 3: person = 0.9 R


def const(name, array):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(array), name))


def centre_pixel(nodes, nhwc):
    """Nodes that slice the centre pixel out of `image` into `pixel` [1, 3]."""
    h, w = (1, 2) if nhwc else (2, 3)
    nodes += [
        const("starts", np.array([SIZE // 2, SIZE // 2], dtype=np.int64)),
        const("ends", np.array([SIZE // 2 + 1, SIZE // 2 + 1], dtype=np.int64)),
        const("axes", np.array([h, w], dtype=np.int64)),
        helper.make_node("Slice", ["image", "starts", "ends", "axes"], ["centre"]),
        const("flat3", np.array([1, 3], dtype=np.int64)),
        helper.make_node("Reshape", ["centre", "flat3"], ["pixel"]),
    ]


def scores_by_class(nodes, out):
    """`out` = class scores [1, C, N] from `pixel`."""
    nodes += [
        const("weights", WEIGHTS.reshape(3, C * N)),
        helper.make_node("MatMul", ["pixel", "weights"], ["flat_scores"]),
        const("cn", np.array([1, C, N], dtype=np.int64)),
        helper.make_node("Reshape", ["flat_scores", "cn"], [out]),
    ]


def model(nodes, outputs, nhwc=False):
    shape = [1, SIZE, SIZE, 3] if nhwc else [1, 3, SIZE, SIZE]
    graph = helper.make_graph(
        nodes,
        "tiny_detector",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(name, ty, dims) for name, ty, dims in outputs],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="crow-tests")
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def cxcywh():
    x0, y0, x1, y1 = BOXES.T
    return np.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0])  # [4, N]


def yolo():
    nodes = []
    centre_pixel(nodes, False)
    scores_by_class(nodes, "scores")
    nodes += [
        const("boxes", cxcywh()[None]),  # [1, 4, N]
        helper.make_node("Concat", ["boxes", "scores"], ["output0"], axis=1),
    ]
    return model(nodes, [("output0", TensorProto.FLOAT, [1, 4 + C, N])])


def yolo_obj():
    nodes = []
    centre_pixel(nodes, False)
    scores_by_class(nodes, "scores")
    nodes += [
        const("boxes", np.concatenate([cxcywh(), np.ones((1, N), np.float32)])[None]),  # [1, 5, N]
        helper.make_node("Concat", ["boxes", "scores"], ["rows"], axis=1),
        helper.make_node("Transpose", ["rows"], ["output"], perm=[0, 2, 1]),
    ]
    return model(nodes, [("output", TensorProto.FLOAT, [1, N, 5 + C])])


def normalized_yxyx():
    x0, y0, x1, y1 = (BOXES / SIZE).T
    return np.stack([y0, x0, y1, x1], axis=1)[None].astype(np.float32)  # [1, N, 4]


def ssd():
    nodes = []
    centre_pixel(nodes, False)
    scores_by_class(nodes, "by_class")
    nodes += [
        helper.make_node("Transpose", ["by_class"], ["by_box"], perm=[0, 2, 1]),  # [1, N, C]
        const("background", np.full((1, N, 1), 0.05, np.float32)),
        helper.make_node("Concat", ["background", "by_box"], ["scores"], axis=2),
        const("boxes", normalized_yxyx()),
    ]
    return model(nodes, [("boxes", TensorProto.FLOAT, [1, N, 4]), ("scores", TensorProto.FLOAT, [1, N, C + 1])])


def ssd_tf():
    nodes = []
    centre_pixel(nodes, True)
    scores_by_class(nodes, "by_class")
    nodes += [
        helper.make_node("Transpose", ["by_class"], ["by_box"], perm=[0, 2, 1]),  # [1, N, C]
        helper.make_node("ReduceMax", ["by_box"], ["detection_scores"], axes=[2], keepdims=0),
        const("detection_classes", np.array([[1, 2, 1, 1]], dtype=np.float32)),
        const("num_detections", np.array([3], dtype=np.float32)),
        const("detection_boxes", normalized_yxyx()),
    ]
    return model(
        nodes,
        [
            ("detection_boxes", TensorProto.FLOAT, [1, N, 4]),
            ("detection_classes", TensorProto.FLOAT, [1, N]),
            ("detection_scores", TensorProto.FLOAT, [1, N]),
            ("num_detections", TensorProto.FLOAT, [1]),
        ],
        nhwc=True,
    )


def wrong():
    nodes = []
    centre_pixel(nodes, False)
    nodes += [
        const("w", np.ones((3, 10), np.float32)),
        helper.make_node("MatMul", ["pixel", "w"], ["logits"]),
    ]
    return model(nodes, [("logits", TensorProto.FLOAT, [1, 10])])


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, build in [("yolo", yolo), ("yolo_obj", yolo_obj), ("ssd", ssd), ("ssd_tf", ssd_tf), ("wrong", wrong)]:
        onnx.save(build(), os.path.join(out, name + ".onnx"))


if __name__ == "__main__":
    main()
