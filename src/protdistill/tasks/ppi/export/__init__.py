"""A trained PPI student for deployment: ONNX export / ONNX Runtime students and compression."""
