//! PLACEHOLDER — being written (ONNX embedder).
